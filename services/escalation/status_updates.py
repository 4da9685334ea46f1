"""Status updates on incidents (escalation's side): posting one (stored, put on the timeline,
published on `incidents.updates` for the notifier's pages and subscribers, through an outbox
flag), and the update cadence: while an incident is open, its next update is due a cadence
(per severity, from the status pages' configuration) after the last one or the opening; when
none came, the timeline says so (`update_overdue`), `tocsin_status_updates_overdue_total`
counts it, and the incident commander (or the responder who acknowledged) is reminded through
the durable reminders (reminders.py), again each cadence until an update comes or the incident
resolves.

The cadence follows the incident through its own consumer group on `incidents.events` (armed
when it opens, moved when its severity changes) and `incidents.lifecycle` (cancelled when it
resolves, armed again when it re-triggers)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter

from schemas import (
    INCIDENTS_EVENTS,
    INCIDENTS_LIFECYCLE,
    INCIDENTS_UPDATES,
    ComponentStatus,
    ComponentStatusChange,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    IncidentUpdatePosted,
    LifecycleStatus,
    Severity,
    UpdateStatus,
)
from services.escalation.config import EscalationConfig
from services.escalation.domain import cadence
from services.escalation.domain.cadence import UpdatesConfig
from services.escalation.domain.lifecycle import Status
from services.escalation.domain.timeline import TimelineEntry
from services.escalation.reminders import Firing, Reminder, Reminders
from services.escalation.store import EscalationIncident, EscalationStore
from services.escalation.updates_store import StatusUpdate, UpdatesStore
from tocsin.runtime.bus import Bus, PublishError, Subscription
from tocsin.runtime.clock import Clock
from tocsin.runtime.consumer import UNAVAILABLE
from tocsin.runtime.durations import format_duration
from tocsin.runtime.live_config import Current

log = logging.getLogger(__name__)

UPDATES_GROUP = "tocsin-escalation-updates"
CADENCE_KIND = "status_update_due"
STATUS_UPDATE = "status_update"  # timeline actions
UPDATE_OVERDUE = "update_overdue"
OUTBOX_GRACE = timedelta(seconds=5)

OVERDUE = Counter(
    "tocsin_status_updates_overdue_total",
    "Status updates that were due by the cadence and had not come (each reminder), by severity.",
    ["severity"],
)


class UnknownComponent(Exception):
    pass


def cadence_id(incident_id: str) -> str:
    return f"cadence:{incident_id}"


def _stamp(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%S}"


@dataclass(frozen=True)
class Subject:
    """What the cadence needs to know of an incident."""

    incident_id: str
    service_id: str
    severity: Severity
    opened_at: datetime


@dataclass(frozen=True)
class PostUpdate:
    """An operator's update, as the API received it."""

    status: UpdateStatus
    message: str
    public: bool
    components: tuple[tuple[str, ComponentStatus], ...]
    author: str


class StatusUpdates:
    def __init__(
        self,
        store: UpdatesStore,
        incidents: EscalationStore,
        reminders: Reminders,
        bus: Bus,
        config: Current[UpdatesConfig],
        escalation: Current[EscalationConfig],
        clock: Clock,
        *,
        poll_seconds: float = 2.0,
    ) -> None:
        self.store = store
        self._incidents = incidents
        self._reminders = reminders
        self._bus = bus
        self._config = config
        self._escalation = escalation
        self._clock = clock
        self._poll = poll_seconds
        reminders.handle(CADENCE_KIND, self._due)

    def subscriptions(self) -> list[Subscription[Any]]:
        return [
            Subscription(INCIDENTS_EVENTS, UPDATES_GROUP, IncidentEvent, self.on_incident_event),
            Subscription(
                INCIDENTS_LIFECYCLE, UPDATES_GROUP, IncidentLifecycleChanged, self.on_lifecycle
            ),
        ]

    # -- posting -------------------------------------------------------------------------------

    async def post(self, incident: EscalationIncident, request: PostUpdate) -> StatusUpdate:
        known = self._config.current.components
        unknown = [c for c, _ in request.components if c not in known]
        if unknown:
            raise UnknownComponent(unknown[0])
        now = self._clock.now()
        update = StatusUpdate(
            id=str(uuid.uuid4()),
            incident_id=incident.id,
            service_id=incident.service_id,
            status=request.status,
            message=request.message,
            public=request.public,
            components=request.components,
            author=request.author,
            created_at=now,
        )
        await self.store.add(update)
        where = "public" if update.public else "internal"
        await self._incidents.record(
            incident.id,
            [
                TimelineEntry(
                    id=f"update:{update.id}",
                    at=now,
                    action=STATUS_UPDATE,
                    actor=request.author,
                    detail=f"{update.status.value} ({where}): {update.message}"[:4096],
                )
            ],
        )
        if incident.lifecycle.status != Status.RESOLVED:
            await self._arm(incident, last_update_at=now, replace=True)
        try:
            await self._publish(update)
        except PublishError as error:
            log.warning("update %s not published yet (%s); the outbox retries", update.id, error)
            return update
        return StatusUpdate(**{**update.__dict__, "published": True})

    async def _publish(self, update: StatusUpdate) -> None:
        message = IncidentUpdatePosted(
            event_id=uuid.UUID(update.id),
            occurred_at=update.created_at,
            correlation_id=update.incident_id,
            incident_id=update.incident_id,
            service_id=update.service_id,
            status=update.status,
            message=update.message,
            public=update.public,
            components=tuple(
                ComponentStatusChange(component_id=c, status=s) for c, s in update.components
            ),
            author=update.author,
        )
        await self._bus.publish(INCIDENTS_UPDATES, update.incident_id, message)
        await self.store.mark_published(update.id)

    async def publish_pending(self) -> int:
        """Publish updates stored while the bus refused them; the number published."""
        pending = await self.store.unpublished(self._clock.now() - OUTBOX_GRACE)
        for update in pending:
            await self._publish(update)
        return len(pending)

    async def run_outbox(self) -> None:
        while True:
            try:
                await self.publish_pending()
            except UNAVAILABLE as error:
                log.warning("status update outbox: %s", type(error).__name__)
            await asyncio.sleep(self._poll)

    # -- cadence -------------------------------------------------------------------------------

    async def _arm(
        self, incident: EscalationIncident, *, last_update_at: datetime | None, replace: bool
    ) -> None:
        await self._arm_for(
            Subject(incident.id, incident.service_id, incident.severity, incident.opened_at),
            last_update_at=last_update_at,
            replace=replace,
        )

    async def _arm_for(
        self, subject: Subject, *, last_update_at: datetime | None, replace: bool
    ) -> None:
        every = self._config.current.cadence(subject.service_id, subject.severity)
        if every is None:
            await self._reminders.cancel(cadence_id(subject.incident_id))
            return
        due = cadence.next_update_due(
            opened_at=subject.opened_at, last_update_at=last_update_at, cadence=every
        )
        await self._reminders.arm(
            Reminder(
                id=cadence_id(subject.incident_id),
                kind=CADENCE_KIND,
                subject_id=subject.incident_id,
                incident_id=subject.incident_id,
                user_id="",  # decided when it fires (see `_due`)
                text="Status update due",
                due_at=due,
            ),
            replace=replace,
        )

    async def on_incident_event(self, event: IncidentEvent) -> None:
        """Arm the cadence from the event itself: this consumer group may run ahead of
        escalation's own, so the incident need not be stored yet."""
        if event.kind not in (IncidentEventKind.OPENED, IncidentEventKind.SEVERITY_CHANGED):
            return
        incident = await self._incidents.get(event.incident_id)
        if incident is not None and incident.lifecycle.status == Status.RESOLVED:
            return
        opened_at = incident.opened_at if incident is not None else event.occurred_at
        subject = Subject(event.incident_id, event.service_id, event.severity, opened_at)
        await self._arm_for(
            subject,
            last_update_at=await self.store.last_at(event.incident_id),
            replace=event.kind != IncidentEventKind.OPENED,
        )

    async def on_lifecycle(self, change: IncidentLifecycleChanged) -> None:
        if change.status == LifecycleStatus.RESOLVED:
            await self._reminders.cancel(cadence_id(change.incident_id))
        elif change.status == LifecycleStatus.TRIGGERED:
            incident = await self._incidents.get(change.incident_id)
            if incident is not None and incident.lifecycle.status != Status.RESOLVED:
                last = await self.store.last_at(incident.id)
                await self._arm(incident, last_update_at=last, replace=True)

    def _who(self, incident: EscalationIncident) -> str | None:
        """The incident commander, else the responder who acknowledged (a configured user)."""
        config = self._escalation.current
        for candidate in (
            incident.lifecycle.commander,
            incident.acknowledged.by if incident.acknowledged else None,
        ):
            if candidate and config.user(candidate) is not None:
                return candidate
        return None

    async def _due(self, reminder: Reminder, now: datetime) -> Firing:
        incident = await self._incidents.get(reminder.incident_id)
        if incident is None:
            return Firing(None, "")
        every = self._config.current.cadence(incident.service_id, incident.severity)
        due = cadence.check(
            now=now,
            resolved=incident.lifecycle.status == Status.RESOLVED,
            opened_at=incident.opened_at,
            last_update_at=await self.store.last_at(incident.id),
            cadence=every,
        )
        if not due.overdue:
            return Firing(None, "", again_at=due.next_check)
        assert every is not None
        late = format_duration(every)
        await self._incidents.record(
            incident.id,
            [
                TimelineEntry(
                    id=f"{UPDATE_OVERDUE}:{incident.id}/{_stamp(reminder.due_at)}",
                    at=now,
                    action=UPDATE_OVERDUE,
                    detail=f"No status update for {late} ({incident.severity.value} cadence)",
                )
            ],
        )
        OVERDUE.labels(severity=incident.severity.value).inc()
        text = f"Status update overdue ({late}): {incident.title}"
        return Firing(self._who(incident), text, again_at=due.next_check)
