"""The re-fire rule, through triage's own consumers on the embedded bus and store: an alert
still firing after a person resolved its incident opens a new incident (which pages) on its
next firing occurrence, instead of counting silently on the resolved one (issue 7, item 1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas import AlertStatus, IncidentEventKind
from tests.integration.triage_pipeline import (
    TriagePipeline,
    eventually,
    occurrence,
    resolved_by_person,
    run_pipeline,
)


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[TriagePipeline]:
    async for running in run_pipeline(tmp_path):
        yield running


async def released(pipeline: TriagePipeline, incident_id: str) -> None:
    async def resolved() -> bool:
        incident = await pipeline.store.get_incident(incident_id)
        return incident is not None and incident.status == "resolved"

    await eventually(resolved)


async def test_firing_alert_after_a_manual_resolve_opens_a_new_incident(
    pipeline: TriagePipeline,
) -> None:
    await pipeline.send_alert(occurrence("00000000000000f1"))
    (opened,) = await pipeline.wait_events(1)
    assert opened.kind is IncidentEventKind.OPENED
    first_incident = opened.incident_id

    await pipeline.send_lifecycle(resolved_by_person(first_incident))
    await released(pipeline, first_incident)
    # Alertmanager re-sends the group: the alert never stopped firing.
    await pipeline.send_alert(occurrence("00000000000000f1"))

    _, reopened = await pipeline.wait_events(2)
    assert reopened.kind is IncidentEventKind.OPENED
    assert reopened.incident_id != first_incident
    assert reopened.fingerprint == "00000000000000f1"
    assert reopened.firing_count == 1
    alert = await pipeline.store.get_alert("00000000000000f1")
    assert alert is not None
    assert (alert.incident_id, alert.count) == (reopened.incident_id, 2)


async def test_the_other_alerts_of_the_group_join_the_new_incident(
    pipeline: TriagePipeline,
) -> None:
    await pipeline.send_alert(occurrence("00000000000000a1"))
    await pipeline.send_alert(occurrence("00000000000000a2"))
    opened, _ = await pipeline.wait_events(2)
    await pipeline.send_lifecycle(resolved_by_person(opened.incident_id))
    await released(pipeline, opened.incident_id)

    await pipeline.send_alert(occurrence("00000000000000a2"))
    await pipeline.send_alert(occurrence("00000000000000a1"))
    await pipeline.send_alert(occurrence("00000000000000a1", status=AlertStatus.RESOLVED))
    await pipeline.send_alert(occurrence("00000000000000a2", status=AlertStatus.RESOLVED))

    events = await pipeline.wait_events(5)
    assert [(e.kind, e.fingerprint) for e in events[2:]] == [
        (IncidentEventKind.OPENED, "00000000000000a2"),
        (IncidentEventKind.ALERT_ADDED, "00000000000000a1"),
        (IncidentEventKind.ALERTS_RESOLVED, "00000000000000a2"),
    ]
    second = events[2].incident_id
    assert second != opened.incident_id
    assert {e.incident_id for e in events[2:]} == {second}


async def test_a_source_resolve_after_a_manual_resolve_publishes_nothing(
    pipeline: TriagePipeline,
) -> None:
    await pipeline.send_alert(occurrence("00000000000000b1"))
    (opened,) = await pipeline.wait_events(1)
    await pipeline.send_lifecycle(resolved_by_person(opened.incident_id))
    await released(pipeline, opened.incident_id)

    await pipeline.send_alert(occurrence("00000000000000b1", status=AlertStatus.RESOLVED))
    # alerts.raw is one ordered log here: an event for the resolve would come before this one.
    await pipeline.send_alert(occurrence("00000000000000c1", alertname="Marker"))

    _, after = await pipeline.wait_events(2)
    assert (after.kind, after.fingerprint) == (IncidentEventKind.OPENED, "00000000000000c1")
