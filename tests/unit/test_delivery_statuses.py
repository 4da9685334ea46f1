"""Non-final delivery statuses (queued, sent) on `notifications.results`: escalation puts each
on the incident's timeline once and pages nobody for them; the final outcome still decides
(a failure pages the next contact). And which Twilio statuses are non-final ones."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from schemas import (
    NOTIFICATIONS_REQUESTED,
    DeliveryOutcome,
    NotificationRequested,
    NotificationResult,
)
from services.notifier.statuses import progress, status_event_id
from tests.unit.escalation_harness import T0, Rig, config, incident_event, rig

SECOND = timedelta(seconds=1)


@pytest.fixture
async def sms_then_hook(tmp_path: Path) -> AsyncIterator[Rig]:
    """alice: an SMS-like contact at once, a webhook after 2 minutes."""
    alice = [{"contact": "alice-sms"}, {"contact": "alice-hook", "after": "2m"}]
    async with rig(tmp_path, config(users={"alice": alice})) as r:
        yield r


def pages(r: Rig) -> list[NotificationRequested]:
    return r.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)


def status(
    request: NotificationRequested, outcome: DeliveryOutcome, at_seconds: int
) -> NotificationResult:
    return NotificationResult(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{request.notification_id}/{outcome.value}"),
        occurred_at=T0 + at_seconds * SECOND,
        correlation_id=request.correlation_id,
        notification_id=request.notification_id,
        incident_id=request.incident.id,
        outcome=outcome,
        attempt=1,
        error="Twilio reported undelivered" if outcome is DeliveryOutcome.FAILED else None,
        event=request.event,
        recipient=request.recipient,
        escalation_level=request.escalation_level,
    )


async def test_a_sent_status_goes_on_the_timeline_once_and_pages_nobody(
    sms_then_hook: Rig,
) -> None:
    r = sms_then_hook
    await r.engine.on_incident_event(incident_event())
    (sms,) = pages(r)
    sent = status(sms, DeliveryOutcome.SENT, 2)
    await r.results.on_notification_result(sent)
    await r.results.on_notification_result(sent)  # redelivered
    assert pages(r) == [sms]  # no next contact for a status that is not final

    timeline = await r.store.timeline("inc-1", 100)
    statuses = [e for e in timeline if e.action == "sent"]
    assert len(statuses) == 1
    (entry,) = statuses
    assert entry.id == f"status:{sms.notification_id}/sent"
    assert (entry.user_id, entry.contact_id, entry.level, entry.event) == (
        "alice",
        "alice-sms",
        0,
        sms.event,
    )
    assert entry.at == T0 + 2 * SECOND
    assert entry.detail is None


async def test_statuses_sort_by_time_and_a_final_failure_still_pages_the_next_contact(
    sms_then_hook: Rig,
) -> None:
    r = sms_then_hook
    await r.engine.on_incident_event(incident_event())
    (sms,) = pages(r)
    # Out of order on the bus: the timeline is in the order they happened.
    await r.results.on_notification_result(status(sms, DeliveryOutcome.SENT, 2))
    await r.results.on_notification_result(status(sms, DeliveryOutcome.QUEUED, 1))
    await r.results.on_notification_result(status(sms, DeliveryOutcome.FAILED, 3))
    assert [p.recipient.contact_id for p in pages(r)] == ["alice-sms", "alice-hook"]
    timeline = await r.store.timeline("inc-1", 100)
    assert [(e.action, e.contact_id) for e in timeline][1:] == [
        ("paged", "alice-sms"),
        ("queued", "alice-sms"),
        ("sent", "alice-sms"),
        ("delivery_failed", "alice-sms"),
        ("next_contact", "alice-hook"),
        ("paged", "alice-hook"),
    ]


def test_only_delivered_and_failed_are_final() -> None:
    assert {o for o in DeliveryOutcome if o.final} == {
        DeliveryOutcome.DELIVERED,
        DeliveryOutcome.FAILED,
    }


def test_which_twilio_statuses_are_reported_before_the_final_one() -> None:
    assert [progress("sms", s) for s in ("queued", "sending", "sent", "delivered")] == [
        DeliveryOutcome.QUEUED,
        None,
        DeliveryOutcome.SENT,
        None,  # final: the delivery loop reports it
    ]
    assert [progress("voice", s) for s in ("queued", "initiated", "ringing", "in-progress")] == [
        DeliveryOutcome.QUEUED,
        None,
        DeliveryOutcome.SENT,
        None,
    ]
    # One id per notification and status: Twilio's callback and its 201 are one status.
    assert status_event_id("n-1", DeliveryOutcome.QUEUED) == status_event_id(
        "n-1", DeliveryOutcome.QUEUED
    )
    assert status_event_id("n-1", DeliveryOutcome.QUEUED) != status_event_id(
        "n-1", DeliveryOutcome.SENT
    )
