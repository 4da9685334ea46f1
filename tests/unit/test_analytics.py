"""Response analytics, pure: percentiles, intervals, shares, per responder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import Severity
from services.escalation.analytics import (
    IncidentFacts,
    by_interval,
    by_responder,
    figures,
    interval_start,
    intervals,
    percentile,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday
MIN = timedelta(minutes=1)


def incident(
    opened: datetime = T0,
    ack_after: timedelta | None = None,
    resolve_after: timedelta | None = None,
    *,
    by: str | None = "alice",
    responders: tuple[str, ...] = ("alice",),
    escalated: bool = False,
) -> IncidentFacts:
    return IncidentFacts(
        service_id="checkout",
        severity=Severity.SEV1,
        opened_at=opened,
        acknowledged_at=opened + ack_after if ack_after is not None else None,
        acknowledged_by=by if ack_after is not None else None,
        resolved_at=opened + resolve_after if resolve_after is not None else None,
        responders=responders,
        escalated=escalated,
    )


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0], 0.9) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(n) for n in range(1, 11)], 0.9) == pytest.approx(9.1)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_figures_of_a_set() -> None:
    result = figures(
        [
            incident(ack_after=2 * MIN, resolve_after=10 * MIN),
            incident(ack_after=8 * MIN, resolve_after=30 * MIN, escalated=True),
            incident(ack_after=5 * MIN),  # exactly 5 minutes counts as within
            incident(),  # never acknowledged: counts against the share
        ]
    )
    assert (result.incidents, result.acknowledged, result.resolved, result.escalated) == (
        4,
        3,
        2,
        1,
    )
    assert result.mtta.mean == 300.0
    assert result.mtta.median == 300.0
    assert result.mtta.p90 == pytest.approx(444.0)  # 300 + 0.8 * 180
    assert result.mttr.mean == 1200.0
    assert result.mttr.median == 1200.0
    assert result.acknowledged_within_5m == 0.5
    assert result.escalation_rate == 0.25


def test_no_incidents_gives_zero_counts_and_no_durations() -> None:
    empty = figures([])
    assert empty.incidents == 0
    assert empty.mtta.mean is None
    assert empty.mttr.p90 is None
    assert empty.acknowledged_within_5m is None
    assert empty.escalation_rate is None


def test_weeks_start_on_monday_and_days_at_utc_midnight() -> None:
    assert interval_start(T0, "day") == datetime(2026, 11, 25, tzinfo=UTC)
    assert interval_start(T0, "week") == datetime(2026, 11, 23, tzinfo=UTC)
    late_berlin = datetime(2026, 11, 26, 0, 30, tzinfo=UTC) - timedelta(hours=1)
    assert interval_start(late_berlin, "day") == datetime(2026, 11, 25, tzinfo=UTC)
    weeks = intervals(T0, T0 + timedelta(days=10), "week")
    assert [start.day for start, _ in weeks] == [23, 30]
    assert weeks[-1][1] == datetime(2026, 12, 7, tzinfo=UTC)


def test_by_interval_groups_by_open_day_and_keeps_empty_days() -> None:
    start = datetime(2026, 11, 24, tzinfo=UTC)
    result = by_interval(
        [
            incident(T0, ack_after=MIN),
            incident(T0 + timedelta(hours=3), ack_after=3 * MIN),
            incident(T0 + timedelta(days=2), ack_after=10 * MIN),
            incident(start - MIN, ack_after=MIN),  # before the window: left out
        ],
        start,
        start + timedelta(days=4),
        "day",
    )
    assert [(r.start.day, r.figures.incidents) for r in result] == [
        (24, 0),
        (25, 2),
        (26, 0),
        (27, 1),
    ]
    assert result[1].figures.mtta.mean == 120.0
    assert result[3].figures.acknowledged_within_5m == 0.0


def test_by_responder_counts_pages_and_times_only_their_own_acknowledgements() -> None:
    result = by_responder(
        [
            incident(ack_after=2 * MIN, resolve_after=MIN * 20, responders=("alice",)),
            incident(
                ack_after=9 * MIN,
                by="bob",
                responders=("alice", "bob", "alice"),
                escalated=True,
            ),
            incident(responders=("bob",)),
        ]
    )
    assert [r.responder for r in result] == ["alice", "bob"]  # most paged first, then by name
    alice, bob = (r.figures for r in result)
    assert (alice.incidents, alice.acknowledged) == (2, 1)
    assert alice.mtta.mean == 120.0
    assert alice.mttr.mean == 1200.0
    assert alice.acknowledged_within_5m == 0.5
    assert alice.escalation_rate == 0.5
    assert (bob.incidents, bob.acknowledged) == (2, 1)
    assert bob.mtta.median == 540.0
    assert bob.acknowledged_within_5m == 0.0


def test_the_share_of_recurrences_whose_previous_incident_had_a_published_review() -> None:
    from dataclasses import replace

    first, second, third = incident(), incident(), incident()
    reviewed = replace(second, recurrence_of="a", previous_review_published=True)
    unreviewed = replace(third, recurrence_of="b")
    result = figures([first, reviewed, unreviewed])
    assert result.recurrences == 2
    assert result.recurrences_with_published_review == 0.5
    assert figures([first]).recurrences_with_published_review is None
