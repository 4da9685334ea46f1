"""Heartbeats (pure): a job pings at least every `interval` (+ `grace`); a missed ping is an
alert through the normal path, the next ping resolves it.

State per heartbeat is `up` or `down`. `transition(state, now)` says whether a check at `now`
must fire (up, and the deadline passed) or resolve (down, and a ping came after it went down).
A heartbeat counts from when it was declared, so a job that never runs is noticed too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from schemas import AlertReceived, AlertStatus
from services.ingest.domain.formats.common import label_fingerprint, pairs
from tocsin.runtime.durations import format_duration

SOURCE = "heartbeat"
ALERTNAME = "HeartbeatMissed"


class HeartbeatStatus(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Heartbeat:
    """A declared heartbeat (from the config) and its last known state."""

    id: str
    service_id: str
    interval: timedelta
    grace: timedelta
    severity: str
    summary: str | None
    declared_at: datetime
    last_ping_at: datetime | None
    status: HeartbeatStatus
    changed_at: datetime | None
    version: int

    @property
    def due_at(self) -> datetime:
        return (self.last_ping_at or self.declared_at) + self.interval + self.grace


def transition(heartbeat: Heartbeat, now: datetime) -> AlertStatus | None:
    if heartbeat.status is HeartbeatStatus.UP:
        return AlertStatus.FIRING if now >= heartbeat.due_at else None
    pinged_since_down = heartbeat.last_ping_at is not None and (
        heartbeat.changed_at is None or heartbeat.last_ping_at > heartbeat.changed_at
    )
    return AlertStatus.RESOLVED if pinged_since_down else None


def labels(heartbeat: Heartbeat) -> dict[str, str]:
    return {"alertname": ALERTNAME, "heartbeat": heartbeat.id, "service": heartbeat.service_id}


def fingerprint(heartbeat: Heartbeat) -> str:
    return label_fingerprint(labels(heartbeat))


def alert(
    heartbeat: Heartbeat, status: AlertStatus, now: datetime, event_id: uuid.UUID
) -> AlertReceived:
    """The message for a transition; `event_id` is stored first, so a re-publish is the same."""
    overdue = format_duration(heartbeat.interval + heartbeat.grace)
    summary = heartbeat.summary or f"Heartbeat {heartbeat.id}: no ping for {overdue}"
    annotations = (
        {"last_ping_at": heartbeat.last_ping_at.isoformat()} if heartbeat.last_ping_at else {}
    )
    return AlertReceived(
        event_id=event_id,
        occurred_at=now,
        correlation_id=f"heartbeat:{heartbeat.id}:{event_id}",
        fingerprint=fingerprint(heartbeat),
        status=status,
        integration_id=heartbeat.id,
        source=SOURCE,
        service_id=heartbeat.service_id,
        alertname=ALERTNAME,
        summary=summary,
        severity=heartbeat.severity,
        labels=pairs({**labels(heartbeat), "severity": heartbeat.severity}),
        annotations=pairs(annotations),
        starts_at=heartbeat.due_at if status is AlertStatus.FIRING else None,
        ends_at=now if status is AlertStatus.RESOLVED else None,
    )
