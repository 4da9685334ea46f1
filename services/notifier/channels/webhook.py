"""`webhook`: POST the page as JSON to the contact's address, with `Idempotency-Key`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from schemas import AlertDetails, ChangeSummary, NotificationRequested
from services.notifier.channels.base import DeliveryFailed
from services.notifier.config import ContactConfig
from services.notifier.domain.change_lines import change_line


def webhook_body(request: NotificationRequested) -> dict[str, Any]:
    """The documented JSON body of a `webhook` contact (see the README). Built field by field:
    a receiver's contract changes only when this function does, not with the message's."""
    incident = request.incident
    return {
        "event": request.event.value,
        "notification_id": request.notification_id,
        "incident": {
            "id": incident.id,
            "title": incident.title,
            "severity": incident.severity.value,
            "status": incident.status,
            "service": incident.service,
            "alert_count": incident.alert_count,
            "url": incident.url,
            "alerts": [_alert_body(alert) for alert in incident.alerts],
            "commander": incident.commander,
            "changes": [
                _change_body(change, incident.opened_at or change.at) for change in incident.changes
            ],
        },
        "recipient": request.recipient.model_dump(mode="json"),
        "escalation_level": request.escalation_level,
        "sent_at": request.occurred_at.isoformat(),
    }


def _alert_body(alert: AlertDetails) -> dict[str, Any]:
    # Labels and annotations as JSON objects, the way Alertmanager's own webhook sends them.
    return {
        "fingerprint": alert.fingerprint,
        "summary": alert.summary,
        "labels": {label.name: label.value for label in alert.labels},
        "annotations": {annotation.name: annotation.value for annotation in alert.annotations},
        "generatorURL": alert.generator_url,
        "runbookURL": alert.runbook_url,
    }


def _change_body(change: ChangeSummary, opened_at: datetime) -> dict[str, Any]:
    return {
        "summary": change.summary,
        "at": change.at.isoformat(),
        "source": change.source,
        "version": change.version,
        "links": [{"href": link.href, "text": link.text} for link in change.links],
        "text": change_line(change, opened_at),  # "deployed checkout v2.3.1 4 min before"
    }


class WebhookChannel:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, contact: ContactConfig, request: NotificationRequested) -> None:
        if contact.address is None:
            raise DeliveryFailed("webhook contact without an address", retryable=False)
        try:
            response = await self._client.post(
                contact.address,
                json=webhook_body(request),
                headers={"Idempotency-Key": request.notification_id},
            )
        except httpx.HTTPError as error:
            # The URL may hold a secret: name only the kind of error.
            raise DeliveryFailed(
                f"webhook unreachable: {type(error).__name__}", retryable=True
            ) from None
        if response.is_success:
            return
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        raise DeliveryFailed(f"webhook answered {response.status_code}", retryable=retryable)
