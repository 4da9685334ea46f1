"""Wiring of the escalation service: consumers of incident events, people's commands and
delivery results; the timer loop; the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from schemas import (
    INCIDENTS_COMMANDS,
    INCIDENTS_EVENTS,
    NOTIFICATIONS_RESULTS,
    IncidentCommand,
    IncidentEvent,
    NotificationResult,
)
from services.escalation.api import router
from services.escalation.config import EscalationConfig
from services.escalation.consumers import CommandHandler
from services.escalation.deliveries import DeliveryResults
from services.escalation.engine import Escalation
from services.escalation.store import EscalationStore, MongoEscalationStore, retention_rules
from tocsin.runtime.bus import Bus, Subscription
from tocsin.runtime.clock import Clock
from tocsin.runtime.parts import Parts
from tocsin.runtime.retention import with_retention
from tocsin.runtime.service import Service

CONSUMER_GROUP = "tocsin-escalation"


def from_parts(parts: Parts, config: EscalationConfig) -> Service:
    settings = parts.settings
    service = build(
        parts.bus,
        MongoEscalationStore(parts.database),
        config,
        parts.clock,
        parts.require_api_key,
        instance_id=parts.instance_id,
        lease=timedelta(seconds=settings.timer_lease_seconds),
        poll_seconds=settings.timer_poll_seconds,
        public_url=settings.public_url,
    )
    return with_retention(service, parts, retention_rules)


def build(
    bus: Bus,
    store: EscalationStore,
    config: EscalationConfig,
    clock: Clock,
    require_api_key: Callable[..., str],
    *,
    instance_id: str,
    lease: timedelta = timedelta(seconds=30),
    poll_seconds: float = 0.25,
    public_url: str | None = None,
) -> Service:
    """`public_url`: where the operator API is reached (pages link to the incident there)."""
    engine = Escalation(
        bus,
        store,
        config,
        clock,
        instance_id,
        lease=lease,
        poll_seconds=poll_seconds,
        public_url=public_url,
    )
    commands = CommandHandler(engine, store, clock)
    results = DeliveryResults(bus, store, config, clock, public_url=public_url)
    return Service(
        name="escalation",
        router=router(engine, store, require_api_key),
        subscriptions=[
            Subscription(INCIDENTS_EVENTS, CONSUMER_GROUP, IncidentEvent, engine.on_incident_event),
            Subscription(INCIDENTS_COMMANDS, CONSUMER_GROUP, IncidentCommand, commands.handle),
            Subscription(
                NOTIFICATIONS_RESULTS,
                CONSUMER_GROUP,
                NotificationResult,
                results.on_notification_result,
            ),
        ],
        loops=[engine.run_timers],
        on_start=[store.ensure_indexes],
    )
