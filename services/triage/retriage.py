"""The occurrence a sweep publishes to triage a stored alert again (the unsilence sweep: held
alerts nothing holds any more; the quiet sweep: resolved alerts quiet after flapping), made
from what the alert's document holds. Its event id derives from the alert's last occurrence, so
replicas sweeping at once publish the same one and the consumer dedupes them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

from schemas import AlertReceived, AlertStatus
from services.triage.domain import AlertContent
from services.triage.domain.ids import retriage_event_id

log = logging.getLogger(__name__)


class StoredAlert(Protocol):
    @property
    def fingerprint(self) -> str: ...
    @property
    def last_event_id(self) -> uuid.UUID | None: ...
    @property
    def integration_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def service_id(self) -> str: ...
    @property
    def content(self) -> AlertContent: ...


def retriage_occurrence(
    alert: StoredAlert, now: datetime, status: AlertStatus, correlation_id: str
) -> AlertReceived:
    content = alert.content
    return AlertReceived(
        event_id=retriage_event_id(alert.fingerprint, alert.last_event_id),
        occurred_at=now,
        correlation_id=correlation_id[:200],
        fingerprint=alert.fingerprint,
        status=status,
        integration_id=alert.integration_id,
        source=alert.source,
        service_id=alert.service_id,
        alertname=content.alertname,
        summary=content.summary,
        severity=content.severity,
        labels=content.labels,
        annotations=content.annotations,
        generator_url=content.generator_url,
    )


def valid_or_none(
    sweep: str, alert: StoredAlert, make: Callable[[], AlertReceived]
) -> AlertReceived | None:
    """`make()`, or None (logged) when the stored alert no longer makes a valid message (e.g. a
    contract limit tightened since it was stored): one such alert must not end the sweep,
    which would stop the process, on every replica, at every start."""
    try:
        return make()
    except ValidationError as error:
        log.error(
            "%s: alert %s skipped: %d contract error(s)",
            sweep,
            alert.fingerprint,
            error.error_count(),
        )
        return None
