"""Whether a new occurrence of an alert is a repeat (dedup), a first firing or a resolution."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from schemas import AlertReceived, AlertStatus


class Occurrence(Enum):
    # First firing, firing again after it resolved, or firing while detached from an incident
    # a person resolved (see lifecycle.py): attach to an incident.
    NEW = "new"
    REPEAT = "repeat"  # still firing (Alertmanager resends the group): only counts
    RESOLVED = "resolved"  # was firing, now resolved
    RESOLVED_REPEAT = "resolved_repeat"  # resolved again, or resolved without having fired


@dataclass(frozen=True)
class AlertState:
    status: AlertStatus
    incident_id: str | None  # None: never attached, or detached when its incident resolved


def classify(previous: AlertState | None, alert: AlertReceived) -> Occurrence:
    firing_before = previous is not None and previous.status is AlertStatus.FIRING
    if alert.status is AlertStatus.FIRING:
        if firing_before and previous is not None and previous.incident_id is not None:
            return Occurrence.REPEAT
        return Occurrence.NEW
    return Occurrence.RESOLVED if firing_before else Occurrence.RESOLVED_REPEAT
