"""Escalation's Prometheus metrics (labels are kinds and actions, never people or contacts)."""

from __future__ import annotations

from prometheus_client import Counter

TIMERS_FIRED = Counter("tocsin_escalation_timers_fired_total", "Timers fired, by kind.", ["kind"])
TRANSITIONS_APPLIED = Counter(
    "tocsin_escalation_transitions_total", "Lifecycle actions applied.", ["action"]
)
QUARANTINED = Counter(
    "tocsin_escalation_quarantined_total",
    "Stored documents set aside because they cannot be read or keep failing, by kind.",
    ["kind"],
)
REMINDERS_SENT = Counter(
    "tocsin_escalation_reminders_sent_total", "Reminders that paged someone, by kind.", ["kind"]
)
