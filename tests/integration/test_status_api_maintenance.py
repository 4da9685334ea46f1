"""Issue 13: a maintenance window created through triage's REST API reaches the status pages
over `maintenance.windows` (embedded bus and store, as `tocsin up` runs): it shows on
`/status/{page}/api/v2/scheduled-maintenances.json`, a replacement moves it, a DELETE removes
it, its comment never shows; the notifier's copy ignores an older message redelivered late;
a failed publish answers 503."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from schemas import MAINTENANCE_WINDOWS, Envelope, MaintenanceWindowChanged
from services.notifier.config import NotifierConfig
from services.notifier.message_store import MongoMessageStore
from services.notifier.status import StatusService
from services.notifier.status_store import StatusStore
from services.triage.config import TriageConfig
from services.triage.maintenance_api import changed, router
from services.triage.maintenance_store import MongoMaintenanceStore, windows_in_force
from tests.integration.triage_pipeline import open_database
from tocsin.composition.wiring import expand_window
from tocsin.runtime.bus import Subscription
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.live_config import Fixed
from tocsin.runtime.mongo import Document
from tocsin.runtime.store import DocumentDatabase

TRIAGE = TriageConfig(service_tiers={"checkout": 0, "search": 2})
NOTIFIER = NotifierConfig.model_validate(
    {
        "status_pages": [
            {
                "id": "public",
                "title": "Example status",
                "components": [
                    {"id": "checkout", "name": "Checkout", "services": ["checkout"]},
                    {"id": "search", "name": "Search", "services": ["search"]},
                ],
            }
        ]
    }
)
SCHEDULED = "/status/public/api/v2/scheduled-maintenances.json"
SECRET = "patch db-7.internal, root password in vault"


@dataclass
class Rig:
    triage: httpx.AsyncClient
    page: httpx.AsyncClient

    async def scheduled(self, expected: int) -> list[dict[str, Any]]:
        """The page's scheduled maintenance once it lists `expected` (within 10 s)."""
        found: list[dict[str, Any]] = []
        for _ in range(100):
            response = await self.page.get(SCHEDULED)
            assert response.status_code == 200
            assert SECRET not in response.text
            found = response.json()["scheduled_maintenances"]
            if len(found) == expected:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"expected {expected} maintenances, the page shows {found}")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    database = cast(DocumentDatabase, EmbeddedDatabase(file))
    bus = EmbeddedBus(SqliteFile(tmp_path / "bus.sqlite"))
    await bus.start()
    clock = SystemClock()
    store = MongoMaintenanceStore(database)
    await store.ensure_indexes()
    triage = FastAPI()
    triage.include_router(
        router(store, windows_in_force(store, TRIAGE, clock), TRIAGE, clock, lambda: "op", bus)
    )
    async with httpx.AsyncClient() as client:
        status_store = StatusStore(cast(AsyncDatabase[Document], database))
        await status_store.ensure_indexes()
        status = StatusService(
            status_store,
            Fixed(NOTIFIER),
            clock,
            client,
            MongoMessageStore(database),
            max_age=0.0,
            expand=expand_window,
        )
        notifier = FastAPI()
        notifier.include_router(status.router)
        consumers = [asyncio.create_task(bus.consume(s)) for s in status.subscriptions]
        try:
            async with (
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=triage), base_url="http://triage"
                ) as triage_client,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=notifier), base_url="http://notifier"
                ) as page_client,
            ):
                yield Rig(triage_client, page_client)
        finally:
            for task in consumers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await bus.stop()
            file.close()


async def test_an_api_window_shows_as_scheduled_maintenance_until_deleted(rig: Rig) -> None:
    await rig.scheduled(0)
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    body = {
        "id": "db-patch",
        "services": ["checkout"],
        "starts_at": starts.isoformat(),
        "duration": "2h",
        "comment": SECRET,
        "created_by": "alice",
    }
    assert (await rig.triage.post("/api/v1/maintenance-windows", json=body)).status_code == 201
    [shown] = await rig.scheduled(1)
    assert shown["status"] == "scheduled"
    assert shown["name"] == "Scheduled maintenance: Checkout"
    assert datetime.fromisoformat(shown["scheduled_for"]) == starts
    assert datetime.fromisoformat(shown["scheduled_until"]) == starts + timedelta(hours=2)

    # Replaced: now on search, weekly (the page lists a window's next occurrence).
    body |= {"services": ["search"], "rrule": "FREQ=WEEKLY"}
    assert (await rig.triage.post("/api/v1/maintenance-windows", json=body)).status_code == 201
    for _ in range(100):
        [replaced] = await rig.scheduled(1)
        if replaced["name"] == "Scheduled maintenance: Search":
            break
        await asyncio.sleep(0.1)
    assert replaced["name"] == "Scheduled maintenance: Search"
    assert datetime.fromisoformat(replaced["scheduled_for"]) == starts

    delete = await rig.triage.delete("/api/v1/maintenance-windows/db-patch")
    assert delete.status_code == 204
    await rig.scheduled(0)


@pytest.fixture(params=["mongo", "embedded"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncDatabase[Document]]:
    async for database in open_database(request.param, tmp_path):
        yield database


@pytest.mark.mongo
async def test_the_copy_keeps_the_newest_message(database: AsyncDatabase[Document]) -> None:
    store = StatusStore(database)
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert await store.save_window(changed("w", None, now))  # a delete first: a tombstone
    assert await store.windows() == []
    late = MaintenanceWindowChanged(
        occurred_at=now - timedelta(minutes=1),
        correlation_id="c",
        window_id="w",
        services=("checkout",),
        starts_at=now + timedelta(days=1),
        duration_seconds=3600,
    )
    assert not await store.save_window(late)  # older than the delete: ignored
    assert await store.windows() == []
    newer = late.model_copy(update={"occurred_at": now + timedelta(minutes=1)})
    assert await store.save_window(newer)
    [copy] = await store.windows()
    assert copy.services == ("checkout",)
    [occurrence] = expand_window(copy, now, now + timedelta(days=30))
    assert occurrence.start == now + timedelta(days=1)
    assert occurrence.end == now + timedelta(days=1, hours=1)


class BrokenBus(EmbeddedBus):
    async def publish(self, topic: str, key: str, message: Envelope) -> None:
        raise ConnectionError("broker down")


async def test_a_failed_publish_answers_503_and_a_retry_succeeds(tmp_path: Path) -> None:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    database = cast(DocumentDatabase, EmbeddedDatabase(file))
    clock = SystemClock()
    store = MongoMaintenanceStore(database)
    broken = BrokenBus(SqliteFile(tmp_path / "bus.sqlite"))
    body = {
        "id": "w",
        "services": ["checkout"],
        "starts_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "duration": "1h",
        "comment": "c",
        "created_by": "alice",
    }
    for bus, expected in ((broken, 503), (None, 201)):
        app = FastAPI()
        windows = windows_in_force(store, TRIAGE, clock)
        app.include_router(router(store, windows, TRIAGE, clock, lambda: "op", bus))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/api/v1/maintenance-windows", json=body)
            assert response.status_code == expected
    assert (await store.get("w")) is not None
    # A DELETE whose publish fails is retried: the retry finds no window (404) but still
    # publishes the deletion, so the status pages drop it.
    working = EmbeddedBus(SqliteFile(tmp_path / "bus2.sqlite"))
    await working.start()
    for publisher, expected in ((broken, 503), (working, 404)):
        app = FastAPI()
        windows = windows_in_force(store, TRIAGE, clock)
        app.include_router(router(store, windows, TRIAGE, clock, lambda: "op", publisher))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.delete("/api/v1/maintenance-windows/w")
            assert response.status_code == expected
    told: list[MaintenanceWindowChanged] = []

    async def keep(change: MaintenanceWindowChanged) -> None:
        told.append(change)

    consumer = asyncio.create_task(
        working.consume(Subscription(MAINTENANCE_WINDOWS, "test", MaintenanceWindowChanged, keep))
    )
    for _ in range(100):
        if told:
            break
        await asyncio.sleep(0.05)
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    assert [(m.window_id, m.deleted) for m in told] == [("w", True)]
    await working.stop()
    file.close()


def test_the_event_id_is_a_function_of_the_content() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    assert changed("w", None, now).event_id == changed("w", None, now + timedelta(1)).event_id
    assert changed("w", None, now).event_id != changed("v", None, now).event_id
