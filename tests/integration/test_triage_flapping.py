"""Flapping through triage's consumer on the embedded bus and store: an alert that changes
firing <-> resolved too often keeps its incident open (flagged `flapping`), its flaps page
nobody (no resolve, no new incident), each says `flapping`; once quiet, it resolves as usual."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta
from pathlib import Path

from prometheus_client import REGISTRY

from schemas import AlertReceived, AlertStatus, IncidentEventKind
from services.triage.config import FlappingConfig, TriageConfig
from services.triage.store import AlertFilter, TriageStore
from tests.integration.triage_pipeline import T0, eventually, occurrence, run_pipeline

CONFIG = TriageConfig(
    flapping=FlappingConfig(
        transitions=2, window=timedelta(minutes=30), quiet=timedelta(minutes=30)
    )
)
FINGERPRINT = "00000000000000a7"


def at(minutes: float, status: AlertStatus) -> AlertReceived:
    return occurrence(FINGERPRINT, status=status).model_copy(
        update={"event_id": uuid.uuid4(), "occurred_at": T0 + timedelta(minutes=minutes)}
    )


async def resolved_now(store: TriageStore) -> bool:
    [alert] = await store.list_alerts(AlertFilter(fingerprint=FINGERPRINT), None, 1)
    return alert.status is AlertStatus.RESOLVED


def flapping_total() -> float:
    value = REGISTRY.get_sample_value(
        "tocsin_alerts_total", {"service": "checkout", "outcome": "flapping"}
    )
    return value or 0.0


async def test_a_flapping_alert_keeps_its_incident_open_and_pages_nobody(tmp_path: Path) -> None:
    firing, resolved = AlertStatus.FIRING, AlertStatus.RESOLVED
    async for pipeline in run_pipeline(tmp_path, CONFIG):
        before = flapping_total()
        # Two changes: not flapping yet; the resolve closes the incident as usual.
        await pipeline.send_alert(at(0, firing))
        await pipeline.send_alert(at(1, resolved))
        first, closed = await pipeline.wait_events(2)
        assert (first.kind, closed.kind) == (
            IncidentEventKind.OPENED,
            IncidentEventKind.ALERTS_RESOLVED,
        )
        await pipeline.send_alert(at(2, firing))  # a third change: a new incident, paged
        second = (await pipeline.wait_events(3))[2]
        assert second.kind is IncidentEventKind.OPENED
        assert not second.flapping
        # More changes within the window: flapping. The resolve keeps the incident open, the
        # firing stays in it (no new incident), and says so.
        await pipeline.send_alert(at(3, resolved))
        await pipeline.send_alert(at(4, firing))
        flap = (await pipeline.wait_events(4))[3]
        assert (flap.kind, flap.incident_id, flap.flapping) == (
            IncidentEventKind.ALERT_ADDED,
            second.incident_id,
            True,
        )
        await pipeline.send_alert(at(5, resolved))

        await eventually(functools.partial(resolved_now, pipeline.store))
        [stored] = await pipeline.store.list_alerts(AlertFilter(fingerprint=FINGERPRINT), None, 1)
        assert stored.decision == "flapping"
        assert stored.flapping_since == T0 + timedelta(minutes=3)
        assert stored.incident_id == second.incident_id
        incident = await pipeline.store.get_incident(second.incident_id)
        assert incident is not None
        assert (incident.status, incident.flapping) == ("open", True)
        assert len(pipeline.events) == 4
        assert flapping_total() == before + 3
        # Quiet for the quiet period: the alert, resolved all along, resolves its incident.
        await pipeline.send_alert(at(40, resolved))
        last = (await pipeline.wait_events(5))[4]
        assert (last.kind, last.incident_id, last.flapping) == (
            IncidentEventKind.ALERTS_RESOLVED,
            second.incident_id,
            False,
        )
        [stored] = await pipeline.store.list_alerts(AlertFilter(fingerprint=FINGERPRINT), None, 1)
        assert stored.flapping_since is None
