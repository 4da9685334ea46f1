"""Escalation's polled collections hold only pending work (on both adapters): a fired or
cancelled timer leaves `escalation_timers` (a tombstone stays, so re-arming it from a replayed
outbox does nothing), and `escalation_outboxes` names exactly the incidents whose outbox holds
items, even when a save lands between a flush's read and its clear."""

from __future__ import annotations

import uuid
from datetime import timedelta

from services.escalation.store import MongoEscalationStore
from tests.integration.test_escalation_store import T0, incident, send, store, timer
from tocsin.runtime.parking import STALE_SECONDS, Parking

__all__ = ["store"]  # the fixture, on FerretDB and on the embedded store

LEASE = timedelta(seconds=30)


async def pending_timers(store: MongoEscalationStore) -> list[str]:
    return [doc["_id"] async for doc in store._timers.find({})]


async def test_a_fired_timer_leaves_the_queue_and_is_never_armed_again(
    store: MongoEscalationStore,
) -> None:
    await store.arm_timer("i1", timer("t1", T0))
    assert store.timer_armed.is_set()
    assert await store.next_timer_due() == T0
    claimed = await store.claim_due_timer(T0, "a", LEASE)
    assert claimed is not None
    assert await store.next_timer_due() == T0 + LEASE  # held under the lease until then
    await store.finish_timer("t1", "a")
    assert await pending_timers(store) == []
    assert await store.next_timer_due() is None
    await store.arm_timer("i1", timer("t1", T0))  # an outbox carried out again
    assert await pending_timers(store) == []
    assert await store.claim_due_timer(T0 + timedelta(hours=1), "b", LEASE) is None


async def test_a_cancelled_timer_leaves_the_queue_and_is_never_armed_again(
    store: MongoEscalationStore,
) -> None:
    await store.arm_timer("i1", timer("c0", T0, cycle=0))
    await store.arm_timer("i1", timer("c1", T0, cycle=1))
    await store.cancel_timers("i1", 0)
    assert await pending_timers(store) == ["c1"]
    await store.arm_timer("i1", timer("c0", T0, cycle=0))
    assert await pending_timers(store) == ["c1"]


async def test_a_cancel_that_crashed_before_deleting_is_finished_by_the_next_claim(
    store: MongoEscalationStore,
) -> None:
    await store.arm_timer("i1", timer("t1", T0))
    await store._tombstone("t1", "i1", "cancelled", T0)  # the crash came right after this
    assert await store.claim_due_timer(T0, "a", LEASE) is None
    assert await pending_timers(store) == []


async def test_the_outbox_stays_named_until_cleared_at_a_version_that_includes_it(
    store: MongoEscalationStore,
) -> None:
    await store.create(incident("i1", outbox=(send(1),)), uuid.uuid4())
    soon = T0 + timedelta(seconds=1)
    assert await store.with_stale_outbox(soon, 10) == ["i1"]
    read = await store.get("i1")
    assert read is not None
    # A save lands between this flush's read and its clear, then the clear at the read
    # version fails; cleared at the new version, the outbox is no longer named.
    assert await store.save(read, [send(2)], None, T0)
    assert not await store.clear_outbox("i1", read.version)
    assert await store.with_stale_outbox(soon, 10) == ["i1"]
    latest = await store.get("i1")
    assert latest is not None
    assert await store.clear_outbox("i1", latest.version)
    assert await store.with_stale_outbox(soon + timedelta(days=1), 10) == []
    # A save that marks the outbox but then loses its compare-and-set leaves a name the
    # sweeper forgets once it finds the outbox empty.
    assert not await store.save(read, [send(3)], None, T0)
    assert await store.with_stale_outbox(soon + timedelta(days=1), 10) == ["i1"]
    await store.forget_outbox("i1")
    assert await store.with_stale_outbox(soon + timedelta(days=1), 10) == []


async def test_a_clear_below_a_newer_mark_keeps_the_name(store: MongoEscalationStore) -> None:
    """The race the version floor closes: a clear at V succeeds while a writer that read V has
    marked the outbox but not saved yet; its items must stay named."""
    await store.create(incident("i1", outbox=(send(1),)), uuid.uuid4())
    read = await store.get("i1")
    assert read is not None
    await store._mark_outbox("i1", read.version + 1, T0)  # the writer's mark, before its save
    assert await store.clear_outbox("i1", read.version)
    assert await store.save(read, [send(2)], None, T0)  # then its save
    assert await store.with_stale_outbox(T0 + timedelta(seconds=1), 10) == ["i1"]


async def states(store: MongoEscalationStore) -> dict[str, str]:
    return {doc["_id"]: doc["state"] async for doc in store._timers.find({})}


async def test_a_timer_due_beyond_the_horizon_is_parked_until_it_comes_near(
    store: MongoEscalationStore,
) -> None:
    assert await store.claim_due_timer(T0, "a", LEASE) is None  # the first claim promotes
    await store.arm_timer("i1", timer("soon", T0 + timedelta(seconds=30)))
    await store.arm_timer("i1", timer("later", T0 + timedelta(hours=1)))
    assert await states(store) == {"soon": "pending", "later": "parked"}
    assert await store.next_timer_due() == T0 + timedelta(seconds=30)  # the claims' view
    claimed = await store.claim_due_timer(T0 + timedelta(minutes=59), "a", LEASE)
    assert claimed is not None
    assert claimed.id == "soon"
    await store.finish_timer("soon", "a")
    # Promoted by that claim (59 minutes after the last promotion), fired when due.
    assert await states(store) == {"later": "pending"}
    assert await store.claim_due_timer(T0 + timedelta(minutes=59), "a", LEASE) is None
    claimed = await store.claim_due_timer(T0 + timedelta(hours=1), "a", LEASE)
    assert claimed is not None
    assert claimed.id == "later"


async def test_a_parked_timer_is_cancelled_like_a_pending_one(
    store: MongoEscalationStore,
) -> None:
    assert await store.claim_due_timer(T0, "a", LEASE) is None
    await store.arm_timer("i1", timer("p1", T0 + timedelta(hours=1)))
    assert await states(store) == {"p1": "parked"}
    await store.cancel_timers("i1", None)
    assert await states(store) == {}
    await store.arm_timer("i1", timer("p1", T0 + timedelta(hours=1)))  # replayed: never again
    assert await states(store) == {}


async def test_a_replica_that_never_promoted_still_fires_what_another_parked(
    store: MongoEscalationStore,
) -> None:
    assert await store.claim_due_timer(T0, "a", LEASE) is None
    await store.arm_timer("i1", timer("p1", T0 + timedelta(hours=1)))
    store._parking = Parking()  # another process: the same collections, no promotion yet
    claimed = await store.claim_due_timer(T0 + timedelta(hours=1), "b", LEASE)
    assert claimed is not None
    assert claimed.id == "p1"


async def test_a_process_whose_last_promotion_is_stale_parks_nothing(
    store: MongoEscalationStore,
) -> None:
    seconds = [1000.0]
    store._parking = Parking(monotonic=lambda: seconds[0])
    assert await store.claim_due_timer(T0, "a", LEASE) is None  # promotes
    await store.arm_timer("i1", timer("fresh", T0 + timedelta(hours=1)))
    seconds[0] += STALE_SECONDS + 1  # its claiming loop stalled since
    await store.arm_timer("i1", timer("stale", T0 + timedelta(hours=1)))
    assert await states(store) == {"fresh": "parked", "stale": "pending"}
