"""The escalation engine where it lives: compare-and-set, the outbox and its flush, timers,
the sweeper and reopen, on the embedded bus and store with an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from schemas import (
    INCIDENTS_LIFECYCLE,
    NOTIFICATIONS_REQUESTED,
    IncidentEventKind,
    IncidentLifecycleChanged,
    LifecycleStatus,
    NotificationEvent,
    NotificationRequested,
)
from services.escalation.domain.lifecycle import Action, InvalidTransition, Status
from services.escalation.engine import Actor
from tests.unit.escalation_harness import Rig, config, incident_event, rig

MIN = timedelta(minutes=1)
ALICE = Actor("api:alice-key")


@pytest.fixture
async def two_levels(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig(tmp_path, config()) as r:
        yield r


def pages(r: Rig) -> list[NotificationRequested]:
    return r.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)


def lifecycle(r: Rig) -> list[IncidentLifecycleChanged]:
    return r.bus.of(INCIDENTS_LIFECYCLE, IncidentLifecycleChanged)


# -- incidents.lifecycle ---------------------------------------------------------------------


async def test_each_status_change_is_published_once_with_its_actor(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    assert lifecycle(r) == []  # opening is triage's own news, not a change

    await r.engine.command("inc-1", Action.ACKNOWLEDGE, ALICE)
    await r.engine.command("inc-1", Action.ACKNOWLEDGE, ALICE)  # no change: nothing published
    r.clock.advance(MIN)
    await r.engine.command("inc-1", Action.RESOLVE, Actor("bob"))
    await r.engine.command("inc-1", Action.RESOLVE, Actor("bob"))
    r.clock.advance(MIN)
    reopen = incident_event(IncidentEventKind.ALERT_ADDED, firing=1, count=2)
    await r.engine.on_incident_event(reopen)
    await r.engine.on_incident_event(reopen)  # a redelivered event reopens once

    changes = lifecycle(r)
    assert [(c.status, c.actor) for c in changes] == [
        (LifecycleStatus.ACKNOWLEDGED, "api:alice-key"),
        (LifecycleStatus.RESOLVED, "bob"),
        (LifecycleStatus.TRIGGERED, None),  # Tocsin (triage's event) did it
    ]
    assert len({c.event_id for c in changes}) == 3
    assert all(c.incident_id == "inc-1" and c.service_id == "checkout" for c in changes)
    assert [k for t, k, _ in r.bus.published if t == INCIDENTS_LIFECYCLE] == ["inc-1"] * 3
    assert [c.occurred_at for c in changes] == [r.clock.at - 2 * MIN, r.clock.at - MIN, r.clock.at]


async def test_alerts_resolved_publishes_resolved_without_a_person(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    await r.engine.on_incident_event(incident_event(IncidentEventKind.ALERTS_RESOLVED, firing=0))
    assert [(c.status, c.actor) for c in lifecycle(r)] == [(LifecycleStatus.RESOLVED, None)]


async def test_lifecycle_message_survives_a_failed_flush_with_the_same_id(
    two_levels: Rig,
) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    r.bus.fail_next = 1  # the broker is down when the ack's outbox is carried out
    with pytest.raises(Exception, match="broker unavailable"):
        await r.engine.command("inc-1", Action.ACKNOWLEDGE, ALICE)
    assert lifecycle(r) == []
    stored = await r.store.get("inc-1")
    assert stored is not None
    assert stored.lifecycle.status is Status.ACKNOWLEDGED
    assert stored.outbox  # kept for the sweeper

    await r.engine.flush("inc-1")  # what the sweeper (or a redelivery) does
    await r.engine.flush("inc-1")  # and a second time changes nothing
    (change,) = lifecycle(r)
    assert change.status is LifecycleStatus.ACKNOWLEDGED
    after = await r.store.get("inc-1")
    assert after is not None
    assert after.outbox == ()


async def test_refused_transition_publishes_nothing(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    await r.engine.command("inc-1", Action.RESOLVE, ALICE)
    with pytest.raises(InvalidTransition):
        await r.engine.command("inc-1", Action.ACKNOWLEDGE, ALICE)
    assert [c.status for c in lifecycle(r)] == [LifecycleStatus.RESOLVED]


# -- notices carry the level each person was paged at ---------------------------------------


async def test_resolve_notice_to_a_later_level_says_the_level_they_were_paged_at(
    two_levels: Rig,
) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    r.clock.advance(5 * MIN)
    assert await r.engine.fire_due_timers() == 1
    await r.engine.command("inc-1", Action.RESOLVE, ALICE)
    notices = [p for p in pages(r) if p.event is NotificationEvent.RESOLVED]
    assert sorted((p.recipient.user_id, p.escalation_level) for p in notices) == [
        ("alice", 0),
        ("bob", 1),
    ]
