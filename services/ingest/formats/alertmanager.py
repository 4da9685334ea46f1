"""Alertmanager webhook v4 → normalized `AlertReceived` messages (pure).

Each webhook carries the whole group's current state; every alert becomes one message keyed by
its fingerprint, so triage can diff by fingerprint and a resend of the group is only a repeat.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas import AlertReceived, AlertStatus, Label
from services.ingest.fingerprint import fingerprint_hex

# Alertmanager sends the zero time for "no end" (`0001-01-01T00:00:00Z`).
_ZERO_TIME_YEAR = 1


class _Lenient(BaseModel):
    # Senders add fields over time; ignore what we do not use rather than reject the page.
    model_config = ConfigDict(extra="ignore", frozen=True)


class AlertmanagerAlert(_Lenient):
    status: AlertStatus
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: str | None = Field(default=None, max_length=256)


class AlertmanagerWebhook(_Lenient):
    version: str = "4"
    groupKey: str | None = None
    status: AlertStatus | None = None
    receiver: str | None = None
    alerts: list[AlertmanagerAlert] = Field(max_length=1000)


def _pairs(mapping: dict[str, str]) -> tuple[Label, ...]:
    return tuple(Label(name=name, value=value) for name, value in sorted(mapping.items()))


def _real_time(value: datetime | None) -> datetime | None:
    if value is None or value.year == _ZERO_TIME_YEAR:
        return None
    return value


def normalize(
    webhook: AlertmanagerWebhook,
    *,
    integration_id: str,
    service_id: str,
    received_at: datetime,
    source: str = "alertmanager",
) -> list[AlertReceived]:
    """One message per alert; the correlation id ties a webhook's alerts together."""
    correlation_id = str(uuid.uuid4())
    messages = []
    for alert in webhook.alerts:
        fingerprint = alert.fingerprint or fingerprint_hex(alert.labels.items())
        alertname = alert.labels.get("alertname", "")
        summary = (
            alert.annotations.get("summary")
            or alert.annotations.get("description")
            or alertname
            or fingerprint
        )
        messages.append(
            AlertReceived(
                occurred_at=received_at,
                correlation_id=correlation_id,
                fingerprint=fingerprint,
                status=alert.status,
                integration_id=integration_id,
                source=source,
                service_id=service_id,
                alertname=alertname,
                summary=summary[:4096],
                severity=alert.labels.get("severity"),
                labels=_pairs(alert.labels),
                annotations=_pairs(alert.annotations),
                starts_at=_real_time(alert.startsAt),
                ends_at=_real_time(alert.endsAt),
                generator_url=alert.generatorURL,
            )
        )
    return messages
