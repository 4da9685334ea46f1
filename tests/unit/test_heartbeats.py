"""Heartbeats' pure rules: when a check fires or resolves, and the alert it sends."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from schemas import AlertReceived, AlertStatus
from services.ingest.domain.heartbeats import (
    Heartbeat,
    HeartbeatStatus,
    alert,
    fingerprint,
    transition,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
BEAT = Heartbeat(
    id="nightly-backup",
    service_id="checkout",
    interval=timedelta(minutes=5),
    grace=timedelta(minutes=1),
    severity="critical",
    summary=None,
    declared_at=T0,
    last_ping_at=None,
    status=HeartbeatStatus.UP,
    changed_at=None,
    version=0,
)


def test_never_pinged_counts_from_declaration() -> None:
    assert transition(BEAT, T0 + timedelta(minutes=5, seconds=59)) is None
    assert transition(BEAT, T0 + timedelta(minutes=6)) is AlertStatus.FIRING


def test_a_ping_moves_the_deadline() -> None:
    pinged = replace(BEAT, last_ping_at=T0 + timedelta(minutes=4))
    assert pinged.due_at == T0 + timedelta(minutes=10)
    assert transition(pinged, T0 + timedelta(minutes=9)) is None
    assert transition(pinged, T0 + timedelta(minutes=10)) is AlertStatus.FIRING


def test_down_stays_down_without_a_new_ping() -> None:
    down = replace(
        BEAT,
        status=HeartbeatStatus.DOWN,
        last_ping_at=T0,
        changed_at=T0 + timedelta(minutes=6),
    )
    assert transition(down, T0 + timedelta(hours=5)) is None


def test_a_ping_after_going_down_resolves() -> None:
    down = replace(
        BEAT,
        status=HeartbeatStatus.DOWN,
        last_ping_at=T0 + timedelta(minutes=7),
        changed_at=T0 + timedelta(minutes=6),
    )
    assert transition(down, T0 + timedelta(minutes=7)) is AlertStatus.RESOLVED


def test_down_without_ever_a_ping_resolves_on_the_first_one() -> None:
    down = replace(BEAT, status=HeartbeatStatus.DOWN, changed_at=T0 + timedelta(minutes=6))
    assert transition(down, T0 + timedelta(minutes=7)) is None
    pinged = replace(down, last_ping_at=T0 + timedelta(minutes=8))
    assert transition(pinged, T0 + timedelta(minutes=8)) is AlertStatus.RESOLVED


def test_firing_and_resolved_alerts_share_a_fingerprint_and_take_the_given_event_id() -> None:
    event_id = uuid.uuid4()
    firing = alert(BEAT, AlertStatus.FIRING, T0 + timedelta(minutes=6), event_id)
    resolved = alert(BEAT, AlertStatus.RESOLVED, T0 + timedelta(minutes=8), uuid.uuid4())
    assert firing.event_id == event_id
    assert firing.fingerprint == resolved.fingerprint == fingerprint(BEAT)
    assert firing.source == "heartbeat"
    assert firing.alertname == "HeartbeatMissed"
    assert firing.summary == "Heartbeat nightly-backup: no ping for 6m"
    assert firing.severity == "critical"
    assert firing.starts_at == T0 + timedelta(minutes=6)
    assert resolved.ends_at == T0 + timedelta(minutes=8)
    assert {(x.name, x.value) for x in firing.labels} >= {("heartbeat", "nightly-backup")}
    assert AlertReceived.model_validate_json(firing.model_dump_json()) == firing


def test_configured_summary_is_used() -> None:
    custom = replace(BEAT, summary="Backups stopped")
    assert alert(custom, AlertStatus.FIRING, T0, uuid.uuid4()).summary == "Backups stopped"
