"""`alerts.raw`: one normalized alert occurrence, keyed by fingerprint."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.envelope import Envelope, Label, UtcDatetime


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertReceived(Envelope):
    """A monitoring system said this alert is firing or resolved."""

    kind: Literal["alert.received"] = "alert.received"
    fingerprint: str = Field(min_length=1, max_length=256)
    dedup_key: str | None = Field(
        default=None,
        max_length=255,
        description="The sender's explicit dedup key (PagerDuty dedup_key, Datadog aggregation "
        "key, generic dedup_key); the fingerprint is derived from it and the integration.",
    )
    status: AlertStatus
    integration_id: str = Field(min_length=1, max_length=200)
    source: str = Field(
        min_length=1, max_length=64, description="Integration type, e.g. alertmanager."
    )
    service_id: str = Field(min_length=1, max_length=200)
    alertname: str = Field(max_length=1024)
    summary: str = Field(max_length=4096)
    severity: str | None = Field(default=None, max_length=64)
    labels: tuple[Label, ...] = ()
    annotations: tuple[Label, ...] = ()
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    generator_url: str | None = Field(default=None, max_length=4096)
