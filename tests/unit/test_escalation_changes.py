"""An incident's changes (deploys before it opened, filled by triage) are kept by escalation
and shown by `GET /api/v1/incidents/{id}`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from schemas import ChangeLink, ChangeSummary, NotificationEvent
from services.escalation.domain.outbox import SendNotification
from services.escalation.pages import page_request
from tests.unit.escalation_harness import T0, config, incident_event, rig
from tests.unit.test_escalation_api import Api, serving


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with rig(tmp_path, config()) as r, serving(r) as client:
        yield Api(r, client)


async def test_the_incident_shows_the_changes_before_it_opened(api: Api) -> None:
    deploy = ChangeSummary(
        summary="deployed checkout",
        at=T0 - timedelta(minutes=4),
        source="argo",
        version="v2.3.1",
        links=(ChangeLink(href="https://ci.example/runs/42", text="run 42"),),
    )
    opened = incident_event().model_copy(update={"changes": (deploy,)})
    await api.rig.engine.on_incident_event(opened)
    body = (await api.get("/api/v1/incidents/inc-1")).json()
    (shown,) = body["changes"]
    assert ChangeSummary.model_validate(shown) == deploy
    assert shown["links"] == [{"href": "https://ci.example/runs/42", "text": "run 42"}]


async def test_an_incident_without_changes_shows_none(api: Api) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    assert (await api.get("/api/v1/incidents/inc-1")).json()["changes"] == []


async def test_pages_carry_the_changes_and_the_opening_time(api: Api) -> None:
    deploy = ChangeSummary(summary="deployed checkout", at=T0 - timedelta(minutes=4))
    await api.rig.engine.on_incident_event(
        incident_event().model_copy(update={"changes": (deploy,)})
    )
    incident = await api.rig.store.get("inc-1")
    assert incident is not None
    send = SendNotification(
        id="send-1",
        notification_id="inc-1/c0/s0/alice/alice-hook",
        user_id="alice",
        contact_id="alice-hook",
        escalation_level=0,
        event=NotificationEvent.TRIGGERED,
    )
    snapshot = page_request(incident, send, T0, None).incident
    assert snapshot.changes == (deploy,)
    assert snapshot.opened_at == incident.opened_at
