"""Escalation's store on both adapters (FerretDB over the MongoDB wire protocol, and the
embedded SQLite store): compare-and-set with the outbox, bounded dedup ids, the timeline
collection, the incident listing, timers (leases, cancels scoped to a cycle), command outcomes.

(Supersedes the escalation part of test_store_contract.py, written for the store before the
timeline left the incident document.)"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from schemas import AlertDetails, Label, NotificationEvent, Severity
from services.escalation.domain.lifecycle import Lifecycle, Responder, Status
from services.escalation.domain.outbox import ArmTimer, SendNotification
from services.escalation.domain.timeline import TimelineEntry
from services.escalation.store import (
    MAX_EVENT_IDS,
    CommandOutcome,
    Details,
    EscalationIncident,
    IncidentFilter,
    MongoEscalationStore,
    Stamp,
)
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document, open_client

pytestmark = pytest.mark.mongo

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.fixture(params=["mongo", "embedded"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MongoEscalationStore]:
    if request.param == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"escalation_{uuid.uuid4().hex[:12]}"
        escalation = MongoEscalationStore(client[name])
        await escalation.ensure_indexes()
        yield escalation
        await client.drop_database(name)
        await client.close()
        return
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    escalation = MongoEscalationStore(cast(AsyncDatabase[Document], embedded))
    await escalation.ensure_indexes()
    yield escalation
    embedded.file.close()


def incident(
    incident_id: str = "i1",
    *,
    outbox: tuple[SendNotification, ...] = (),
    opened_at: datetime = T0,
    service_id: str = "checkout",
    severity: Severity = Severity.SEV1,
) -> EscalationIncident:
    return EscalationIncident(
        id=incident_id,
        service_id=service_id,
        policy_id="oncall",
        title="CheckoutErrors",
        severity=severity,
        alert_count=1,
        opened_at=opened_at,
        lifecycle=Lifecycle(Status.TRIGGERED, next_step=1, responders=(Responder("alice", 0),)),
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


async def test_create_is_once_and_save_is_compare_and_set(store: MongoEscalationStore) -> None:
    event = uuid.uuid4()
    assert await store.create(incident(outbox=(send(1),)), event)
    assert not await store.create(incident(), uuid.uuid4())
    assert await store.has_event("i1", event)
    stored = await store.get("i1")
    assert stored is not None
    assert stored.outbox == (send(1),)
    acked = replace(
        stored,
        lifecycle=Lifecycle(
            Status.ACKNOWLEDGED, responders=(Responder("alice", 0), Responder("bob", 1))
        ),
        acknowledged=Stamp(T0 + MIN, "api:ops"),
    )
    outcomes = await asyncio.gather(
        store.save(acked, [send(2)], None, T0), store.save(acked, [send(3)], None, T0)
    )
    assert sorted(outcomes) == [False, True]
    after = await store.get("i1")
    assert after is not None
    assert after.version == 2
    assert after.lifecycle.responders == (Responder("alice", 0), Responder("bob", 1))
    assert after.acknowledged == Stamp(T0 + MIN, "api:ops")
    assert after.resolved is None
    assert len(after.outbox) == 2


async def test_outbox_is_cleared_only_at_the_version_it_was_read(
    store: MongoEscalationStore,
) -> None:
    await store.create(incident("i2", outbox=(send(1), send(2))), uuid.uuid4())
    assert await store.with_stale_outbox(T0 + timedelta(seconds=1), 10) == ["i2"]
    read = await store.get("i2")
    assert read is not None
    assert await store.save(read, [send(3)], None, T0)  # someone appends meanwhile
    assert not await store.clear_outbox("i2", read.version)
    kept = await store.get("i2")
    assert kept is not None
    assert kept.outbox == (send(1), send(2), send(3))
    assert await store.clear_outbox("i2", kept.version)
    cleared = await store.get("i2")
    assert cleared is not None
    assert cleared.outbox == ()
    assert await store.with_stale_outbox(T0 + timedelta(days=1), 10) == []


async def test_dedup_ids_are_bounded_to_the_latest(store: MongoEscalationStore) -> None:
    first = uuid.uuid4()
    await store.create(incident(), first)
    events = [uuid.uuid4() for _ in range(MAX_EVENT_IDS + 5)]
    for event in events:
        current = await store.get("i1")
        assert current is not None
        assert await store.save(current, [], event, T0)
    final = await store.get("i1")
    assert final is not None
    assert len(final.event_ids) == MAX_EVENT_IDS
    assert await store.has_event("i1", events[-1])
    assert await store.has_event("i1", events[-MAX_EVENT_IDS])
    assert not await store.has_event("i1", events[-MAX_EVENT_IDS - 1])
    assert not await store.has_event("i1", first)


async def test_details_and_alerts_round_trip(store: MongoEscalationStore) -> None:
    await store.create(incident(), uuid.uuid4())
    alert = AlertDetails(
        fingerprint="fp",
        summary="5xx",
        labels=(Label(name="pod", value="checkout-1"),),
        runbook_url="https://runbooks.example/checkout",
    )
    await store.update_details("i1", Details("New title", Severity.SEV0, 3, (alert,)))
    stored = await store.get("i1")
    assert stored is not None
    assert stored.details == Details("New title", Severity.SEV0, 3, (alert,))


def entry(entry_id: str, at: datetime, action: str = "paged") -> TimelineEntry:
    return TimelineEntry(id=entry_id, at=at, action=action, user_id="alice", level=1)


async def test_timeline_entries_are_written_once_and_read_latest_first_bounded(
    store: MongoEscalationStore,
) -> None:
    await store.record("i1", [entry("b", T0 + MIN), entry("a", T0 + MIN), entry("c", T0)])
    await store.record("i1", [entry("a", T0 + 5 * MIN, action="changed")])  # a redo: kept
    await store.record("other", [entry("z", T0 + 2 * MIN)])
    assert [e.id for e in await store.timeline("i1", 10)] == ["c", "a", "b"]
    latest = await store.timeline("i1", 2)
    assert [(e.id, e.at, e.action) for e in latest] == [
        ("a", T0 + MIN, "paged"),
        ("b", T0 + MIN, "paged"),
    ]
    assert latest[0] == entry("a", T0 + MIN)
    assert await store.timeline("nobody", 10) == []


async def test_listing_filters_and_pages_by_key_newest_first(store: MongoEscalationStore) -> None:
    for n in range(6):
        await store.create(
            incident(
                f"L{n}",
                opened_at=T0 + n * MIN,
                service_id="checkout" if n % 2 == 0 else "search",
                severity=Severity.SEV1 if n < 3 else Severity.SEV2,
            ),
            uuid.uuid4(),
        )
    everything = await store.list_incidents(IncidentFilter(), None, 10)
    assert [i.id for i in everything] == ["L5", "L4", "L3", "L2", "L1", "L0"]
    after = await store.list_incidents(IncidentFilter(), everything[1].listing_key, 2)
    assert [i.id for i in after] == ["L3", "L2"]
    checkout_sev2 = IncidentFilter(service_id="checkout", severity=Severity.SEV2)
    assert [i.id for i in await store.list_incidents(checkout_sev2, None, 10)] == ["L4"]
    resolved = IncidentFilter(status=Status.RESOLVED)
    assert await store.list_incidents(resolved, None, 10) == []


def timer(timer_id: str, due_at: datetime, cycle: int = 0) -> ArmTimer:
    return ArmTimer(
        id=f"timer:{timer_id}",
        timer_id=timer_id,
        kind="escalate",
        due_at=due_at,
        step=1,
        cycle=cycle,
    )


async def test_timer_is_claimed_once_under_its_lease(store: MongoEscalationStore) -> None:
    await store.arm_timer("i3", timer("t1", T0))
    await store.arm_timer("i3", timer("t1", T0 + timedelta(hours=1)))  # re-arming: no change
    await store.arm_timer("i3", timer("t-later", T0 + timedelta(hours=1)))
    lease = timedelta(seconds=30)
    claims = await asyncio.gather(
        *(store.claim_due_timer(T0 + timedelta(seconds=1), f"owner{n}", lease) for n in range(5))
    )
    claimed = [c for c in claims if c is not None]
    assert [(c.id, c.due_at) for c in claimed] == [("t1", T0)]
    assert await store.claim_due_timer(T0 + timedelta(seconds=10), "other", lease) is None
    retaken = await store.claim_due_timer(T0 + timedelta(seconds=40), "other", lease)
    assert retaken is not None
    await store.finish_timer("t1", "owner-stale")  # only the lease holder finishes it
    assert await store.claim_due_timer(T0 + timedelta(seconds=80), "third", lease) is not None
    await store.finish_timer("t1", "third")
    assert await store.claim_due_timer(T0 + timedelta(seconds=200), "fourth", lease) is None


async def test_cancel_reaches_its_cycle_and_earlier_ones_only(
    store: MongoEscalationStore,
) -> None:
    await store.arm_timer("i4", timer("c0", T0, cycle=0))
    await store.arm_timer("i4", timer("c1", T0, cycle=1))
    await store.arm_timer("i4", timer("c2", T0, cycle=2))
    await store.arm_timer("other", timer("o0", T0, cycle=0))
    await store.cancel_timers("i4", 1)
    lease = timedelta(seconds=30)
    due = T0 + MIN
    first = await store.claim_due_timer(due, "a", lease)
    second = await store.claim_due_timer(due, "b", lease)
    assert sorted(c.id for c in (first, second) if c is not None) == ["c2", "o0"]
    assert await store.claim_due_timer(due, "c", lease) is None
    # A cancel stored before cycles were named cancels every pending timer of the incident.
    await store.arm_timer("i5", timer("legacy-a", T0, cycle=0))
    await store.arm_timer("i5", timer("legacy-b", T0, cycle=7))
    await store.cancel_timers("i5", None)
    assert await store.claim_due_timer(due, "d", lease) is None


async def test_command_outcome_keeps_the_first(store: MongoEscalationStore) -> None:
    assert await store.command_outcome("cmd-1") is None
    applied = CommandOutcome("cmd-1", "i1", applied=True, reason=None, at=T0)
    await store.record_command(applied)
    await store.record_command(CommandOutcome("cmd-1", "i1", False, "late", T0 + MIN))
    assert await store.command_outcome("cmd-1") == applied
