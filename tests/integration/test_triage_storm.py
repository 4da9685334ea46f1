"""An alert storm through triage's consumers, on the embedded bus and store (as `tocsin up` runs
it) and on Kafka with FerretDB (as the services run): 500 alerts from 3 root causes, with an
inhibition, a silence, a maintenance window, grouping and a blast radius in force, become two
incidents with the expected severities and reasons; every alert says what became of it.
(Pages are counted end to end in tests/e2e/test_triage_storm_e2e.py.)"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI

from schemas import (
    ALERTS_RAW,
    INCIDENTS_EVENTS,
    AlertReceived,
    IncidentEvent,
    IncidentEventKind,
    Label,
    Severity,
)
from services.triage import app as triage
from services.triage.config import (
    InhibitRuleConfig,
    MaintenanceWindowConfig,
    RouteConfig,
    ServiceGroupingConfig,
    SeverityRuleConfig,
    TriageConfig,
)
from services.triage.maintenance_store import MongoMaintenanceStore
from services.triage.silence_store import MongoSilenceStore
from services.triage.store import AlertFilter, MongoTriageStore
from tests.integration.test_triage_rules import FakeClock
from tests.integration.triage_pipeline import T0, eventually, occurrence
from tocsin.runtime.bus import Bus, Subscription
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.kafka import KafkaBus
from tocsin.runtime.mongo import open_client
from tocsin.runtime.store import DocumentDatabase

CONFIG = TriageConfig(
    grouping={"checkout": ServiceGroupingConfig(group_by=("alertname", "dc"))},
    blast_radius={"checkout": 100},
    routes={"prom": (RouteConfig(matchers=('team="search-db"',), service="search-db"),)},
    inhibit_rules=(
        InhibitRuleConfig(
            source_matchers=('alertname="DatacenterDown"',),
            target_matchers=('alertname="InstanceDown"',),
            equal=("dc",),
        ),
    ),
    severity_rules=(
        SeverityRuleConfig(matchers=('alertname="DatacenterDown"',), severity=Severity.SEV1),
    ),
    maintenance_windows=(
        MaintenanceWindowConfig(
            id="reindex",
            services=("search-db",),
            starts_at=T0 - timedelta(hours=1),
            duration=timedelta(hours=6),
            comment="search reindex",
        ),
    ),
)


@dataclass
class Running:
    bus: Bus
    store: MongoTriageStore
    http: httpx.AsyncClient
    events: list[IncidentEvent] = field(default_factory=list)

    async def wait_events(self, count: int, timeout: float) -> list[IncidentEvent]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.events) < count:
            assert asyncio.get_running_loop().time() < deadline, f"{len(self.events)} events"
            await asyncio.sleep(0.05)
        return self.events


@asynccontextmanager
async def _parts(kind: str, tmp_path: Path) -> AsyncIterator[tuple[Bus, DocumentDatabase]]:
    if kind == "embedded":
        file = SqliteFile(tmp_path / "tocsin.sqlite")
        embedded = EmbeddedBus(file, handler_attempts=1)
        await embedded.start()
        try:
            yield embedded, EmbeddedDatabase(file)
        finally:
            await embedded.stop()
            file.close()
        return
    kafka = KafkaBus(
        os.environ["TOCSIN_KAFKA_BOOTSTRAP"],
        client_id=f"storm-{uuid.uuid4().hex[:6]}",
        namespace=f"storm-{uuid.uuid4().hex[:12]}.",
        handler_attempts=3,
        handler_backoff_seconds=0.01,
    )
    await kafka.start()
    client = open_client(os.environ["TOCSIN_MONGO_URL"])
    name = f"storm_{uuid.uuid4().hex[:12]}"
    try:
        yield kafka, cast(DocumentDatabase, client[name])
    finally:
        await kafka.stop()
        await client.drop_database(name)
        await client.close()


@pytest.fixture(
    params=["embedded", pytest.param("kafka", marks=[pytest.mark.kafka, pytest.mark.mongo])]
)
async def running(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    async with _parts(request.param, tmp_path) as (bus, database):
        store = MongoTriageStore(database)
        service = triage.build(
            bus,
            store,
            CONFIG,
            lambda: "test",
            silence_store=MongoSilenceStore(database),
            maintenance_store=MongoMaintenanceStore(database),
            clock=FakeClock(T0),
        )
        for step in service.on_start:
            await step()
        app = FastAPI()
        app.include_router(service.router)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            state = Running(bus, store, http)

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


def _alert(n: int, alertname: str, severity: str, **labels: str) -> AlertReceived:
    alert = occurrence(f"{n:016x}", alertname=alertname, severity=severity)
    pairs = {**labels, "alertname": alertname, "instance": f"i-{n}"}
    return alert.model_copy(
        update={"labels": tuple(Label(name=k, value=v) for k, v in sorted(pairs.items()))}
    )


def storm() -> list[AlertReceived]:
    # Root cause 1: a datacenter goes down; its 200 instances follow.
    alerts = [_alert(0, "DatacenterDown", "critical", dc="east")]
    alerts += [_alert(n, "InstanceDown", "critical", dc="east") for n in range(1, 201)]
    # Root cause 2: latency across 150 instances in the other datacenter.
    alerts += [_alert(n, "HighLatency", "warning", dc="west") for n in range(201, 351)]
    # Root cause 3: a search reindex: search errors under a silence, and its database's
    # alerts (routed to search-db) in a maintenance window.
    alerts += [
        _alert(n, "SearchErrors", "critical", dc="west", team="search") for n in range(351, 451)
    ]
    alerts += [_alert(n, "IndexLag", "critical", team="search-db") for n in range(451, 500)]
    assert len(alerts) == 500
    return alerts


async def test_a_storm_of_500_alerts_becomes_two_incidents(running: Running) -> None:
    silence = {
        "matchers": [{"name": "team", "value": "search", "isRegex": False}],
        "startsAt": T0.isoformat(),
        "endsAt": (T0 + timedelta(hours=2)).isoformat(),
        "createdBy": "alice",
        "comment": "search reindex",
    }
    assert (await running.http.post("/api/v1/silences", json=silence)).status_code == 200

    alerts = storm()
    # The source first (as Alertmanager's group_wait would have it), then the rest at once.
    await running.bus.publish(ALERTS_RAW, alerts[0].fingerprint, alerts[0])
    await eventually(lambda: _recorded(running.store, 1), timeout=30)
    await running.bus.publish_many(ALERTS_RAW, [(a.fingerprint, a) for a in alerts[1:]])

    await eventually(lambda: _recorded(running.store, 500), timeout=180)
    # The 200 inhibited instances are each a line on the datacenter incident's timeline.
    events = await running.wait_events(2 + 149 + 1 + 200, timeout=60)
    opened = [e for e in events if e.kind is IncidentEventKind.OPENED]
    assert sorted(e.group_key for e in opened) == [
        'checkout/[["alertname", "DatacenterDown"], ["dc", "east"]]',
        'checkout/[["alertname", "HighLatency"], ["dc", "west"]]',
    ]
    latency = await running.store.get_incident(
        next(e.incident_id for e in opened if "HighLatency" in e.group_key)
    )
    assert latency is not None
    assert latency.alert_count == 150
    assert latency.severity is Severity.SEV1
    assert latency.severity_reasons == (
        "sender severity 'warning' maps to SEV2",
        "blast radius: 101 alerts (more than 100): raised from SEV2 to SEV1",
    )
    datacenter = next(e for e in opened if "DatacenterDown" in e.group_key)
    assert datacenter.severity is Severity.SEV1
    held = [e for e in events if e.kind is IncidentEventKind.ALERT_HELD]
    assert len(held) == 200
    assert {e.incident_id for e in held} == {datacenter.incident_id}
    assert datacenter.severity_reasons == ("severity_rules[0] matches: SEV1",)

    recorded = await running.store.list_alerts(AlertFilter(), None, 1000)
    decisions = Counter((a.decision or "").split(" ")[0] for a in recorded)
    assert decisions == {"grouped": 151, "inhibited": 200, "silenced": 100, "in": 49}
    in_window = {a.decision for a in recorded if a.service_id == "search-db"}
    assert in_window == {
        "in maintenance window reindex"
        "; routed to service search-db by routes[0] of integration prom"
    }
    # Nothing more is published for the held alerts (the silenced and maintenance ones
    # relate to no open incident).
    await asyncio.sleep(0.5)
    assert len(running.events) == 352


async def _recorded(store: MongoTriageStore, count: int) -> bool:
    return len(await store.list_alerts(AlertFilter(), None, 1000)) >= count
