"""Wiring of the notifier service: the `notifications.requested` consumer, the delivery loop,
the channels and the routes providers call back (api.py)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from schemas import NOTIFICATIONS_REQUESTED, NotificationRequested
from services.notifier import api
from services.notifier.channels import channels
from services.notifier.config import NotifierConfig
from services.notifier.consumers import Delivery
from services.notifier.contact_store import (
    ContactStore,
    MongoContactStore,
    contact_retention_rules,
)
from services.notifier.domain.retry import DEFAULT_RETRY, RetryPolicy
from services.notifier.message_store import (
    MessageStore,
    MongoMessageStore,
    message_retention_rules,
)
from services.notifier.status import StatusService
from services.notifier.status_domain import (
    Expand,
    MaintenanceSchedule,
    no_expansion,
    no_maintenance,
)
from services.notifier.status_store import StatusStore, status_retention_rules
from services.notifier.store import MongoNotifierStore, NotifierStore, retention_rules
from tocsin.runtime.bus import Bus, Subscription
from tocsin.runtime.clock import Clock
from tocsin.runtime.live_config import Current, Fixed
from tocsin.runtime.parts import Parts
from tocsin.runtime.retention import with_retention
from tocsin.runtime.service import Service
from tocsin.runtime.settings import Settings

CONSUMER_GROUP = "tocsin-notifier"


def retry_policy(settings: Settings) -> RetryPolicy:
    """The notifier's retry policy from the process settings (`TOCSIN_NOTIFIER_*`)."""
    return RetryPolicy(
        period=timedelta(seconds=settings.notifier_retry_period_seconds),
        max_attempts=settings.notifier_max_attempts,
        backoff_base=timedelta(seconds=settings.notifier_backoff_seconds),
        backoff_cap=timedelta(seconds=settings.notifier_backoff_cap_seconds),
        error_attempts=settings.notifier_error_attempts,
    )


def with_public_url(config: NotifierConfig, settings: Settings) -> NotifierConfig:
    if config.public_url is None and settings.public_url is not None:
        # TOCSIN_PUBLIC_URL (or `tocsin up`'s listening address) when the file has none.
        return config.model_copy(update={"public_url": settings.public_url})
    return config


def from_parts(
    parts: Parts,
    config: NotifierConfig | Current[NotifierConfig],
    maintenance: MaintenanceSchedule = no_maintenance,
    expand: Expand = no_expansion,
) -> Service:
    """`maintenance`: the maintenance windows' occurrences, for the status pages; `expand`:
    those of a window created through triage's API (the notifier keeps copies).
    `config`: the section, or a view of it (see `with_public_url`) that a reload replaces;
    contacts apply live, providers and the public URL are taken once here."""
    if isinstance(config, NotifierConfig):
        config = with_public_url(config, parts.settings)
    service = build(
        parts.bus,
        MongoNotifierStore(parts.database),
        config,
        parts.clock,
        parts.http_client,
        instance_id=parts.instance_id,
        poll_seconds=parts.settings.timer_poll_seconds,
        retry=retry_policy(parts.settings),
        messages=MongoMessageStore(parts.database),
        contact_store=MongoContactStore(parts.database),
        status_store=StatusStore(parts.database),
        maintenance=maintenance,
        expand=expand,
    )
    return with_retention(
        service,
        parts,
        lambda policy: [
            *retention_rules(policy),
            *message_retention_rules(policy),
            *contact_retention_rules(policy),
            *status_retention_rules(policy),
        ],
    )


def build(
    bus: Bus,
    store: NotifierStore,
    config: NotifierConfig | Current[NotifierConfig],
    clock: Clock,
    client: httpx.AsyncClient,
    *,
    instance_id: str,
    poll_seconds: float = 0.25,
    retry: RetryPolicy = DEFAULT_RETRY,
    messages: MessageStore,
    contact_store: ContactStore | None = None,  # sms and voice need it
    status_store: StatusStore | None = None,  # status pages need it
    maintenance: MaintenanceSchedule = no_maintenance,
    expand: Expand = no_expansion,
) -> Service:
    live = Fixed(config) if isinstance(config, NotifierConfig) else config
    # Providers' clients and the public URL: taken once (a reload reports them as needing a
    # restart); contacts are read through `live` at each delivery.
    started = live.current
    delivery = Delivery(
        bus,
        store,
        live,
        channels(client, started, messages=messages, clock=clock, contact_store=contact_store),
        clock,
        instance_id,
        retry=retry,
        poll_seconds=poll_seconds,
    )
    router = api.router(
        bus,
        started,
        clock,
        messages,
        twilio=(contact_store, store) if contact_store is not None else None,
        woken=delivery.wake,
    )
    status = (
        StatusService(
            status_store, live, clock, client, messages, maintenance=maintenance, expand=expand
        )
        if status_store
        else None
    )
    if status is not None:
        router.include_router(status.router)
    return Service(
        name="notifier",
        subscriptions=[
            Subscription(
                NOTIFICATIONS_REQUESTED, CONSUMER_GROUP, NotificationRequested, delivery.handle
            ),
            *(status.subscriptions if status is not None else []),
        ],
        router=router,
        loops=[delivery.run, *(status.loops if status is not None else [])],
        on_start=[
            store.ensure_indexes,
            messages.ensure_indexes,
            *([contact_store.ensure_indexes] if contact_store is not None else []),
            *([status_store.ensure_indexes] if status_store is not None else []),
        ],
    )
