"""Escalation's application service: incident events, people's commands and due timers in;
state changes with compare-and-set and outbox items out.

Every path ends with `flush`, which carries out the incident's outbox (publish notification
requests, arm and cancel timers), then clears it unless something was added meanwhile. A crash
in between leaves the items in the outbox; the redelivered message, the re-claimed timer or
the sweeper carries them out again, with the same ids: nothing is lost, nothing pages twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from schemas import (
    INCIDENTS_COMMANDS,
    INCIDENTS_LIFECYCLE,
    NOTIFICATIONS_REQUESTED,
    AlertDetails,
    IncidentCommand,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    LifecycleStatus,
)
from services.escalation import metrics as incident_metrics
from services.escalation.config import EscalationConfig
from services.escalation.domain.lifecycle import (
    Action,
    Assignment,
    InvalidTransition,
    Outcome,
    Status,
    apply,
    open_incident,
)
from services.escalation.domain.outbox import (
    ArmTimer,
    CancelPendingTimers,
    NotificationRule,
    OutboxItem,
    PublishLifecycle,
    RecordTimeline,
    SendNotification,
    lifecycle_item,
    outbox_items,
    timeline_item,
)
from services.escalation.domain.snapshot import latest_alerts
from services.escalation.domain.timeline import (
    Entry,
    TimelineEntry,
)
from services.escalation.domain.urgency import (
    Urgency,
    raised,
)
from services.escalation.domain.urgency_raise import urgency_raised_items
from services.escalation.metrics import TRANSITIONS_APPLIED
from services.escalation.oncall_store import OncallStore
from services.escalation.pages import message_id, page_request, sent_entry_of
from services.escalation.planning import Planner, plan_entries
from services.escalation.store import (
    Details,
    EscalationIncident,
    EscalationStore,
    Stamp,
    Timer,
)
from services.escalation.timers import TimerLoop
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.live_config import Current

log = logging.getLogger(__name__)

UserRules = Mapping[str, Sequence[NotificationRule]]

_CAS_ATTEMPTS = 20
_INSTANT = timedelta(milliseconds=1)  # the stores keep milliseconds


class IncidentNotFound(Exception):
    pass


@dataclass(frozen=True)
class PersonRequest:
    """What a person's action names: a snooze's end, a user (an extra responder, the
    commander), where a reassign sends the incident."""

    until: datetime | None = None
    user: str | None = None
    assignment: Assignment | None = None

    def describe(self, action: Action, outcome: Outcome) -> str | None:
        """The timeline's detail for the action."""
        if action is Action.REASSIGN and self.assignment is not None:
            return f"to {self.assignment.kind} {self.assignment.id}"
        if action is Action.ADD_RESPONDER:
            return f"paged {self.user}"
        if action is Action.SET_COMMANDER:
            return f"{self.user} is the incident commander"
        if self.until is not None:
            return f"until {self.until.isoformat()}"
        expires = outcome.state.ack_timeout_at
        if action is Action.ACKNOWLEDGE and expires is not None:
            return f"ack timeout at {expires.isoformat(timespec='seconds')}"
        return None


@dataclass(frozen=True)
class Actor:
    """Who asked for a change: a person (a user id or `api:<key name>`) or Tocsin itself."""

    name: str
    person: bool = True

    @property
    def published(self) -> str | None:
        """The actor as `incidents.lifecycle` names it: none when Tocsin did it."""
        return self.name if self.person else None


TRIAGE = Actor("triage", person=False)
TIMER = Actor("timer", person=False)


class Escalation:
    def __init__(
        self,
        bus: Bus,
        store: EscalationStore,
        config: Current[EscalationConfig],
        clock: Clock,
        instance_id: str,
        *,
        oncall: OncallStore,
        lease: timedelta = timedelta(seconds=30),
        poll_seconds: float = 0.25,
        public_url: str | None = None,
    ) -> None:
        self._bus = bus
        self._public_url = public_url
        self._store = store
        self._config = config
        self._clock = clock
        self._owner = instance_id
        self._lease = lease
        self._poll = poll_seconds
        self._planner = Planner(config, oncall)
        self._timers = TimerLoop(
            self, store, clock, instance_id, lease=lease, poll_seconds=poll_seconds
        )

    @property
    def config(self) -> EscalationConfig:
        """The configuration as it is now (a reload replaces it; nothing keeps a copy)."""
        return self._planner.config

    @property
    def planner(self) -> Planner:
        return self._planner

    # -- incidents.events ------------------------------------------------------------------

    async def on_incident_event(self, event: IncidentEvent) -> None:
        stored = await self._store.get(event.incident_id)
        if event.kind is IncidentEventKind.ALERT_HELD:
            # A timeline line only: it never opens, pages or changes an incident.
            if stored is None:
                log.debug("incident %s: held alert for an unknown incident", event.incident_id)
                return
            await self._store.record(event.incident_id, alert_entries(event))
            return
        if stored is None:
            if event.kind is IncidentEventKind.ALERTS_RESOLVED:
                log.warning("incident %s: resolved before it was opened here", event.incident_id)
                return  # never page for an incident whose alerts are all resolved
            await self._open(event)
        else:
            await self._update(stored, event)
        await self.flush(event.incident_id)

    async def _update(self, stored: EscalationIncident, event: IncidentEvent) -> None:
        """Triage's news about a known incident: details, severity, all resolved, firing again.

        Details are plain overwrites and severity entries have the event's id (idempotent:
        events of one incident arrive in order, one at a time); transitions dedupe by event."""
        await self._store.record(event.incident_id, alert_entries(event))
        if event.kind is IncidentEventKind.ALERTS_RESOLVED:
            await self._transition(
                event.incident_id,
                Action.RESOLVE,
                TRIAGE,
                event.event_id,
                detail="all alerts resolved",
            )
        elif stored.lifecycle.status is Status.RESOLVED and event.firing_count > 0:
            await self._transition(
                event.incident_id,
                Action.REOPEN,
                TRIAGE,
                event.event_id,
                detail="an alert fires again",
            )
        changed = event.severity is not stored.severity
        if changed or event.kind is IncidentEventKind.SEVERITY_CHANGED:
            reasons = "; ".join(event.severity_reasons)
            entry = TimelineEntry(
                id=f"severity:{event.incident_id}/{event.event_id}",
                at=event.occurred_at,
                action=Entry.SEVERITY_CHANGED,
                actor=TRIAGE.name,
                detail=f"{stored.severity.value} → {event.severity.value}"
                + (f" ({reasons})" if reasons else ""),
            )
            await self._store.record(event.incident_id, [entry])
        urgency = raised(
            stored.urgency,
            self._planner.urgency(event.service_id, event.severity, self._clock.now()),
        )
        if urgency is not stored.urgency:
            await self._page_as_urgent(event)
        await self._store.update_details(event.incident_id, _details(event, stored.alerts, urgency))

    async def _page_as_urgent(self, event: IncidentEvent) -> None:
        """The urgency rose while the incident is triggered: page the people already paged
        with the contacts their high-urgency rules add (once per event: the outbox items and
        the event id are stored in one compare-and-set)."""
        for _ in range(_CAS_ATTEMPTS):
            incident = await self._store.get(event.incident_id)
            if incident is None or incident.lifecycle.status is not Status.TRIGGERED:
                return
            if await self._store.has_event(incident.id, event.event_id):
                return
            now = self._clock.now()
            items = urgency_raised_items(
                incident.id,
                incident.lifecycle.cycle,
                incident.lifecycle.responders,
                self._planner.rules(Urgency.LOW),
                self._planner.rules(Urgency.HIGH),
                now,
            )
            if not items:
                return
            entry = TimelineEntry(
                id=f"urgency:{incident.id}/{event.event_id}",
                at=now,
                action=Entry.URGENCY_RAISED,
                actor=TRIAGE.name,
                detail=f"{event.severity.value}: high urgency; paging "
                + ", ".join(incident.lifecycle.responder_ids)
                + " as a high-urgency incident",
            )
            if await self._store.save(
                incident, [timeline_item(entry), *items], event.event_id, now
            ):
                return
        raise RuntimeError(f"incident {event.incident_id}: too much contention to raise urgency")

    async def _open(self, event: IncidentEvent) -> None:
        now = self._clock.now()
        planned = await self._planner.plan(event.service_id, event.severity, now)
        urgency = self._planner.urgency(event.service_id, event.severity, now)
        outcome = open_incident(planned.plan, now)
        rules = self._planner.rules(urgency)
        items = outbox_items(event.incident_id, outcome.effects, rules, now, "open")
        entries = plan_entries(event.incident_id, planned, outcome, now)
        triggered = TimelineEntry(
            id=f"change:{event.incident_id}/open",
            at=now,
            action=Entry.TRIGGERED,
            actor=TRIAGE.name,
            detail=f"{event.title} ({event.severity.value}, {urgency.value} urgency)",
        )
        incident = EscalationIncident(
            id=event.incident_id,
            service_id=event.service_id,
            policy_id=planned.policy_id,
            title=event.title,
            severity=event.severity,
            alert_count=event.alert_count,
            opened_at=now,
            lifecycle=outcome.state,
            version=1,
            outbox=(timeline_item(triggered), *entries, *items),
            alerts=latest_alerts((), event.alert),
            urgency=urgency,
            changes=event.changes,
        )
        if await self._store.create(incident, event.event_id):
            TRANSITIONS_APPLIED.labels(action="trigger").inc()
            incident_metrics.incident_opened(incident.service_id, incident.severity)
            self._count_pages(incident, incident.outbox, now)
            log.info("incident %s triggered (%s)", incident.id, incident.severity.value)

    # -- people and timers -----------------------------------------------------------------

    async def command(
        self,
        incident_id: str,
        action: Action,
        actor: Actor,
        *,
        event_id: uuid.UUID | None = None,
        until: datetime | None = None,
        user: str | None = None,
        assignment: Assignment | None = None,
    ) -> EscalationIncident:
        """Apply a person's action (once per `event_id`); raise IncidentNotFound or Refused.
        `user` names whom ADD_RESPONDER pages or who SET_COMMANDER names; `assignment` where
        REASSIGN sends the incident."""
        self._planner.check_names(action, user, assignment)
        incident = await self._transition(
            incident_id,
            action,
            actor,
            event_id,
            person=PersonRequest(until, user, assignment),
        )
        await self.flush(incident_id)
        return incident

    def now(self) -> datetime:
        return self._clock.now()

    async def check(
        self,
        incident: EscalationIncident,
        action: Action,
        until: datetime | None = None,
        *,
        user: str | None = None,
        assignment: Assignment | None = None,
    ) -> None:
        """Raise Refused if `action` cannot be applied to the incident as it is now."""
        self._planner.check_names(action, user, assignment)
        now = self._clock.now()
        planned = await self._planner.plan(
            incident.service_id,
            incident.severity,
            now,
            assignment if action is Action.REASSIGN else incident.lifecycle.assignment,
        )
        apply(
            incident.lifecycle,
            action,
            planned.plan,
            now,
            until=until,
            user=user,
            assignment=assignment,
        )

    async def submit(self, command: IncidentCommand) -> None:
        """Hand a person's command to `incidents.commands` (applied by its consumer)."""
        await self._bus.publish(INCIDENTS_COMMANDS, command.incident_id, command)

    async def _transition(
        self,
        incident_id: str,
        action: Action,
        actor: Actor,
        event_id: uuid.UUID | None,
        *,
        step: int | None = None,
        cycle: int | None = None,
        person: PersonRequest | None = None,
        detail: str | None = None,
    ) -> EscalationIncident:
        person = person or PersonRequest()
        for _ in range(_CAS_ATTEMPTS):
            incident = await self._store.get(incident_id)
            if incident is None:
                raise IncidentNotFound(incident_id)
            if event_id is not None and await self._store.has_event(incident_id, event_id):
                return incident
            now = self._clock.now()
            assignment = (
                person.assignment if action is Action.REASSIGN else incident.lifecycle.assignment
            )
            planned = await self._planner.plan(
                incident.service_id, incident.severity, now, assignment
            )
            outcome: Outcome = apply(
                incident.lifecycle,
                action,
                planned.plan,
                now,
                step=step,
                cycle=cycle,
                until=person.until,
                user=person.user,
                assignment=person.assignment,
            )
            if outcome.state == incident.lifecycle and not outcome.effects:
                return incident  # a no-op (stale timer, repeated ack): nothing to store
            cause = str(event_id or message_id(f"{incident_id}/{incident.version}"))
            entry = TimelineEntry(
                id=f"change:{incident_id}/{cause}",
                at=now,
                action=action.value,
                actor=actor.name,
                detail=detail or person.describe(action, outcome),
            )
            rules = self._planner.rules(incident.urgency)
            items = [
                timeline_item(entry),
                *plan_entries(incident_id, planned, outcome, now),
                *outbox_items(incident_id, outcome.effects, rules, now, cause),
            ]
            if outcome.state.status is not incident.lifecycle.status:
                status = LifecycleStatus(outcome.state.status.value)
                items.append(lifecycle_item(incident_id, status, actor.published, now, cause))
            changed = _with_lifecycle(incident, outcome, actor, now)
            if await self._store.save(changed, items, event_id, now):
                TRANSITIONS_APPLIED.labels(action=action.value).inc()
                incident_metrics.lifecycle_changed(
                    incident.service_id,
                    incident.severity,
                    action,
                    incident.lifecycle.status,
                    outcome.state.status,
                    outcome.effects,
                    (now - incident.opened_at).total_seconds(),
                )
                self._count_pages(incident, items, now)
                log.info("incident %s: %s by %s", incident_id, action.value, actor.name)
                return replace(changed, version=incident.version + 1)
        raise RuntimeError(f"incident {incident_id}: too much contention to {action.value}")

    # -- outbox ----------------------------------------------------------------------------

    async def flush(self, incident_id: str) -> None:
        incident = await self._store.get(incident_id)
        if incident is None or not incident.outbox:
            return
        sends: list[SendNotification] = []
        changes: list[PublishLifecycle] = []
        entries: list[TimelineEntry] = []
        for item in incident.outbox:
            if isinstance(item, SendNotification):
                sends.append(item)
            elif isinstance(item, PublishLifecycle):
                changes.append(item)
            elif isinstance(item, RecordTimeline):
                entries.append(item.entry)
            elif isinstance(item, ArmTimer):
                await self._store.arm_timer(incident_id, item)
            elif isinstance(item, CancelPendingTimers):
                await self._store.cancel_timers(incident_id, item.cycle)
        if sends:
            await self._bus.publish_many(
                NOTIFICATIONS_REQUESTED,
                [
                    (incident_id, page_request(incident, send, self._clock.now(), self._public_url))
                    for send in sends
                ],
            )
            now = self._clock.now()
            entries.extend(sent_entry_of(send, now) for send in sends)
        if changes:
            await self._bus.publish_many(
                INCIDENTS_LIFECYCLE,
                [(incident_id, self._lifecycle_message(incident, item)) for item in changes],
            )
        await self._store.record(incident_id, entries)
        await self._store.clear_outbox(incident_id, incident.version)

    def _lifecycle_message(
        self, incident: EscalationIncident, item: PublishLifecycle
    ) -> IncidentLifecycleChanged:
        return IncidentLifecycleChanged(
            event_id=message_id(item.id),
            occurred_at=item.at,
            correlation_id=incident.id,
            incident_id=incident.id,
            service_id=incident.service_id,
            status=item.status,
            actor=item.actor,
        )

    # -- timers (the loop that claims them is in timers.py) ---------------------------------

    async def run_timers(self) -> None:
        """Claim due timers with a lease and fire them; sweep outboxes a crash left behind."""
        await self._timers.run()

    async def fire_due_timers(self, limit: int = 100) -> int:
        return await self._timers.fire_due(limit)

    async def fire(self, timer: Timer) -> None:
        """What a due timer does: page a step, end an acknowledgement, or send a delayed
        notification rule's page (only while the incident is still triggered in its cycle)."""
        if timer.kind in ("escalate", "ack_timeout"):
            action = Action.ESCALATE if timer.kind == "escalate" else Action.ACK_TIMEOUT
            try:
                await self._transition(
                    timer.incident_id, action, TIMER, None, step=timer.step, cycle=timer.cycle
                )
            except InvalidTransition:
                return  # acknowledged or resolved since: the timer is moot
            await self.flush(timer.incident_id)
            return
        incident = await self._store.get(timer.incident_id)
        if (
            incident is None
            or timer.notification is None
            or incident.lifecycle.status is not Status.TRIGGERED
            or incident.lifecycle.cycle != timer.cycle
        ):
            return
        await self._bus.publish(
            NOTIFICATIONS_REQUESTED,
            incident.id,
            page_request(incident, timer.notification, self._clock.now(), self._public_url),
        )
        await self._store.record(
            incident.id, [sent_entry_of(timer.notification, self._clock.now())]
        )
        self._count_pages(incident, [timer.notification], self._clock.now())

    def _count_pages(
        self,
        incident: EscalationIncident,
        items: Sequence[OutboxItem | SendNotification],
        now: datetime,
    ) -> None:
        service = self.config.services.get(incident.service_id)
        support_hours = service.urgency.support_hours if service is not None else None
        incident_metrics.pages_requested(
            items, incident.policy_id, incident_metrics.after_hours(support_hours, now)
        )


def _alert_name(event: IncidentEvent) -> str:
    alert = event.alert
    return (alert.summary or alert.fingerprint) if alert else event.fingerprint or "an alert"


def alert_entries(event: IncidentEvent) -> list[TimelineEntry]:
    """What triage's news says on the timeline: an alert grouped in, every alert resolved
    (the resolve itself, or nothing when someone resolved it before, follows as its own
    entry)."""
    if event.kind is IncidentEventKind.ALERT_ADDED:
        what = _alert_name(event)
        return [
            TimelineEntry(
                id=f"alert:{event.incident_id}/{event.event_id}",
                at=event.occurred_at,
                action=Entry.ALERT_ADDED,
                actor=TRIAGE.name,
                detail=f"{what} ({event.firing_count} of {event.alert_count} alerts firing)",
            )
        ]
    if event.kind is IncidentEventKind.ALERT_HELD:
        what = _alert_name(event)
        return [
            TimelineEntry(
                id=f"held:{event.incident_id}/{event.event_id}",
                at=event.occurred_at,
                action=Entry.ALERT_HELD,
                actor=TRIAGE.name,
                detail=f"{what}: held back, {event.held or 'by triage'}",
            )
        ]
    if event.kind is IncidentEventKind.ALERTS_RESOLVED:
        return [
            TimelineEntry(
                id=f"alert:{event.incident_id}/{event.event_id}",
                at=event.occurred_at,
                action=Entry.ALERTS_RESOLVED,
                actor=TRIAGE.name,
                detail=f"all {event.alert_count} alerts resolved",
            )
        ]
    return []


def _details(event: IncidentEvent, alerts: tuple[AlertDetails, ...], urgency: Urgency) -> Details:
    return Details(
        event.title,
        event.severity,
        event.alert_count,
        latest_alerts(alerts, event.alert),
        urgency,
    )


def _with_lifecycle(
    incident: EscalationIncident, outcome: Outcome, actor: Actor, now: datetime
) -> EscalationIncident:
    """The new state, with who acknowledged or resolved it (cleared when it triggers again)."""
    status = outcome.state.status
    if status is incident.lifecycle.status:
        return replace(incident, lifecycle=outcome.state)
    stamp = Stamp(now, actor.published)
    if status is Status.ACKNOWLEDGED:
        return replace(incident, lifecycle=outcome.state, acknowledged=stamp)
    if status is Status.RESOLVED:
        return replace(incident, lifecycle=outcome.state, resolved=stamp)
    return replace(incident, lifecycle=outcome.state, acknowledged=None, resolved=None)
