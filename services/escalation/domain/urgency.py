"""Urgency: how hard a page tries to reach people (pure).

A service maps each severity to an urgency (by default SEV0 and SEV1 are `high`, SEV2 and SEV3
`low`) and may have support hours: outside them every incident is `low` (as PagerDuty's
support hours do). Each person's notification rules say which contacts to use for each urgency;
a rule without an urgency serves both, and a person with no rule for an urgency is reached with
the rules of the other one, so that no page is dropped because a person forgot a case.

An incident's urgency is decided when it triggers and only ever rises (a severity raised
later can make it high; nothing makes it low again).

A SEV0 on a tier-0 service pages every level of its policy at once; a policy can say at which
severity that starts instead (`page_all_levels_at`), or `never`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from schemas import Severity
from services.escalation.domain.schedules import Restriction, load_zone, within


class Urgency(StrEnum):
    HIGH = "high"
    LOW = "low"


DEFAULT_URGENCY: Mapping[Severity, Urgency] = {
    Severity.SEV0: Urgency.HIGH,
    Severity.SEV1: Urgency.HIGH,
    Severity.SEV2: Urgency.LOW,
    Severity.SEV3: Urgency.LOW,
}

PageAllLevelsAt = Literal["SEV0", "SEV1", "SEV2", "SEV3", "never"]


@dataclass(frozen=True)
class SupportHours:
    """Local windows in a time zone (days, from, to: a restriction's reading of local time)."""

    time_zone: str
    window: Restriction

    def __post_init__(self) -> None:
        load_zone(self.time_zone)

    def covers(self, at: datetime) -> bool:
        return within((self.window,), load_zone(self.time_zone), at)


def urgency_of(
    severity: Severity,
    by_severity: Mapping[Severity, Urgency],
    support_hours: SupportHours | None,
    at: datetime,
) -> Urgency:
    if support_hours is not None and not support_hours.covers(at):
        return Urgency.LOW
    return by_severity.get(severity, DEFAULT_URGENCY[severity])


def raised(current: Urgency, computed: Urgency) -> Urgency:
    """An incident's urgency only rises."""
    return Urgency.HIGH if Urgency.HIGH in (current, computed) else Urgency.LOW


@dataclass(frozen=True)
class Rule:
    """One personal notification rule: this contact, this long after the page, for these
    urgencies (None: both)."""

    contact_id: str
    after: timedelta
    urgency: Urgency | None = None


def rules_for(rules: Sequence[Rule], urgency: Urgency) -> tuple[Rule, ...]:
    """A person's rules for `urgency`, in their order; the other urgency's if they have none."""
    own = tuple(r for r in rules if r.urgency in (None, urgency))
    return own or tuple(rules)


def pages_all_levels(
    severity: Severity, tier: int, page_all_levels_at: PageAllLevelsAt | None
) -> bool:
    """Whether an incident of `severity` on a service of `tier` pages every level at once."""
    if page_all_levels_at == "never":
        return False
    if page_all_levels_at is None:
        return severity is Severity.SEV0 and tier == 0
    return _rank(severity) <= _rank(Severity(page_all_levels_at))


def _rank(severity: Severity) -> int:
    return list(Severity).index(severity)  # SEV0 first: the most severe
