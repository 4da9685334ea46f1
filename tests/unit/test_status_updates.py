"""Status updates and their cadence in escalation (services/escalation/status_updates.py) on the
embedded store and bus with a clock the test moves: an update lands on the timeline and on
`incidents.updates`; when none comes within the cadence the timeline says so and the commander
(or the responder who acknowledged) is reminded, again each cadence; an update moves the next
due time; a resolve ends it; unknown components are refused; the outbox publishes what the bus
refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from schemas import (
    INCIDENTS_UPDATES,
    NOTIFICATIONS_REQUESTED,
    ComponentStatus,
    IncidentLifecycleChanged,
    IncidentUpdatePosted,
    LifecycleStatus,
    NotificationEvent,
    NotificationRequested,
    Severity,
    UpdateStatus,
)
from services.escalation.domain.cadence import UpdatesConfig
from services.escalation.domain.lifecycle import Action
from services.escalation.engine import Actor
from services.escalation.reminders import Reminders, ReminderStore
from services.escalation.status_updates import PostUpdate, StatusUpdates, UnknownComponent
from services.escalation.updates_store import UpdatesStore
from tests.unit.escalation_harness import T0, Rig, config, incident_event, rig
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.live_config import Fixed

HOUR = timedelta(hours=1)
CADENCE = UpdatesConfig(
    per_service={"checkout": {Severity.SEV0: timedelta(minutes=30), Severity.SEV1: HOUR}},
    components=frozenset({"checkout"}),
)


async def _updates(r: Rig) -> tuple[StatusUpdates, Reminders]:
    reminders = Reminders(
        ReminderStore(r.database),
        r.bus,
        r.store,
        r.live.view(TocsinConfig.escalation),
        r.clock,
        "replica-a",
    )
    await reminders.store.ensure_indexes()
    updates = StatusUpdates(
        UpdatesStore(r.database),
        r.store,
        reminders,
        r.bus,
        Fixed(CADENCE),
        r.live.view(TocsinConfig.escalation),
        r.clock,
    )
    await updates.store.ensure_indexes()
    return updates, reminders


@pytest.fixture
async def r(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig(tmp_path, config(levels=(("0s", ["alice"]), ("5m", ["bob"])))) as r:
        yield r


def overdue_total(severity: str) -> float:
    value = REGISTRY.get_sample_value("tocsin_status_updates_overdue_total", {"severity": severity})
    return value or 0.0


def reminders_sent(r: Rig) -> list[NotificationRequested]:
    return [
        m
        for m in r.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)
        if m.event is NotificationEvent.REMINDER
    ]


async def actions(r: Rig) -> list[str]:
    return [e.action for e in await r.store.timeline("inc-1", 500)]


def update(
    message: str = "Rolling back.", *, public: bool = True, **components: ComponentStatus
) -> PostUpdate:
    return PostUpdate(
        status=UpdateStatus.IDENTIFIED,
        message=message,
        public=public,
        components=tuple(components.items()),
        author="api:admin",
    )


async def test_an_update_lands_on_the_timeline_and_goes_to_the_notifier(r: Rig) -> None:
    opened = incident_event(severity=Severity.SEV1)
    await r.engine.on_incident_event(opened)
    updates, _ = await _updates(r)
    incident = await r.store.get("inc-1")
    assert incident is not None
    posted = await updates.post(incident, update(checkout=ComponentStatus.PARTIAL_OUTAGE))
    assert posted.published
    [message] = r.bus.of(INCIDENTS_UPDATES, IncidentUpdatePosted)
    assert str(message.event_id) == posted.id
    assert (message.status, message.message, message.public) == (
        UpdateStatus.IDENTIFIED,
        "Rolling back.",
        True,
    )
    assert [(c.component_id, c.status) for c in message.components] == [
        ("checkout", ComponentStatus.PARTIAL_OUTAGE)
    ]
    timeline = await r.store.timeline("inc-1", 500)
    [entry] = [e for e in timeline if e.action == "status_update"]
    assert entry.actor == "api:admin"
    assert entry.detail == "identified (public): Rolling back."
    assert [u.id for u in await updates.store.of_incident("inc-1")] == [posted.id]
    with pytest.raises(UnknownComponent):
        await updates.post(incident, update(payments=ComponentStatus.MAJOR_OUTAGE))


async def test_a_missed_cadence_is_on_the_timeline_and_reminds_the_commander(r: Rig) -> None:
    opened = incident_event(severity=Severity.SEV1)
    await r.engine.on_incident_event(opened)
    updates, reminders = await _updates(r)
    await updates.on_incident_event(opened)
    await r.engine.command("inc-1", Action.SET_COMMANDER, Actor("alice"), user="bob")
    before = overdue_total("SEV1")

    r.clock.advance(HOUR - timedelta(seconds=1))
    assert await reminders.fire_due() == 0
    r.clock.advance(timedelta(seconds=1))
    assert await reminders.fire_due() == 1
    [page] = reminders_sent(r)
    assert page.recipient.user_id == "bob"
    assert page.incident.title == "Status update overdue (1h): CheckoutErrors"
    assert "update_overdue" in await actions(r)
    assert overdue_total("SEV1") == before + 1

    # Still nothing an hour later: reminded again.
    r.clock.advance(HOUR)
    assert await reminders.fire_due() == 1
    assert len(reminders_sent(r)) == 2

    # An update moves the next due time a cadence past it.
    r.clock.advance(timedelta(minutes=10))
    incident = await r.store.get("inc-1")
    assert incident is not None
    await updates.post(incident, update(public=False))
    r.clock.advance(timedelta(minutes=55))
    assert await reminders.fire_due() == 0
    r.clock.advance(timedelta(minutes=5))
    assert await reminders.fire_due() == 1
    assert len(reminders_sent(r)) == 3

    # Resolved: no more reminders.
    await updates.on_lifecycle(
        IncidentLifecycleChanged(
            occurred_at=r.clock.now(),
            correlation_id="inc-1",
            incident_id="inc-1",
            service_id="checkout",
            status=LifecycleStatus.RESOLVED,
        )
    )
    r.clock.advance(5 * HOUR)
    assert await reminders.fire_due() == 0
    assert len(reminders_sent(r)) == 3


async def test_without_commander_the_acknowledging_responder_is_reminded(r: Rig) -> None:
    opened = incident_event(severity=Severity.SEV0)
    await r.engine.on_incident_event(opened)
    updates, reminders = await _updates(r)
    await updates.on_incident_event(opened)
    await r.engine.command("inc-1", Action.ACKNOWLEDGE, Actor("alice"))
    r.clock.advance(timedelta(minutes=30))
    assert await reminders.fire_due() == 1
    [page] = reminders_sent(r)
    assert page.recipient.user_id == "alice"


async def test_no_cadence_for_low_severities(r: Rig) -> None:
    opened = incident_event(severity=Severity.SEV2)
    await r.engine.on_incident_event(opened)
    updates, reminders = await _updates(r)
    await updates.on_incident_event(opened)
    assert await reminders.pending("inc-1") == []
    r.clock.advance(24 * HOUR)
    assert await reminders.fire_due() == 0
    assert "update_overdue" not in await actions(r)


async def test_the_outbox_publishes_an_update_the_bus_refused(r: Rig) -> None:
    await r.engine.on_incident_event(incident_event(severity=Severity.SEV1))
    updates, _ = await _updates(r)
    incident = await r.store.get("inc-1")
    assert incident is not None
    r.bus.fail_next = 1
    posted = await updates.post(incident, update())
    assert not posted.published
    assert r.bus.of(INCIDENTS_UPDATES, IncidentUpdatePosted) == []
    r.clock.advance(timedelta(seconds=10))
    assert await updates.publish_pending() == 1
    [message] = r.bus.of(INCIDENTS_UPDATES, IncidentUpdatePosted)
    assert str(message.event_id) == posted.id
    assert await updates.publish_pending() == 0


async def test_the_cadence_is_armed_even_before_escalation_stored_the_incident(r: Rig) -> None:
    updates, reminders = await _updates(r)
    opened = incident_event(severity=Severity.SEV0)
    await updates.on_incident_event(opened)  # this consumer group ran ahead
    [armed] = await reminders.pending("inc-1")
    assert armed.due_at == T0 + timedelta(minutes=30)
    await r.engine.on_incident_event(opened)
    await r.engine.command("inc-1", Action.SET_COMMANDER, Actor("alice"), user="alice")
    r.clock.advance(timedelta(minutes=30))
    assert await reminders.fire_due() == 1
    assert [p.recipient.user_id for p in reminders_sent(r)] == ["alice"]
