"""The responder's actions under POST /api/v1/incidents/{id}/... on the escalation service
(embedded bus and store, its consumers running, the injected clock): reassign, responders,
commander, and the ack timeout; each on the timeline with who did it, refused with 409 and the
reason where the transition table has no row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import NOTIFICATIONS_REQUESTED, CommandKind, IncidentCommand, NotificationRequested
from tests.unit.escalation_harness import (
    T0,
    Rig,
    incident_event,
    oncall_config,
    pages,
    rig,
)
from tests.unit.test_escalation_api import serving

MIN = timedelta(minutes=1)

SCHEDULE: dict[str, Any] = {
    "id": "primary",
    "name": "Primary",
    "time_zone": "UTC",
    "layers": [{"users": ["dave"], "rotation": "weekly", "start": "2026-11-02T00:00"}],
}
LEVELS: list[dict[str, Any]] = [
    {"targets": [{"user": "alice"}]},
    {"delay": "5m", "targets": [{"user": "bob"}]},
]
OTHER_POLICY = {
    "id": "database",
    "levels": [
        {"targets": [{"user": "carol"}]},
        {"delay": "10m", "targets": [{"user": "dave"}]},
    ],
}


@dataclass
class Api:
    rig: Rig
    client: httpx.AsyncClient

    async def act(self, action: str, body: Any = None, incident: str = "inc-1") -> httpx.Response:
        return await self.client.post(f"/api/v1/incidents/{incident}/{action}", json=body)

    async def incident(self, incident: str = "inc-1") -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/incidents/{incident}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def fire(self, minutes: float) -> None:
        self.rig.clock.advance(timedelta(minutes=minutes))
        await self.rig.engine.fire_due_timers()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = oncall_config(
        LEVELS,
        schedules=[SCHEDULE],
        users=["alice", "bob", "carol", "dave", "erin"],
        policy={"ack_timeout": "30m"},
        extra_policies=[OTHER_POLICY],
    )
    async with rig(tmp_path, config) as r, serving(r) as client:
        await r.engine.on_incident_event(incident_event())
        yield Api(r, client)


def entries(incident: dict[str, Any], action: str) -> list[tuple[str | None, str | None]]:
    return [(e["actor"], e["detail"]) for e in incident["timeline"] if e["action"] == action]


# -- reassign --------------------------------------------------------------------------------


async def test_reassign_to_a_user_pages_them_now_and_stops_the_old_policy(api: Api) -> None:
    response = await api.act("reassign", {"user": "erin"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "triggered"
    assert body["assigned_to"] == {"type": "user", "id": "erin"}
    assert body["responders"] == ["erin"]
    assert entries(body, "reassign") == [("api:ops", "to user erin")]
    await api.fire(30)
    assert [(u, e) for u, e, _ in pages(api.rig)] == [
        ("alice", "incident.triggered"),
        ("erin", "incident.triggered"),
    ]


async def test_reassign_to_a_schedule_pages_whoever_is_on_call(api: Api) -> None:
    response = await api.act("reassign", {"schedule": "primary"})
    assert response.status_code == 200, response.text
    assert response.json()["assigned_to"] == {"type": "schedule", "id": "primary"}
    assert pages(api.rig)[-1] == ("dave", "incident.triggered", 0)


async def test_reassign_to_a_policy_restarts_escalation_there(api: Api) -> None:
    response = await api.act("reassign", {"policy": "database"})
    assert response.status_code == 200, response.text
    assert response.json()["escalation_policy"] == "database"
    await api.fire(9)
    assert [u for u, _, _ in pages(api.rig)] == ["alice", "carol"]
    await api.fire(1)
    assert [u for u, _, _ in pages(api.rig)] == ["alice", "carol", "dave"]


async def test_reassign_of_an_acknowledged_incident_triggers_it_again(api: Api) -> None:
    assert (await api.act("acknowledge")).json()["status"] == "acknowledged"
    response = await api.act("reassign", {"user": "bob"})
    assert response.json()["status"] == "triggered"
    assert response.json()["ack_timeout_at"] is None


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"user": "zed"}, "user: unknown user 'zed' (defined: alice, bob, carol, dave, erin)"),
        ({"schedule": "nope"}, "schedule: unknown schedule 'nope' (defined: primary)"),
        ({"policy": "nope"}, "policy: unknown policy 'nope' (defined: database, oncall)"),
        ({}, 'give exactly one of user, schedule or policy, e.g. {"user": "bob"}'),
        (
            {"user": "bob", "policy": "database"},
            'give exactly one of user, schedule or policy, e.g. {"user": "bob"}',
        ),
    ],
)
async def test_a_bad_reassign_is_422_and_changes_nothing(
    api: Api, body: dict[str, str], detail: str
) -> None:
    response = await api.act("reassign", body)
    assert response.status_code == 422
    assert response.json()["detail"] == detail
    incident = await api.incident()
    assert incident["assigned_to"] is None
    assert entries(incident, "reassign") == []


# -- responders and the commander ------------------------------------------------------------


async def test_an_extra_responder_is_paged_now_without_changing_the_policy(api: Api) -> None:
    response = await api.act("responders", {"user": "erin"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["responders"] == ["alice", "erin"]
    assert entries(body, "add_responder") == [("api:ops", "paged erin")]
    assert pages(api.rig)[-1] == ("erin", "incident.triggered", 0)
    await api.fire(5)  # the policy goes on: bob at level 1
    assert pages(api.rig)[-1] == ("bob", "incident.escalated", 1)
    # Every responder hears about the acknowledgement, erin too.
    await api.act("acknowledge")
    notified = sorted(u for u, e, _ in pages(api.rig) if e == "incident.acknowledged")
    assert notified == ["alice", "bob", "erin"]


async def test_paging_a_responder_again_pages_again(api: Api) -> None:
    await api.act("responders", {"user": "erin"})
    await api.act("responders", {"user": "erin"})
    erin = [m for m in pages(api.rig) if m[0] == "erin"]
    assert len(erin) == 2


async def test_a_responder_on_an_acknowledged_incident_keeps_it_acknowledged(api: Api) -> None:
    await api.act("acknowledge")
    response = await api.act("responders", {"user": "erin"})
    assert response.json()["status"] == "acknowledged"
    assert pages(api.rig)[-1] == ("erin", "incident.triggered", 0)


async def test_the_commander_is_shown_on_the_incident_and_its_timeline(api: Api) -> None:
    response = await api.act("commander", {"user": "carol"})
    assert response.status_code == 200, response.text
    assert response.json()["commander"] == "carol"
    listed = (await api.client.get("/api/v1/incidents")).json()["incidents"]
    assert listed[0]["commander"] == "carol"
    incident = await api.incident()
    assert entries(incident, "set_commander") == [("api:ops", "carol is the incident commander")]
    # A snooze that ends starts a new cycle; the commander stays.
    await api.act("acknowledge", {"snooze": "10m"})
    await api.fire(10)
    assert (await api.incident())["commander"] == "carol"


@pytest.mark.parametrize(
    ("action", "body"), [("responders", {"user": "zed"}), ("commander", {"user": "zed"})]
)
async def test_an_unknown_user_is_422(api: Api, action: str, body: dict[str, str]) -> None:
    response = await api.act(action, body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("user: unknown user 'zed'")


@pytest.mark.parametrize(
    ("action", "body", "reason"),
    [
        ("reassign", {"user": "bob"}, "cannot reassign an incident that is resolved"),
        ("responders", {"user": "bob"}, "cannot add_responder an incident that is resolved"),
        ("commander", {"user": "bob"}, "cannot set_commander an incident that is resolved"),
    ],
)
async def test_actions_on_a_resolved_incident_are_409_with_the_reason(
    api: Api, action: str, body: dict[str, str], reason: str
) -> None:
    assert (await api.act("resolve")).status_code == 200
    response = await api.act(action, body)
    assert response.status_code == 409
    assert response.json()["detail"] == reason


async def test_actions_on_an_unknown_incident_are_404(api: Api) -> None:
    for action, body in (("reassign", {"user": "bob"}), ("commander", {"user": "bob"})):
        assert (await api.act(action, body, incident="nope")).status_code == 404


# -- the ack timeout -------------------------------------------------------------------------


async def test_an_acknowledgement_not_resolved_in_time_triggers_and_pages_again(api: Api) -> None:
    api.rig.clock.advance(MIN)
    acked = (await api.act("acknowledge")).json()
    assert acked["ack_timeout_at"] == "2026-11-25T10:31:00Z"
    assert entries(acked, "acknowledge") == [
        ("api:ops", "ack timeout at 2026-11-25T10:31:00+00:00")
    ]
    await api.fire(29)
    assert (await api.incident())["status"] == "acknowledged"
    await api.fire(1)
    incident = await api.incident()
    assert incident["status"] == "triggered"
    assert entries(incident, "ack_timeout") == [("timer", None)]
    assert [(u, e) for u, e, _ in pages(api.rig) if e == "incident.triggered"] == [
        ("alice", "incident.triggered"),
        ("alice", "incident.triggered"),
    ]


async def test_resolving_in_time_means_no_ack_timeout(api: Api) -> None:
    await api.act("acknowledge")
    api.rig.clock.advance(10 * MIN)
    await api.act("resolve")
    await api.fire(60)
    assert (await api.incident())["status"] == "resolved"
    assert [e for _, e, _ in pages(api.rig)].count("incident.triggered") == 1


async def test_actions_are_on_the_timeline_with_who_did_them(api: Api) -> None:
    for action, body in (
        ("commander", {"user": "carol"}),
        ("responders", {"user": "erin"}),
        ("acknowledge", None),
        ("reassign", {"policy": "database"}),
        ("escalate", None),
        ("resolve", None),
    ):
        api.rig.clock.advance(MIN)  # entries of one instant are ordered by id, not by turn
        assert (await api.act(action, body)).status_code == 200
    incident = await api.incident()
    people = [
        (e["action"], e["actor"])
        for e in incident["timeline"]
        if e["actor"] is not None and e["actor"].startswith("api:")
    ]
    assert people == [
        ("set_commander", "api:ops"),
        ("add_responder", "api:ops"),
        ("acknowledge", "api:ops"),
        ("reassign", "api:ops"),
        ("escalate_now", "api:ops"),
        ("resolve", "api:ops"),
    ]


# -- through incidents.commands (what SMS, voice and chat replies publish) --------------------


def command(kind: CommandKind, **target: str) -> IncidentCommand:
    return IncidentCommand(
        occurred_at=T0,
        correlation_id="inc-1",
        command=kind,
        incident_id="inc-1",
        actor="alice",
        via="slack",
        **target,
    )


async def test_a_reassign_from_the_topic_is_applied_like_the_routes(api: Api) -> None:
    message = command(CommandKind.REASSIGN, schedule="primary")
    await api.rig.engine.submit(message)
    async with asyncio.timeout(10):
        while (outcome := await api.rig.store.command_outcome(str(message.event_id))) is None:
            await asyncio.sleep(0.02)
    assert outcome.applied
    body = await api.incident()
    assert body["assigned_to"] == {"type": "schedule", "id": "primary"}
    assert entries(body, "reassign")[0][0] == "alice"


async def test_a_reassign_naming_two_targets_is_refused_and_changes_nothing(api: Api) -> None:
    message = command(CommandKind.REASSIGN, user="erin", policy="database")
    await api.rig.engine.submit(message)
    async with asyncio.timeout(10):
        while (outcome := await api.rig.store.command_outcome(str(message.event_id))) is None:
            await asyncio.sleep(0.02)
    assert not outcome.applied
    assert outcome.reason == "a reassign names exactly one of user, schedule or policy"
    assert (await api.incident())["assigned_to"] is None


async def test_pages_after_a_commander_is_named_carry_the_commander(api: Api) -> None:
    response = await api.act("commander", {"user": "carol"})
    assert response.status_code == 200, response.text
    await api.fire(5)  # level 1 pages bob
    requested = api.rig.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)
    assert requested[0].incident.commander is None  # alice, before
    assert requested[-1].recipient.user_id == "bob"
    assert requested[-1].incident.commander == "carol"
