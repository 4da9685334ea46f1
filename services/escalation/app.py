"""Wiring of the escalation service: consumers of incident events, people's commands and
delivery results; the timer loop; the incidents and on-call APIs.

The service reads its configuration section through a holder (`Current`), each time it needs
it: a reload replaces the section and the next page, timer or request sees the new one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from schemas import (
    INCIDENTS_COMMANDS,
    INCIDENTS_EVENTS,
    INCIDENTS_LIFECYCLE,
    NOTIFICATIONS_RESULTS,
    IncidentCommand,
    IncidentEvent,
    IncidentLifecycleChanged,
    NotificationResult,
)
from services.escalation import after_incident_api, analytics_api, audit_api, keys_api, oncall_api
from services.escalation.after_incident import AfterIncident
from services.escalation.api import router
from services.escalation.audit_api import audit_rules
from services.escalation.config import EscalationConfig
from services.escalation.console import routes as console
from services.escalation.console.catalogue import Catalogue
from services.escalation.console.sessions import SessionStore, session_rules
from services.escalation.console.triage_client import TriageLink
from services.escalation.consumers import CommandHandler
from services.escalation.deliveries import DeliveryResults
from services.escalation.domain.cadence import UpdatesConfig
from services.escalation.engine import Escalation
from services.escalation.oncall_store import MongoOncallStore, OncallStore
from services.escalation.reminders import Reminders, ReminderStore
from services.escalation.review_store import ReviewStore
from services.escalation.review_store import retention_rules as after_retention
from services.escalation.status_updates import StatusUpdates
from services.escalation.store import EscalationStore, MongoEscalationStore, retention_rules
from services.escalation.updates_api import router as updates_router
from services.escalation.updates_store import UpdatesStore, updates_retention_rules
from tocsin.runtime.access import Access
from tocsin.runtime.audit import AuditLog
from tocsin.runtime.bus import Bus, Subscription
from tocsin.runtime.clock import Clock
from tocsin.runtime.live_config import Current, Fixed
from tocsin.runtime.parts import Parts
from tocsin.runtime.retention import with_retention
from tocsin.runtime.service import Service
from tocsin.runtime.store import DocumentDatabase

CONSUMER_GROUP = "tocsin-escalation"
AFTER_INCIDENT_GROUP = "tocsin-escalation-after-incident"


def from_parts(
    parts: Parts,
    config: EscalationConfig | Current[EscalationConfig],
    updates_config: Current[UpdatesConfig] | None = None,
    *,
    triage: TriageLink | None = None,
    catalogue: Current[Catalogue] | None = None,
) -> Service:
    """`updates_config`: the status update cadence and components (from `status_pages:`);
    `triage`: where the console reaches triage's silences API; `catalogue`: the declared
    services and integrations the console shows."""
    settings = parts.settings
    service = build(
        parts.bus,
        MongoEscalationStore(parts.database),
        config,
        parts.clock,
        parts.require_api_key,
        instance_id=parts.instance_id,
        oncall=MongoOncallStore(parts.database),
        lease=timedelta(seconds=settings.timer_lease_seconds),
        poll_seconds=settings.timer_poll_seconds,
        public_url=settings.public_url,
        database=parts.database,
        updates_config=updates_config,
        access=parts.access,
        audit=parts.audit,
        triage=triage,
        catalogue=catalogue,
    )
    return with_retention(
        service,
        parts,
        lambda policy: [
            *retention_rules(policy),
            *updates_retention_rules(policy),
            *after_retention(policy),
            *audit_rules(policy),
            *session_rules(policy),
        ],
    )


def build(
    bus: Bus,
    store: EscalationStore,
    config: EscalationConfig | Current[EscalationConfig],
    clock: Clock,
    require_api_key: Callable[..., str],
    *,
    instance_id: str,
    oncall: OncallStore,
    lease: timedelta = timedelta(seconds=30),
    poll_seconds: float = 0.25,
    public_url: str | None = None,
    database: DocumentDatabase | None = None,
    updates_config: Current[UpdatesConfig] | None = None,
    access: Access | None = None,
    audit: AuditLog | None = None,
    triage: TriageLink | None = None,
    catalogue: Current[Catalogue] | None = None,
) -> Service:
    """`public_url`: where the operator API is reached (pages link to the incident there).
    `config`: the section itself (fixed) or a holder of the current one (reloadable).
    `database`: where reminders, reviews and action items live (without it, none of them)."""
    live = Fixed(config) if isinstance(config, EscalationConfig) else config
    engine = Escalation(
        bus,
        store,
        live,
        clock,
        instance_id,
        oncall=oncall,
        lease=lease,
        poll_seconds=poll_seconds,
        public_url=public_url,
    )
    commands = CommandHandler(engine, store, clock)
    results = DeliveryResults(bus, store, live, clock, public_url=public_url)
    api = APIRouter()
    after: AfterIncident | None = None
    on_incident_event: Callable[[IncidentEvent], Awaitable[None]] = engine.on_incident_event
    if database is not None:
        reminders = Reminders(
            ReminderStore(database),
            bus,
            store,
            live,
            clock,
            instance_id,
            lease=lease,
            public_url=public_url,
        )
        after = AfterIncident(store, ReviewStore(database), reminders, live, clock, database)
        status_updates = StatusUpdates(
            UpdatesStore(database),
            store,
            reminders,
            bus,
            updates_config or Fixed(UpdatesConfig()),
            live,
            clock,
        )
        on_incident_event = _then(engine.on_incident_event, after.on_incident_event)
    api.include_router(
        router(engine, store, require_api_key, recurrence=after.recurrence if after else None)
    )
    api.include_router(oncall_api.router(engine, oncall, require_api_key, public_url=public_url))
    if database is not None:
        reader = analytics_api.AnalyticsReader(database)
        api.include_router(analytics_api.router(reader, clock, require_api_key))
    subscriptions: list[Subscription[Any]] = []
    loops: list[Callable[[], Coroutine[Any, Any, None]]] = [engine.run_timers]
    on_start: list[Callable[[], Awaitable[None]]] = [store.ensure_indexes, oncall.ensure_indexes]
    if access is not None:
        api.include_router(keys_api.router(access, require_api_key))
        on_start.append(access.keys.ensure_indexes)
    if audit is not None:
        api.include_router(audit_api.router(audit, require_api_key))
        on_start.append(audit.ensure_indexes)
    if access is not None and audit is not None and database is not None:
        sessions = SessionStore(database)
        api.include_router(
            console.router(
                engine,
                store,
                access,
                audit,
                sessions,
                status_updates,
                recurrence=after.recurrence if after else None,
                triage=triage,
                catalogue=catalogue,
                public_url=public_url,
            )
        )
        on_start.append(sessions.ensure_indexes)
    if after is not None:
        api.include_router(after_incident_api.router(after, require_api_key))
        subscriptions.append(
            Subscription(
                INCIDENTS_LIFECYCLE,
                AFTER_INCIDENT_GROUP,
                IncidentLifecycleChanged,
                after.on_lifecycle,
            )
        )
        loops.append(after.reminders.run)
        on_start += [
            after.reminders.store.ensure_indexes,
            after.reviews.ensure_indexes,
            after.refresh_gauges,
        ]
        api.include_router(updates_router(status_updates, store, require_api_key))
        subscriptions += status_updates.subscriptions()
        loops.append(status_updates.run_outbox)
        on_start.append(status_updates.store.ensure_indexes)
    return Service(
        name="escalation",
        router=api,
        subscriptions=[
            *subscriptions,
            Subscription(INCIDENTS_EVENTS, CONSUMER_GROUP, IncidentEvent, on_incident_event),
            Subscription(INCIDENTS_COMMANDS, CONSUMER_GROUP, IncidentCommand, commands.handle),
            Subscription(
                NOTIFICATIONS_RESULTS,
                CONSUMER_GROUP,
                NotificationResult,
                results.on_notification_result,
            ),
        ],
        loops=loops,
        on_start=on_start,
    )


def _then(
    first: Callable[[IncidentEvent], Awaitable[None]],
    then: Callable[[IncidentEvent], Awaitable[None]],
) -> Callable[[IncidentEvent], Awaitable[None]]:
    """One handler of incident events doing `first`, then `then` (both idempotent)."""

    async def handle(event: IncidentEvent) -> None:
        await first(event)
        await then(event)

    return handle
