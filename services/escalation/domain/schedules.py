"""On-call schedules: who is on call at an instant, and the final timeline over a range.

A schedule has a time zone and ordered layers. A layer hands a turn from one user to the next at
each handoff (its `rotation`), starting at its first handoff `start`, written as a local time in
the schedule's zone. Optional restrictions limit the layer to local time windows: the rotation
keeps turning underneath (as in PagerDuty, a restriction masks the turn; it does not pause it),
and outside every window the layer has nobody. Where a later layer has someone it wins; where it
has nobody the instant falls through to earlier layers. Overrides (a person covers a UTC range)
win over every layer; among overlapping overrides the later one in the sequence given wins
(callers pass them oldest first, so the newest wins). Nobody on call is a valid answer.

Local times and daylight saving time
------------------------------------
Every local time in the rules (a handoff, the edge of a restriction window) means *the first
instant at which the schedule's wall clock reads that time or later*. Consequences:

- A local time skipped by a spring-forward change (02:30 on 2024-03-10 in America/New_York)
  rolls forward to the instant of the jump (03:00 EDT). Python's own reading (`fold=0`) would
  give 03:30; we do not use it, because then a window written as 02:00-02:45 would cover
  03:00-03:45 on the wall clock, times nobody wrote.
- A local time repeated by a fall-back change (01:30 on 2024-11-03 in America/New_York) is its
  first occurrence (01:30 EDT): the moment the clock on the wall first shows it.
- The mapping never goes backwards, so local intervals that tile the day tile real time too:
  no instant is covered twice and none is lost. A restriction 00:00-02:00 on a fall-back night
  in New York lasts three real hours (it ends at the only 02:00, after the repeated hour); one
  that ends inside a skipped hour is cut short; one entirely inside a skipped hour is empty.
- `daily`, `weekly` and `{every: P}` step on the local wall clock: handoff k is at local time
  `start + k * P`, so a daily rotation at 09:00 hands off at 09:00 local on both sides of a
  change and the shift that spans it lasts 23 or 25 hours; `every: 12h` keeps 08:00/20:00.
  `every` must be at least 2 hours: a shorter wall-clock turn could be squeezed to nothing by a
  one-hour jump (skipping a person) - write `hourly` instead.
- `hourly` counts real hours from the first handoff: every turn lasts exactly 60 minutes and
  nobody is skipped or doubled, so after a change the handoffs fall on the same real hours
  (whole local hours stay whole for the usual one-hour changes).

Compared with others: GoAlert made the same two choices for handoffs (its `timeutil` package,
PR #1252: a clock time that does not exist resolves to the first instant after it; an ambiguous
one to its first occurrence, "First of Day"), but aligns hourly rotations to the wall clock; we
count real hours there as the issue asks. PagerDuty's public documentation keeps handoffs at the
configured local time across DST but does not say how a handoff inside a skipped or repeated hour
is resolved, so there was nothing to match.

All instants in and out are timezone-aware; results are in UTC. Time is always a parameter.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum, StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The longest range `shifts` computes: a quarter and a bit, enough for any calendar view.
MAX_SHIFTS_RANGE = timedelta(days=93)
# Shorter wall-clock turns could be squeezed to nothing by a DST jump; see the module docstring.
MIN_EVERY = timedelta(hours=2)

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


class Weekday(IntEnum):
    """Days as `datetime.weekday()` numbers them."""

    MON = 0
    TUE = 1
    WED = 2
    THU = 3
    FRI = 4
    SAT = 5
    SUN = 6


class RotationKind(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    EVERY = "every"


@dataclass(frozen=True)
class Rotation:
    """How often the turn passes to the next user; `period` is implied except for `every`."""

    kind: RotationKind
    period: timedelta

    def __post_init__(self) -> None:
        implied = {
            RotationKind.HOURLY: _HOUR,
            RotationKind.DAILY: _DAY,
            RotationKind.WEEKLY: 7 * _DAY,
        }.get(self.kind)
        if implied is not None and self.period != implied:
            raise ValueError(f"a {self.kind.value} rotation lasts {implied}, not {self.period}")
        if self.kind is RotationKind.EVERY:
            if self.period < MIN_EVERY:
                raise ValueError(
                    f"rotation every {self.period} is too short: turns of {MIN_EVERY} or more"
                    " only (for one-hour turns write 'hourly')"
                )
            if self.period % timedelta(minutes=1):
                raise ValueError(f"rotation every {self.period} is not a whole number of minutes")

    @classmethod
    def hourly(cls) -> Rotation:
        return cls(RotationKind.HOURLY, _HOUR)

    @classmethod
    def daily(cls) -> Rotation:
        return cls(RotationKind.DAILY, _DAY)

    @classmethod
    def weekly(cls) -> Rotation:
        return cls(RotationKind.WEEKLY, 7 * _DAY)

    @classmethod
    def every(cls, period: timedelta) -> Rotation:
        return cls(RotationKind.EVERY, period)


@dataclass(frozen=True)
class Restriction:
    """The layer covers local `start` to `end` on each of `days` (the day the window opens).

    In configuration these are `from` and `to`. `end <= start` wraps past midnight into the
    next day; `end == start` is a whole day.
    """

    days: frozenset[Weekday]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("a restriction needs at least one day")
        if not all(isinstance(day, int) and 0 <= day <= 6 for day in self.days):
            raise ValueError(f"restriction days {sorted(self.days)} must be weekdays 0 (Mon)-6")
        object.__setattr__(self, "days", frozenset(Weekday(day) for day in self.days))
        for edge in (self.start, self.end):
            if edge.tzinfo is not None or edge.second or edge.microsecond:
                raise ValueError(f"restriction time {edge} must be a local hour and minute")

    @property
    def duration(self) -> timedelta:
        minutes = (_minutes(self.end) - _minutes(self.start)) % (24 * 60)
        return timedelta(minutes=minutes or 24 * 60)


@dataclass(frozen=True)
class Layer:
    """Users take turns in `users` order from `start`, a local time in the schedule's zone."""

    name: str
    users: tuple[str, ...]
    rotation: Rotation
    start: datetime
    restrictions: tuple[Restriction, ...] = ()

    def __post_init__(self) -> None:
        if not self.users:
            raise ValueError(f"layer {self.name!r} needs at least one user")
        if self.start.tzinfo is not None:
            raise ValueError(
                f"layer {self.name!r}: start is a local time in the schedule's time zone;"
                " give it without an offset"
            )
        if self.start.second or self.start.microsecond:
            raise ValueError(f"layer {self.name!r}: start must be a whole minute")


@dataclass(frozen=True)
class Schedule:
    id: str
    name: str
    time_zone: str
    layers: tuple[Layer, ...]
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", load_zone(self.time_zone))


@dataclass(frozen=True)
class Override:
    """`user` covers `start` to `end` (aware; stored as UTC), over every layer."""

    id: str
    user: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start = as_utc(self.start, "override start")
        end = as_utc(self.end, "override end")
        if end <= start:
            raise ValueError("an override must end after it starts")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


@dataclass(frozen=True)
class LayerSource:
    index: int
    name: str


@dataclass(frozen=True)
class OverrideSource:
    override_id: str


Source = LayerSource | OverrideSource


@dataclass(frozen=True)
class OnCall:
    user: str
    source: Source


@dataclass(frozen=True)
class Shift:
    """`user` is on call from `start` to `end` (UTC, end exclusive) because of `source`."""

    user: str
    source: Source
    start: datetime
    end: datetime


def load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin'"
        ) from None


def as_utc(instant: datetime, what: str = "time") -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} {instant.isoformat()} has no time zone; give an offset or Z")
    return instant.astimezone(UTC)


def oncall_at(schedule: Schedule, overrides: Sequence[Override], at: datetime) -> OnCall | None:
    """Who is on call at `at`, and why; None when nobody is."""
    at = as_utc(at, "at")
    for override in reversed(overrides):
        if override.start <= at < override.end:
            return OnCall(override.user, OverrideSource(override.id))
    for index in reversed(range(len(schedule.layers))):
        layer = schedule.layers[index]
        user = _layer_user_at(layer, schedule.zone, at)
        if user is not None:
            return OnCall(user, LayerSource(index, layer.name))
    return None


def within(restrictions: Sequence[Restriction], zone: ZoneInfo, at: datetime) -> bool:
    """Whether `at` falls in one of the local windows (the same reading of local times as a
    layer's restrictions: support hours use it)."""
    at = as_utc(at, "at")
    windows = _windows(restrictions, zone, _wall(at, zone).date(), 1, 1)
    return any(opens <= at < closes for opens, closes in windows)


def shifts(
    schedule: Schedule, overrides: Sequence[Override], start: datetime, end: datetime
) -> list[Shift]:
    """The final timeline from `start` to `end`, shifts clipped to the range.

    Shifts are in time order and never overlap; adjacent shifts with the same user and source
    are merged; a gap between shifts is a time when nobody is on call.
    """
    start = as_utc(start, "start")
    end = as_utc(end, "end")
    if end <= start:
        raise ValueError("the range must end after it starts")
    if end - start > MAX_SHIFTS_RANGE:
        raise ValueError(f"the range is longer than {MAX_SHIFTS_RANGE.days} days; ask for less")
    # Sources in rising precedence, each a sorted list of disjoint (start, end, user) segments.
    sources: list[tuple[Source, list[_Segment]]] = [
        (LayerSource(index, layer.name), _layer_segments(layer, schedule.zone, start, end))
        for index, layer in enumerate(schedule.layers)
    ]
    for override in overrides:
        if override.start < end and override.end > start:
            segment = (max(override.start, start), min(override.end, end), override.user)
            sources.append((OverrideSource(override.id), [segment]))
    boundaries = sorted(
        {start, end} | {edge for _, segments in sources for s, e, _ in segments for edge in (s, e)}
    )
    cursors = [0] * len(sources)
    timeline: list[Shift] = []
    for left, right in itertools.pairwise(boundaries):
        winner: tuple[str, Source] | None = None
        for position in reversed(range(len(sources))):
            source, segments = sources[position]
            cursor = cursors[position]
            while cursor < len(segments) and segments[cursor][1] <= left:
                cursor += 1
            cursors[position] = cursor
            if cursor < len(segments) and segments[cursor][0] <= left:
                winner = (segments[cursor][2], source)
                break
        if winner is None:
            continue
        user, source = winner
        last = timeline[-1] if timeline else None
        if last and last.end == left and last.user == user and last.source == source:
            timeline[-1] = Shift(user, source, last.start, right)
        else:
            timeline.append(Shift(user, source, left, right))
    return timeline


# --- local time ------------------------------------------------------------------------------

_Segment = tuple[datetime, datetime, str]


def first_instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the wall clock in `zone` reads `local` or later."""
    candidates = []
    for fold in (0, 1):
        instant = local.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if _wall(instant, zone) == local:
            candidates.append(instant)
    if candidates:
        return min(candidates)
    # `local` was skipped by a forward jump: the two folds straddle the jump; find its second.
    low, high = sorted(local.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    lo, hi = int(low.timestamp()), int(high.timestamp())
    while lo + 1 < hi:  # invariant: wall(lo) < local <= wall(hi)
        middle = (lo + hi) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) >= local:
            hi = middle
        else:
            lo = middle
    return datetime.fromtimestamp(hi, UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _minutes(clock: time) -> int:
    return clock.hour * 60 + clock.minute


# --- one layer -------------------------------------------------------------------------------


def _handoff(layer: Layer, zone: ZoneInfo, k: int) -> datetime:
    """When turn `k` begins (turn 0 at the layer's start)."""
    if layer.rotation.kind is RotationKind.HOURLY:
        return first_instant(layer.start, zone) + k * _HOUR
    return first_instant(layer.start + k * layer.rotation.period, zone)


def _turn_at(layer: Layer, zone: ZoneInfo, at: datetime) -> int:
    """The turn in progress at `at`; -1 before the layer's first handoff."""
    if layer.rotation.kind is RotationKind.HOURLY:
        first = first_instant(layer.start, zone)
        return (at - first) // _HOUR if at >= first else -1
    # The wall clock is at most a jump away from the clock's high-water mark: estimate, then fix.
    turn = max(-1, (_wall(at, zone) - layer.start) // layer.rotation.period)
    while _handoff(layer, zone, turn + 1) <= at:
        turn += 1
    while turn >= 0 and _handoff(layer, zone, turn) > at:
        turn -= 1
    return turn


def _layer_user_at(layer: Layer, zone: ZoneInfo, at: datetime) -> str | None:
    turn = _turn_at(layer, zone, at)
    if turn < 0:
        return None
    if layer.restrictions and not any(
        s <= at < e for s, e in _windows(layer.restrictions, zone, _wall(at, zone).date(), 1, 1)
    ):
        return None
    return layer.users[turn % len(layer.users)]


def _windows(
    restrictions: Iterable[Restriction], zone: ZoneInfo, around: date, before: int, after: int
) -> list[tuple[datetime, datetime]]:
    """The restriction windows opening on local days `around - before` .. `around + after`.

    A window covering an instant opens at most a day before the instant's high-water local
    date, which is the wall date or the day after it; callers widen the days accordingly.
    """
    windows = []
    for offset in range(-before, after + 1):
        day = around + timedelta(days=offset)
        for restriction in restrictions:
            if day.weekday() in restriction.days:
                opens = datetime.combine(day, restriction.start)
                window = (
                    first_instant(opens, zone),
                    first_instant(opens + restriction.duration, zone),
                )
                if window[0] < window[1]:
                    windows.append(window)
    return windows


def _layer_segments(layer: Layer, zone: ZoneInfo, start: datetime, end: datetime) -> list[_Segment]:
    turns: list[_Segment] = []
    turn = _turn_at(layer, zone, start)
    turn_start = _handoff(layer, zone, turn) if turn >= 0 else None
    while True:
        turn_end = _handoff(layer, zone, turn + 1)
        if turn_start is not None and turn_start < turn_end:
            user = layer.users[turn % len(layer.users)]
            turns.append((max(turn_start, start), min(turn_end, end), user))
        if turn_end >= end:
            break
        turn, turn_start = turn + 1, turn_end
    if not layer.restrictions:
        return turns
    first_day, last_day = _wall(start, zone).date(), _wall(end, zone).date()
    windows = _merge(
        _windows(layer.restrictions, zone, first_day, 1, (last_day - first_day).days + 1)
    )
    return _intersect(turns, windows)


def _merge(windows: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for opens, closes in sorted(windows):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def _intersect(turns: list[_Segment], windows: list[tuple[datetime, datetime]]) -> list[_Segment]:
    covered: list[_Segment] = []
    i = j = 0
    while i < len(turns) and j < len(windows):
        (turn_start, turn_end, user), (opens, closes) = turns[i], windows[j]
        left, right = max(turn_start, opens), min(turn_end, closes)
        if left < right:
            covered.append((left, right, user))
        if turn_end <= closes:
            i += 1
        else:
            j += 1
    return covered
