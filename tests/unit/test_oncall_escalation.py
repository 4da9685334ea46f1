"""Schedules as escalation targets, on the embedded adapters with the injected clock: a level
is resolved when it pages (a handoff between the trigger and a later level pages the new
person), overrides win, a level that reaches nobody lets the next one page at once, and the
timeline says who each schedule reached and why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.escalation.domain.lifecycle import Action
from services.escalation.domain.schedules import Override
from services.escalation.engine import Actor
from services.escalation.oncall_store import StoredOverride
from tests.unit.escalation_harness import (
    T0,
    Rig,
    incident_event,
    oncall_config,
    pages,
    rig,
)

MIN = timedelta(minutes=1)

# T0 is Wednesday 2026-11-25 10:00 UTC, 11:00 in Berlin. The daily layer hands over at 11:05
# Berlin time: alice holds the turn that began on the 24th, bob takes over at T0 + 5 minutes.
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
        }
    ],
}


async def open_incident(r: Rig, incident_id: str = "inc-1") -> None:
    await r.engine.on_incident_event(incident_event(incident_id=incident_id))


async def run_timers(r: Rig, minutes: float) -> None:
    r.clock.advance(timedelta(minutes=minutes))
    await r.engine.fire_due_timers()


@pytest.fixture
async def handoff(tmp_path: Path) -> AsyncIterator[Rig]:
    """Level 0 and level 1 (10 minutes later) both page whoever is on call for `primary`."""
    levels: list[dict[str, Any]] = [
        {"targets": [{"schedule": "primary"}]},
        {"delay": "10m", "targets": [{"schedule": "primary"}]},
    ]
    async with rig(tmp_path, oncall_config(levels, schedules=[PRIMARY])) as r:
        yield r


async def test_a_handoff_between_trigger_and_escalation_pages_the_new_person(
    handoff: Rig,
) -> None:
    await open_incident(handoff)
    assert pages(handoff) == [("alice", "incident.triggered", 0)]

    await run_timers(handoff, 10)  # past the 11:05 handoff
    assert pages(handoff)[1:] == [("bob", "incident.escalated", 1)]
    incident = await handoff.store.get("inc-1")
    assert incident is not None
    assert incident.lifecycle.responder_ids == ("alice", "bob")


async def test_the_timeline_says_who_each_schedule_reached_and_why(handoff: Rig) -> None:
    await open_incident(handoff)
    await run_timers(handoff, 10)
    entries = [
        (e.action, e.user_id, e.level, e.detail)
        for e in await handoff.store.timeline("inc-1", 100)
        if e.action == "on_call"
    ]
    assert entries == [
        ("on_call", "alice", 0, "schedule primary: alice on call (layer 'daily')"),
        ("on_call", "bob", 1, "schedule primary: bob on call (layer 'daily')"),
    ]


async def test_an_override_wins_over_the_layers_when_the_level_pages(handoff: Rig) -> None:
    await handoff.oncall.add_override(
        StoredOverride(
            "primary", Override("ovr-1", "carol", T0 + 8 * MIN, T0 + 60 * MIN), T0, "api:ops"
        )
    )
    await open_incident(handoff)
    await run_timers(handoff, 10)
    assert pages(handoff) == [
        ("alice", "incident.triggered", 0),
        ("carol", "incident.escalated", 1),
    ]
    details = [e.detail for e in await handoff.store.timeline("inc-1", 100)]
    assert "schedule primary: carol on call (override ovr-1)" in details


async def test_an_override_of_another_schedule_or_time_changes_nothing(handoff: Rig) -> None:
    await handoff.oncall.add_override(
        StoredOverride("other", Override("o1", "carol", T0, T0 + 60 * MIN), T0, "api:ops")
    )
    await handoff.oncall.add_override(
        StoredOverride("primary", Override("o2", "dave", T0 + MIN, T0 + 2 * MIN), T0, "api:ops")
    )
    await open_incident(handoff)
    assert pages(handoff) == [("alice", "incident.triggered", 0)]


async def test_a_repeat_pass_resolves_the_schedule_again(tmp_path: Path) -> None:
    levels: list[dict[str, Any]] = [
        {"targets": [{"schedule": "primary"}]},
        {"delay": "3m", "targets": [{"user": "dave"}]},
    ]
    config = oncall_config(levels, schedules=[PRIMARY], policy={"repeat": 1})
    async with rig(tmp_path, config) as r:
        await open_incident(r)
        await run_timers(r, 3)  # dave
        await run_timers(r, 3)  # the repeat pass: level 0 again, after the 11:05 handoff
        assert pages(r) == [
            ("alice", "incident.triggered", 0),
            ("dave", "incident.escalated", 1),
            ("bob", "incident.escalated", 0),
        ]


async def test_a_level_with_nobody_on_call_lets_the_next_level_page_at_once(
    tmp_path: Path,
) -> None:
    office_hours = {
        "id": "office",
        "name": "Office hours",
        "time_zone": "Europe/Berlin",
        "layers": [
            {
                "users": ["carol"],
                "rotation": "weekly",
                "start": "2026-11-02T00:00",
                "restrictions": [{"days": ["sat", "sun"], "from": "09:00", "to": "17:00"}],
            }
        ],
    }
    levels: list[dict[str, Any]] = [
        {"targets": [{"schedule": "office"}]},
        {"delay": "30m", "targets": [{"user": "dave"}]},
        {"delay": "30m", "targets": [{"user": "bob"}]},
    ]
    async with rig(tmp_path, oncall_config(levels, schedules=[office_hours])) as r:
        await open_incident(r)  # a Wednesday: nobody on the weekend layer
        assert pages(r) == [("dave", "incident.escalated", 1)]
        on_call = [e for e in await r.store.timeline("inc-1", 100) if e.action == "on_call"]
        assert [(e.user_id, e.level, e.detail) for e in on_call] == [
            (None, 0, "schedule office: nobody on call")
        ]
        await run_timers(r, 29)
        assert len(pages(r)) == 1  # bob still waits his level's delay after dave's page
        await run_timers(r, 1)
        assert pages(r)[1:] == [("bob", "incident.escalated", 2)]


async def test_a_level_mixing_a_user_and_a_schedule_pages_each_person_once(
    tmp_path: Path,
) -> None:
    levels: list[dict[str, Any]] = [
        {"targets": [{"schedule": "primary"}, {"user": "alice"}, {"user": "carol"}]}
    ]
    async with rig(tmp_path, oncall_config(levels, schedules=[PRIMARY])) as r:
        await open_incident(r)
        assert pages(r) == [
            ("alice", "incident.triggered", 0),
            ("carol", "incident.triggered", 0),
        ]


async def test_reopen_after_a_handoff_pages_the_person_on_call_then(handoff: Rig) -> None:
    await open_incident(handoff)
    await handoff.engine.command("inc-1", Action.RESOLVE, Actor("api:ops"))
    handoff.clock.advance(6 * MIN)
    await handoff.engine.on_incident_event(incident_event())  # fires again: reopen
    assert [p for p in pages(handoff) if p[1] == "incident.triggered"] == [
        ("alice", "incident.triggered", 0),
        ("bob", "incident.triggered", 0),
    ]
