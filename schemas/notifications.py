"""`notifications.requested` (escalation → notifier) and `notifications.results` (back)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.changes import ChangeSummary
from schemas.envelope import Contract, Envelope, UtcDatetime
from schemas.incidents import MAX_INCIDENT_CHANGES, AlertDetails, Severity

MAX_SNAPSHOT_ALERTS = 10
"""Alerts a page carries; the incident's API URL leads to all of them."""


class NotificationEvent(StrEnum):
    TRIGGERED = "incident.triggered"
    ESCALATED = "incident.escalated"
    ACKNOWLEDGED = "incident.acknowledged"
    RESOLVED = "incident.resolved"
    REMINDER = "reminder"
    """Not about the incident's state: a reminder to its recipient (a post-incident review or an
    action item due, a status update overdue). Its short text is `incident.title` (e.g.
    "Review due: Checkout down"); it takes no reply (no acknowledge link, no reply codes)."""


class IncidentSnapshot(Contract):
    """What a page says about the incident."""

    id: str = Field(min_length=1, max_length=200)
    title: str = Field(max_length=4096)
    severity: Severity
    status: str = Field(max_length=32)
    service: str = Field(max_length=200)
    alert_count: int = Field(ge=0)
    url: str | None = Field(
        default=None, max_length=2048, description="The incident in the operator API."
    )
    alerts: tuple[AlertDetails, ...] = Field(default=(), max_length=MAX_SNAPSHOT_ALERTS)
    commander: str | None = Field(
        default=None, max_length=200, description="The incident commander's user id."
    )
    opened_at: UtcDatetime | None = Field(default=None, description="When it opened.")
    changes: tuple[ChangeSummary, ...] = Field(
        default=(),
        max_length=MAX_INCIDENT_CHANGES,
        description="Changes on its service in the 30 minutes before it opened, newest first.",
    )


class Recipient(Contract):
    user_id: str = Field(min_length=1, max_length=200)
    contact_id: str = Field(min_length=1, max_length=200)


class NotificationRequested(Envelope):
    """Page this contact with this message. `notification_id` is the idempotency key."""

    notification_id: str = Field(min_length=1, max_length=512)
    event: NotificationEvent
    incident: IncidentSnapshot
    recipient: Recipient
    escalation_level: int = Field(ge=0)
    traceparent: str | None = Field(
        default=None,
        max_length=512,
        description="W3C traceparent of the request as the notifier queued it, so the "
        "delivery, claimed later from the store, joins the alert's trace. Set by the "
        "notifier; producers leave it empty (the Kafka headers carry their context).",
    )


class DeliveryOutcome(StrEnum):
    QUEUED = "queued"
    """Not final: the provider accepted the page (Twilio answered `201 queued`). Only for
    channels whose provider reports progress later; others report only a final outcome."""
    SENT = "sent"
    """Not final: the provider handed the page on (Twilio's `sent` message status, a call
    ringing)."""
    DELIVERED = "delivered"
    """Final."""
    FAILED = "failed"
    """Final: retries are exhausted (or the error cannot be retried)."""

    @property
    def final(self) -> bool:
        return self in (DeliveryOutcome.DELIVERED, DeliveryOutcome.FAILED)


class NotificationResult(Envelope):
    """An outcome of one notification: each notification has exactly one final outcome
    (delivered or failed) and may have non-final ones before it (queued, sent; at most one of
    each, `event_id` derived from the notification id and the outcome). Escalation puts each on
    the incident's timeline and, on a final failure only, pages the recipient's next contact
    method. A consumer that acts on final outcomes only checks `outcome.final`."""

    notification_id: str = Field(min_length=1, max_length=512)
    incident_id: str = Field(min_length=1, max_length=200)
    outcome: DeliveryOutcome
    attempt: int = Field(ge=1)
    error: str | None = Field(default=None, max_length=2048)
    event: NotificationEvent
    recipient: Recipient
    escalation_level: int = Field(ge=0)
