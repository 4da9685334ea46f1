"""Durable reminders (services/escalation/reminders.py) on the embedded store and bus with a
clock the test moves: due ones page their user once, through their channels; re-arming by id
is idempotent; a lease keeps a second replica off; a repeating kind re-arms; a done one is
deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from schemas import NOTIFICATIONS_REQUESTED, NotificationEvent, NotificationRequested
from services.escalation.reminders import Firing, Reminder, Reminders, ReminderStore
from tests.unit.escalation_harness import T0, Rig, config, incident_event, rig
from tocsin.composition.config import TocsinConfig

DAY = timedelta(days=1)


def reminders_of(r: Rig, owner: str = "replica-a") -> Reminders:
    return Reminders(
        ReminderStore(r.database),
        r.bus,
        r.store,
        r.live.view(TocsinConfig.escalation),
        r.clock,
        owner,
    )


@pytest.fixture
async def r(tmp_path: Path) -> AsyncIterator[Rig]:
    users = {
        "alice": [
            {"contact": "alice-hook"},
            {"contact": "alice-later", "after": "5m"},
        ]
    }
    async with rig(tmp_path, config(users=users)) as r:
        await r.engine.on_incident_event(incident_event())
        yield r


def reminder(due_at: datetime, *, text: str = "Review due: CheckoutErrors") -> Reminder:
    return Reminder(
        id="review:inc-1",
        kind="review_due",
        subject_id="inc-1",
        incident_id="inc-1",
        user_id="alice",
        text=text,
        due_at=due_at,
    )


def sent(r: Rig) -> list[NotificationRequested]:
    return [
        m
        for m in r.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)
        if m.event is NotificationEvent.REMINDER
    ]


async def test_a_due_reminder_pages_its_user_once_then_is_deleted(r: Rig) -> None:
    reminders = reminders_of(r)
    await reminders.store.ensure_indexes()
    await reminders.arm(reminder(T0 + DAY))
    assert await reminders.fire_due() == 0
    r.clock.advance(DAY)
    assert await reminders.fire_due() == 1
    [page] = sent(r)
    # Only the contact the user's rules use at once, with the reminder's text.
    assert page.recipient.contact_id == "alice-hook"
    assert page.incident.title == "Review due: CheckoutErrors"
    assert await reminders.pending("inc-1") == []
    r.clock.advance(DAY)
    assert await reminders.fire_due() == 0
    assert len(sent(r)) == 1
    timeline = await r.store.timeline("inc-1", 100)
    assert [e.detail for e in timeline if e.action == "reminded"] == ["Review due: CheckoutErrors"]


async def test_arming_again_is_idempotent_and_replace_moves_it(r: Rig) -> None:
    reminders = reminders_of(r)
    await reminders.arm(reminder(T0 + DAY))
    await reminders.arm(reminder(T0 + 3 * DAY, text="other"))  # same id: unchanged
    [armed] = await reminders.pending("inc-1")
    assert armed.due_at == T0 + DAY
    assert armed.text == "Review due: CheckoutErrors"
    await reminders.arm(reminder(T0 + 3 * DAY, text="moved"), replace=True)
    r.clock.advance(2 * DAY)
    assert await reminders.fire_due() == 0
    r.clock.advance(DAY)
    assert await reminders.fire_due() == 1
    assert [p.incident.title for p in sent(r)] == ["moved"]
    await reminders.arm(reminder(T0 + 4 * DAY))
    await reminders.cancel("review:inc-1")
    assert await reminders.pending("inc-1") == []


async def test_a_claimed_reminder_is_not_fired_by_another_replica(r: Rig) -> None:
    a, b = reminders_of(r, "replica-a"), reminders_of(r, "replica-b")
    await a.arm(reminder(T0))
    claimed = await a.store.claim(r.clock.now(), "replica-a", timedelta(seconds=30))
    assert claimed is not None
    assert await b.fire_due() == 0  # leased by a
    r.clock.advance(timedelta(seconds=31))
    # a's lease lapsed (a died mid-firing): b fires it; a's late finish deletes nothing new.
    assert await b.fire_due() == 1
    await a.store.finish(claimed, "replica-a", None)
    assert len(sent(r)) == 1


async def test_a_lapsed_lease_refiring_reuses_the_notification_id(r: Rig) -> None:
    a, b = reminders_of(r, "replica-a"), reminders_of(r, "replica-b")
    await a.arm(reminder(T0))
    claimed = await a.store.claim(r.clock.now(), "replica-a", timedelta(seconds=30))
    assert claimed is not None
    await a._page(claimed, Firing("alice", claimed.text), r.clock.now())  # then a dies
    r.clock.advance(timedelta(minutes=1))
    assert await b.fire_due() == 1
    ids = [p.notification_id for p in sent(r)]
    assert len(ids) == 2
    assert len(set(ids)) == 1  # the notifier sends one


async def test_a_handler_repeats_daily_or_drops_a_moot_reminder(r: Rig) -> None:
    reminders = reminders_of(r)
    calls: list[datetime] = []

    async def daily(reminder: Reminder, now: datetime) -> Firing:
        calls.append(now)
        if len(calls) >= 3:
            return Firing(None, "")  # moot now: nothing sent, deleted
        return Firing(reminder.user_id, f"overdue #{len(calls)}", again_at=now + DAY)

    reminders.handle("review_due", daily)
    await reminders.arm(reminder(T0))
    for _ in range(4):
        await reminders.fire_due()
        r.clock.advance(DAY)
    assert [p.incident.title for p in sent(r)] == ["overdue #1", "overdue #2"]
    assert len(calls) == 3
    assert await reminders.pending("inc-1") == []


async def test_a_failing_handler_is_retried_then_quarantined(r: Rig) -> None:
    reminders = reminders_of(r)

    async def broken(reminder: Reminder, now: datetime) -> Firing:
        raise ValueError("bug")

    reminders.handle("review_due", broken)
    await reminders.arm(reminder(T0))
    for _ in range(10):
        await reminders.fire_due()
        r.clock.advance(timedelta(minutes=5))
    assert await reminders.pending("inc-1") == []  # set aside, never claimed again
    stored = await reminders.store.get("review:inc-1")
    assert stored is not None
    assert stored.failures == 4


async def test_a_reminder_far_ahead_is_parked_listed_and_fired_when_due(r: Rig) -> None:
    reminders = reminders_of(r)
    await reminders.store.ensure_indexes()
    assert await reminders.fire_due() == 0  # the first claim promotes: the horizon is set
    await reminders.arm(reminder(T0 + DAY))
    stored = await r.database["escalation_reminders"].find_one({"_id": "review:inc-1"})
    assert stored is not None
    assert stored["state"] == "parked"
    assert [p.id for p in await reminders.pending("inc-1")] == ["review:inc-1"]
    await reminders.arm(reminder(T0 + 2 * DAY, text="moved"), replace=True)
    assert [p.text for p in await reminders.pending("inc-1")] == ["moved"]
    r.clock.advance(DAY)
    assert await reminders.fire_due() == 0  # moved a day later
    r.clock.advance(DAY)
    assert await reminders.fire_due() == 1
    assert [m.incident.title for m in sent(r)] == ["moved"]
