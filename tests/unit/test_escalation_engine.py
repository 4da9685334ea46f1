"""The escalation engine where it lives: compare-and-set, the outbox and its flush, timers,
the sweeper and reopen, on the embedded bus and store with an injected clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import (
    INCIDENTS_LIFECYCLE,
    NOTIFICATIONS_REQUESTED,
    DeliveryOutcome,
    IncidentEventKind,
    IncidentLifecycleChanged,
    LifecycleStatus,
    NotificationEvent,
    NotificationRequested,
    NotificationResult,
    Severity,
)
from schemas.notifications import MAX_SNAPSHOT_ALERTS
from services.escalation.domain.lifecycle import Action, InvalidTransition, NoLevelLeft, Status
from services.escalation.domain.timeline import TimelineEntry
from services.escalation.engine import Actor
from services.escalation.store import Stamp
from tests.unit.escalation_harness import T0, Rig, alert, config, incident_event, rig
from tocsin.runtime.bus import PublishError

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


# -- the timeline: pages, delivery outcomes, the next contact --------------------------------


def result_of(
    request: NotificationRequested,
    outcome: DeliveryOutcome,
    *,
    at: datetime | None = None,
    error: str | None = None,
) -> NotificationResult:
    return NotificationResult(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{request.notification_id}/{outcome.value}"),
        occurred_at=at or request.occurred_at,
        correlation_id=request.correlation_id,
        notification_id=request.notification_id,
        incident_id=request.incident.id,
        outcome=outcome,
        attempt=4 if outcome is DeliveryOutcome.FAILED else 1,
        error=error or ("HTTP 503" if outcome is DeliveryOutcome.FAILED else None),
        event=request.event,
        recipient=request.recipient,
        escalation_level=request.escalation_level,
    )


def summary(entries: list[TimelineEntry]) -> list[tuple[str, str | None, str | None, int | None]]:
    return [(e.action, e.actor or e.user_id, e.contact_id, e.level) for e in entries]


async def test_timeline_records_each_page_with_contact_level_and_event(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    r.clock.advance(5 * MIN)
    await r.engine.fire_due_timers()
    r.clock.advance(MIN)
    await r.engine.command("inc-1", Action.ACKNOWLEDGE, ALICE)
    timeline = await r.store.timeline("inc-1", 100)
    assert summary(timeline) == [
        ("triggered", "triage", None, None),
        ("paged", "alice", "alice-hook", 0),
        ("escalate", "timer", None, None),
        ("paged", "bob", "bob-hook", 1),
        ("acknowledge", "api:alice-key", None, None),
        ("notified", "alice", "alice-hook", 0),
        ("notified", "bob", "bob-hook", 1),
    ]
    paged = timeline[1]
    assert paged.event is NotificationEvent.TRIGGERED
    assert paged.notification_id == "inc-1/c0/s0/alice/alice-hook"
    assert timeline[3].event is NotificationEvent.ESCALATED
    assert [e.at for e in timeline] == sorted(e.at for e in timeline)
    # Flushing again (a crash before the outbox was cleared) writes no entry twice.
    before = len(timeline)
    incident = await r.store.get("inc-1")
    assert incident is not None
    await r.engine.flush("inc-1")
    assert len(await r.store.timeline("inc-1", 100)) == before


async def test_timeline_reads_are_bounded_to_the_latest_entries(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    r.clock.advance(MIN)
    await r.engine.command("inc-1", Action.ACKNOWLEDGE, ALICE)
    latest = await r.store.timeline("inc-1", 2)
    assert [e.action for e in latest] == ["acknowledge", "notified"]


async def test_delivery_outcomes_go_on_the_timeline_once(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    (page,) = pages(r)
    delivered = result_of(page, DeliveryOutcome.DELIVERED, at=T0 + timedelta(seconds=1))
    await r.results.on_notification_result(delivered)
    await r.results.on_notification_result(delivered)  # redelivered
    timeline = await r.store.timeline("inc-1", 100)
    assert summary(timeline)[-1] == ("delivered", "alice", "alice-hook", 0)
    assert [e.action for e in timeline].count("delivered") == 1
    assert timeline[-1].notification_id == page.notification_id


@pytest.fixture
async def three_contacts(tmp_path: Path) -> AsyncIterator[Rig]:
    """alice: a webhook at once and SMS-like webhook after 2 minutes (rules), and a third
    contact declared but in no rule; bob: one webhook only."""
    alice: list[dict[str, Any]] = [
        {"contact": "alice-hook"},
        {"contact": "alice-sms", "after": "2m"},
        {"contact": "alice-log", "type": "log", "rule": False},
    ]
    async with rig(tmp_path, config(users={"alice": alice})) as r:
        yield r


async def test_failed_page_pages_the_next_contact_once_then_says_none_is_left(
    three_contacts: Rig,
) -> None:
    r = three_contacts
    await r.engine.on_incident_event(incident_event())
    (hook,) = pages(r)
    failed = result_of(hook, DeliveryOutcome.FAILED, at=T0 + timedelta(seconds=30))
    await r.results.on_notification_result(failed)
    await r.results.on_notification_result(failed)  # redelivered: the same fallback id
    fallbacks = pages(r)[1:]
    assert {p.notification_id for p in fallbacks} == {"inc-1/c0/s0/alice/alice-sms"}
    assert {p.event_id for p in fallbacks} == {fallbacks[0].event_id}
    sms = fallbacks[0]
    assert (sms.recipient.contact_id, sms.escalation_level, sms.event) == (
        "alice-sms",
        0,
        NotificationEvent.TRIGGERED,
    )

    # The SMS fails too: the contact in no rule comes last; after it, none is left.
    await r.results.on_notification_result(
        result_of(sms, DeliveryOutcome.FAILED, at=T0 + timedelta(seconds=60))
    )
    last = pages(r)[-1]
    assert last.recipient.contact_id == "alice-log"
    await r.results.on_notification_result(
        result_of(last, DeliveryOutcome.FAILED, at=T0 + timedelta(seconds=90))
    )
    assert pages(r)[-1] == last

    timeline = await r.store.timeline("inc-1", 100)
    assert summary(timeline)[2:] == [
        ("delivery_failed", "alice", "alice-hook", 0),
        ("next_contact", "alice", "alice-sms", 0),
        ("paged", "alice", "alice-sms", 0),
        ("delivery_failed", "alice", "alice-sms", 0),
        ("next_contact", "alice", "alice-log", 0),
        ("paged", "alice", "alice-log", 0),
        ("delivery_failed", "alice", "alice-log", 0),
        ("no_contact_left", "alice", "alice-log", 0),
    ]
    assert timeline[2].detail == "after 4 attempt(s): HTTP 503"

    # alice's own 2-minute SMS rule asks for the same notification: the notifier sends it once.
    r.clock.advance(2 * MIN)
    await r.engine.fire_due_timers()
    assert pages(r)[-1].notification_id == "inc-1/c0/s0/alice/alice-sms"
    timeline_after = await r.store.timeline("inc-1", 100)
    assert len(timeline_after) == len(timeline)  # the page is on the timeline once


async def test_failed_page_after_acknowledge_pages_no_other_contact(three_contacts: Rig) -> None:
    r = three_contacts
    await r.engine.on_incident_event(incident_event())
    (hook,) = pages(r)
    await r.engine.command("inc-1", Action.ACKNOWLEDGE, ALICE)
    sent = len(pages(r))
    await r.results.on_notification_result(
        result_of(hook, DeliveryOutcome.FAILED, at=T0 + timedelta(seconds=30))
    )
    assert len(pages(r)) == sent
    assert (await r.store.timeline("inc-1", 100))[-1].action == "delivery_failed"


async def test_failed_status_notice_goes_to_the_next_contact(three_contacts: Rig) -> None:
    r = three_contacts
    await r.engine.on_incident_event(incident_event())
    await r.engine.command("inc-1", Action.RESOLVE, ALICE)
    notice = pages(r)[-1]
    assert notice.event is NotificationEvent.RESOLVED
    await r.results.on_notification_result(result_of(notice, DeliveryOutcome.FAILED))
    fallback = pages(r)[-1]
    assert (fallback.recipient.contact_id, fallback.event) == (
        "alice-sms",
        NotificationEvent.RESOLVED,
    )


async def test_who_acknowledged_and_resolved_and_when(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    r.clock.advance(MIN)
    await r.engine.command("inc-1", Action.ACKNOWLEDGE, ALICE)
    r.clock.advance(MIN)
    await r.engine.command("inc-1", Action.RESOLVE, Actor("bob"))
    incident = await r.store.get("inc-1")
    assert incident is not None
    assert incident.acknowledged == Stamp(T0 + MIN, "api:alice-key")
    assert incident.resolved == Stamp(T0 + 2 * MIN, "bob")
    # Firing again clears both; alerts resolving is Tocsin's doing (no person).
    await r.engine.on_incident_event(incident_event(IncidentEventKind.ALERT_ADDED))
    reopened = await r.store.get("inc-1")
    assert reopened is not None
    assert (reopened.acknowledged, reopened.resolved) == (None, None)
    await r.engine.on_incident_event(incident_event(IncidentEventKind.ALERTS_RESOLVED, firing=0))
    resolved = await r.store.get("inc-1")
    assert resolved is not None
    assert resolved.resolved == Stamp(T0 + 2 * MIN, None)


# -- what a page says about the incident -----------------------------------------------------


async def test_pages_carry_the_incident_url_and_its_latest_alerts(tmp_path: Path) -> None:
    async with rig(tmp_path, config(), public_url="https://tocsin.example.com") as r:
        await r.engine.on_incident_event(incident_event(details=alert("fp-1")))
        await r.engine.on_incident_event(
            incident_event(IncidentEventKind.ALERT_ADDED, count=2, details=alert("fp-2"))
        )
        r.clock.advance(5 * MIN)
        await r.engine.fire_due_timers()
        first, escalated = pages(r)
        assert first.incident.url == "https://tocsin.example.com/api/v1/incidents/inc-1"
        assert [a.fingerprint for a in first.incident.alerts] == ["fp-1"]
        assert [a.fingerprint for a in escalated.incident.alerts] == ["fp-2", "fp-1"]
        assert escalated.incident.alerts[1] == alert("fp-1")
        assert escalated.incident.alert_count == 2


async def test_without_a_public_url_pages_carry_no_link(two_levels: Rig) -> None:
    await two_levels.engine.on_incident_event(incident_event(details=alert("fp-1")))
    (page,) = pages(two_levels)
    assert page.incident.url is None
    assert [a.fingerprint for a in page.incident.alerts] == ["fp-1"]


async def test_stored_alerts_are_bounded(two_levels: Rig) -> None:
    r = two_levels
    for n in range(MAX_SNAPSHOT_ALERTS + 5):
        await r.engine.on_incident_event(
            incident_event(IncidentEventKind.ALERT_ADDED, count=n + 1, details=alert(f"fp{n}"))
        )
    incident = await r.store.get("inc-1")
    assert incident is not None
    assert len(incident.alerts) == MAX_SNAPSHOT_ALERTS
    assert incident.alerts[0].fingerprint == f"fp{MAX_SNAPSHOT_ALERTS + 4}"


# -- snooze and escalate now, end to end through the engine and its timers -------------------


async def test_snooze_acknowledges_then_pages_again_from_the_first_level(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    r.clock.advance(MIN)
    await r.engine.command("inc-1", Action.SNOOZE, ALICE, until=r.clock.at + 30 * MIN)
    assert [p.event for p in pages(r)] == [
        NotificationEvent.TRIGGERED,
        NotificationEvent.ACKNOWLEDGED,
    ]
    r.clock.advance(10 * MIN)  # bob's level-1 step was due at T0+5m: cancelled by the snooze
    assert await r.engine.fire_due_timers() == 0
    r.clock.advance(20 * MIN)
    assert await r.engine.fire_due_timers() == 1  # the snooze ends
    woken = pages(r)[-1]
    assert (woken.recipient.user_id, woken.event, woken.incident.status) == (
        "alice",
        NotificationEvent.TRIGGERED,
        "triggered",
    )
    r.clock.advance(5 * MIN)
    assert await r.engine.fire_due_timers() == 1  # escalation starts over: bob at +5m
    assert pages(r)[-1].recipient.user_id == "bob"
    assert [(c.status, c.actor) for c in lifecycle(r)] == [
        (LifecycleStatus.ACKNOWLEDGED, "api:alice-key"),
        (LifecycleStatus.TRIGGERED, None),
    ]
    actions = [e.action for e in await r.store.timeline("inc-1", 100)]
    assert actions.count("snooze") == 1
    assert actions.count("ack_timeout") == 1


async def test_a_second_snooze_replaces_the_first_and_resolve_ends_it(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    await r.engine.command("inc-1", Action.SNOOZE, ALICE, until=T0 + 30 * MIN)
    r.clock.advance(10 * MIN)
    await r.engine.command("inc-1", Action.SNOOZE, ALICE, until=T0 + 60 * MIN)
    r.clock.at = T0 + 30 * MIN
    await r.engine.fire_due_timers()
    incident = await r.store.get("inc-1")
    assert incident is not None
    assert incident.lifecycle.status is Status.ACKNOWLEDGED
    assert incident.lifecycle.snoozed_until == T0 + 60 * MIN
    await r.engine.command("inc-1", Action.RESOLVE, ALICE)
    sent = len(pages(r))
    r.clock.at = T0 + 61 * MIN
    await r.engine.fire_due_timers()
    assert len(pages(r)) == sent
    resolved = await r.store.get("inc-1")
    assert resolved is not None
    assert resolved.lifecycle.status is Status.RESOLVED


async def test_escalate_now_pages_the_next_level_once(two_levels: Rig) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    r.clock.advance(MIN)
    await r.engine.command("inc-1", Action.ESCALATE_NOW, ALICE)
    bob = pages(r)[-1]
    assert (bob.recipient.user_id, bob.escalation_level, bob.event) == (
        "bob",
        1,
        NotificationEvent.ESCALATED,
    )
    r.clock.advance(10 * MIN)  # the policy's own level-1 timer comes due: it pages nobody
    await r.engine.fire_due_timers()
    assert [p.recipient.user_id for p in pages(r)] == ["alice", "bob"]
    with pytest.raises(NoLevelLeft):
        await r.engine.command("inc-1", Action.ESCALATE_NOW, ALICE)


# -- severity --------------------------------------------------------------------------------


async def test_severity_change_goes_on_the_timeline_and_into_later_pages(
    two_levels: Rig,
) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event(severity=Severity.SEV2))
    raised = incident_event(IncidentEventKind.SEVERITY_CHANGED, severity=Severity.SEV0, at=T0 + MIN)
    raised = raised.model_copy(update={"severity_reasons": ("critical on a tier-0 service",)})
    await r.engine.on_incident_event(raised)
    await r.engine.on_incident_event(raised)  # redelivered
    entries = [e for e in await r.store.timeline("inc-1", 100) if e.action == "severity_changed"]
    assert [(e.detail, e.at) for e in entries] == [
        ("SEV2 → SEV0 (critical on a tier-0 service)", T0 + MIN)
    ]
    r.clock.advance(5 * MIN)
    await r.engine.fire_due_timers()
    assert pages(r)[-1].incident.severity is Severity.SEV0


async def test_all_resolved_for_an_unknown_incident_pages_nobody(two_levels: Rig) -> None:
    resolved = incident_event(IncidentEventKind.ALERTS_RESOLVED, firing=0)
    await two_levels.engine.on_incident_event(resolved)
    assert pages(two_levels) == []
    assert await two_levels.store.get("inc-1") is None


# -- a re-done outbox never cancels a timer armed after its cancel (issue 8) ------------------


async def test_redone_snooze_outbox_keeps_the_snooze_timer(two_levels: Rig) -> None:
    """The snooze's outbox is [cancel, notices, arm the expiry]. Carried out once up to the
    publish, which fails, then again: the second cancel must not cancel the expiry armed by
    the first pass, or the incident stays acknowledged for ever."""
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    r.bus.fail_next = 1
    with pytest.raises(PublishError):
        await r.engine.command("inc-1", Action.SNOOZE, ALICE, until=T0 + 30 * MIN)
    await r.engine.flush("inc-1")  # the sweeper's turn
    r.clock.at = T0 + 30 * MIN
    assert await r.engine.fire_due_timers() == 1
    incident = await r.store.get("inc-1")
    assert incident is not None
    assert incident.lifecycle.status is Status.TRIGGERED
    assert pages(r)[-1].event is NotificationEvent.TRIGGERED


async def test_interleaved_cancel_and_arm_of_a_new_cycle_still_escalate(two_levels: Rig) -> None:
    """A resolve's outbox [cancel] is not carried out in time (the broker is down); the alert
    fires again and the reopen appends [page, arm cycle 1 step 1]. Two passes over that
    outbox run cancel → arm → cancel: cycle 1's step 1 must still page bob."""
    r = two_levels
    await r.engine.on_incident_event(incident_event())
    r.bus.fail_next = 1
    with pytest.raises(PublishError):
        await r.engine.command("inc-1", Action.RESOLVE, ALICE)
    r.clock.advance(MIN)
    r.bus.fail_next = 1
    with pytest.raises(PublishError):
        await r.engine.on_incident_event(incident_event(IncidentEventKind.ALERT_ADDED, count=2))
    await r.engine.flush("inc-1")  # the sweeper's turn: cancel, arm (already armed), publish
    r.clock.advance(5 * MIN)
    assert await r.engine.fire_due_timers() == 1
    bob = pages(r)[-1]
    assert (bob.recipient.user_id, bob.notification_id) == ("bob", "inc-1/c1/s1/bob/bob-hook")
