"""Retention on both store adapters (FerretDB and the embedded store): finished documents past
their retention are deleted with what belongs to them; open, recent or kept-forever ones stay;
a sweep is bounded. Then each service's real rules against documents its store wrote."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.escalation.store import retention_rules as escalation_rules
from services.notifier.store import retention_rules as notifier_rules
from services.triage.store import retention_rules as triage_rules
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import open_client
from tocsin.runtime.retention import Cascade, RetentionPolicy, RetentionRule, RetentionSweeper
from tocsin.runtime.store import DocumentDatabase

pytestmark = pytest.mark.mongo

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@pytest.fixture(params=["mongo", "embedded"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentDatabase]:
    if request.param == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"retention_{uuid.uuid4().hex[:12]}"
        yield client[name]
        await client.drop_database(name)
        await client.close()
        return
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    yield embedded
    embedded.file.close()


async def ids(db: DocumentDatabase, collection: str) -> set[str]:
    return {doc["_id"] async for doc in db[collection].find({}, projection={"_id": 1})}


async def test_only_finished_documents_past_retention_go_with_their_children(
    db: DocumentDatabase,
) -> None:
    incidents, timeline = db["incidents"], db["timeline"]
    for n, (status, age) in enumerate(
        [("resolved", 40), ("resolved", 10), ("open", 40), ("resolved", 31)]
    ):
        await incidents.insert_one(
            {"_id": f"i{n}", "status": status, "resolved_at": T0 - age * DAY}
        )
        await timeline.insert_one({"_id": f"i{n}/t", "incident_id": f"i{n}"})
    rule = RetentionRule(
        "incidents",
        "resolved_at",
        timedelta(days=30),
        {"status": "resolved"},
        cascade=(Cascade("timeline", "incident_id"),),
    )
    deleted = await RetentionSweeper(db, [rule], Clock(T0)).sweep_once()
    assert deleted == {"incidents": 2}
    assert await ids(db, "incidents") == {"i1", "i2"}  # recent, and open however old
    assert await ids(db, "timeline") == {"i1/t", "i2/t"}


async def test_keep_none_keeps_forever_and_a_sweep_is_bounded(db: DocumentDatabase) -> None:
    for n in range(25):
        await db["done"].insert_one({"_id": f"d{n:02d}", "at": T0 - (100 + n) * DAY})
    forever = RetentionRule("done", "at", None)
    assert await RetentionSweeper(db, [forever], Clock(T0)).sweep_once() == {}
    sweeper = RetentionSweeper(db, [RetentionRule("done", "at", DAY)], Clock(T0), batch_size=10)
    assert await sweeper.sweep_once(max_batches=2) == {"done": 20}
    # Oldest first: the five youngest are left for the next sweep.
    assert await ids(db, "done") == {f"d{n:02d}" for n in range(5)}
    assert await sweeper.sweep_once() == {"done": 5}


async def test_each_services_rules_delete_only_what_is_finished(db: DocumentDatabase) -> None:
    old = T0 - 400 * DAY
    docs: dict[str, list[dict[str, object]]] = {
        "triage_alerts": [
            {"_id": "a-resolved", "status": "resolved", "last_seen": old},
            {"_id": "a-firing", "status": "firing", "last_seen": old},
        ],
        "triage_incidents": [
            {"_id": "ti-resolved", "status": "resolved", "resolved_at": old},
            {"_id": "ti-open", "status": "open", "resolved_at": None},
        ],
        "triage_incident_alerts": [
            {"_id": "ti-resolved/fp", "incident_id": "ti-resolved"},
            {"_id": "ti-open/fp", "incident_id": "ti-open"},
        ],
        "escalation_incidents": [
            {"_id": "ei-resolved", "status": "resolved", "resolved_at": old},
            {"_id": "ei-acked", "status": "acknowledged", "resolved_at": None},
        ],
        "escalation_timeline": [
            {"_id": "ei-resolved/1", "incident_id": "ei-resolved"},
            {"_id": "ei-acked/1", "incident_id": "ei-acked"},
        ],
        "escalation_timers": [
            {"_id": "t-done", "incident_id": "x", "state": "done", "due_at": old},
            {"_id": "t-pending", "incident_id": "x", "state": "pending", "due_at": old},
        ],
        "escalation_commands": [{"_id": "c-old", "at": old}, {"_id": "c-new", "at": T0}],
        "notifier_notifications": [
            {"_id": "n-delivered", "state": "delivered", "finished_at": old},
            {"_id": "n-failed", "state": "failed", "finished_at": old},
            {"_id": "n-pending", "state": "pending", "finished_at": None},
            {"_id": "n-quarantined", "state": "quarantined", "finished_at": old},
        ],
    }
    for collection, items in docs.items():
        for doc in items:
            await db[collection].insert_one(doc)
    policy = RetentionPolicy(resolved=180 * DAY, notifications=30 * DAY, internal=7 * DAY)
    rules = [*triage_rules(policy), *escalation_rules(policy), *notifier_rules(policy)]
    await RetentionSweeper(db, rules, Clock(T0)).sweep_once()
    assert await ids(db, "triage_alerts") == {"a-firing"}
    assert await ids(db, "triage_incidents") == {"ti-open"}
    assert await ids(db, "triage_incident_alerts") == {"ti-open/fp"}
    assert await ids(db, "escalation_incidents") == {"ei-acked"}
    assert await ids(db, "escalation_timeline") == {"ei-acked/1"}
    assert await ids(db, "escalation_timers") == {"t-pending"}
    assert await ids(db, "escalation_commands") == {"c-new"}
    assert await ids(db, "notifier_notifications") == {"n-pending", "n-quarantined"}


async def test_the_sweep_loop_outlives_an_unavailable_store() -> None:
    # A real client on a loopback port nobody listens on: every read is StoreUnavailable.
    from pymongo import AsyncMongoClient

    from tocsin.runtime.mongo import MongoDatabase

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/?directConnection=true", serverSelectionTimeoutMS=100
    )
    rule = RetentionRule("things", "at", timedelta(days=1))
    sweeper = RetentionSweeper(
        MongoDatabase(client["nobody"]), [rule], Clock(T0), interval_seconds=0.05
    )
    loop = asyncio.create_task(sweeper.run())
    try:
        await asyncio.sleep(1.5)  # several failed sweeps, each followed by a backoff
        assert not loop.done(), loop.exception() if loop.done() else None
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await client.close()
