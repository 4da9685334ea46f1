"""Recurrence: a new incident links to its group's last incident resolved in the 30 days
before it opened, with how many there were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.triage.domain.recurrence import Recurrence, ResolvedIncident, recurrence

OPENED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def resolved(incident_id: str, days_before: float) -> ResolvedIncident:
    return ResolvedIncident(incident_id, OPENED - timedelta(days=days_before))


def test_a_group_never_resolved_before_is_no_recurrence() -> None:
    assert recurrence([], OPENED) is None


def test_the_last_resolved_is_linked_and_every_one_in_30_days_counted() -> None:
    found = recurrence([resolved("b", 3), resolved("a", 20), resolved("c", 0.5)], OPENED)
    assert found == Recurrence(of="c", count=3)


def test_incidents_resolved_more_than_30_days_before_do_not_count() -> None:
    assert recurrence([resolved("old", 30.01)], OPENED) is None
    assert recurrence([resolved("edge", 30), resolved("old", 31)], OPENED) == Recurrence("edge", 1)


def test_an_incident_resolved_after_this_one_opened_is_not_its_past() -> None:
    assert recurrence([resolved("later", -0.1)], OPENED) is None
