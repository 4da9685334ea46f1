"""Recurrence through triage's consumer on the embedded bus and store: a group that opens again
after its incident resolved is linked to it (`recurrence_of`, `recurrence_count` on the
incident's events), and counted in tocsin_incident_recurrences_total."""

from __future__ import annotations

import uuid
from pathlib import Path

from prometheus_client import REGISTRY

from schemas import AlertStatus, IncidentEventKind
from tests.integration.triage_pipeline import occurrence, run_pipeline


def recurrences(service: str) -> float:
    value = REGISTRY.get_sample_value("tocsin_incident_recurrences_total", {"service": service})
    return value or 0.0


async def test_a_group_that_opens_again_is_linked_to_its_last_incident(tmp_path: Path) -> None:
    async for pipeline in run_pipeline(tmp_path):
        before = recurrences("checkout")
        first = occurrence("00000000000000f1")
        await pipeline.send_alert(first)
        (opened,) = await pipeline.wait_events(1)
        assert (opened.recurrence_of, opened.recurrence_count) == (None, 0)
        await pipeline.send_alert(occurrence("00000000000000f1", status=AlertStatus.RESOLVED))
        await pipeline.wait_events(2)
        # Firing again opens a new incident of the same group: a recurrence of the first.
        refire = first.model_copy(update={"event_id": uuid.uuid4()})
        await pipeline.send_alert(refire)
        events = await pipeline.wait_events(3)
        again = events[2]
        assert again.kind is IncidentEventKind.OPENED
        assert again.incident_id != opened.incident_id
        assert (again.recurrence_of, again.recurrence_count) == (opened.incident_id, 1)
        assert recurrences("checkout") == before + 1
        # A redelivery of the opener says the same again, and counts nothing twice.
        await pipeline.send_alert(refire)
        redelivered = (await pipeline.wait_events(4))[3]
        assert (redelivered.event_id, redelivered.recurrence_of) == (
            again.event_id,
            opened.incident_id,
        )
        assert recurrences("checkout") == before + 1
