"""Maintenance windows through triage's consumer on the embedded bus and store: an alert of a
service in a window is recorded (`in maintenance window <id>`, outcome `maintenance`) and
opens nothing; once the window ended (by time, or deleted through the API) while the alert
still fires, the sweep triages it and it opens an incident; an opening incident carries the
changes on its service in the 30 minutes before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from schemas import (
    ALERTS_RAW,
    CHANGES_RAW,
    INCIDENTS_EVENTS,
    AlertReceived,
    ChangeReceived,
    IncidentEvent,
    IncidentEventKind,
)
from services.triage import app as triage
from services.triage.changes import MongoChangeStore
from services.triage.config import MaintenanceWindowConfig, TriageConfig
from services.triage.maintenance_store import MongoMaintenanceStore, windows_in_force
from services.triage.silence_store import MongoSilenceStore
from services.triage.store import MongoTriageStore
from services.triage.unsilence import Unsilencer
from tests.integration.test_triage_rules import FakeClock
from tests.integration.triage_pipeline import T0, eventually, occurrence
from tocsin.runtime.bus import Subscription
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile

CONFIG = TriageConfig(
    maintenance_windows=(
        MaintenanceWindowConfig(
            id="upgrade",
            services=("checkout",),
            starts_at=T0 - timedelta(minutes=5),
            duration=timedelta(minutes=15),
            comment="checkout upgrade",
        ),
    ),
)


@dataclass
class Flow:
    bus: EmbeddedBus
    store: MongoTriageStore
    http: httpx.AsyncClient
    unsilencer: Unsilencer
    clock: FakeClock
    events: list[IncidentEvent] = field(default_factory=list)

    async def decision(self, fingerprint: str) -> str | None:
        found = await self.http.get("/api/v1/alerts", params={"fingerprint": fingerprint})
        alerts = found.json()["alerts"]
        return str(alerts[0]["decision"]) if alerts else None


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[Flow]:
    clock = FakeClock(T0)
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file, handler_attempts=1)
    await bus.start()
    database = EmbeddedDatabase(file)
    store = MongoTriageStore(database)
    silences = MongoSilenceStore(database)
    maintenance = MongoMaintenanceStore(database)
    service = triage.build(
        bus,
        store,
        CONFIG,
        lambda: "test",
        silence_store=silences,
        maintenance_store=maintenance,
        change_store=MongoChangeStore(database),
        clock=clock,
    )
    for step in service.on_start:
        await step()
    windows = windows_in_force(maintenance, CONFIG, clock)
    unsilencer = Unsilencer(bus, store, silences, CONFIG, clock, windows=windows)
    app = FastAPI()
    app.include_router(service.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://triage") as http:
        state = Flow(bus, store, http, unsilencer, clock)

        async def collect(event: IncidentEvent) -> None:
            state.events.append(event)

        subscriptions: list[Subscription[Any]] = [
            *service.subscriptions,
            Subscription(INCIDENTS_EVENTS, "escalation", IncidentEvent, collect),
        ]
        tasks = [asyncio.create_task(bus.consume(s)) for s in subscriptions]
        try:
            yield state
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await bus.stop()
            file.close()


def _alert(
    fingerprint: str, service: str = "checkout", at: timedelta = timedelta(0)
) -> AlertReceived:
    alert = occurrence(fingerprint)
    return alert.model_copy(update={"service_id": service, "occurred_at": T0 + at})


def _maintenance_count(service: str) -> float:
    value = REGISTRY.get_sample_value(
        "tocsin_alerts_total", {"service": service, "outcome": "maintenance"}
    )
    return value or 0.0


async def test_an_alert_in_a_window_opens_nothing_until_the_window_ends(flow: Flow) -> None:
    before = _maintenance_count("checkout")
    await flow.bus.publish(ALERTS_RAW, "00000000000000f1", _alert("00000000000000f1"))
    await flow.bus.publish(ALERTS_RAW, "00000000000000f2", _alert("00000000000000f2", "search"))
    (event,) = await _events(flow, 1)
    assert event.service_id == "search"

    async def held() -> bool:
        return await flow.decision("00000000000000f1") is not None

    await eventually(held)
    assert await flow.decision("00000000000000f1") == "in maintenance window upgrade"
    assert _maintenance_count("checkout") == before + 1
    assert await flow.unsilencer.sweep() == 0

    flow.clock.at = T0 + timedelta(minutes=11)  # the window ended at T0 + 10 min
    assert await flow.unsilencer.sweep() == 1
    events = await _events(flow, 2)
    assert events[1].fingerprint == "00000000000000f1"
    assert events[1].kind is IncidentEventKind.OPENED

    async def triaged() -> bool:
        return str(await flow.decision("00000000000000f1")).startswith("grouped into incident")

    await eventually(triaged)
    assert await flow.unsilencer.sweep() == 0


async def test_deleting_an_api_window_releases_its_alerts(flow: Flow) -> None:
    body = {
        "id": "search-reindex",
        "services": ["search"],
        "starts_at": T0.isoformat(),
        "duration": "2h",
        "comment": "reindex",
        "created_by": "alice",
    }
    assert (await flow.http.post("/api/v1/maintenance-windows", json=body)).status_code == 201
    await flow.bus.publish(ALERTS_RAW, "00000000000000f3", _alert("00000000000000f3", "search"))

    async def held() -> bool:
        return await flow.decision("00000000000000f3") == "in maintenance window search-reindex"

    await eventually(held)
    assert flow.events == []
    assert (await flow.http.delete("/api/v1/maintenance-windows/search-reindex")).status_code == 204
    flow.clock.at = T0 + timedelta(seconds=2)  # past the cache of windows in force
    assert await flow.unsilencer.sweep() == 1
    (event,) = await _events(flow, 1)
    assert event.fingerprint == "00000000000000f3"


async def test_an_opening_incident_carries_the_changes_before_it(flow: Flow) -> None:
    deploy = ChangeReceived(
        occurred_at=T0,
        correlation_id="change:deploys",
        integration_id="deploys",
        integration_type="generic",
        service_id="search",
        summary="deployed search",
        version="v7",
        at=T0 - timedelta(minutes=4),
    )
    await flow.bus.publish(CHANGES_RAW, "search", deploy)
    await asyncio.sleep(0.2)
    await flow.bus.publish(ALERTS_RAW, "00000000000000f4", _alert("00000000000000f4", "search"))
    await flow.bus.publish(
        ALERTS_RAW, "00000000000000f5", _alert("00000000000000f5", "search", timedelta(seconds=1))
    )
    opened, added = await _events(flow, 2)
    assert opened.kind is IncidentEventKind.OPENED
    assert [(c.summary, c.version, c.at) for c in opened.changes] == [
        ("deployed search", "v7", T0 - timedelta(minutes=4))
    ]
    assert added.kind is IncidentEventKind.ALERT_ADDED
    assert added.changes == ()


async def _events(flow: Flow, count: int) -> list[IncidentEvent]:
    deadline = asyncio.get_running_loop().time() + 10
    while len(flow.events) < count:
        assert asyncio.get_running_loop().time() < deadline, flow.events
        await asyncio.sleep(0.01)
    return flow.events[:count]
