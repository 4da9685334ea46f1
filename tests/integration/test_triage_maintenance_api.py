"""Maintenance windows through triage's REST API and store, on FerretDB and on the embedded
store: create (one-off, recurring), list with state, occurrences for a status page, delete,
configured windows read-only, bad bodies refused and changing nothing; the retention rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import FastAPI

from services.triage.config import MaintenanceWindowConfig, TriageConfig
from services.triage.maintenance_api import router
from services.triage.maintenance_store import (
    COLLECTION,
    MongoMaintenanceStore,
    maintenance_retention,
    windows_in_force,
)
from tests.integration.test_triage_rules import FakeClock
from tests.integration.triage_pipeline import open_database
from tocsin.runtime.mongo import MongoDatabase
from tocsin.runtime.retention import RetentionPolicy, RetentionSweeper
from tocsin.runtime.store import DocumentDatabase

pytestmark = pytest.mark.mongo

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
CONFIG = TriageConfig(
    service_tiers={"checkout": 0, "search": 2},
    maintenance_windows=(
        MaintenanceWindowConfig.model_validate(
            {
                "id": "sunday-db",
                "services": ["checkout"],
                "starts_at": "2026-01-04T02:00:00",
                "duration": "2h",
                "rrule": "FREQ=WEEKLY;BYDAY=SU",
                "timezone": "Europe/Berlin",
                "comment": "database patching",
            }
        ),
    ),
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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def http(database: DocumentDatabase, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    store = MongoMaintenanceStore(database)
    await store.ensure_indexes()
    windows = windows_in_force(store, CONFIG, clock)
    app = FastAPI()
    app.include_router(router(store, windows, CONFIG, clock, lambda: "test"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://triage") as client:
        yield client


BODY = {
    "services": ["search"],
    "starts_at": "2026-03-25T11:30:00Z",
    "duration": "1h",
    "comment": "reindex",
    "created_by": "alice",
}


async def test_create_list_occurrences_delete(http: httpx.AsyncClient, clock: FakeClock) -> None:
    created = await http.post("/api/v1/maintenance-windows", json=BODY)
    assert created.status_code == 201, created.text
    window = created.json()
    assert window["id"].startswith("mw-")
    assert window["source"] == "api"
    assert window["state"] == "active"
    assert window["current"] == {
        "window_id": window["id"],
        "start": "2026-03-25T11:30:00Z",
        "end": "2026-03-25T12:30:00Z",
    }
    assert window["next"] is None
    assert window["ends_at"] == "2026-03-25T12:30:00Z"

    weekly = {
        "id": "nightly",
        "services": ["checkout", "search"],
        "starts_at": "2026-03-01T23:00:00",
        "ends_at": "2026-03-02T01:00:00",
        "rrule": "FREQ=DAILY",
        "timezone": "America/New_York",
        "comment": "backups",
        "created_by": "bob",
    }
    assert (await http.post("/api/v1/maintenance-windows", json=weekly)).status_code == 201

    listed = (await http.get("/api/v1/maintenance-windows")).json()
    assert [(w["id"], w["source"], w["state"]) for w in listed] == [
        ("sunday-db", "config", "scheduled"),
        (window["id"], "api", "active"),
        ("nightly", "api", "scheduled"),
    ]
    # 23:00 New York (EDT since 8 March) is 03:00 UTC.
    assert listed[2]["next"]["start"] == "2026-03-26T03:00:00Z"
    only_checkout = (await http.get("/api/v1/maintenance-windows?service=checkout")).json()
    assert [w["id"] for w in only_checkout] == ["sunday-db", "nightly"]

    found = await http.get(
        "/api/v1/maintenance-windows/occurrences",
        params={"service": "checkout", "end": "2026-03-30T00:00:00Z"},
    )
    assert found.status_code == 200, found.text
    assert [(o["window_id"], o["start"]) for o in found.json()] == [
        ("nightly", "2026-03-26T03:00:00Z"),
        ("nightly", "2026-03-27T03:00:00Z"),
        ("nightly", "2026-03-28T03:00:00Z"),
        # 02:00 does not exist that night in Berlin (clocks jump to 03:00 CEST, 01:00 UTC).
        ("sunday-db", "2026-03-29T01:00:00Z"),
        ("nightly", "2026-03-29T03:00:00Z"),
    ]

    assert (await http.get("/api/v1/maintenance-windows/nightly")).json()["created_by"] == "bob"
    assert (await http.delete("/api/v1/maintenance-windows/nightly")).status_code == 204
    assert (await http.get("/api/v1/maintenance-windows/nightly")).status_code == 404
    assert (await http.delete("/api/v1/maintenance-windows/nightly")).status_code == 404
    refused = await http.delete("/api/v1/maintenance-windows/sunday-db")
    assert refused.status_code == 409
    assert "configuration file" in refused.json()["detail"]

    clock.at = NOW + timedelta(hours=1)
    ended = (await http.get(f"/api/v1/maintenance-windows/{window['id']}")).json()
    assert ended["state"] == "ended"


async def test_replacing_a_window_by_id_keeps_its_creation_time(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    body = {**BODY, "id": "reindex"}
    assert (await http.post("/api/v1/maintenance-windows", json=body)).status_code == 201
    clock.at = NOW + timedelta(minutes=5)
    replaced = await http.post("/api/v1/maintenance-windows", json={**body, "duration": "3h"})
    assert replaced.status_code == 201
    assert replaced.json()["created_at"] == "2026-03-25T12:00:00Z"
    assert replaced.json()["ends_at"] == "2026-03-25T14:30:00Z"
    assert len((await http.get("/api/v1/maintenance-windows")).json()) == 2


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"duration": None}, 400, "ends_at: set exactly one of ends_at and duration"),
        ({"ends_at": "2026-03-25T13:00:00Z"}, 400, "set exactly one"),
        ({"duration": "soon"}, 400, "duration"),
        ({"timezone": "Nowhere/Land"}, 400, "timezone: unknown time zone"),
        ({"rrule": "FREQ=MINUTELY"}, 400, "rrule: FREQ must be one of"),
        ({"services": ["nope"]}, 400, "services: unknown service 'nope'"),
        ({"services": []}, 422, None),
        ({"starts_at": "2026-03-25T09:00:00Z"}, 400, "the window has already ended"),
        ({"id": "sunday-db"}, 409, "declared in the configuration file"),
        ({"id": "occurrences"}, 400, "reserved"),
        ({"colour": "red"}, 422, None),
    ],
)
async def test_bad_windows_are_refused_and_change_nothing(
    http: httpx.AsyncClient, change: dict[str, object], status: int, detail: str | None
) -> None:
    body = {k: v for k, v in (BODY | change).items() if v is not None}
    answer = await http.post("/api/v1/maintenance-windows", json=body)
    assert answer.status_code == status, answer.text
    if detail is not None:
        assert detail in answer.json()["detail"]
    assert [w["id"] for w in (await http.get("/api/v1/maintenance-windows")).json()] == [
        "sunday-db"
    ]


async def test_retention_deletes_windows_ended_long_ago_and_keeps_endless_ones(
    database: DocumentDatabase, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    assert (await http.post("/api/v1/maintenance-windows", json=BODY)).status_code == 201
    endless = {**BODY, "id": "endless", "rrule": "FREQ=DAILY"}
    assert (await http.post("/api/v1/maintenance-windows", json=endless)).status_code == 201
    clock.at = NOW + timedelta(days=40)
    policy = RetentionPolicy(resolved=timedelta(days=30), notifications=None, internal=None)
    sweeper = RetentionSweeper(database, maintenance_retention(policy), clock)
    assert await sweeper.sweep_once() == {COLLECTION: 1}
    listed = (await http.get("/api/v1/maintenance-windows")).json()
    assert [w["id"] for w in listed] == ["sunday-db", "endless"]
