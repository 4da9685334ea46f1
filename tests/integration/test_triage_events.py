"""What triage publishes on `incidents.events`, through its consumers on the embedded bus and
store: the alert behind each event (issue 7, item 12) and severity changes with their reasons
(issue 8)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas import AlertStatus, IncidentEventKind, Label
from tests.integration.triage_pipeline import TriagePipeline, occurrence, run_pipeline


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[TriagePipeline]:
    async for running in run_pipeline(tmp_path):
        yield running


async def test_every_event_carries_the_alert_behind_it(pipeline: TriagePipeline) -> None:
    await pipeline.send_alert(
        occurrence(
            "00000000000000d1",
            summary="Disk 95% full on db-1",
            labels={"alertname": "CheckoutErrors", "instance": "db-1"},
            annotations={"runbook_url": "https://runbooks.example/disk", "team": "storage"},
            generator_url="https://prometheus.example/graph?g0.expr=disk",
        )
    )
    # The source resolves it by identity alone: the event still says what the alert was.
    resolve = occurrence("00000000000000d1", status=AlertStatus.RESOLVED)
    await pipeline.send_alert(resolve.model_copy(update={"summary": "", "labels": ()}))

    opened, resolved = await pipeline.wait_events(2)
    assert (opened.kind, resolved.kind) == (
        IncidentEventKind.OPENED,
        IncidentEventKind.ALERTS_RESOLVED,
    )
    for event in (opened, resolved):
        assert event.alert is not None
        assert event.alert.fingerprint == "00000000000000d1"
        assert event.alert.summary == "Disk 95% full on db-1"
        assert event.alert.labels == (
            Label(name="alertname", value="CheckoutErrors"),
            Label(name="instance", value="db-1"),
        )
        assert Label(name="team", value="storage") in event.alert.annotations
        assert event.alert.generator_url == "https://prometheus.example/graph?g0.expr=disk"
        assert event.alert.runbook_url == "https://runbooks.example/disk"
