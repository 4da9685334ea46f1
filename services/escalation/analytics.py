"""Response analytics (pure): counts, MTTA and MTTR (mean, median, p90), the share acknowledged
within 5 minutes and the escalation rate, per day or week, and per responder.

How it is computed: over a bounded window, in Python. The API reads the incidents opened in
`[from, to)` with one index-backed range query on `listing_key` (open time first) and a
projection of the few fields below, then calls these functions. FerretDB offers only the
`$sum`/`$count` accumulators, so means, medians and percentiles cannot be asked of the
database; a window is bounded (`MAX_RANGE`, `MAX_INCIDENTS`) instead of kept as rollups, so the
figures always agree with the incidents as they are stored now (retention decides how far back
they go).

Definitions:
- time to acknowledge: from the incident's trigger (when escalation opened it) to its
  acknowledgement; time to resolve: from the trigger to the resolution. An incident that was
  acknowledged and then triggered again (ack timeout, reassign) counts from its latest
  acknowledgement as stored.
- acknowledged within 5 minutes: the share of the interval's incidents acknowledged at most
  `ACK_TARGET` after the trigger (unacknowledged ones count as not within).
- escalated: a responder at a level past the first was paged.
- an incident belongs to the interval (UTC day, or ISO week from Monday) it was opened in.
- per responder: the incidents in which a person was paged; their MTTA, MTTR and share within
  5 minutes are over the incidents they acknowledged themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from schemas import Severity

Interval = Literal["day", "week"]

ACK_TARGET = timedelta(minutes=5)
MAX_RANGE = timedelta(days=400)
"""The longest window one request may ask for (a quarter fits four times over)."""
MAX_INCIDENTS = 100_000
"""The most incidents one request computes over; a busier window must be narrowed."""


@dataclass(frozen=True)
class IncidentFacts:
    """The stored facts about one incident that the figures need (no titles, no alerts)."""

    service_id: str
    severity: Severity
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    responders: tuple[str, ...] = ()
    escalated: bool = False
    recurrence_of: str | None = None
    """The previous incident of its group, when triage linked it as a recurrence."""
    previous_review_published: bool = False
    """Whether that previous incident's post-incident review is published."""

    @property
    def seconds_to_acknowledge(self) -> float | None:
        if self.acknowledged_at is None:
            return None
        return max((self.acknowledged_at - self.opened_at).total_seconds(), 0.0)

    @property
    def seconds_to_resolve(self) -> float | None:
        if self.resolved_at is None:
            return None
        return max((self.resolved_at - self.opened_at).total_seconds(), 0.0)

    @property
    def acknowledged_in_time(self) -> bool:
        seconds = self.seconds_to_acknowledge
        return seconds is not None and seconds <= ACK_TARGET.total_seconds()


@dataclass(frozen=True)
class Durations:
    """Mean, median and 90th percentile of some durations in seconds (None when there are
    none)."""

    mean: float | None
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Durations:
        if not seconds:
            return cls(None, None, None)
        ordered = sorted(seconds)
        return cls(sum(ordered) / len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.9))


@dataclass(frozen=True)
class Figures:
    incidents: int
    acknowledged: int
    resolved: int
    escalated: int
    mtta: Durations
    mttr: Durations
    acknowledged_within_5m: float | None
    """Share (0..1) of the incidents acknowledged within ACK_TARGET; None without incidents."""
    escalation_rate: float | None
    """Share (0..1) of the incidents escalated past the first level; None without incidents."""
    recurrences: int = 0
    """Incidents that recur an earlier one of their group (triage's recurrence link)."""
    recurrences_with_published_review: float | None = None
    """Share (0..1) of those recurrences whose previous incident had a published review; None
    without recurrences."""


@dataclass(frozen=True)
class IntervalFigures:
    start: datetime
    end: datetime
    figures: Figures


@dataclass(frozen=True)
class ResponderFigures:
    responder: str
    figures: Figures


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) of sorted values."""
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures(incidents: Sequence[IncidentFacts]) -> Figures:
    """The figures of a set of incidents."""
    count = len(incidents)
    to_ack = [s for i in incidents if (s := i.seconds_to_acknowledge) is not None]
    to_resolve = [s for i in incidents if (s := i.seconds_to_resolve) is not None]
    escalated = sum(1 for i in incidents if i.escalated)
    recurrences = [i for i in incidents if i.recurrence_of is not None]
    reviewed = sum(1 for i in recurrences if i.previous_review_published)
    return Figures(
        incidents=count,
        acknowledged=len(to_ack),
        resolved=len(to_resolve),
        escalated=escalated,
        mtta=Durations.of(to_ack),
        mttr=Durations.of(to_resolve),
        acknowledged_within_5m=(
            sum(1 for i in incidents if i.acknowledged_in_time) / count if count else None
        ),
        escalation_rate=escalated / count if count else None,
        recurrences=len(recurrences),
        recurrences_with_published_review=reviewed / len(recurrences) if recurrences else None,
    )


def interval_start(at: datetime, interval: Interval) -> datetime:
    """The start (UTC midnight; Monday for a week) of the interval holding `at`."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if interval == "week" else day


def intervals(
    start: datetime, end: datetime, interval: Interval
) -> list[tuple[datetime, datetime]]:
    """The intervals that cover `[start, end)`, the first and last one whole."""
    step = timedelta(days=7 if interval == "week" else 1)
    bounds: list[tuple[datetime, datetime]] = []
    current = interval_start(start, interval)
    while current < end:
        bounds.append((current, current + step))
        current += step
    return bounds


def by_interval(
    incidents: Iterable[IncidentFacts], start: datetime, end: datetime, interval: Interval
) -> list[IntervalFigures]:
    """Figures per interval of `[start, end)`, empty intervals included (zero incidents)."""
    grouped: dict[datetime, list[IncidentFacts]] = {}
    for incident in incidents:
        if start <= incident.opened_at < end:
            grouped.setdefault(interval_start(incident.opened_at, interval), []).append(incident)
    return [
        IntervalFigures(low, high, figures(grouped.get(low, [])))
        for low, high in intervals(start, end, interval)
    ]


def by_responder(incidents: Iterable[IncidentFacts]) -> list[ResponderFigures]:
    """Per person paged: how many incidents paged them, how many they acknowledged, and how
    fast (over the ones they acknowledged), most paged first."""
    paged: dict[str, list[IncidentFacts]] = {}
    for incident in incidents:
        for responder in dict.fromkeys(incident.responders):
            paged.setdefault(responder, []).append(incident)
    results = []
    for responder, theirs in paged.items():
        own = [i for i in theirs if i.acknowledged_by == responder]
        overall = figures(theirs)
        acknowledged = figures(own)
        count = len(theirs)
        results.append(
            ResponderFigures(
                responder,
                Figures(
                    incidents=count,
                    acknowledged=len(own),
                    resolved=overall.resolved,
                    escalated=overall.escalated,
                    mtta=acknowledged.mtta,
                    mttr=acknowledged.mttr,
                    acknowledged_within_5m=(sum(1 for i in own if i.acknowledged_in_time) / count),
                    escalation_rate=overall.escalation_rate,
                ),
            )
        )
    return sorted(results, key=lambda r: (-r.figures.incidents, r.responder))
