"""Flapping through triage's consumer on the embedded bus and store: an alert that changes
firing <-> resolved too often keeps its incident open (flagged `flapping`), its flaps page
nobody (no resolve, no new incident), each says `flapping`; once quiet, it resolves as usual."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from schemas import ALERTS_RAW, AlertReceived, AlertStatus, IncidentEventKind
from services.triage.config import FlappingConfig, TriageConfig
from services.triage.domain import AlertContent
from services.triage.quiet import QuietSweep
from services.triage.quiet import occurrence as quiet_occurrence
from services.triage.store import AlertFilter, QuietFlapping, TriageStore
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


async def test_a_flapping_alert_quiet_while_resolved_resolves_its_incident_by_the_sweep(
    tmp_path: Path,
) -> None:
    # The alert flaps, then stays resolved: no occurrence of it comes any more. The sweep
    # finds it once the quiet period passed, and its incident resolves (paged to nobody).
    firing, resolved = AlertStatus.FIRING, AlertStatus.RESOLVED
    clock = SettableClock(T0)
    async for pipeline in run_pipeline(tmp_path, CONFIG, clock):
        sweep = QuietSweep(pipeline.bus, pipeline.store, CONFIG, clock)
        for minute, status in enumerate([firing, resolved, firing, resolved, firing, resolved]):
            await pipeline.send_alert(at(minute, status))
        opened = (await pipeline.wait_events(3))[2]
        await eventually(functools.partial(resolved_now, pipeline.store))
        [stored] = await pipeline.store.list_alerts(AlertFilter(fingerprint=FINGERPRINT), None, 1)
        assert stored.flapping_since is not None
        clock.now_is = T0 + timedelta(minutes=34)  # 29 minutes after its last change
        assert await sweep.sweep() == 0
        clock.now_is = T0 + timedelta(minutes=35)
        assert await sweep.sweep() == 1
        closed = (await pipeline.wait_events(5))[4]
        assert (closed.kind, closed.incident_id, closed.flapping) == (
            IncidentEventKind.ALERTS_RESOLVED,
            opened.incident_id,
            False,
        )
        incident = await pipeline.store.get_incident(opened.incident_id)
        assert incident is not None
        assert (incident.status, incident.flapping) == ("resolved", False)
        [stored] = await pipeline.store.list_alerts(AlertFilter(fingerprint=FINGERPRINT), None, 1)
        assert stored.flapping_since is None
        # Recorded: the next sweep finds nothing, and a repeated publish changes nothing.
        assert await sweep.sweep() == 0
        await pipeline.bus.publish(
            ALERTS_RAW,
            FINGERPRINT,
            quiet_occurrence(
                QuietFlapping(
                    FINGERPRINT,
                    None,
                    T0,
                    "prom",
                    "alertmanager",
                    "checkout",
                    AlertContent("x", "x", None, (), (), None),
                ),
                clock.now_is,
            ),
        )
        await pipeline.send_alert(at(36, resolved))
        await eventually(functools.partial(resolved_now, pipeline.store))
        await asyncio.sleep(0.2)
        assert len(pipeline.events) == 5


class SettableClock:
    def __init__(self, now: datetime) -> None:
        self.now_is = now

    def now(self) -> datetime:
        return self.now_is


async def test_an_alert_the_contract_no_longer_takes_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    firing, resolved = AlertStatus.FIRING, AlertStatus.RESOLVED
    clock = SettableClock(T0)
    async for pipeline in run_pipeline(tmp_path, CONFIG, clock):
        sweep = QuietSweep(pipeline.bus, pipeline.store, CONFIG, clock)
        for minute, status in enumerate([firing, resolved, firing, resolved, firing, resolved]):
            await pipeline.send_alert(at(minute, status))
        await pipeline.wait_events(3)
        await eventually(functools.partial(resolved_now, pipeline.store))
        # Stored when a limit was looser: no valid message can be made of it any more.
        await pipeline.database["triage_alerts"].update_one(
            {"_id": FINGERPRINT}, {"$set": {"summary": "x" * 5000}}
        )
        clock.now_is = T0 + timedelta(minutes=35)
        with caplog.at_level(logging.ERROR, logger="services.triage.retriage"):
            assert await sweep.sweep() == 0
        assert f"alert {FINGERPRINT} skipped" in caplog.text
