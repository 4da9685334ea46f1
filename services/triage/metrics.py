"""Triage's Prometheus metrics (labels are outcomes, never alert content)."""

from __future__ import annotations

from prometheus_client import Counter

ALERTS_TRIAGED = Counter(
    "tocsin_triage_alerts_total", "Alert occurrences triaged, by outcome.", ["outcome"]
)
INCIDENTS_RELEASED = Counter(
    "tocsin_triage_incidents_released_total",
    "Incidents escalation resolved that triage closed, detaching their firing alerts.",
)
ALERTS_BY_SERVICE = Counter(
    "tocsin_alerts_total",
    "Alert occurrences triaged, by service (after routing) and outcome (new, repeat, "
    "silenced, inhibited, maintenance, flapping, resolved, resolved_repeat): alerts in against "
    "incidents opened and pages.",
    ["service", "outcome"],
)
INCIDENT_RECURRENCES = Counter(
    "tocsin_incident_recurrences_total",
    "New incidents whose group had an incident resolved in the 30 days before (linked as "
    "recurrence_of).",
    ["service"],
)
