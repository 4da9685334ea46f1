"""The store contract: repository operations of triage, notifier and ingest, run against both
adapters (MongoDB wire protocol on FerretDB, and the embedded SQLite document store), including
atomic upserts, compare-and-set and leases. Escalation's store has its own suite
(test_escalation_store.py); the adapters themselves are compared operation by operation in
test_store_differential.py."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo.errors import DuplicateKeyError

from schemas import (
    AlertReceived,
    AlertStatus,
    IncidentSnapshot,
    Label,
    NotificationEvent,
    NotificationRequested,
    Recipient,
    Severity,
)
from services.ingest.store import Integration, MongoIngestStore
from services.notifier.store import MongoNotifierStore
from services.triage.domain import Occurrence
from services.triage.store import MongoTriageStore, NewIncident
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import MongoDatabase, bulk_write, open_client
from tocsin.runtime.store import DocumentDatabase, InsertRequest, UpdateRequest

pytestmark = pytest.mark.mongo

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["mongo", "embedded"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentDatabase]:
    if request.param == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"contract_{uuid.uuid4().hex[:12]}"
        yield MongoDatabase(client[name])
        await client.drop_database(name)
        await client.close()
        return
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    yield embedded
    embedded.file.close()


def reopen(db: DocumentDatabase, tmp_path: Path) -> DocumentDatabase:
    """The same data through a new connection (for the embedded store: a restart)."""
    if isinstance(db, EmbeddedDatabase):
        db.file.close()
        return EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    return db


def firing(fingerprint: str, event_id: uuid.UUID | None = None) -> AlertReceived:
    return AlertReceived(
        event_id=event_id or uuid.uuid4(),
        occurred_at=T0,
        correlation_id="c",
        fingerprint=fingerprint,
        status=AlertStatus.FIRING,
        integration_id="prom",
        source="alertmanager",
        service_id="checkout",
        alertname="Errors",
        summary="errors",
        labels=(Label(name="app.kubernetes.io/name", value="ü"),),
    )


def new_incident(candidate: str) -> NewIncident:
    return NewIncident(
        candidate_id=candidate,
        group_key="checkout/Errors",
        service_id="checkout",
        title="errors",
        severity=Severity.SEV2,
        severity_reasons=("r",),
        opened_at=T0,
    )


# -- the port's bulk operations -----------------------------------------------------------


async def test_bulk_write_runs_every_request_and_lists_duplicates_by_index(
    db: DocumentDatabase, tmp_path: Path
) -> None:
    docs = db["bulk"]
    await docs.insert_one({"_id": "a", "n": 1})
    # More requests than one chunk of the MongoDB adapter (tocsin.runtime.mongo.BULK_CHUNK).
    requests: list[InsertRequest | UpdateRequest] = [
        UpdateRequest({"_id": "a"}, {"$inc": {"n": 1}}),
        InsertRequest({"_id": "a", "n": 99}),  # a duplicate: skipped, the rest still runs
        UpdateRequest({"_id": "b"}, {"$set": {"n": 5}}),  # no match, no upsert
        UpdateRequest({"_id": "c"}, {"$setOnInsert": {"n": 7}}, upsert=True),
        *(InsertRequest({"_id": f"m{i:02d}", "n": i}) for i in range(40)),
        InsertRequest({"_id": "m00", "n": 0}),
    ]
    outcome = await bulk_write(docs, requests)
    assert outcome.duplicates == (1, len(requests) - 1)
    assert (outcome.matched_count, outcome.modified_count) == (1, 1)
    assert (outcome.upserted_count, outcome.inserted_count) == (1, 40)
    again = reopen(db, tmp_path)["bulk"]
    found = {d["_id"]: d["n"] async for d in again.find({"_id": {"$in": ["a", "b", "c", "m39"]}})}
    assert found == {"a": 2, "c": 7, "m39": 39}


# -- triage ------------------------------------------------------------------------------


async def test_triage_record_alert_counts_each_event_once_and_survives_a_restart(
    db: DocumentDatabase, tmp_path: Path
) -> None:
    store = MongoTriageStore(db)
    await store.ensure_indexes()
    event = uuid.uuid4()
    await store.record_alert(firing("f1", event), Occurrence.NEW, "checkout/Errors", "i1")
    await store.record_alert(firing("f1", event), Occurrence.NEW, "checkout/Errors", "i1")
    await store.record_alert(firing("f1"), Occurrence.REPEAT, "checkout/Errors", None)
    record = await MongoTriageStore(reopen(db, tmp_path)).get_alert("f1")
    assert record is not None
    assert (record.count, record.status, record.occurrence_event_id, record.incident_id) == (
        2,
        AlertStatus.FIRING,
        event,
        "i1",
    )


async def test_triage_concurrent_open_or_join_agrees_on_one_incident(
    db: DocumentDatabase,
) -> None:
    store = MongoTriageStore(db)
    await store.ensure_indexes()
    results = await asyncio.gather(
        *(store.open_or_join(new_incident(f"cand-{n}"), f"fp{n}") for n in range(6))
    )
    assert len({incident_id for incident_id, _ in results}) == 1
    assert sum(opened for _, opened in results) == 1
    incident = await store.get_incident(results[0][0])
    assert incident is not None
    assert incident.alert_count == 6


async def test_triage_close_frees_the_group_and_counts_firing_alerts(
    db: DocumentDatabase,
) -> None:
    store = MongoTriageStore(db)
    first, _ = await store.open_or_join(new_incident("a"), "fp1")
    await store.record_alert(firing("fp1"), Occurrence.NEW, "checkout/Errors", first)
    assert await store.firing_count(first) == 1
    await store.close(first, "checkout/Errors", T0)
    closed = await store.get_incident(first)
    assert closed is not None
    assert closed.status == "resolved"
    second, opened = await store.open_or_join(new_incident("b"), "fp2")
    assert (second, opened) == ("b", True)


# -- notifier and ingest -----------------------------------------------------------------


def request(notification_id: str, user: str = "alice") -> NotificationRequested:
    return NotificationRequested(
        occurred_at=T0,
        correlation_id="i",
        notification_id=notification_id,
        event=NotificationEvent.TRIGGERED,
        incident=IncidentSnapshot(
            id="i",
            title="t",
            severity=Severity.SEV1,
            status="triggered",
            service="s",
            alert_count=1,
        ),
        recipient=Recipient(user_id=user, contact_id="hook"),
        escalation_level=0,
    )


async def test_notifier_queue_records_once_and_claims_under_a_lease(
    db: DocumentDatabase,
) -> None:
    store = MongoNotifierStore(db)
    await store.ensure_indexes()
    lease = timedelta(seconds=30)
    queued = request("n1")
    assert await store.record(queued, T0)
    assert not await store.record(request("n1"), T0)  # a redelivered request queues nothing
    claims = await asyncio.gather(*(store.claim_due(T0, f"w{n}", lease) for n in range(4)))
    claimed = [c for c in claims if c is not None]
    assert [(c.request.notification_id, c.attempt) for c in claimed] == [("n1", 1)]
    owner = f"w{claims.index(claimed[0])}"
    # A retry is due later; only the lease holder may record it.
    await store.retry_at("n1", "someone-else", T0, "stolen")
    await store.retry_at("n1", owner, T0 + timedelta(seconds=2), "webhook answered 503")
    assert await store.claim_due(T0 + timedelta(seconds=1), "w9", lease) is None
    second = await store.claim_due(T0 + timedelta(seconds=2), "w9", lease)
    assert second is not None
    assert second.attempt == 2
    assert second.request == queued
    await store.delivered("n1", "w9", T0 + timedelta(seconds=3))
    assert await store.state("n1") == "delivered"
    assert await store.claim_due(T0 + timedelta(hours=1), "w9", lease) is None
    assert not await store.record(request("n1"), T0)  # delivered: never queued again


async def test_ingest_integrations_upsert_and_tokens_are_unique(
    db: DocumentDatabase,
) -> None:
    store = MongoIngestStore(db)
    await store.ensure_indexes()
    await store.upsert_integration(Integration("prom", "alertmanager", "checkout", "d1"))
    await store.upsert_integration(Integration("prom", "alertmanager", "payments", "d1"))
    assert await store.integrations() == [Integration("prom", "alertmanager", "payments", "d1")]
    with pytest.raises(DuplicateKeyError):
        await store.upsert_integration(Integration("other", "alertmanager", "x", "d1"))
