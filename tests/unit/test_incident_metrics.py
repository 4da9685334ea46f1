"""Incident outcome metrics: each change counted once, by the replica whose compare-and-set
applied it, however often the message behind it is delivered; after-hours pages by team."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from schemas import IncidentEventKind, Severity
from services.escalation.domain.lifecycle import Action
from services.escalation.domain.schedules import Restriction, Weekday
from services.escalation.domain.urgency import SupportHours
from services.escalation.engine import Actor, Escalation
from services.escalation.metrics import after_hours
from tests.unit.escalation_harness import T0, Rig, config, incident_event, rig

MIN = timedelta(minutes=1)
LABELS = {"service": "checkout", "severity": "SEV1"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels or LABELS) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "opened": sample("tocsin_incidents_opened_total"),
        "acked": sample("tocsin_incidents_acknowledged_total"),
        "resolved": sample("tocsin_incidents_resolved_total"),
        "reopened": sample("tocsin_incidents_reopened_total"),
        "escalated_1": sample("tocsin_incidents_escalated_total", **LABELS, level="1"),
        "tta_count": sample("tocsin_incident_time_to_acknowledge_seconds_count"),
        "tta_sum": sample("tocsin_incident_time_to_acknowledge_seconds_sum"),
        "ttr_count": sample("tocsin_incident_time_to_resolve_seconds_count"),
        "ttr_sum": sample("tocsin_incident_time_to_resolve_seconds_sum"),
        "ttr_le_300": sample(
            "tocsin_incident_time_to_resolve_seconds_bucket", **LABELS, le="300.0"
        ),
        "pages_alice": sample("tocsin_pages_requested_total", team="oncall", user="alice"),
        "pages_bob": sample("tocsin_pages_requested_total", team="oncall", user="bob"),
    }


def delta(before: dict[str, float]) -> dict[str, float]:
    after = snapshot()
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


@pytest.fixture
async def two_levels(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig(tmp_path, config()) as r:
        yield r


async def test_each_change_is_counted_once_across_redeliveries_and_replicas(
    two_levels: Rig,
) -> None:
    r = two_levels
    # A second replica on the same store and bus: it sees the same messages.
    other = Escalation(
        r.bus, r.store, r.live.view(type(r.live.current).escalation), r.clock, "replica-2",
        oncall=r.oncall,
    )  # fmt: skip
    before = snapshot()
    opened = incident_event()
    await r.engine.on_incident_event(opened)
    await other.on_incident_event(opened)  # redelivered to the other replica: no new incident
    r.clock.advance(5 * MIN)
    await r.engine.fire_due_timers()  # level 1 (bob) after 5 minutes
    r.clock.advance(2 * MIN)
    ack = uuid.uuid4()
    await r.engine.command("inc-1", Action.ACKNOWLEDGE, Actor("bob"), event_id=ack)
    await other.command("inc-1", Action.ACKNOWLEDGE, Actor("bob"), event_id=ack)
    r.clock.advance(3 * MIN)
    resolved = incident_event(IncidentEventKind.ALERTS_RESOLVED, firing=0)
    await r.engine.on_incident_event(resolved)
    await other.on_incident_event(resolved)

    assert delta(before) == {
        "opened": 1,
        "acked": 1,
        "resolved": 1,
        "escalated_1": 1,
        "tta_count": 1,
        "tta_sum": 7 * 60,
        "ttr_count": 1,
        "ttr_sum": 10 * 60,
        "pages_alice": 1,
        "pages_bob": 1,
    }


async def test_reopen_counts_and_a_quick_resolve_lands_in_its_bucket(two_levels: Rig) -> None:
    r = two_levels
    before = snapshot()
    await r.engine.on_incident_event(incident_event(incident_id="inc-2"))
    r.clock.advance(MIN)
    await r.engine.command("inc-2", Action.RESOLVE, Actor("alice"))
    r.clock.advance(MIN)
    again = incident_event(IncidentEventKind.ALERT_ADDED, incident_id="inc-2", count=2)
    await r.engine.on_incident_event(again)
    await r.engine.on_incident_event(again)

    changes = delta(before)
    assert changes["reopened"] == 1
    assert changes["resolved"] == 1
    assert changes["ttr_le_300"] == 1
    assert changes["pages_alice"] == 2  # paged at the trigger and again at the reopen
    assert "acked" not in changes


def test_after_hours_is_outside_the_services_support_hours_or_default_working_hours() -> None:
    thursday_10 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    thursday_20 = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    saturday_10 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert not after_hours(None, thursday_10)
    assert after_hours(None, thursday_20)
    assert after_hours(None, saturday_10)
    evenings = SupportHours(
        "Europe/Berlin",
        Restriction(days=frozenset(Weekday), start=datetime.min.time().replace(hour=18),
                    end=datetime.min.time().replace(hour=23)),
    )  # fmt: skip
    assert after_hours(evenings, thursday_10)
    assert not after_hours(evenings, thursday_20)  # 21:00 in Berlin


async def test_after_hours_pages_are_counted_by_team(two_levels: Rig) -> None:
    r = two_levels
    r.clock.at = T0.replace(hour=23)  # a Wednesday, 23:00 UTC
    before = REGISTRY.get_sample_value("tocsin_after_hours_pages_total", {"team": "oncall"}) or 0
    await r.engine.on_incident_event(
        incident_event(incident_id="inc-night", severity=Severity.SEV1, at=r.clock.at)
    )
    after = REGISTRY.get_sample_value("tocsin_after_hours_pages_total", {"team": "oncall"})
    assert after == before + 1
