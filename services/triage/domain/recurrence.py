"""Whether a new incident is a recurrence: its group (group key) had incidents resolved in the
30 days before it opened. The link names the last of them, and says how many there were, so a
responder sees at once that this happened before (and escalation can show that incident's
review)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

RECURRENCE_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class ResolvedIncident:
    id: str
    resolved_at: datetime


@dataclass(frozen=True)
class Recurrence:
    of: str  # the incident of the group resolved last before this one opened
    count: int  # incidents of the group resolved in the window


def recurrence(
    resolved: Iterable[ResolvedIncident],
    opened_at: datetime,
    window: timedelta = RECURRENCE_WINDOW,
) -> Recurrence | None:
    """The recurrence of an incident that opened at `opened_at`, given its group's resolved
    incidents (any, in any order; those outside the window do not count); None if none."""
    recent = [i for i in resolved if opened_at - window <= i.resolved_at <= opened_at]
    if not recent:
        return None
    last = max(recent, key=lambda i: (i.resolved_at, i.id))
    return Recurrence(of=last.id, count=len(recent))
