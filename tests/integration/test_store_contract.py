"""The store contract: every repository operation of every service, run against both
adapters (MongoDB wire protocol on FerretDB, and the embedded SQLite document store),
including atomic upserts, compare-and-set and timer leases."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from pymongo.asynchronous.database import AsyncDatabase
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
from services.escalation.domain.lifecycle import Lifecycle, Status
from services.escalation.domain.outbox import ArmTimer, SendNotification
from services.escalation.store import EscalationIncident, MongoEscalationStore, TimelineEntry
from services.ingest.store import Integration, MongoIngestStore
from services.notifier.store import MongoNotifierStore
from services.triage.domain import Occurrence
from services.triage.store import MongoTriageStore, NewIncident
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document, open_client

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["mongo", "embedded"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncDatabase[Document]]:
    if request.param == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"contract_{uuid.uuid4().hex[:12]}"
        yield client[name]
        await client.drop_database(name)
        await client.close()
        return
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    # The embedded store implements the part of pymongo's API our stores use (see docstore.py).
    yield cast(AsyncDatabase[Document], embedded)
    embedded.file.close()


def reopen(db: AsyncDatabase[Document], tmp_path: Path) -> AsyncDatabase[Document]:
    """The same data through a new connection (for the embedded store: a restart)."""
    if isinstance(db, EmbeddedDatabase):
        db.file.close()
        return cast(
            AsyncDatabase[Document], EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
        )
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


# -- triage ------------------------------------------------------------------------------


async def test_triage_record_alert_counts_each_event_once_and_survives_a_restart(
    db: AsyncDatabase[Document], tmp_path: Path
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
    db: AsyncDatabase[Document],
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
    db: AsyncDatabase[Document],
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


# -- escalation --------------------------------------------------------------------------


def incident(incident_id: str, outbox: tuple[SendNotification, ...] = ()) -> EscalationIncident:
    return EscalationIncident(
        id=incident_id,
        service_id="checkout",
        policy_id="p",
        title="t",
        severity=Severity.SEV1,
        alert_count=1,
        opened_at=T0,
        lifecycle=Lifecycle(Status.TRIGGERED, next_step=1, responders=("alice",)),
        version=1,
        outbox=outbox,
    )


def send(n: int) -> SendNotification:
    return SendNotification(
        id=f"send:{n}",
        notification_id=f"n{n}",
        user_id="alice",
        contact_id="hook",
        event=NotificationEvent.TRIGGERED,
        escalation_level=0,
    )


async def test_escalation_create_is_once_and_save_is_compare_and_set(
    db: AsyncDatabase[Document],
) -> None:
    store = MongoEscalationStore(db)
    await store.ensure_indexes()
    entry = TimelineEntry(T0, "triggered", "triage")
    event = uuid.uuid4()
    assert await store.create(incident("i1", (send(1),)), event, entry)
    assert not await store.create(incident("i1"), uuid.uuid4(), entry)
    assert await store.has_event("i1", event)
    stored = await store.get("i1")
    assert stored is not None
    assert stored.outbox == (send(1),)
    acked = EscalationIncident(**{**stored.__dict__, "lifecycle": Lifecycle(Status.ACKNOWLEDGED)})
    outcomes = await asyncio.gather(
        store.save(acked, [send(2)], TimelineEntry(T0, "acknowledge", "a"), None, T0),
        store.save(acked, [send(3)], TimelineEntry(T0, "acknowledge", "b"), None, T0),
    )
    assert sorted(outcomes) == [False, True]
    after = await store.get("i1")
    assert after is not None
    assert after.version == 2
    assert after.lifecycle.status is Status.ACKNOWLEDGED
    assert len(after.outbox) == 2
    assert [e.action for e in after.timeline] == ["triggered", "acknowledge"]


async def test_escalation_outbox_is_cleared_only_at_the_version_it_was_read(
    db: AsyncDatabase[Document],
) -> None:
    store = MongoEscalationStore(db)
    entry = TimelineEntry(T0, "triggered", "triage")
    await store.create(incident("i2", (send(1), send(2))), uuid.uuid4(), entry)
    assert await store.with_stale_outbox(T0 + timedelta(seconds=1), 10) == ["i2"]
    read = await store.get("i2")
    assert read is not None
    assert await store.save(read, [send(3)], None, None, T0)  # someone appends meanwhile
    assert not await store.clear_outbox("i2", read.version)
    kept = await store.get("i2")
    assert kept is not None
    assert kept.outbox == (send(1), send(2), send(3))
    assert await store.clear_outbox("i2", kept.version)
    cleared = await store.get("i2")
    assert cleared is not None
    assert cleared.outbox == ()
    assert await store.with_stale_outbox(T0 + timedelta(days=1), 10) == []


async def test_escalation_list_filters_by_status_newest_first(
    db: AsyncDatabase[Document],
) -> None:
    store = MongoEscalationStore(db)
    entry = TimelineEntry(T0, "triggered", "triage")
    for n in range(3):
        later = EscalationIncident(
            **{**incident(f"L{n}").__dict__, "opened_at": T0 + timedelta(minutes=n)}
        )
        await store.create(later, uuid.uuid4(), entry)
    listed = await store.list_incidents(Status.TRIGGERED, 2)
    assert [i.id for i in listed] == ["L2", "L1"]
    assert await store.list_incidents(Status.RESOLVED, 10) == []


def timer(timer_id: str, due_at: datetime) -> ArmTimer:
    return ArmTimer(
        id=f"timer:{timer_id}", timer_id=timer_id, kind="escalate", due_at=due_at, step=1, cycle=0
    )


async def test_escalation_timer_is_claimed_once_under_its_lease(
    db: AsyncDatabase[Document],
) -> None:
    store = MongoEscalationStore(db)
    await store.ensure_indexes()
    await store.arm_timer("i3", timer("t1", T0))
    await store.arm_timer("i3", timer("t1", T0 + timedelta(hours=1)))  # re-arming changes nothing
    await store.arm_timer("i3", timer("t-later", T0 + timedelta(hours=1)))
    lease = timedelta(seconds=30)
    claims = await asyncio.gather(
        *(store.claim_due_timer(T0 + timedelta(seconds=1), f"owner{n}", lease) for n in range(5))
    )
    claimed = [c for c in claims if c is not None]
    assert [c.id for c in claimed] == ["t1"]
    assert claimed[0].due_at == T0
    # Still leased: nobody else gets it. After the lease lapses, another owner does.
    assert await store.claim_due_timer(T0 + timedelta(seconds=10), "other", lease) is None
    retaken = await store.claim_due_timer(T0 + timedelta(seconds=40), "other", lease)
    assert retaken is not None
    assert retaken.id == "t1"
    # Only the lease holder finishes it.
    await store.finish_timer("t1", "owner-stale")
    assert await store.claim_due_timer(T0 + timedelta(seconds=80), "third", lease) is not None
    await store.finish_timer("t1", "third")
    assert await store.claim_due_timer(T0 + timedelta(seconds=200), "fourth", lease) is None


async def test_escalation_cancelled_timers_never_fire(db: AsyncDatabase[Document]) -> None:
    store = MongoEscalationStore(db)
    await store.arm_timer("i4", timer("t2", T0))
    await store.arm_timer("other", timer("t3", T0))
    await store.cancel_timers("i4")
    claimed = await store.claim_due_timer(T0 + timedelta(minutes=1), "o", timedelta(seconds=30))
    assert claimed is not None
    assert claimed.id == "t3"
    assert (
        await store.claim_due_timer(T0 + timedelta(minutes=1), "p", timedelta(seconds=30)) is None
    )


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
    db: AsyncDatabase[Document],
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
    db: AsyncDatabase[Document],
) -> None:
    store = MongoIngestStore(db)
    await store.ensure_indexes()
    await store.upsert_integration(Integration("prom", "alertmanager", "checkout", "d1"))
    await store.upsert_integration(Integration("prom", "alertmanager", "payments", "d1"))
    assert await store.integrations() == [Integration("prom", "alertmanager", "payments", "d1")]
    with pytest.raises(DuplicateKeyError):
        await store.upsert_integration(Integration("other", "alertmanager", "x", "d1"))
