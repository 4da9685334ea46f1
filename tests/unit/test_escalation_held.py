"""Triage's `alert_held` event: a line on a known incident's timeline (idempotent), nothing
else; ignored for an incident escalation does not know; private to the status pages."""

from __future__ import annotations

from pathlib import Path

from schemas import IncidentEventKind, Severity
from services.escalation.domain.timeline import Entry
from services.notifier.status_domain import on_incident_event as status_on_incident_event
from tests.unit.escalation_harness import alert, config, incident_event, pages, rig

HELD = "inhibited by alert fp-0 (inhibit_rules[0])"


async def test_a_held_alert_is_a_timeline_line_and_pages_nobody(tmp_path: Path) -> None:
    async with rig(tmp_path, config()) as r:
        await r.engine.on_incident_event(incident_event())
        paged = pages(r)
        published = len(r.bus.published)
        before = await r.store.get("inc-1")
        assert before is not None
        held = incident_event(
            IncidentEventKind.ALERT_HELD,
            severity=Severity.SEV0,
            count=5,
            details=alert("fp-9", "Instance down"),
        ).model_copy(update={"held": HELD})
        await r.engine.on_incident_event(held)
        await r.engine.on_incident_event(held)  # redelivered: one line

        lines = [e for e in await r.store.timeline("inc-1", 100) if e.action == Entry.ALERT_HELD]
        assert [(e.actor, e.detail) for e in lines] == [
            ("triage", f"Instance down: held back, {HELD}")
        ]
        after = await r.store.get("inc-1")
        assert after is not None
        assert (after.severity, after.urgency, after.lifecycle, after.alert_count) == (
            before.severity,
            before.urgency,
            before.lifecycle,
            before.alert_count,
        )
        assert pages(r) == paged
        assert len(r.bus.published) == published


async def test_a_held_alert_for_an_unknown_incident_is_ignored(tmp_path: Path) -> None:
    async with rig(tmp_path, config()) as r:
        held = incident_event(IncidentEventKind.ALERT_HELD, incident_id="inc-x").model_copy(
            update={"held": HELD}
        )
        await r.engine.on_incident_event(held)
        assert await r.store.get("inc-x") is None
        assert await r.store.timeline("inc-x", 100) == []
        assert pages(r) == []
        assert r.bus.published == []


def test_status_pages_ignore_a_held_alert() -> None:
    opened = status_on_incident_event(None, incident_event())
    held = incident_event(IncidentEventKind.ALERT_HELD, severity=Severity.SEV0)
    assert status_on_incident_event(opened, held) is opened
