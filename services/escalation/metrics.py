"""Escalation's Prometheus metrics. Labels are kinds, actions and declared ids (service, policy,
user id from the config file): never incident ids, contacts, addresses or free text."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time

from prometheus_client import Counter, Gauge, Histogram

from schemas import NotificationEvent, Severity
from services.escalation.domain.lifecycle import Action, PageStep, Status
from services.escalation.domain.outbox import OutboxItem, SendNotification
from services.escalation.domain.schedules import Restriction, Weekday
from services.escalation.domain.urgency import SupportHours

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
REVIEWS_REQUIRED = Gauge(
    "tocsin_escalation_review_required_incidents",
    "Incidents of the severities that need a post-incident review (reviews.required_for).",
)
REVIEWS_PUBLISHED = Gauge(
    "tocsin_escalation_reviews_published",
    "Incidents of the required severities whose review is published.",
)
REVIEWS_PUBLISHED_RATIO = Gauge(
    "tocsin_escalation_reviews_published_ratio",
    "Share of the incidents that need a review (SEV0/SEV1 by default) with a published one.",
)

# -- incident outcomes -------------------------------------------------------------------------
# Emitted only by the escalation replica whose compare-and-set applied the change (or whose
# insert created the incident), so the sum over replicas counts each change once, however often
# a message is redelivered. Labels: the service id and severity (both declared), a policy's
# level, a policy id (the team) and a declared user id. Never incident ids or free text.

INCIDENT_SECONDS_BUCKETS = (
    10,
    30,
    60,
    120,
    180,
    300,
    600,
    900,
    1800,
    3600,
    2 * 3600,
    4 * 3600,
    8 * 3600,
    12 * 3600,
    24 * 3600,
)
"""10 s … 24 h: acknowledgements come in minutes, resolutions in minutes to hours."""

INCIDENTS_OPENED = Counter(
    "tocsin_incidents_opened_total", "Incidents opened (triggered).", ["service", "severity"]
)
INCIDENTS_ACKNOWLEDGED = Counter(
    "tocsin_incidents_acknowledged_total",
    "Triggered incidents acknowledged (or snoozed) by a person.",
    ["service", "severity"],
)
INCIDENTS_RESOLVED = Counter(
    "tocsin_incidents_resolved_total",
    "Incidents resolved (by a person or because every alert resolved).",
    ["service", "severity"],
)
INCIDENTS_ESCALATED = Counter(
    "tocsin_incidents_escalated_total",
    "Escalations to a level of the policy (a timer or a person), by the level paged (0 first).",
    ["service", "severity", "level"],
)
INCIDENTS_REOPENED = Counter(
    "tocsin_incidents_reopened_total",
    "Resolved incidents that fired again.",
    ["service", "severity"],
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "tocsin_incident_time_to_acknowledge_seconds",
    "From the incident's trigger to its acknowledgement.",
    ["service", "severity"],
    buckets=INCIDENT_SECONDS_BUCKETS,
)
TIME_TO_RESOLVE = Histogram(
    "tocsin_incident_time_to_resolve_seconds",
    "From the incident's trigger to its resolution.",
    ["service", "severity"],
    buckets=INCIDENT_SECONDS_BUCKETS,
)
PAGES_REQUESTED = Counter(
    "tocsin_pages_requested_total",
    "Pages escalation asked the notifier for (incident.triggered and incident.escalated), by "
    "team (the service's escalation policy) and person (user id).",
    ["team", "user"],
)
AFTER_HOURS_PAGES = Counter(
    "tocsin_after_hours_pages_total",
    "Pages requested outside the service's support hours (or, for a service without them, "
    "outside Monday to Friday 09:00-18:00 UTC), by team (the service's escalation policy).",
    ["team"],
)


DEFAULT_WORKING_HOURS = SupportHours(
    "UTC",
    Restriction(
        days=frozenset((Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)),
        start=time(9, 0),
        end=time(18, 0),
    ),
)
"""Working hours of a service that declares no `urgency.support_hours`."""

NO_TEAM = "none"
_PAGES = (NotificationEvent.TRIGGERED, NotificationEvent.ESCALATED)


def after_hours(support_hours: SupportHours | None, at: datetime) -> bool:
    """A page at `at` is after hours when it falls outside the service's support hours."""
    return not (support_hours or DEFAULT_WORKING_HOURS).covers(at)


def incident_opened(service: str, severity: Severity) -> None:
    INCIDENTS_OPENED.labels(service, severity.value).inc()


def lifecycle_changed(
    service: str,
    severity: Severity,
    action: Action,
    before: Status,
    after: Status,
    effects: Iterable[object],
    seconds_open: float,
) -> None:
    """One applied change (call once, after the compare-and-set that stored it succeeded)."""
    labels = (service, severity.value)
    if before is Status.TRIGGERED and after is Status.ACKNOWLEDGED:
        INCIDENTS_ACKNOWLEDGED.labels(*labels).inc()
        TIME_TO_ACKNOWLEDGE.labels(*labels).observe(max(seconds_open, 0.0))
    if after is Status.RESOLVED and before is not Status.RESOLVED:
        INCIDENTS_RESOLVED.labels(*labels).inc()
        TIME_TO_RESOLVE.labels(*labels).observe(max(seconds_open, 0.0))
    if action is Action.REOPEN and before is Status.RESOLVED:
        INCIDENTS_REOPENED.labels(*labels).inc()
    if action in (Action.ESCALATE, Action.ESCALATE_NOW):
        for effect in effects:
            if isinstance(effect, PageStep) and effect.event is NotificationEvent.ESCALATED:
                INCIDENTS_ESCALATED.labels(*labels, str(effect.level)).inc()


def pages_requested(
    items: Iterable[OutboxItem | SendNotification], team: str | None, after_hours_now: bool
) -> None:
    """Count the pages among outbox items stored by one applied change (or one fired timer)."""
    team_label = team or NO_TEAM
    for item in items:
        if isinstance(item, SendNotification) and item.event in _PAGES:
            PAGES_REQUESTED.labels(team_label, item.user_id).inc()
            if after_hours_now:
                AFTER_HOURS_PAGES.labels(team_label).inc()
