"""Tocsin's generic JSON format, for scripts and tools without a native one (pure).

One alert, or `{"alerts": [...]}` for several:

    {"summary": "Disk 95% full on db-1", "status": "firing", "severity": "warning",
     "dedup_key": "db-1/disk", "labels": {"alertname": "DiskFull", "host": "db-1"},
     "annotations": {"runbook": "https://..."},
     "links": [{"href": "https://grafana/d/disk", "text": "dashboard"}]}

Only `summary` is required. Identity: `dedup_key` if given, else the label set's fingerprint,
else the summary (as a dedup key). Send `"status": "resolved"` with the same identity to
resolve; a resolve identified by `dedup_key` or labels may leave `summary` out, and what it
leaves out keeps the trigger's value. The alert name (used for grouping) is
`labels.alertname`, else the summary.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from schemas import AlertReceived, AlertStatus
from services.ingest.domain.formats.common import (
    ALERTNAME_LIMIT,
    URL_LIMIT,
    LabelMap,
    Lenient,
    ParseContext,
    Text,
    clip,
    dedup_fingerprint,
    label_fingerprint,
    pairs,
)


class GenericLink(Lenient):
    href: Text = Field(min_length=1, max_length=URL_LIMIT)
    text: Text | None = Field(default=None, max_length=1024)


class GenericAlert(Lenient):
    status: AlertStatus = AlertStatus.FIRING
    severity: Text | None = Field(default=None, max_length=64)
    dedup_key: Text | None = Field(default=None, min_length=1, max_length=255)
    labels: LabelMap = Field(default_factory=dict)
    annotations: LabelMap = Field(default_factory=dict)
    links: list[GenericLink] = Field(default_factory=list, max_length=100)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    # Last, so that its validator sees the identity fields.
    summary: Text | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        validate_default=True,
        description="Required, except on a resolve identified by `dedup_key` or `labels`.",
    )

    @field_validator("summary")
    @classmethod
    def _summary_unless_resolving_by_identity(
        cls, summary: str | None, info: ValidationInfo
    ) -> str | None:
        resolving_by_identity = info.data.get("status") is AlertStatus.RESOLVED and (
            info.data.get("dedup_key") is not None or bool(info.data.get("labels"))
        )
        if summary is None and not resolving_by_identity:
            raise PydanticCustomError("missing", "Field required")
        return summary


class GenericBatch(Lenient):
    alerts: list[GenericAlert] = Field(max_length=10_000)


def _to_message(alert: GenericAlert, context: ParseContext) -> AlertReceived:
    summary = alert.summary or ""  # empty only on a resolve by identity (see GenericAlert)
    if alert.dedup_key is not None:
        dedup_key: str | None = alert.dedup_key
        fingerprint = dedup_fingerprint(context.integration_id, alert.dedup_key)
    elif alert.labels:
        dedup_key, fingerprint = None, label_fingerprint(alert.labels)
    else:
        dedup_key = clip(summary, 255)
        fingerprint = dedup_fingerprint(context.integration_id, dedup_key)
    labels = dict(alert.labels)
    if alert.severity is not None:
        labels.setdefault("severity", alert.severity)
    annotations = {f"link:{link.text or n}": link.href for n, link in enumerate(alert.links)}
    annotations.update(alert.annotations)
    return AlertReceived(
        occurred_at=context.received_at,
        correlation_id=context.correlation_id,
        fingerprint=fingerprint,
        dedup_key=dedup_key,
        status=alert.status,
        integration_id=context.integration_id,
        source="generic",
        service_id=context.service_id,
        alertname=clip(alert.labels.get("alertname") or summary, ALERTNAME_LIMIT),
        summary=summary,
        severity=alert.severity or (clip(s, 64) if (s := labels.get("severity")) else None),
        labels=pairs(labels),
        annotations=pairs(annotations),
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        generator_url=alert.links[0].href if alert.links else None,
    )


def parse(document: object, context: ParseContext) -> list[AlertReceived]:
    if isinstance(document, dict) and "alerts" in document:
        alerts = GenericBatch.model_validate(document).alerts
    else:
        alerts = [GenericAlert.model_validate(document)]
    return [_to_message(alert, context) for alert in alerts]
