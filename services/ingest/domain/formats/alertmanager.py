"""Alertmanager webhook v4 → normalized `AlertReceived` messages (pure).

Each webhook carries the whole group's current state; every alert becomes one message keyed by
its fingerprint, so triage can diff by fingerprint and a resend of the group is only a repeat.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas import AlertReceived, AlertStatus
from services.ingest.domain.formats.common import (
    ALERTNAME_LIMIT,
    SUMMARY_LIMIT,
    URL_LIMIT,
    LabelMap,
    Lenient,
    ParseContext,
    Text,
    clip,
    first_present,
    label_fingerprint,
    pairs,
)

# Alertmanager sends the zero time for "no end" (`0001-01-01T00:00:00Z`).
_ZERO_TIME_YEAR = 1


class AlertmanagerAlert(Lenient):
    status: AlertStatus
    labels: LabelMap = Field(default_factory=dict)
    annotations: LabelMap = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: Text | None = Field(default=None, max_length=URL_LIMIT)
    fingerprint: Text | None = Field(default=None, max_length=256)


class AlertmanagerWebhook(Lenient):
    version: Text = "4"
    groupKey: Text | None = None
    status: AlertStatus | None = None
    receiver: Text | None = None
    alerts: list[AlertmanagerAlert] = Field(max_length=10_000)


def _real_time(value: datetime | None) -> datetime | None:
    if value is None or value.year == _ZERO_TIME_YEAR:
        return None
    return value


def to_message(
    alert: AlertmanagerAlert,
    context: ParseContext,
    *,
    source: str,
    extra_annotations: dict[str, str] | None = None,
    fallback_summary: str | None = None,
) -> AlertReceived:
    """One alert of an Alertmanager-shaped body (Grafana's too) as a message."""
    fingerprint = alert.fingerprint or label_fingerprint(alert.labels)
    alertname = alert.labels.get("alertname", "")
    summary = first_present(
        (alert.annotations.get("summary"), alert.annotations.get("description"))
    )
    if alert.status is AlertStatus.FIRING:
        summary = first_present((summary, alertname, fallback_summary)) or fingerprint
    # A resolve carries only the summary it was given: triage keeps the trigger's otherwise.
    annotations = {**(extra_annotations or {}), **alert.annotations}
    return AlertReceived(
        occurred_at=context.received_at,
        correlation_id=context.correlation_id,
        fingerprint=fingerprint,
        status=alert.status,
        integration_id=context.integration_id,
        source=source,
        service_id=context.service_id,
        alertname=clip(alertname, ALERTNAME_LIMIT),
        summary=clip(summary or "", SUMMARY_LIMIT),
        severity=clip(alert.labels["severity"], 64) if "severity" in alert.labels else None,
        labels=pairs(alert.labels),
        annotations=pairs(annotations),
        starts_at=_real_time(alert.startsAt),
        ends_at=_real_time(alert.endsAt),
        generator_url=alert.generatorURL,
    )


def normalize(
    webhook: AlertmanagerWebhook,
    *,
    integration_id: str,
    service_id: str,
    received_at: datetime,
    source: str = "alertmanager",
) -> list[AlertReceived]:
    """One message per alert; the correlation id ties a webhook's alerts together."""
    context = ParseContext(integration_id, service_id, received_at)
    return [to_message(alert, context, source=source) for alert in webhook.alerts]


def parse(document: object, context: ParseContext) -> list[AlertReceived]:
    webhook = AlertmanagerWebhook.model_validate(document)
    return [to_message(alert, context, source="alertmanager") for alert in webhook.alerts]
