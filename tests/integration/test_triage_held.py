"""An alert triage holds back shows on the timeline of the open incident it relates to: an
inhibited alert on its source alert's incident (`alert_held`, with triage's decision)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from schemas import AlertReceived, IncidentEventKind, Label
from services.triage.config import InhibitRuleConfig, TriageConfig
from services.triage.domain.ids import held_event_id
from tests.integration.triage_pipeline import (
    T0,
    TriagePipeline,
    eventually,
    occurrence,
    run_pipeline,
)

CONFIG = TriageConfig(
    inhibit_rules=(
        InhibitRuleConfig(
            source_matchers=('alertname="DatacenterDown"',),
            target_matchers=('alertname="InstanceDown"',),
            equal=("dc",),
        ),
    ),
)


class FakeClock:
    def now(self) -> datetime:
        return T0


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[TriagePipeline]:
    async for running in run_pipeline(tmp_path, CONFIG, FakeClock()):
        yield running


def _named(alertname: str, fingerprint: str, minutes: int, **labels: str) -> AlertReceived:
    base = occurrence(fingerprint, labels={"alertname": alertname, **labels})
    return base.model_copy(
        update={
            "occurred_at": T0 + timedelta(minutes=minutes),
            "alertname": alertname,
            "labels": tuple(
                Label(name=n, value=v)
                for n, v in sorted({**labels, "alertname": alertname}.items())
            ),
        }
    )


async def test_an_inhibited_alert_is_held_on_its_sources_incident(
    pipeline: TriagePipeline,
) -> None:
    await pipeline.send_alert(_named("DatacenterDown", "00000000000000f0", 0, dc="east"))
    target = _named("InstanceDown", "00000000000000f1", 1, dc="east")
    await pipeline.send_alert(target)
    opened, held = await pipeline.wait_events(2)
    assert opened.kind is IncidentEventKind.OPENED
    assert held.kind is IncidentEventKind.ALERT_HELD
    assert held.incident_id == opened.incident_id
    assert held.event_id == held_event_id(target.event_id)
    assert held.fingerprint == "00000000000000f1"
    assert held.alert is not None
    assert held.alert.fingerprint == "00000000000000f1"
    assert held.held == "inhibited by alert 00000000000000f0 (inhibit_rules[0])"
    assert held.severity is opened.severity  # the incident as it is, unchanged
    assert held.alert_count == opened.alert_count == 1


async def test_no_event_when_no_incident_relates(pipeline: TriagePipeline) -> None:
    # The source is silenced: it inhibits, but is in no incident.
    app = FastAPI()
    app.include_router(pipeline.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://triage") as http:
        body = {
            "matchers": [{"name": "alertname", "value": "DatacenterDown", "isRegex": False}],
            "startsAt": (T0 - timedelta(hours=1)).isoformat(),
            "endsAt": (T0 + timedelta(hours=1)).isoformat(),
            "createdBy": "alice",
            "comment": "planned",
        }
        created = await http.post("/api/v1/silences", json=body)
        assert created.status_code == 200, created.text
    await pipeline.send_alert(_named("DatacenterDown", "00000000000000f0", 0, dc="east"))
    await pipeline.send_alert(_named("InstanceDown", "00000000000000f1", 1, dc="east"))

    async def recorded() -> bool:
        return await pipeline.store.get_alert("00000000000000f1") is not None

    await eventually(recorded)
    await pipeline.send_alert(_named("InstanceDown", "00000000000000f2", 2, dc="west"))
    (only,) = await pipeline.wait_events(1)
    assert only.fingerprint == "00000000000000f2"
    await asyncio.sleep(0.2)
    assert [e.kind for e in pipeline.events] == [IncidentEventKind.OPENED]
