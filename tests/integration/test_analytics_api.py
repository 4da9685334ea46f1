"""The analytics API over incidents the engine stored, on FerretDB and on the embedded store:
the listing_key range query, the projection, filters, intervals and the per-responder view."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from schemas import IncidentEventKind, Severity
from services.escalation import analytics_api
from services.escalation.domain.lifecycle import Action
from services.escalation.engine import Actor, Escalation
from services.escalation.oncall_store import MongoOncallStore
from services.escalation.review_store import ReviewStore
from services.escalation.store import MongoEscalationStore
from tests.unit.escalation_harness import FakeClock, RecordingBus, config, incident_event
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.live_config import LiveConfig
from tocsin.runtime.mongo import Document, open_client
from tocsin.runtime.store import DocumentDatabase

pytestmark = pytest.mark.mongo

DAY1 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
MIN = timedelta(minutes=1)


@pytest.fixture(params=["mongo", "embedded"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DocumentDatabase]:
    if request.param == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"analytics_{uuid.uuid4().hex[:12]}"
        yield cast(DocumentDatabase, client[name])
        await client.drop_database(name)
        await client.close()
        return
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    yield cast(DocumentDatabase, EmbeddedDatabase(file))
    file.close()


async def story(database: DocumentDatabase, tmp_path: Path) -> FakeClock:
    """Three incidents through the engine: Monday, alice acks after 2 min, resolves at 10;
    Monday, nobody acks in time, bob (level 1, after 5 min) acks after 7, resolves at 60;
    Wednesday, a SEV3 on search (no policy: it pages nobody), still open."""
    store = MongoEscalationStore(cast(AsyncDatabase[Document], database))
    oncall = MongoOncallStore(cast(AsyncDatabase[Document], database))
    await store.ensure_indexes()
    await oncall.ensure_indexes()
    file = SqliteFile(tmp_path / "bus.sqlite")
    bus = RecordingBus(EmbeddedBus(file))
    await bus.start()
    clock = FakeClock(DAY1)
    section = LiveConfig(config()).view(TocsinConfig.escalation)
    engine = Escalation(bus, store, section, clock, "analytics", oncall=oncall)
    try:
        await engine.on_incident_event(incident_event(incident_id="a", at=clock.at))
        clock.advance(2 * MIN)
        await engine.command("a", Action.ACKNOWLEDGE, Actor("alice"))
        clock.advance(8 * MIN)
        await engine.command("a", Action.RESOLVE, Actor("alice"))

        clock.at = DAY1 + timedelta(hours=2)
        await engine.on_incident_event(incident_event(incident_id="b", at=clock.at))
        clock.advance(5 * MIN)
        await engine.fire_due_timers()
        clock.advance(2 * MIN)
        await engine.command("b", Action.ACKNOWLEDGE, Actor("bob"))
        clock.advance(53 * MIN)
        await engine.on_incident_event(
            incident_event(IncidentEventKind.ALERTS_RESOLVED, incident_id="b", firing=0)
        )

        clock.at = DAY1 + timedelta(days=2)
        await engine.on_incident_event(
            incident_event(incident_id="c", service="search", severity=Severity.SEV3)
        )
    finally:
        await bus.stop()
        file.close()
    return clock


async def recurrences(database: DocumentDatabase) -> None:
    """b recurs a (whose review is published), c recurs an older incident without a review."""
    reviews = ReviewStore(database)
    await reviews.ensure_indexes()
    await reviews.record_recurrence("b", "a", 1, DAY1)
    await reviews.record_recurrence("c", "older", 2, DAY1)
    # Only the review's status is read; the rest of a review is review_store.py's business.
    await database["escalation_reviews"].insert_one({"_id": "a", "status": "published"})
    await database["escalation_reviews"].insert_one({"_id": "older", "status": "draft"})


@pytest.fixture
async def client(database: DocumentDatabase, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    clock = await story(database, tmp_path)
    await recurrences(database)
    app = FastAPI()
    reader = analytics_api.AnalyticsReader(database)
    app.include_router(analytics_api.router(reader, clock, lambda: "ops"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as http:
        yield http


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(f"/api/v1/analytics/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_incidents_per_day_with_mtta_mttr_and_shares(client: httpx.AsyncClient) -> None:
    body = await get(client, "incidents", **{"from": "2026-11-23", "to": "2026-11-26"})
    assert body["from"] == "2026-11-23T00:00:00Z"
    days = [(d["start"][:10], d["incidents"]) for d in body["intervals"]]
    assert days == [("2026-11-23", 2), ("2026-11-24", 0), ("2026-11-25", 1)]
    monday = body["intervals"][0]
    assert (monday["acknowledged"], monday["resolved"], monday["escalated"]) == (2, 2, 1)
    assert monday["mtta"] == {"mean": 270.0, "median": 270.0, "p90": pytest.approx(390.0)}
    assert monday["mttr"]["mean"] == (600 + 3600) / 2
    assert monday["acknowledged_within_5m"] == 0.5
    assert monday["escalation_rate"] == 0.5
    assert body["total"]["incidents"] == 3
    assert body["intervals"][1]["mtta"]["mean"] is None


async def test_the_share_of_recurrences_with_a_published_previous_review(
    client: httpx.AsyncClient,
) -> None:
    body = await get(client, "incidents", **{"from": "2026-11-23", "to": "2026-11-30"})
    assert body["total"]["recurrences"] == 2
    assert body["total"]["recurrences_with_published_review"] == 0.5
    monday = body["intervals"][0]
    assert (monday["recurrences"], monday["recurrences_with_published_review"]) == (1, 1.0)


async def test_filters_and_weeks(client: httpx.AsyncClient) -> None:
    week = await get(
        client, "incidents", **{"from": "2026-11-23", "to": "2026-11-30"}, interval="week"
    )
    assert [w["incidents"] for w in week["intervals"]] == [3]
    search = await get(
        client, "incidents", **{"from": "2026-11-23", "to": "2026-11-30"}, service="search"
    )
    assert search["total"]["incidents"] == 1
    assert search["total"]["acknowledged"] == 0
    sev1 = await get(
        client, "incidents", **{"from": "2026-11-23", "to": "2026-11-30"}, severity="SEV1"
    )
    assert sev1["total"]["incidents"] == 2
    # `to` is exclusive, `from` inclusive: the first incident opened at exactly 09:00.
    edge = await get(
        client, "incidents", **{"from": "2026-11-23T09:00:00Z", "to": "2026-11-23T11:00:00Z"}
    )
    assert edge["total"]["incidents"] == 1


async def test_responders(client: httpx.AsyncClient) -> None:
    body = await get(client, "responders", **{"from": "2026-11-23", "to": "2026-11-30"})
    by_name = {r["responder"]: r for r in body["responders"]}
    assert set(by_name) == {"alice", "bob"}
    assert by_name["alice"]["incidents"] == 2  # paged in both checkout incidents (level 0)
    assert by_name["alice"]["acknowledged"] == 1
    assert by_name["alice"]["mtta"]["mean"] == 120.0
    assert by_name["bob"]["incidents"] == 1
    assert by_name["bob"]["mtta"]["mean"] == 420.0
    assert by_name["bob"]["escalation_rate"] == 1.0


async def test_bad_windows_are_refused(client: httpx.AsyncClient) -> None:
    backwards = await client.get(
        "/api/v1/analytics/incidents", params={"from": "2026-11-30", "to": "2026-11-23"}
    )
    assert backwards.status_code == 400
    too_long = await client.get(
        "/api/v1/analytics/incidents", params={"from": "2024-01-01", "to": "2026-11-23"}
    )
    assert too_long.status_code == 400
    assert "shorter" in too_long.json()["detail"]
    bad_interval = await client.get("/api/v1/analytics/incidents", params={"interval": "hour"})
    assert bad_interval.status_code == 422
