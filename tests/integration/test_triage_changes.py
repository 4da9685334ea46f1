"""Change events in triage, on FerretDB and the embedded store: the `changes.raw` consumer
keeps them (idempotently), an incident opening gets those of its service in the 30 minutes
before, newest first; `GET /api/v1/changes` lists them; retention is 30 days."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI

from schemas import CHANGES_RAW, ChangeLink, ChangeReceived
from services.triage import app as triage
from services.triage.changes import (
    COLLECTION,
    MongoChangeStore,
    change_retention,
    changes_before,
)
from services.triage.config import TriageConfig
from services.triage.silence_store import MongoSilenceStore
from services.triage.store import MongoTriageStore
from tests.integration.test_triage_rules import FakeClock
from tests.integration.triage_pipeline import open_database
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import MongoDatabase
from tocsin.runtime.retention import RetentionPolicy, RetentionSweeper
from tocsin.runtime.store import DocumentDatabase

pytestmark = pytest.mark.mongo

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def change(
    summary: str, minutes_before: float, service: str = "checkout", **fields: Any
) -> ChangeReceived:
    return ChangeReceived(
        occurred_at=OPENED,
        correlation_id="change:deploys",
        integration_id="deploys",
        integration_type="generic",
        service_id=service,
        summary=summary,
        at=OPENED - timedelta(minutes=minutes_before),
        **fields,
    )


@pytest.fixture(params=["mongo", "embedded"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DocumentDatabase]:
    async for database in open_database(request.param, tmp_path):
        yield (
            MongoDatabase(database)
            if request.param == "mongo"
            else cast(DocumentDatabase, database)
        )


async def test_an_incident_gets_the_changes_of_its_service_in_the_30_minutes_before(
    database: DocumentDatabase,
) -> None:
    store = MongoChangeStore(database)
    await store.ensure_indexes()
    deploy = change(
        "deployed checkout v2.3.1",
        4,
        version="v2.3.1",
        source="argo",
        links=(ChangeLink(href="https://ci.example/1", text="run"),),
    )
    for recorded in (
        change("flag new-cart on", 12),
        deploy,
        deploy,  # redelivered
        change("deployed checkout v2.3.0", 31),  # too early
        change("deployed search v7", 2, service="search"),  # another service
        change("after it opened", -1),
        change("at the same moment", 0),
    ):
        await store.record(recorded)
    found = await changes_before(store, "checkout", OPENED)
    assert [c.summary for c in found] == [
        "at the same moment",
        "deployed checkout v2.3.1",
        "flag new-cart on",
    ]
    assert found[1].version == "v2.3.1"
    assert found[1].source == "argo"
    assert found[1].links == (ChangeLink(href="https://ci.example/1", text="run"),)
    assert found[1].at == OPENED - timedelta(minutes=4)
    assert await changes_before(None, "checkout", OPENED) == ()


async def test_at_most_ten_changes_newest_first(database: DocumentDatabase) -> None:
    store = MongoChangeStore(database)
    for n in range(15):
        await store.record(change(f"deploy {n}", n))
    found = await changes_before(store, "checkout", OPENED)
    assert [c.summary for c in found] == [f"deploy {n}" for n in range(10)]


async def test_retention_keeps_changes_30_days(database: DocumentDatabase) -> None:
    store = MongoChangeStore(database)
    await store.record(change("old", 60 * 24 * 31))
    await store.record(change("recent", 60 * 24 * 29))
    policy = RetentionPolicy(resolved=None, notifications=None, internal=None)
    sweeper = RetentionSweeper(database, change_retention(policy), FakeClock(OPENED))
    assert await sweeper.sweep_once() == {COLLECTION: 1}
    found = await store.on_service("checkout", OPENED - timedelta(days=60), OPENED, 10)
    assert [c.summary for c in found] == ["recent"]


async def test_the_triage_service_consumes_changes_and_lists_them(tmp_path: Path) -> None:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file, handler_attempts=1)
    await bus.start()
    database = EmbeddedDatabase(file)
    service = triage.build(
        bus,
        MongoTriageStore(database),
        TriageConfig(),
        lambda: "test",
        silence_store=MongoSilenceStore(database),
        change_store=MongoChangeStore(database),
        clock=FakeClock(OPENED),
    )
    for step in service.on_start:
        await step()
    tasks = [asyncio.create_task(bus.consume(s)) for s in service.subscriptions]
    try:
        deploy = change("deployed checkout v2.3.1", 4, version="v2.3.1")
        await bus.publish(CHANGES_RAW, deploy.service_id, deploy)
        app = FastAPI()
        app.include_router(service.router)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://triage") as http:
            listed: list[dict[str, Any]] = []
            for _ in range(500):
                listed = (await http.get("/api/v1/changes", params={"service": "checkout"})).json()
                if listed:
                    break
                await asyncio.sleep(0.01)
            assert listed == [
                {
                    "summary": "deployed checkout v2.3.1",
                    "at": "2026-03-02T08:56:00Z",
                    "source": None,
                    "version": "v2.3.1",
                    "links": [],
                }
            ]
            assert (await http.get("/api/v1/changes")).status_code == 422
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.stop()
        file.close()


def test_change_ids_are_uuids() -> None:
    assert isinstance(change("x", 1).event_id, uuid.UUID)
