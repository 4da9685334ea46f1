"""The timer loop's failure policy: a stored timer that no longer reads, or whose firing keeps
failing, is set aside (quarantined, with the reason and a metric) and never stops the loop or
the other incidents' timers. On the embedded adapters with an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from schemas import NOTIFICATIONS_REQUESTED, NotificationRequested
from services.escalation.timers import TIMER_ATTEMPTS
from tests.unit.escalation_harness import T0, Rig, config, incident_event, rig

MIN = timedelta(minutes=1)


@pytest.fixture
async def two_levels(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig(tmp_path, config()) as r:
        yield r


def quarantined(kind: str) -> float:
    value = REGISTRY.get_sample_value("tocsin_escalation_quarantined_total", {"kind": kind})
    return value or 0.0


def paged_users(r: Rig) -> list[str]:
    return [
        page.recipient.user_id for page in r.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)
    ]


async def test_an_unreadable_timer_is_quarantined_and_the_next_one_still_fires(
    two_levels: Rig,
) -> None:
    r = two_levels
    await r.engine.on_incident_event(incident_event())  # alice now, bob after 5 min
    timers = r.database["escalation_timers"]
    # Written by some other version: no kind, no step.
    await timers.insert_one(
        {"_id": "bad", "incident_id": "inc-1", "state": "pending", "due_at": T0 + MIN}
        | {"lease_until": T0}
    )
    before = quarantined("timer")
    r.clock.advance(6 * MIN)
    await r.engine.fire_due_timers()
    bad = await timers.find_one({"_id": "bad"})
    assert bad is not None
    assert bad["state"] == "quarantined"
    assert "unreadable timer: KeyError" in bad["quarantine_reason"]
    assert quarantined("timer") == before + 1
    assert paged_users(r) == ["alice", "bob"]  # the escalation timer behind it fired


async def test_a_timer_that_keeps_failing_is_retried_with_backoff_then_quarantined(
    two_levels: Rig,
) -> None:
    r = two_levels
    timers = r.database["escalation_timers"]
    # A well-formed timer of an incident that does not exist here: firing it raises.
    await timers.insert_one(
        {"_id": "orphan", "incident_id": "ghost", "kind": "escalate", "step": 1, "cycle": 0}
        | {"state": "pending", "due_at": T0, "lease_until": T0}
    )
    before = quarantined("timer")
    for attempt in range(1, TIMER_ATTEMPTS + 1):
        assert await r.engine.fire_due_timers() == 0  # never raises
        orphan = await timers.find_one({"_id": "orphan"})
        assert orphan is not None
        if attempt < TIMER_ATTEMPTS:
            assert orphan["state"] == "pending"
            assert orphan["failures"] == attempt
            assert orphan["due_at"] > r.clock.now()  # backed off, not hot-looping
            assert "IncidentNotFound" in orphan["last_error"]
            r.clock.advance(2 * MIN)
    orphan = await timers.find_one({"_id": "orphan"})
    assert orphan is not None
    assert orphan["state"] == "quarantined"
    assert "IncidentNotFound" in orphan["quarantine_reason"]
    assert quarantined("timer") == before + 1
    r.clock.advance(60 * MIN)
    assert await r.engine.fire_due_timers() == 0
    assert (await timers.find_one({"_id": "orphan"}) or {})["state"] == "quarantined"
