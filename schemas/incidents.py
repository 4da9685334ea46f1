"""`incidents.events` (triage → escalation), `incidents.commands` (people → escalation) and
`incidents.lifecycle` (escalation → triage and any later reader: what people and timers did)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.changes import ChangeSummary
from schemas.envelope import Contract, Envelope, Label, UtcDatetime


class Severity(StrEnum):
    SEV0 = "SEV0"
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"


class IncidentEventKind(StrEnum):
    OPENED = "incident.opened"
    ALERT_ADDED = "incident.alert_added"
    SEVERITY_CHANGED = "incident.severity_changed"
    ALERTS_RESOLVED = "incident.alerts_resolved"
    # Triage held a new alert back (silenced, in maintenance, inhibited) that relates to this
    # open incident: a timeline line only, it never opens, pages or changes the incident.
    ALERT_HELD = "alert_held"


MAX_INCIDENT_CHANGES = 10
"""Changes carried on an incident event; older ones are cut."""

MAX_DETAIL_LABELS = 32
"""Labels or annotations carried per alert in a message; more are cut (the alert keeps all)."""


class AlertDetails(Contract):
    """What a responder needs from the alert that caused an event, bounded for messages."""

    fingerprint: str = Field(min_length=1, max_length=256)
    summary: str = Field(max_length=4096)
    labels: tuple[Label, ...] = Field(default=(), max_length=MAX_DETAIL_LABELS)
    annotations: tuple[Label, ...] = Field(default=(), max_length=MAX_DETAIL_LABELS)
    generator_url: str | None = Field(default=None, max_length=4096)
    runbook_url: str | None = Field(default=None, max_length=4096)
    received_at: UtcDatetime | None = Field(
        default=None,
        description="When ingest received this alert occurrence (its `occurred_at` on "
        "`alerts.raw`): the start of time to page.",
    )


class IncidentEvent(Envelope):
    """Something triage decided about an incident's alerts."""

    kind: IncidentEventKind
    incident_id: str = Field(min_length=1, max_length=200)
    service_id: str = Field(min_length=1, max_length=200)
    group_key: str = Field(min_length=1, max_length=2048)
    title: str = Field(max_length=4096)
    severity: Severity
    severity_reasons: tuple[str, ...] = ()
    alert_count: int = Field(ge=0, description="Alerts in the incident (firing or not).")
    firing_count: int = Field(ge=0)
    fingerprint: str | None = Field(default=None, max_length=256)
    alert: AlertDetails | None = Field(
        default=None, description="The alert occurrence behind this event, when there is one."
    )
    changes: tuple[ChangeSummary, ...] = Field(
        default=(),
        max_length=MAX_INCIDENT_CHANGES,
        description="Changes on the incident's service in the 30 minutes before it opened, "
        "newest first (on incident.opened).",
    )
    flapping: bool = Field(
        default=False,
        description="An alert of the incident changes firing <-> resolved too often (triage's "
        "`flapping` rule): the incident stays open and its flaps page nobody.",
    )
    recurrence_of: str | None = Field(
        default=None,
        max_length=200,
        description="The last incident of the same group resolved in the 30 days before this "
        "one opened (on incident.opened and later events), if any.",
    )
    recurrence_count: int = Field(
        default=0,
        ge=0,
        description="How many incidents of this group resolved in the 30 days before this one "
        "opened (0: not a recurrence).",
    )
    held: str | None = Field(
        default=None,
        max_length=4096,
        description="Why triage held the alert back (on alert_held), e.g. `silenced by <id>`, "
        "`inhibited by alert <fingerprint> (inhibit_rules[0])`.",
    )


class CommandKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    SNOOZE = "snooze"
    REASSIGN = "reassign"  # to exactly one of user, schedule or policy
    ADD_RESPONDER = "add_responder"  # page `user` too
    SET_COMMANDER = "set_commander"  # `user` is the incident commander


class IncidentCommand(Envelope):
    """A person asked for something to happen to an incident (ack by SMS reply, API, ...)."""

    kind: Literal["incident.command"] = "incident.command"
    command: CommandKind
    incident_id: str = Field(min_length=1, max_length=200)
    actor: str = Field(min_length=1, max_length=200, description="User id or 'api:<key name>'.")
    via: str = Field(default="api", max_length=64)
    snooze_seconds: int | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    user: str | None = Field(default=None, min_length=1, max_length=100)
    schedule: str | None = Field(default=None, min_length=1, max_length=100)
    policy: str | None = Field(default=None, min_length=1, max_length=100)


class LifecycleStatus(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class IncidentLifecycleChanged(Envelope):
    """Escalation moved an incident to another status (a person, a timer or triage did).

    Triage reads it so that an alert still firing after a manual resolve opens a new incident;
    status pages and analytics read it later."""

    kind: Literal["incident.lifecycle_changed"] = "incident.lifecycle_changed"
    incident_id: str = Field(min_length=1, max_length=200)
    service_id: str = Field(min_length=1, max_length=200)
    status: LifecycleStatus
    actor: str | None = Field(
        default=None, max_length=200, description="User id, 'api:<key name>', or none (system)."
    )
