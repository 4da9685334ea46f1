"""Wiring of the triage service: the `alerts.raw` and `incidents.lifecycle` consumers and the
alerts API."""

from __future__ import annotations

from collections.abc import Callable

from schemas import ALERTS_RAW, INCIDENTS_LIFECYCLE, AlertReceived, IncidentLifecycleChanged
from services.triage.api import router
from services.triage.config import TriageConfig
from services.triage.consumers import AlertTriage, LifecycleTriage
from services.triage.store import MongoTriageStore, TriageStore, retention_rules
from tocsin.runtime.bus import Bus, Subscription
from tocsin.runtime.parts import Parts
from tocsin.runtime.retention import with_retention
from tocsin.runtime.service import Service

CONSUMER_GROUP = "tocsin-triage"


def from_parts(parts: Parts, config: TriageConfig) -> Service:
    service = build(parts.bus, MongoTriageStore(parts.database), config, parts.require_api_key)
    return with_retention(service, parts, retention_rules)


def build(
    bus: Bus, store: TriageStore, config: TriageConfig, require_api_key: Callable[..., str]
) -> Service:
    triage = AlertTriage(bus, store, config)
    lifecycle = LifecycleTriage(store)
    return Service(
        name="triage",
        router=router(store, require_api_key),
        subscriptions=[
            Subscription(ALERTS_RAW, CONSUMER_GROUP, AlertReceived, triage.handle),
            Subscription(
                INCIDENTS_LIFECYCLE, CONSUMER_GROUP, IncidentLifecycleChanged, lifecycle.handle
            ),
        ],
        on_start=[store.ensure_indexes],
    )
