"""Reminders' and reviews' stores on both adapters (FerretDB over the MongoDB wire protocol,
and the embedded SQLite store): the reminder claim with its lease and re-arm, the review's
compare-and-set and count, action item filters (owner, status, overdue by ISO date)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from schemas import Severity
from services.escalation.domain.action_items import ActionItem, ActionItemStatus
from services.escalation.domain.review import ReviewContent, ReviewStatus
from services.escalation.reminders import Reminder, ReminderStore
from services.escalation.review_store import ActionItemFilter, ReviewStore, StoredReview
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import MongoDatabase, open_client

pytestmark = pytest.mark.mongo

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@dataclass
class Stores:
    reminders: ReminderStore
    reviews: ReviewStore


@pytest.fixture(params=["mongo", "embedded"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"after_{uuid.uuid4().hex[:12]}"
        database = MongoDatabase(client[name])
        made = Stores(ReminderStore(database), ReviewStore(database))
        await made.reminders.ensure_indexes()
        await made.reviews.ensure_indexes()
        yield made
        await client.drop_database(name)
        await client.close()
        return
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    made = Stores(ReminderStore(embedded), ReviewStore(embedded))
    await made.reminders.ensure_indexes()
    await made.reviews.ensure_indexes()
    yield made


def reminder(reminder_id: str, due_at: datetime) -> Reminder:
    return Reminder(
        id=reminder_id,
        kind="review_due",
        subject_id="inc-1",
        incident_id="inc-1",
        user_id="alice",
        text="Review due",
        due_at=due_at,
    )


async def test_reminders_are_claimed_earliest_first_once_per_lease(stores: Stores) -> None:
    store = stores.reminders
    await store.arm(reminder("b", T0 + timedelta(minutes=1)), replace=False)
    await store.arm(reminder("a", T0), replace=False)
    await store.arm(reminder("later", T0 + timedelta(days=1)), replace=False)
    now = T0 + timedelta(minutes=2)
    first = await store.claim(now, "one", LEASE)
    second = await store.claim(now, "two", LEASE)
    assert (first and first.id, second and second.id) == ("a", "b")
    assert await store.claim(now, "three", LEASE) is None  # leased, or not due
    assert first is not None
    await store.finish(first, "one", None)  # done: deleted
    assert await store.get("a") is None
    assert second is not None
    await store.finish(second, "two", now + timedelta(days=1))  # repeats: re-armed
    again = await store.get("b")
    assert again is not None
    assert again.due_at == now + timedelta(days=1)
    assert again.generation == 1


async def test_a_replaced_reminder_is_not_deleted_by_the_old_claim(stores: Stores) -> None:
    store = stores.reminders
    await store.arm(reminder("r", T0), replace=False)
    claimed = await store.claim(T0, "one", LEASE)
    assert claimed is not None
    await store.arm(reminder("r", T0 + timedelta(hours=1)), replace=True)
    await store.finish(claimed, "one", None)
    kept = await store.get("r")
    assert kept is not None
    assert kept.due_at == T0 + timedelta(hours=1)
    assert [r.id for r in await store.pending("inc-1")] == ["r"]


def review(status: ReviewStatus, version: int = 1, incident: str = "inc-1") -> StoredReview:
    return StoredReview(
        incident_id=incident,
        severity=Severity.SEV1,
        service_id="checkout",
        status=status,
        content=ReviewContent(root_causes=("pool",)),
        version=version,
        created_at=T0,
        created_by="api:ops",
        updated_at=T0,
        updated_by="api:ops",
    )


async def test_a_review_is_created_once_and_saved_by_compare_and_set(stores: Stores) -> None:
    store = stores.reviews
    assert await store.create_review(review(ReviewStatus.DRAFT))
    assert not await store.create_review(review(ReviewStatus.DRAFT))
    assert await store.save_review(review(ReviewStatus.IN_REVIEW, 2), expected_version=1)
    assert not await store.save_review(review(ReviewStatus.PUBLISHED, 2), expected_version=1)
    assert await store.save_review(review(ReviewStatus.PUBLISHED, 3), expected_version=2)
    await store.create_review(review(ReviewStatus.DRAFT, incident="inc-2"))
    stored = await store.review("inc-1")
    assert stored is not None
    assert stored.status is ReviewStatus.PUBLISHED
    assert stored.content.root_causes == ("pool",)
    published = await store.count_reviews([Severity.SEV0, Severity.SEV1], ReviewStatus.PUBLISHED)
    assert published == 1


def item(item_id: str, owner: str, due: date, status: ActionItemStatus) -> ActionItem:
    return ActionItem(
        id=item_id,
        incident_id="inc-1",
        title=item_id,
        owner=owner,
        due=due,
        status=status,
        created_at=T0,
        created_by="api:ops",
        updated_at=T0,
    )


async def test_action_items_filter_by_owner_status_and_overdue(stores: Stores) -> None:
    store = stores.reviews
    today = T0.date()
    await store.add_item(
        item("past-open", "alice", today - timedelta(days=2), ActionItemStatus.OPEN)
    )
    await store.add_item(
        item("past-done", "alice", today - timedelta(days=2), ActionItemStatus.DONE)
    )
    await store.add_item(item("today", "bob", today, ActionItemStatus.IN_PROGRESS))
    await store.add_item(item("later", "bob", today + timedelta(days=9), ActionItemStatus.OPEN))

    async def ids(where: ActionItemFilter) -> list[str]:
        return [i.id for i in await store.items(where, 100)]

    assert await ids(ActionItemFilter(overdue_on=today)) == ["past-open"]
    assert await ids(ActionItemFilter(owner="bob")) == ["today", "later"]
    assert await ids(ActionItemFilter(status=ActionItemStatus.OPEN)) == ["past-open", "later"]
    assert await ids(ActionItemFilter(incident_id="inc-1")) == [
        "past-done",
        "past-open",
        "today",
        "later",
    ]
    changed = item("later", "alice", today + timedelta(days=9), ActionItemStatus.DONE)
    assert await store.save_item(changed.model_copy(update={"version": 2}), expected_version=1)
    assert not await store.save_item(changed, expected_version=1)
    stored = await store.item("later")
    assert stored is not None
    assert (stored.owner, stored.status, stored.version) == ("alice", ActionItemStatus.DONE, 2)
