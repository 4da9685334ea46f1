"""The status update cadence (pure): while an incident is open, an update is due every
`cadence` of its severity (the status page's setting, default SEV0 30 min, SEV1 60 min); when
none came, the update is overdue and the incident commander (or the responder who acknowledged)
is reminded, and reminded again each cadence until one comes or the incident resolves.

The composition root hands escalation an `UpdatesConfig` built from the `status_pages:`
section (escalation does not read the notifier's configuration)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas import Severity

PROACTIVE_WITHIN = timedelta(minutes=10)
"""A SEV0/SEV1 incident told publicly within this long of opening counts as proactive."""


@dataclass(frozen=True)
class UpdatesConfig:
    """`per_service`: the cadence of a service shown on a status page (the shortest of its
    pages); `default`: any other service's. `components`: the status pages' component ids an
    update may set by hand."""

    per_service: Mapping[str, Mapping[Severity, timedelta]] = field(default_factory=dict)
    default: Mapping[Severity, timedelta] = field(
        default_factory=lambda: {
            Severity.SEV0: timedelta(minutes=30),
            Severity.SEV1: timedelta(minutes=60),
        }
    )
    components: frozenset[str] = frozenset()

    def cadence(self, service_id: str, severity: Severity) -> timedelta | None:
        """How often an open incident needs an update; None: no cadence for this severity."""
        return self.per_service.get(service_id, self.default).get(severity)


@dataclass(frozen=True)
class Due:
    """What the cadence asks at `now`: remind (`overdue`) or not, and when to look again."""

    overdue: bool
    next_check: datetime | None  # None: no cadence any more (resolved, or none for severity)


def next_update_due(
    *, opened_at: datetime, last_update_at: datetime | None, cadence: timedelta
) -> datetime:
    """When the next update is due: a cadence after the last update, or after opening."""
    return (last_update_at or opened_at) + cadence


def check(
    *,
    now: datetime,
    resolved: bool,
    opened_at: datetime,
    last_update_at: datetime | None,
    cadence: timedelta | None,
) -> Due:
    if resolved or cadence is None:
        return Due(overdue=False, next_check=None)
    due = next_update_due(opened_at=opened_at, last_update_at=last_update_at, cadence=cadence)
    if now < due:
        return Due(overdue=False, next_check=due)
    return Due(overdue=True, next_check=now + cadence)
