"""The incidents API over the escalation engine on the embedded adapters: filters, the cursor,
and what an incident shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from schemas import IncidentEventKind, Severity
from services.escalation.api import router
from tests.unit.escalation_harness import T0, Rig, config, incident_event, rig

MIN = timedelta(minutes=1)


@dataclass
class Api:
    rig: Rig
    client: httpx.AsyncClient

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with rig(tmp_path, config()) as r:
        app = FastAPI()
        app.include_router(router(r.engine, r.store, lambda: "ops"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
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
