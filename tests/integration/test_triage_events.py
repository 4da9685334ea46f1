"""What triage publishes on `incidents.events`, through its consumers on the embedded bus and
store: the alert behind each event (issue 7, item 12) and severity changes with their reasons
(issue 8)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas import AlertStatus, IncidentEventKind, Label, Severity
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


async def test_a_more_severe_alert_raises_the_incident_with_its_reasons(
    pipeline: TriagePipeline,
) -> None:
    await pipeline.send_alert(occurrence("00000000000000e1", severity="warning"))
    critical = occurrence("00000000000000e2", severity="critical")
    await pipeline.send_alert(critical)
    await pipeline.send_alert(occurrence("00000000000000e3", severity="info"))

    opened, added, changed, minor = await pipeline.wait_events(4)
    assert (opened.kind, opened.severity) == (IncidentEventKind.OPENED, Severity.SEV2)
    assert opened.severity_reasons == ("sender severity 'warning' maps to SEV2",)
    assert (added.kind, added.severity, added.fingerprint) == (
        IncidentEventKind.ALERT_ADDED,
        Severity.SEV1,
        "00000000000000e2",
    )
    assert changed.kind is IncidentEventKind.SEVERITY_CHANGED
    assert (changed.incident_id, changed.severity, changed.fingerprint) == (
        opened.incident_id,
        Severity.SEV1,
        "00000000000000e2",
    )
    assert changed.severity_reasons == (
        "sender severity 'critical' maps to SEV1",
        "raised from SEV2 by a later alert",
    )
    assert changed.alert is not None
    assert changed.alert.fingerprint == "00000000000000e2"
    # A less severe alert joins without lowering anything.
    assert (minor.kind, minor.severity) == (IncidentEventKind.ALERT_ADDED, Severity.SEV1)
    assert minor.severity_reasons == changed.severity_reasons

    # The raising message delivered again: the same two events, with the same ids.
    await pipeline.send_alert(critical)
    again = (await pipeline.wait_events(6))[4:]
    assert [(e.kind, e.event_id) for e in again] == [
        (added.kind, added.event_id),
        (changed.kind, changed.event_id),
    ]
