"""An alert triage holds back shows on the timeline of the open incident it relates to: an
inhibited alert on its source alert's incident, a silenced or maintenance-held alert on its
group's open incident (`alert_held`, with triage's decision); a redelivery publishes it again
with the same id. The store's lookup of the groups' open incidents on both adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from schemas import AlertReceived, IncidentEventKind, Label, Severity
from services.triage.config import InhibitRuleConfig, MaintenanceWindowConfig, TriageConfig
from services.triage.domain.ids import held_event_id
from services.triage.store import MongoTriageStore, NewIncident
from tests.integration.triage_pipeline import (
    T0,
    TriagePipeline,
    eventually,
    occurrence,
    open_database,
    run_pipeline,
)
from tocsin.runtime.mongo import Document

CONFIG = TriageConfig(
    inhibit_rules=(
        InhibitRuleConfig(
            source_matchers=('alertname="DatacenterDown"',),
            target_matchers=('alertname="InstanceDown"',),
            equal=("dc",),
        ),
    ),
)


class FakeClock:
    def now(self) -> datetime:
        return T0


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[TriagePipeline]:
    async for running in run_pipeline(tmp_path, CONFIG, FakeClock()):
        yield running


def _named(alertname: str, fingerprint: str, minutes: int, **labels: str) -> AlertReceived:
    base = occurrence(fingerprint, labels={"alertname": alertname, **labels})
    return base.model_copy(
        update={
            "occurred_at": T0 + timedelta(minutes=minutes),
            "alertname": alertname,
            "labels": tuple(
                Label(name=n, value=v)
                for n, v in sorted({**labels, "alertname": alertname}.items())
            ),
        }
    )


async def test_an_inhibited_alert_is_held_on_its_sources_incident(
    pipeline: TriagePipeline,
) -> None:
    await pipeline.send_alert(_named("DatacenterDown", "00000000000000f0", 0, dc="east"))
    target = _named("InstanceDown", "00000000000000f1", 1, dc="east")
    await pipeline.send_alert(target)
    opened, held = await pipeline.wait_events(2)
    assert opened.kind is IncidentEventKind.OPENED
    assert held.kind is IncidentEventKind.ALERT_HELD
    assert held.incident_id == opened.incident_id
    assert held.event_id == held_event_id(target.event_id)
    assert held.fingerprint == "00000000000000f1"
    assert held.alert is not None
    assert held.alert.fingerprint == "00000000000000f1"
    assert held.held == "inhibited by alert 00000000000000f0 (inhibit_rules[0])"
    assert held.severity is opened.severity  # the incident as it is, unchanged
    assert held.alert_count == opened.alert_count == 1


async def test_no_event_when_no_incident_relates(pipeline: TriagePipeline) -> None:
    # The source is silenced: it inhibits, but is in no incident.
    app = FastAPI()
    app.include_router(pipeline.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://triage") as http:
        body = {
            "matchers": [{"name": "alertname", "value": "DatacenterDown", "isRegex": False}],
            "startsAt": (T0 - timedelta(hours=1)).isoformat(),
            "endsAt": (T0 + timedelta(hours=1)).isoformat(),
            "createdBy": "alice",
            "comment": "planned",
        }
        created = await http.post("/api/v1/silences", json=body)
        assert created.status_code == 200, created.text
    await pipeline.send_alert(_named("DatacenterDown", "00000000000000f0", 0, dc="east"))
    await pipeline.send_alert(_named("InstanceDown", "00000000000000f1", 1, dc="east"))

    async def recorded() -> bool:
        return await pipeline.store.get_alert("00000000000000f1") is not None

    await eventually(recorded)
    await pipeline.send_alert(_named("InstanceDown", "00000000000000f2", 2, dc="west"))
    (only,) = await pipeline.wait_events(1)
    assert only.fingerprint == "00000000000000f2"
    await asyncio.sleep(0.2)
    assert [e.kind for e in pipeline.events] == [IncidentEventKind.OPENED]


async def _silence(pipeline: TriagePipeline, name: str, value: str) -> None:
    app = FastAPI()
    app.include_router(pipeline.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://triage") as http:
        body = {
            "matchers": [{"name": name, "value": value, "isRegex": False}],
            "startsAt": (T0 - timedelta(hours=1)).isoformat(),
            "endsAt": (T0 + timedelta(hours=1)).isoformat(),
            "createdBy": "alice",
            "comment": "planned",
        }
        created = await http.post("/api/v1/silences", json=body)
        assert created.status_code == 200, created.text


async def test_a_silenced_alert_is_held_on_its_groups_open_incident(
    pipeline: TriagePipeline,
) -> None:
    await pipeline.send_alert(_named("InstanceDown", "00000000000000a1", 0, instance="a"))
    (opened,) = await pipeline.wait_events(1)
    await _silence(pipeline, "instance", "b")
    silenced = _named("InstanceDown", "00000000000000a2", 1, instance="b")
    await pipeline.send_alert(silenced)
    _, held = await pipeline.wait_events(2)
    assert held.kind is IncidentEventKind.ALERT_HELD
    assert held.incident_id == opened.incident_id
    assert held.event_id == held_event_id(silenced.event_id)
    assert held.fingerprint == "00000000000000a2"
    assert held.held is not None
    assert held.held.startswith("silenced by ")
    assert held.alert_count == 1  # the incident as it is: the held alert did not join it

    # Redelivered (a crash after the write, before the publish): the same event again.
    await pipeline.send_alert(silenced)
    _, _, again = await pipeline.wait_events(3)
    assert again == held
    await asyncio.sleep(0.2)
    assert len(pipeline.events) == 3


async def test_a_silenced_alert_without_an_open_incident_is_held_quietly(
    pipeline: TriagePipeline,
) -> None:
    await _silence(pipeline, "alertname", "DiskFull")
    silenced = _named("DiskFull", "00000000000000b1", 0)
    await pipeline.send_alert(silenced)

    async def recorded() -> bool:
        return await pipeline.store.get_alert("00000000000000b1") is not None

    await eventually(recorded)
    await pipeline.send_alert(silenced)  # a redelivery publishes nothing either
    await pipeline.send_alert(_named("InstanceDown", "00000000000000b2", 1))
    (only,) = await pipeline.wait_events(1)
    assert only.fingerprint == "00000000000000b2"
    await asyncio.sleep(0.2)
    assert [e.kind for e in pipeline.events] == [IncidentEventKind.OPENED]


WINDOW = MaintenanceWindowConfig(
    id="upgrade",
    services=("checkout",),
    starts_at=T0 - timedelta(minutes=5),
    duration=timedelta(minutes=15),
)


@pytest.fixture
async def maintenance(tmp_path: Path) -> AsyncIterator[TriagePipeline]:
    config = CONFIG.model_copy(update={"maintenance_windows": (WINDOW,)})
    async for running in run_pipeline(tmp_path, config, FakeClock()):
        yield running


async def test_an_alert_in_maintenance_is_held_on_its_groups_open_incident(
    maintenance: TriagePipeline,
) -> None:
    # Opened before the window began; another alert of its group comes in the window.
    await maintenance.send_alert(_named("InstanceDown", "00000000000000c1", -10, instance="a"))
    (opened,) = await maintenance.wait_events(1)
    inside = _named("InstanceDown", "00000000000000c2", 0, instance="b")
    await maintenance.send_alert(inside)
    _, held = await maintenance.wait_events(2)
    assert held.kind is IncidentEventKind.ALERT_HELD
    assert held.incident_id == opened.incident_id
    assert held.event_id == held_event_id(inside.event_id)
    assert held.held == "in maintenance window upgrade"


async def test_an_alert_in_maintenance_without_an_open_incident_is_held_quietly(
    maintenance: TriagePipeline,
) -> None:
    await maintenance.send_alert(_named("DiskFull", "00000000000000d1", 0))

    async def recorded() -> bool:
        return await maintenance.store.get_alert("00000000000000d1") is not None

    await eventually(recorded)
    await maintenance.send_alert(_named("InstanceDown", "00000000000000d2", -10))
    (only,) = await maintenance.wait_events(1)
    assert only.fingerprint == "00000000000000d2"
    await asyncio.sleep(0.2)
    assert [e.kind for e in maintenance.events] == [IncidentEventKind.OPENED]


@pytest.fixture(params=["mongo", "embedded"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[MongoTriageStore, AsyncDatabase[Document]]]:
    async for database in open_database(request.param, tmp_path):
        triage_store = MongoTriageStore(database)
        await triage_store.ensure_indexes()
        yield triage_store, database


def _incident(candidate: str, group: str) -> NewIncident:
    return NewIncident(candidate, group, "checkout", "t", Severity.SEV2, (), T0)


@pytest.mark.mongo
async def test_open_group_incidents_names_only_open_ones(
    store: tuple[MongoTriageStore, AsyncDatabase[Document]],
) -> None:
    triage_store, database = store
    await triage_store.open_or_join(_incident("inc-a", "checkout/A"), "f1")
    await triage_store.open_or_join(_incident("inc-b", "checkout/B"), "f2")
    await triage_store.open_or_join(_incident("inc-c", "checkout/C"), "f3")
    # Resolved while its group still names it (a release racing a read).
    await database["triage_incidents"].update_one({"_id": "inc-c"}, {"$set": {"status": "x"}})
    keys = ["checkout/A", "checkout/B", "checkout/C", "checkout/none", "checkout/A"]
    assert await triage_store.open_group_incidents(keys) == {
        "checkout/A": "inc-a",
        "checkout/B": "inc-b",
    }
    assert await triage_store.open_group_incidents(["checkout/B"]) == {"checkout/B": "inc-b"}
    assert await triage_store.open_group_incidents(["checkout/C"]) == {}
    assert await triage_store.open_group_incidents(["checkout/none"]) == {}
    assert await triage_store.open_group_incidents([]) == {}
