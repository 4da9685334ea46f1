"""The on-call API as the escalation service builds it, on the embedded store with the
injected clock: schedules, who is on call and why, the final timeline, overrides through the
API, who is on call now for every service, and the per-user calendar feed behind its token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from icalendar import Calendar

from services.escalation.app import build
from tests.unit.escalation_harness import T0, Rig, oncall_config, rig
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.http import ApiKeys, api_key_dependency, token_digest

MIN = timedelta(minutes=1)
AUTH = {"Authorization": "Bearer ops-key"}

# T0 is 11:00 in Berlin; the daily layer hands alice's turn to bob at 11:05.
PRIMARY: dict[str, Any] = {
    "id": "primary",
    "name": "Checkout primary",
    "time_zone": "Europe/Berlin",
    "layers": [
        {
            "name": "daily",
            "users": ["alice", "bob"],
            "rotation": "daily",
            "start": "2026-11-20T11:05",
        },
        {
            "name": "office",
            "users": ["carol"],
            "rotation": {"every": "12h"},
            "start": "2026-11-20T08:00",
            "restrictions": [{"days": ["sat"], "from": "09:00", "to": "17:00"}],
        },
    ],
}


@dataclass
class Api:
    rig: Rig
    client: httpx.AsyncClient

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=AUTH)

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(path, json=body, headers=AUTH)

    async def delete(self, path: str) -> httpx.Response:
        return await self.client.delete(path, headers=AUTH)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    levels: list[dict[str, Any]] = [
        {"targets": [{"schedule": "primary"}, {"user": "dave"}]},
        {"delay": "10m", "targets": [{"user": "carol"}]},
    ]
    async with rig(tmp_path, oncall_config(levels, schedules=[PRIMARY])) as r:
        service = build(
            r.bus,
            r.store,
            r.live.view(TocsinConfig.escalation),
            r.clock,
            api_key_dependency(ApiKeys({"ops": token_digest("ops-key")})),
            instance_id="api",
            oncall=r.oncall,
            public_url="https://tocsin.example.com",
        )
        app = FastAPI()
        app.include_router(service.router)
        await r.oncall.ensure_indexes()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
            yield Api(r, client)


def at(offset: timedelta) -> str:
    return (T0 + offset).isoformat()


async def test_schedules_list_their_layers_and_who_is_on_call_now(api: Api) -> None:
    response = await api.get("/api/v1/schedules")
    assert response.status_code == 200, response.text
    (schedule,) = response.json()["schedules"]
    assert schedule["id"] == "primary"
    assert schedule["time_zone"] == "Europe/Berlin"
    assert schedule["layers"] == [
        {
            "name": "daily",
            "users": ["alice", "bob"],
            "rotation": "daily",
            "start": "2026-11-20T11:05",
            "restrictions": [],
        },
        {
            "name": "office",
            "users": ["carol"],
            "rotation": {"every": "12h"},
            "start": "2026-11-20T08:00",
            "restrictions": [{"days": ["sat"], "from": "09:00", "to": "17:00"}],
        },
    ]
    assert schedule["on_call_now"]["user"] == "alice"


async def test_who_is_on_call_at_an_instant_and_from_which_layer(api: Api) -> None:
    before = (await api.get("/api/v1/schedules/primary/oncall", at=at(4 * MIN))).json()
    after = (await api.get("/api/v1/schedules/primary/oncall", at=at(5 * MIN))).json()
    assert (before["user"], before["source"]) == (
        "alice",
        {"type": "layer", "layer": 0, "name": "daily", "override_id": None},
    )
    assert after["user"] == "bob"
    saturday = (await api.get("/api/v1/schedules/primary/oncall", at="2026-11-28T10:00:00Z")).json()
    assert (saturday["user"], saturday["source"]["name"]) == ("carol", "office")
    now = (await api.get("/api/v1/schedules/primary/oncall")).json()
    assert (now["user"], now["at"]) == ("alice", "2026-11-25T10:00:00Z")


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/schedules/nope/oncall", {}, 404),
        ("/api/v1/schedules/primary/oncall", {"at": "2026-11-25T10:00:00"}, 422),  # no zone
        ("/api/v1/schedules/primary/oncall", {"at": "yesterday"}, 422),
        ("/api/v1/schedules/nope/shifts", {}, 404),
        ("/api/v1/schedules/nope/overrides", {}, 404),
    ],
)
async def test_bad_schedule_requests_are_refused(
    api: Api, path: str, params: dict[str, str], status: int
) -> None:
    assert (await api.get(path, **params)).status_code == status


async def test_shifts_are_the_final_timeline_of_the_range(api: Api) -> None:
    response = await api.get(
        "/api/v1/schedules/primary/shifts", **{"from": at(-MIN), "to": at(6 * MIN)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"]) == ("2026-11-25T09:59:00Z", "2026-11-25T10:06:00Z")
    assert [(s["user"], s["start"], s["end"]) for s in body["shifts"]] == [
        ("alice", "2026-11-25T09:59:00Z", "2026-11-25T10:05:00Z"),
        ("bob", "2026-11-25T10:05:00Z", "2026-11-25T10:06:00Z"),
    ]


async def test_shifts_default_to_a_week_from_now(api: Api) -> None:
    body = (await api.get("/api/v1/schedules/primary/shifts")).json()
    assert (body["from"], body["to"]) == ("2026-11-25T10:00:00Z", "2026-12-02T10:00:00Z")
    # The Saturday window of the office layer wins over the daily layer.
    assert ("carol", "2026-11-28T08:00:00Z", "2026-11-28T16:00:00Z") in [
        (s["user"], s["start"], s["end"]) for s in body["shifts"]
    ]


@pytest.mark.parametrize(
    ("start", "end", "detail"),
    [
        (T0, T0 + timedelta(days=94), "the range is longer than 93 days; ask for less"),
        (T0, T0, "to: must be later than from"),
    ],
)
async def test_a_shift_range_must_be_forward_and_capped(
    api: Api, start: Any, end: Any, detail: str
) -> None:
    response = await api.get(
        "/api/v1/schedules/primary/shifts", **{"from": start.isoformat(), "to": end.isoformat()}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == detail


async def test_an_override_is_created_listed_applied_and_deleted(api: Api) -> None:
    created = await api.post(
        "/api/v1/schedules/primary/overrides",
        {"user": "carol", "start": at(MIN), "end": at(60 * MIN)},
    )
    assert created.status_code == 201, created.text
    override = created.json()
    assert override["user"] == "carol"
    assert override["created_by"] == "api:ops"
    assert override["schedule"] == "primary"

    listed = (await api.get("/api/v1/schedules/primary/overrides")).json()["overrides"]
    assert [o["id"] for o in listed] == [override["id"]]
    oncall = (await api.get("/api/v1/schedules/primary/oncall", at=at(30 * MIN))).json()
    assert oncall["user"] == "carol"
    assert oncall["source"]["type"] == "override"
    assert oncall["source"]["override_id"] == override["id"]
    shifts = (
        await api.get(
            "/api/v1/schedules/primary/shifts", **{"from": at(0 * MIN), "to": at(90 * MIN)}
        )
    ).json()["shifts"]
    assert [(s["user"], s["source"]["type"]) for s in shifts] == [
        ("alice", "layer"),
        ("carol", "override"),
        ("bob", "layer"),
    ]

    path = f"/api/v1/schedules/primary/overrides/{override['id']}"
    assert (await api.delete(path)).status_code == 204
    assert (await api.delete(path)).status_code == 404
    oncall = (await api.get("/api/v1/schedules/primary/oncall", at=at(30 * MIN))).json()
    assert oncall["user"] == "bob"
    assert (await api.get("/api/v1/schedules/primary/overrides")).json()["overrides"] == []


async def test_the_newest_of_overlapping_overrides_wins(api: Api) -> None:
    for user in ("carol", "dave"):
        response = await api.post(
            "/api/v1/schedules/primary/overrides",
            {"user": user, "start": at(0 * MIN), "end": at(60 * MIN)},
        )
        assert response.status_code == 201
        api.rig.clock.advance(timedelta(seconds=1))
    oncall = (await api.get("/api/v1/schedules/primary/oncall", at=at(30 * MIN))).json()
    assert oncall["user"] == "dave"


async def test_the_override_list_defaults_to_those_not_over_and_takes_a_range(api: Api) -> None:
    for start, end in ((-120, -60), (60, 120)):
        await api.post(
            "/api/v1/schedules/primary/overrides",
            {"user": "carol", "start": at(start * MIN), "end": at(end * MIN)},
        )
    pending = (await api.get("/api/v1/schedules/primary/overrides")).json()["overrides"]
    assert [o["start"] for o in pending] == ["2026-11-25T11:00:00Z"]
    everything = (
        await api.get("/api/v1/schedules/primary/overrides", **{"from": at(-1000 * MIN)})
    ).json()["overrides"]
    assert [o["start"] for o in everything] == ["2026-11-25T08:00:00Z", "2026-11-25T11:00:00Z"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (
            {"user": "zed", "start": "2026-11-25T11:00:00Z", "end": "2026-11-25T12:00:00Z"},
            422,
            "user: unknown user 'zed' (defined: alice, bob, carol, dave)",
        ),
        (
            {"user": "carol", "start": "2026-11-25T12:00:00Z", "end": "2026-11-25T11:00:00Z"},
            422,
            "an override must end after it starts",
        ),
        (
            {"user": "carol", "start": "2026-11-25T12:00:00", "end": "2026-11-25T13:00:00Z"},
            422,
            None,
        ),
        ({"user": "carol", "start": "2026-11-25T12:00:00Z"}, 422, None),
        (
            {"user": "carol", "start": "2026-11-25T11:00Z", "end": "2026-11-25T12:00Z", "x": 1},
            422,
            None,
        ),
    ],
)
async def test_a_bad_override_is_refused_and_stores_nothing(
    api: Api, body: dict[str, Any], status: int, detail: str | None
) -> None:
    response = await api.post("/api/v1/schedules/primary/overrides", body)
    assert response.status_code == status, response.text
    if detail is not None:
        assert response.json()["detail"] == detail
    assert (
        await api.get("/api/v1/schedules/primary/overrides", **{"from": at(-1000 * MIN)})
    ).json()["overrides"] == []


async def test_an_override_for_an_unknown_schedule_is_404(api: Api) -> None:
    response = await api.post(
        "/api/v1/schedules/nope/overrides", {"user": "carol", "start": at(MIN), "end": at(2 * MIN)}
    )
    assert response.status_code == 404


async def test_oncall_now_shows_every_service_level_by_level(api: Api) -> None:
    response = await api.get("/api/v1/oncall")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["at"] == "2026-11-25T10:00:00Z"
    (service,) = body["services"]
    assert (service["service"], service["name"], service["escalation_policy"]) == (
        "checkout",
        "Checkout",
        "oncall",
    )
    assert service["levels"] == [
        {
            "level": 0,
            "delay": "0s",
            "targets": [
                {
                    "user": "alice",
                    "schedule": "primary",
                    "source": {"type": "layer", "layer": 0, "name": "daily", "override_id": None},
                },
                {"user": "dave", "schedule": None, "source": None},
            ],
        },
        {
            "level": 1,
            "delay": "10m",
            "targets": [{"user": "carol", "schedule": None, "source": None}],
        },
    ]
    api.rig.clock.advance(5 * MIN)
    later = (await api.get("/api/v1/oncall")).json()
    assert later["services"][0]["levels"][0]["targets"][0]["user"] == "bob"


async def test_schedule_routes_need_an_api_key(api: Api) -> None:
    for path in ("/api/v1/schedules", "/api/v1/oncall", "/api/v1/schedules/primary/oncall"):
        assert (await api.client.get(path)).status_code == 401
    refused = await api.client.post("/api/v1/users/alice/calendar-token")
    assert refused.status_code == 401


# -- the calendar feed -----------------------------------------------------------------------


async def feed(api: Api, url: str) -> httpx.Response:
    parts = urlsplit(url)
    return await api.client.get(f"{parts.path}?{parts.query}")  # no API key: the token is it


async def test_a_user_subscribes_to_their_shifts_with_a_secret_url(api: Api) -> None:
    issued = await api.post("/api/v1/users/alice/calendar-token")
    assert issued.status_code == 201, issued.text
    url = issued.json()["url"]
    assert url.startswith("https://tocsin.example.com/api/v1/users/alice/oncall.ics?token=")

    response = await feed(api, url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    events = calendar.walk("VEVENT")
    assert events, "alice has shifts every other day"
    assert all(str(e["summary"]) == "On call: Checkout primary" for e in events)
    assert str(calendar["x-wr-calname"]) == "On call: Alice"
    spans = [(e.decoded("dtstart"), e.decoded("dtend")) for e in events]
    # Her turn in progress (bob's turns, every other day, are not in her feed) ...
    assert (T0 - timedelta(hours=23, minutes=55), T0 + 5 * MIN) in spans
    assert not any(start <= T0 + 10 * MIN < end for start, end in spans)
    # ... and none longer than a daily turn.
    assert all(end - start <= timedelta(days=1) for start, end in spans)


async def test_a_wrong_or_revoked_token_gets_404_and_a_new_token_replaces_the_old(
    api: Api,
) -> None:
    assert (await api.client.get("/api/v1/users/alice/oncall.ics")).status_code == 404
    first = (await api.post("/api/v1/users/alice/calendar-token")).json()["url"]
    second = (await api.post("/api/v1/users/alice/calendar-token")).json()["url"]
    assert first != second
    assert (await feed(api, first)).status_code == 404
    assert (await feed(api, second)).status_code == 200
    # Another user's path with alice's token is no feed.
    stolen = second.replace("/users/alice/", "/users/bob/")
    assert (await feed(api, stolen)).status_code == 404
    assert (await api.delete("/api/v1/users/alice/calendar-token")).status_code == 204
    assert (await feed(api, second)).status_code == 404
    assert (await api.delete("/api/v1/users/alice/calendar-token")).status_code == 404


async def test_a_token_for_an_unknown_user_is_404(api: Api) -> None:
    assert (await api.post("/api/v1/users/zed/calendar-token")).status_code == 404
