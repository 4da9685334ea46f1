"""Triage's pure rules: what group an alert joins, how severe the incident is, and whether a
new occurrence of an alert is a repeat (dedup). No I/O here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum

from schemas import AlertReceived, AlertStatus, Severity

# Deterministic ids: a redelivered message must produce the same incident id and event id, so
# that every downstream handler can dedupe on them.
_NAMESPACE = uuid.UUID("6f1c1d2e-4b7a-4e49-9a43-1d0a8f5b2c11")


def group_key(service_id: str, alertname: str) -> str:
    """Default grouping (DESIGN §4): one incident per service and `alertname`."""
    return f"{service_id}/{alertname}"


def candidate_incident_id(occurrence_event_id: uuid.UUID) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"incident:{occurrence_event_id}"))


def incident_event_id(cause_event_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"incident-event:{cause_event_id}")


_SEVERITY_BY_LABEL: dict[str, Severity] = {
    "critical": Severity.SEV1,
    "page": Severity.SEV1,
    "high": Severity.SEV1,
    "error": Severity.SEV2,
    "warning": Severity.SEV2,
    "medium": Severity.SEV2,
    "info": Severity.SEV3,
    "low": Severity.SEV3,
    "none": Severity.SEV3,
}


def assess_severity(
    severity_label: str | None, service_tier: int
) -> tuple[Severity, tuple[str, ...]]:
    """Impact-based severity from the sender's severity and the service's tier.

    A `critical` alert on a tier-0 service (the critical path: payments, login, data) is SEV0;
    otherwise the sender's severity maps to SEV1..SEV3, and an unknown one to SEV2.
    """
    label = (severity_label or "").strip().lower()
    base = _SEVERITY_BY_LABEL.get(label)
    reasons: list[str] = []
    if base is None:
        base = Severity.SEV2
        reasons.append(
            f"sender severity {severity_label!r} unknown: default SEV2"
            if label
            else "no severity label: default SEV2"
        )
    else:
        reasons.append(f"sender severity {label!r} maps to {base.value}")
    if base is Severity.SEV1 and service_tier == 0:
        base = Severity.SEV0
        reasons.append("tier-0 service (critical path): raised to SEV0")
    return base, tuple(reasons)


class Occurrence(Enum):
    NEW = "new"  # first firing, or firing again after it resolved: attach to an incident
    REPEAT = "repeat"  # still firing (Alertmanager resends the group): only counts
    RESOLVED = "resolved"  # was firing, now resolved
    RESOLVED_REPEAT = "resolved_repeat"  # resolved again, or resolved without having fired


@dataclass(frozen=True)
class AlertState:
    status: AlertStatus
    incident_id: str | None


def classify(previous: AlertState | None, alert: AlertReceived) -> Occurrence:
    firing_before = previous is not None and previous.status is AlertStatus.FIRING
    if alert.status is AlertStatus.FIRING:
        if firing_before and previous is not None and previous.incident_id is not None:
            return Occurrence.REPEAT
        return Occurrence.NEW
    return Occurrence.RESOLVED if firing_before else Occurrence.RESOLVED_REPEAT
