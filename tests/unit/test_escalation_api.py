"""The incidents API as the escalation service builds it, on the embedded bus and store:
filters, the cursor, what an incident shows, and responders' actions through
`incidents.commands` (applied by the service's own consumer)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from schemas import (
    INCIDENTS_COMMANDS,
    CommandKind,
    IncidentCommand,
    IncidentEventKind,
    LifecycleStatus,
    Severity,
)
from services.escalation.api import router
from services.escalation.app import build
from tests.unit.escalation_harness import T0, Rig, config, incident_event, lifecycle_changes, rig
from tocsin.composition.config import TocsinConfig

MIN = timedelta(minutes=1)


@dataclass
class Api:
    rig: Rig
    client: httpx.AsyncClient

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params)


@contextlib.asynccontextmanager
async def serving(r: Rig, *, consume: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The service's routes, and (unless `consume` is off) its consumers running."""
    service = build(
        r.bus,
        r.store,
        r.live.view(TocsinConfig.escalation),
        r.clock,
        lambda: "ops",
        instance_id="api",
        oncall=r.oncall,
    )
    app = FastAPI()
    app.include_router(service.router)
    tasks = [asyncio.create_task(r.bus.consume(s)) for s in service.subscriptions if consume]
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
            yield client
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with rig(tmp_path, config()) as r, serving(r) as client:
        yield Api(r, client)


async def open_incidents(api: Api) -> list[str]:
    """Ten incidents one minute apart: services checkout/search alternate, SEV1 then SEV3."""
    ids = []
    for n in range(10):
        incident_id = f"inc-{n:02d}"
        await api.rig.engine.on_incident_event(
            incident_event(
                incident_id=incident_id,
                service="checkout" if n % 2 == 0 else "search",
                severity=Severity.SEV1 if n < 5 else Severity.SEV3,
            )
        )
        api.rig.clock.advance(MIN)
        ids.append(incident_id)
    return ids


async def all_pages(api: Api, **params: Any) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await api.get("/api/v1/incidents", **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"incidents", "next_cursor"}
        seen.extend(i["id"] for i in body["incidents"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


async def test_list_pages_newest_first_through_every_incident_once(api: Api) -> None:
    ids = await open_incidents(api)
    seen, pages = await all_pages(api, limit=3)
    assert seen == ids[::-1]
    assert pages == 4


async def test_list_filters_by_service_severity_and_status(api: Api) -> None:
    ids = await open_incidents(api)
    await api.rig.engine.on_incident_event(
        incident_event(IncidentEventKind.ALERTS_RESOLVED, incident_id="inc-02", firing=0)
    )
    checkout, _ = await all_pages(api, service="checkout", limit=2)
    assert checkout == ["inc-08", "inc-06", "inc-04", "inc-02", "inc-00"]
    sev3_search, _ = await all_pages(api, service="search", severity="SEV3")
    assert sev3_search == ["inc-09", "inc-07", "inc-05"]
    resolved, _ = await all_pages(api, status="resolved")
    assert resolved == ["inc-02"]
    triggered_checkout_sev1, _ = await all_pages(
        api, status="triggered", service="checkout", severity="SEV1", limit=1
    )
    assert triggered_checkout_sev1 == ["inc-04", "inc-00"]
    assert len(ids) == 10


async def test_a_page_is_stable_while_new_incidents_open(api: Api) -> None:
    await open_incidents(api)
    first = (await api.get("/api/v1/incidents", limit=4)).json()
    await api.rig.engine.on_incident_event(incident_event(incident_id="inc-new"))
    second = (await api.get("/api/v1/incidents", limit=4, cursor=first["next_cursor"])).json()
    assert [i["id"] for i in second["incidents"]] == ["inc-05", "inc-04", "inc-03", "inc-02"]


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-base64!"},
        {"cursor": "eyJ4IjoxfQ"},  # {"x":1}
        {"cursor": "eyJhZnRlciI6MX0"},  # {"after":1}
        {"severity": "SEV9"},
        {"status": "snoozed"},
        {"limit": 0},
        {"limit": 501},
    ],
)
async def test_bad_list_parameters_are_refused(api: Api, params: dict[str, Any]) -> None:
    response = await api.get("/api/v1/incidents", **params)
    assert response.status_code in (400, 422), response.text


async def test_incident_shows_who_acknowledged_and_its_timeline(api: Api) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    api.rig.clock.advance(MIN)
    acked = await api.client.post("/api/v1/incidents/inc-1/acknowledge")
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_at"] == (T0 + MIN).isoformat().replace("+00:00", "Z")
    assert body["acknowledged_by"] == "api:ops"
    assert (body["resolved_at"], body["resolved_by"]) == (None, None)
    assert [e["action"] for e in body["timeline"]] == [
        "triggered",
        "paged",
        "acknowledge",
        "notified",
    ]
    paged = body["timeline"][1]
    assert {k: paged[k] for k in ("user_id", "contact_id", "escalation_level", "event")} == {
        "user_id": "alice",
        "contact_id": "alice-hook",
        "escalation_level": 0,
        "event": "incident.triggered",
    }
    listed = (await api.get("/api/v1/incidents")).json()["incidents"]
    assert listed[0]["acknowledged_by"] == "api:ops"
    assert "timeline" not in listed[0]


# -- responders' actions go through incidents.commands ---------------------------------------


async def test_acknowledge_is_applied_by_the_command_consumer_once(api: Api) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    acked = await api.client.post("/api/v1/incidents/inc-1/acknowledge")
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    commands = api.rig.bus.of(INCIDENTS_COMMANDS, IncidentCommand)
    assert [(c.command, c.actor, c.via) for c in commands] == [
        (CommandKind.ACKNOWLEDGE, "api:ops", "api")
    ]
    again = await api.client.post("/api/v1/incidents/inc-1/acknowledge")
    assert again.status_code == 200
    assert [c.status for c in lifecycle_changes(api.rig)] == [LifecycleStatus.ACKNOWLEDGED]


async def test_acknowledge_with_snooze_and_escalate(api: Api) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    snoozed = await api.client.post("/api/v1/incidents/inc-1/acknowledge", json={"snooze": "30m"})
    assert snoozed.status_code == 200, snoozed.text
    body = snoozed.json()
    assert body["status"] == "acknowledged"
    assert body["snoozed_until"] == (T0 + 30 * MIN).isoformat().replace("+00:00", "Z")
    (command,) = api.rig.bus.of(INCIDENTS_COMMANDS, IncidentCommand)
    assert (command.command, command.snooze_seconds) == (CommandKind.SNOOZE, 1800)

    escalated = await api.client.post("/api/v1/incidents/inc-1/escalate")
    assert escalated.status_code == 200, escalated.text
    assert escalated.json()["status"] == "triggered"
    assert escalated.json()["responders"] == ["alice", "bob"]
    refused = await api.client.post("/api/v1/incidents/inc-1/escalate")
    assert refused.status_code == 409
    assert "every level" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"snooze": "soon"}, 422),
        ({"snooze": "0s"}, 422),
        ({"snooze": "1500ms"}, 422),
        ({"snooze": "8d"}, 422),
        ({"snoze": "30m"}, 422),
    ],
)
async def test_bad_snooze_is_refused_and_changes_nothing(
    api: Api, body: dict[str, Any], status: int
) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    response = await api.client.post("/api/v1/incidents/inc-1/acknowledge", json=body)
    assert response.status_code == status, response.text
    assert api.rig.bus.of(INCIDENTS_COMMANDS, IncidentCommand) == []


async def test_actions_on_unknown_or_resolved_incidents_are_refused_at_once(api: Api) -> None:
    assert (await api.client.post("/api/v1/incidents/nope/resolve")).status_code == 404
    await api.rig.engine.on_incident_event(incident_event())
    assert (await api.client.post("/api/v1/incidents/inc-1/resolve")).status_code == 200
    for action in ("acknowledge", "escalate"):
        response = await api.client.post(f"/api/v1/incidents/inc-1/{action}")
        assert response.status_code == 409
        assert "resolved" in response.json()["detail"]
    assert len(api.rig.bus.of(INCIDENTS_COMMANDS, IncidentCommand)) == 1


async def test_without_a_running_consumer_the_command_is_accepted_and_applied_later(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, config()) as r:
        await r.engine.on_incident_event(incident_event())
        service = build(
            r.bus,
            r.store,
            r.live.view(TocsinConfig.escalation),
            r.clock,
            lambda: "ops",
            instance_id="api",
            oncall=r.oncall,
        )
        app = FastAPI()
        app.include_router(router(r.engine, r.store, lambda: "ops", command_wait_seconds=0.1))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
            accepted = await client.post("/api/v1/incidents/inc-1/acknowledge")
            assert accepted.status_code == 202, accepted.text
            body = accepted.json()
            assert (body["incident_id"], body["status"]) == ("inc-1", "pending")
            status_url = f"/api/v1/incidents/inc-1/commands/{body['command_id']}"
            assert (await client.get(status_url)).json()["status"] == "pending"

            (commands,) = [s for s in service.subscriptions if s.topic == INCIDENTS_COMMANDS]
            consumer = asyncio.create_task(r.bus.consume(commands))
            try:
                for _ in range(200):
                    if (await client.get(status_url)).json()["status"] != "pending":
                        break
                    await asyncio.sleep(0.01)
            finally:
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)
            assert (await client.get(status_url)).json()["status"] == "applied"
            shown = (await client.get("/api/v1/incidents/inc-1")).json()
            assert shown["status"] == "acknowledged"
