"""Triage's pure rules: what group an alert joins, how severe the incident is, whether a new
occurrence of an alert is a repeat (dedup), whether it flaps, and whether an incident recurs.
No I/O here."""

from services.triage.domain.content import AlertContent, keep_trigger_content
from services.triage.domain.details import alert_details
from services.triage.domain.flapping import NOT_FLAPPING, FlappingRule, FlapState, track
from services.triage.domain.grouping import group_key
from services.triage.domain.ids import (
    candidate_incident_id,
    incident_event_id,
    severity_event_id,
)
from services.triage.domain.lifecycle import LifecycleEffect, on_lifecycle
from services.triage.domain.occurrence import AlertState, Occurrence, classify
from services.triage.domain.recurrence import (
    RECURRENCE_WINDOW,
    Recurrence,
    ResolvedIncident,
    recurrence,
)
from services.triage.domain.severity import (
    assess_severity,
    blast_radius_raise,
    raised_severity,
)

__all__ = [
    "NOT_FLAPPING",
    "RECURRENCE_WINDOW",
    "AlertContent",
    "AlertState",
    "FlapState",
    "FlappingRule",
    "LifecycleEffect",
    "Occurrence",
    "Recurrence",
    "ResolvedIncident",
    "alert_details",
    "assess_severity",
    "blast_radius_raise",
    "candidate_incident_id",
    "classify",
    "group_key",
    "incident_event_id",
    "keep_trigger_content",
    "on_lifecycle",
    "raised_severity",
    "recurrence",
    "severity_event_id",
    "track",
]
