"""A triggered incident whose severity rises to a high-urgency one pages the people already
paged at low urgency with the contacts their high-urgency rules add (a SEV2 that becomes SEV0
pages like a SEV0), once, and never a contact that was paged already."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from schemas import (
    NOTIFICATIONS_REQUESTED,
    IncidentEventKind,
    NotificationRequested,
    Severity,
)
from services.escalation.domain.lifecycle import Action
from services.escalation.engine import Actor
from tests.unit.escalation_harness import Rig, incident_event, rig
from tocsin.composition.config import parse_config


def alice(contact: str) -> dict[str, str]:
    return {"id": contact, "type": "webhook", "address": f"http://127.0.0.1:9/{contact}"}


CONFIG = parse_config(
    {
        "services": [{"id": "checkout", "name": "Checkout", "escalation_policy": "oncall"}],
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [alice("alice-mail"), alice("alice-sms"), alice("alice-voice")],
                "notification_rules": [
                    {"contact": "alice-mail", "after": "0s"},  # both urgencies
                    {"contact": "alice-sms", "after": "0s", "urgency": "high"},
                    {"contact": "alice-voice", "after": "2m", "urgency": "high"},
                ],
            }
        ],
        "escalation_policies": [
            {"id": "oncall", "levels": [{"delay": "0s", "targets": [{"user": "alice"}]}]}
        ],
    }
)


@pytest.fixture
async def r(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig(tmp_path, CONFIG) as r:
        yield r


def pages(r: Rig) -> list[str]:
    return [
        m.recipient.contact_id for m in r.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)
    ]


async def test_a_sev2_that_becomes_sev0_pages_like_a_sev0_once(r: Rig) -> None:
    await r.engine.on_incident_event(incident_event(severity=Severity.SEV2))
    assert pages(r) == ["alice-mail"]  # low urgency
    raised = incident_event(IncidentEventKind.SEVERITY_CHANGED, severity=Severity.SEV0)
    await r.engine.on_incident_event(raised)
    assert pages(r) == ["alice-mail", "alice-sms"]  # mail is not paged again
    await r.engine.on_incident_event(raised)  # redelivered
    r.clock.advance(timedelta(minutes=2))
    await r.engine.fire_due_timers()
    assert pages(r) == ["alice-mail", "alice-sms", "alice-voice"]
    incident = await r.store.get("inc-1")
    assert incident is not None
    assert incident.urgency.value == "high"
    timeline = await r.store.timeline("inc-1", 100)
    assert [e.actor for e in timeline if e.action == "urgency_raised"] == ["triage"]


async def test_an_acknowledged_incident_is_not_paged_again_when_urgency_rises(r: Rig) -> None:
    await r.engine.on_incident_event(incident_event(severity=Severity.SEV2))
    await r.engine.command("inc-1", Action.ACKNOWLEDGE, Actor("alice"))
    before = pages(r)
    await r.engine.on_incident_event(
        incident_event(IncidentEventKind.SEVERITY_CHANGED, severity=Severity.SEV0)
    )
    assert pages(r) == before
    incident = await r.store.get("inc-1")
    assert incident is not None
    assert incident.urgency.value == "high"  # the next trigger (ack timeout) pages as urgent


async def test_a_sev1_to_sev0_raise_pages_nobody_again(r: Rig) -> None:
    await r.engine.on_incident_event(incident_event(severity=Severity.SEV1))
    assert sorted(pages(r)) == ["alice-mail", "alice-sms"]
    await r.engine.on_incident_event(
        incident_event(IncidentEventKind.SEVERITY_CHANGED, severity=Severity.SEV0)
    )
    assert sorted(pages(r)) == ["alice-mail", "alice-sms"]
