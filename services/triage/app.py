"""Wiring of the triage service: the `alerts.raw` and `incidents.lifecycle` consumers and the
alerts, silences and maintenance windows APIs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter

from schemas import (
    ALERTS_RAW,
    CHANGES_RAW,
    INCIDENTS_LIFECYCLE,
    AlertReceived,
    ChangeReceived,
    IncidentLifecycleChanged,
)
from services.triage import changes
from services.triage.api import router
from services.triage.config import TriageConfig
from services.triage.consumers import AlertTriage, LifecycleTriage
from services.triage.maintenance_api import router as maintenance_router
from services.triage.maintenance_store import (
    MaintenanceStore,
    MongoMaintenanceStore,
    maintenance_retention,
    windows_in_force,
)
from services.triage.quiet import QuietSweep
from services.triage.silence_store import MongoSilenceStore, SilenceStore, silences_in_force
from services.triage.silences_api import router as silences_router
from services.triage.store import MongoTriageStore, TriageStore, retention_rules
from services.triage.unsilence import Unsilencer
from tocsin.runtime.bus import Bus, Subscription
from tocsin.runtime.clock import Clock, SystemClock
from tocsin.runtime.live_config import Current
from tocsin.runtime.parts import Parts
from tocsin.runtime.retention import RetentionPolicy, RetentionRule, with_retention
from tocsin.runtime.service import Service

CONSUMER_GROUP = "tocsin-triage"


def from_parts(parts: Parts, config: TriageConfig | Current[TriageConfig]) -> Service:
    service = build(
        parts.bus,
        MongoTriageStore(parts.database),
        config,
        parts.require_api_key,
        silence_store=MongoSilenceStore(parts.database),
        maintenance_store=MongoMaintenanceStore(parts.database),
        change_store=changes.MongoChangeStore(parts.database),
        clock=parts.clock,
    )
    return with_retention(service, parts, _retention)


def _retention(policy: RetentionPolicy) -> list[RetentionRule]:
    return (
        retention_rules(policy) + maintenance_retention(policy) + changes.change_retention(policy)
    )


def build(
    bus: Bus,
    store: TriageStore,
    config: TriageConfig | Current[TriageConfig],
    require_api_key: Callable[..., str],
    *,
    silence_store: SilenceStore,
    maintenance_store: MaintenanceStore | None = None,
    change_store: changes.ChangeStore | None = None,
    clock: Clock | None = None,
) -> Service:
    clock = clock if clock is not None else SystemClock()
    in_force = silences_in_force(silence_store, clock)
    windows = windows_in_force(maintenance_store, config, clock)
    triage = AlertTriage(bus, store, config, in_force, clock, windows=windows, changes=change_store)
    unsilencer = Unsilencer(bus, store, silence_store, config, clock, windows=windows)
    quiet = QuietSweep(bus, store, config, clock)
    lifecycle = LifecycleTriage(store)
    on_start: list[Callable[[], Awaitable[None]]] = [
        store.ensure_indexes,
        silence_store.ensure_indexes,
    ]
    routes = APIRouter()
    routes.include_router(router(store, require_api_key))
    routes.include_router(silences_router(silence_store, in_force, clock, require_api_key))
    if maintenance_store is not None:
        routes.include_router(
            maintenance_router(maintenance_store, windows, config, clock, require_api_key, bus)
        )
        on_start.append(maintenance_store.ensure_indexes)
    subscriptions: list[Subscription[Any]] = [
        Subscription(
            ALERTS_RAW,
            CONSUMER_GROUP,
            AlertReceived,
            triage.handle,
            batch_handler=triage.handle_batch,
        ),
        Subscription(
            INCIDENTS_LIFECYCLE, CONSUMER_GROUP, IncidentLifecycleChanged, lifecycle.handle
        ),
    ]
    if change_store is not None:
        routes.include_router(changes.router(change_store, clock, require_api_key))
        on_start.append(change_store.ensure_indexes)
        recorder = changes.ChangeTriage(change_store)
        subscriptions.append(
            Subscription(CHANGES_RAW, CONSUMER_GROUP, ChangeReceived, recorder.handle)
        )
    return Service(
        name="triage",
        router=routes,
        subscriptions=subscriptions,
        loops=[unsilencer.run, quiet.run],
        on_start=on_start,
    )
