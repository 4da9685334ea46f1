"""A page as escalation sends it: the `notifications.requested` message for one notification
of an incident, and its timeline entry."""

from __future__ import annotations

import uuid
from datetime import datetime

from schemas import IncidentSnapshot, NotificationRequested, Recipient
from services.escalation.domain.outbox import SendNotification
from services.escalation.domain.snapshot import incident_url
from services.escalation.domain.timeline import TimelineEntry, sent_entry
from services.escalation.store import EscalationIncident

_NAMESPACE = uuid.UUID("0b7f5a53-9c1e-4a55-8f0e-2d6f3c1b7e42")


def message_id(key: str) -> uuid.UUID:
    """A message's id from what it is about, so that sending it again sends the same id."""
    return uuid.uuid5(_NAMESPACE, key)


def page_request(
    incident: EscalationIncident, send: SendNotification, now: datetime, public_url: str | None
) -> NotificationRequested:
    return NotificationRequested(
        event_id=message_id(send.notification_id),
        occurred_at=now,
        correlation_id=incident.id,
        notification_id=send.notification_id,
        event=send.event,
        incident=IncidentSnapshot(
            id=incident.id,
            title=incident.title,
            severity=incident.severity,
            status=incident.lifecycle.status.value,
            service=incident.service_id,
            alert_count=incident.alert_count,
            url=incident_url(public_url, incident.id),
            alerts=incident.alerts,
            commander=incident.lifecycle.commander,
            opened_at=incident.opened_at,
            changes=incident.changes,
        ),
        recipient=Recipient(user_id=send.user_id, contact_id=send.contact_id),
        escalation_level=send.escalation_level,
    )


def sent_entry_of(send: SendNotification, at: datetime) -> TimelineEntry:
    return sent_entry(
        send.notification_id, send.user_id, send.contact_id, send.escalation_level, send.event, at
    )
