"""Maintenance windows: per service, one-off or recurring (an RFC 5545 `RRULE`). A firing alert
whose service is in a window is held like a silenced one (recorded with the window's id, opens
and pages nothing) and triaged once the window ended, if it still fires.

A recurring window repeats at the wall-clock time of its first start in its time zone: a window
every Sunday 02:00 Europe/Berlin starts at 02:00 local time in winter and in summer (01:00 and
00:00 UTC). A start that falls in a daylight-saving gap (02:30 on the spring-forward night) is
shifted forward by the gap (03:30 local); one that falls in the repeated hour takes its first
instance. The length (`duration`) is elapsed time.

Pure: time is always a parameter. Expanding an `RRULE` is done once per window value and kept
(`_schedule`, memoized on the frozen window), so a batch of alerts checks each window with a
binary search, not by walking the rule from its first start.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

# Rules repeating faster than hourly are refused: no maintenance is scheduled per minute, and
# expanding one over years would be millions of starts.
_ALLOWED_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
MAX_DURATION = timedelta(days=366)


class MaintenanceError(ValueError):
    """A window that cannot be used: says which part is wrong, for config and API answers."""


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a window: `[start, end)` in UTC."""

    window_id: str
    start: datetime
    end: datetime

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class MaintenanceWindow:
    id: str
    services: tuple[str, ...]
    starts_at: datetime  # aware: the first occurrence's start
    duration: timedelta
    rrule: str | None = None  # e.g. "FREQ=WEEKLY;BYDAY=SU" (no DTSTART: starts_at is it)
    timezone: str = "UTC"
    comment: str = ""
    services_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "services_set", frozenset(self.services))

    def occurrences(self, start: datetime, end: datetime) -> list[Occurrence]:
        """Occurrences overlapping `[start, end)`, in order."""
        return _schedule(self).between(start, end)

    def occurrence_at(self, at: datetime) -> Occurrence | None:
        return _schedule(self).at(at)

    def last_end(self) -> datetime | None:
        """When the last occurrence ends; None for a rule that repeats forever."""
        return _schedule(self).last_end()


def validate(window: MaintenanceWindow) -> None:
    """MaintenanceError naming what is wrong, else None (builds the schedule once)."""
    if not window.services:
        raise MaintenanceError("services: name at least one service")
    if window.starts_at.tzinfo is None:
        raise MaintenanceError("starts_at: needs a time zone offset (or set timezone)")
    if window.duration <= timedelta(0):
        raise MaintenanceError("ends_at must be after starts_at (duration must be positive)")
    if window.duration > MAX_DURATION:
        raise MaintenanceError("duration: at most 366 days")
    zone(window.timezone)
    if window.rrule is not None:
        compile_rrule(window.rrule, window.starts_at, window.timezone)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MaintenanceError(f"timezone: unknown time zone {name!r}") from None


def _body(text: str) -> str:
    body = text.strip()
    return body[len("RRULE:") :] if body.upper().startswith("RRULE:") else body


def _parts(body: str) -> dict[str, str]:
    return {
        item.split("=", 1)[0].strip().upper(): item.split("=", 1)[-1].strip().upper()
        for item in body.split(";")
        if item.strip()
    }


def compile_rrule(text: str, starts_at: datetime, timezone: str) -> rrule:
    """The rule, starting at `starts_at`'s wall-clock time in `timezone`."""
    body = _body(text)
    parts = _parts(body)
    if "\n" in body or "DTSTART" in body.upper():
        raise MaintenanceError("rrule: one RRULE line only, without DTSTART (starts_at is it)")
    if parts.get("FREQ") not in _ALLOWED_FREQS:
        raise MaintenanceError(
            f"rrule: FREQ must be one of {', '.join(_ALLOWED_FREQS)} (got {parts.get('FREQ')!r})"
        )
    local_start = starts_at.astimezone(zone(timezone))
    try:
        rule = rrulestr(body, dtstart=local_start, cache=False)
    except (ValueError, TypeError) as error:
        raise MaintenanceError(f"rrule: {error}") from None
    if not isinstance(rule, rrule):
        raise MaintenanceError("rrule: one RRULE only")
    if next(iter(rule), None) is None:
        raise MaintenanceError("rrule: the rule has no occurrence")
    return rule


def in_maintenance(
    windows: Iterable[MaintenanceWindow], service_id: str, at: datetime
) -> Occurrence | None:
    """The occurrence of a window on `service_id` in force at `at`, the one ending last if
    several are (so the alert's record names the window that holds it longest)."""
    found = [
        occurrence
        for window in windows
        if service_id in window.services_set
        for occurrence in (window.occurrence_at(at),)
        if occurrence is not None
    ]
    return max(found, key=lambda o: (o.end, o.window_id)) if found else None


def scheduled(
    windows: Iterable[MaintenanceWindow], service_id: str, start: datetime, end: datetime
) -> list[Occurrence]:
    """Occurrences on `service_id` overlapping `[start, end)` (what a status page shows as
    scheduled maintenance), by start."""
    found = [
        occurrence
        for window in windows
        if service_id in window.services_set
        for occurrence in window.occurrences(start, end)
    ]
    return sorted(found, key=lambda o: (o.start, o.window_id))


class _Schedule:
    """A window's starts in UTC, expanded lazily from the rule and kept sorted."""

    def __init__(self, window: MaintenanceWindow) -> None:
        self._window = window
        self._starts: list[datetime] = []
        self._pending: Iterator[datetime] | None
        if window.rrule is None:
            self._starts.append(window.starts_at.astimezone(UTC))
            self._pending = None
        else:
            rule = compile_rrule(window.rrule, window.starts_at, window.timezone)
            # Local wall-clock starts as UTC instants; a start in a DST gap (fold=0) takes the
            # offset before the gap, i.e. it moves forward by the gap.
            self._pending = (start.astimezone(UTC) for start in rule)

    def _extend_past(self, at: datetime) -> None:
        """Expand until a start after `at` is known, or the rule ended."""
        while self._pending is not None and (not self._starts or self._starts[-1] <= at):
            start = next(self._pending, None)
            if start is None:
                self._pending = None
            else:
                self._starts.append(start)

    def _occurrence(self, start: datetime) -> Occurrence:
        return Occurrence(self._window.id, start, start + self._window.duration)

    def at(self, at: datetime) -> Occurrence | None:
        self._extend_past(at)
        # The latest start not after `at` ends last (every occurrence has the same length).
        n = bisect.bisect_right(self._starts, at)
        if n == 0:
            return None
        occurrence = self._occurrence(self._starts[n - 1])
        return occurrence if occurrence.covers(at) else None

    def between(self, start: datetime, end: datetime) -> list[Occurrence]:
        self._extend_past(end)
        first = bisect.bisect_right(self._starts, start - self._window.duration)
        last = bisect.bisect_left(self._starts, end)
        return [self._occurrence(s) for s in self._starts[first:last]]

    def last_end(self) -> datetime | None:
        if self._window.rrule is not None:
            parts = _parts(_body(self._window.rrule))
            if "COUNT" not in parts and "UNTIL" not in parts:
                return None
        self._extend_past(datetime.max.replace(tzinfo=UTC))
        return self._starts[-1] + self._window.duration


@lru_cache(maxsize=4096)
def _schedule(window: MaintenanceWindow) -> _Schedule:
    return _Schedule(window)
