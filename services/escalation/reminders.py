"""Durable reminders: "page this user with this short text at `due_at`", as documents in
`escalation_reminders`, claimed by a loop with a lease (like timers.py, for people rather than
incident steps). A post-incident review not started, an action item overdue, a status update
overdue each arm one.

The collection holds only pending work: a reminder that fired is deleted (or moved to its next
`due_at` when its kind repeats); one whose firing keeps failing is set aside as `quarantined`
with the reason. Several replicas never fire one twice: the claim is a single
`find_one_and_update` with a lease, and the page's notification id is derived from the
reminder's id and due time, so even a lease that lapsed mid-firing pages once (the notifier
sends one message per notification id).

API (for other modules of escalation):

    reminders = Reminders(ReminderStore(database), bus, incidents, config, clock, owner)
    reminders.handle("review_due", handler)      # optional, per kind
    await reminders.arm(Reminder(                # idempotent by `id`
        id="review:inc-42", kind="review_due", subject_id="inc-42", incident_id="inc-42",
        user_id="alice", text="Review due: Checkout down", due_at=now + timedelta(days=2),
    ))
    await reminders.arm(reminder, replace=True)  # move an armed reminder (e.g. a cadence)
    await reminders.cancel("review:inc-42")
    await reminders.pending(subject_id="inc-42") # what is armed for a subject
    loops=[reminders.run]                        # in the service (app.py does this)
    await reminders.fire_due()                   # tests: fire what is due now (injected clock)

- `id` is deterministic (the subject and what the reminder is for): arming the same id again
  changes nothing unless `replace=True`, which sets its due time, text, user and payload (and a
  replica firing the old version then neither deletes nor re-arms it).
- A handler (`handle(kind, fn)`) decides at firing time: `fn(reminder, now) -> Firing`; whom to
  page (None: it is moot, nothing is sent), the text, and `again_at` to repeat (e.g. once a day
  while an action item stays overdue). Without a handler a reminder pages its `user_id` with
  its `text` once.
- A page goes to the user's contacts of their notification rules that apply at once (no
  `after` delay; rules for high urgency only are skipped: a reminder is not an emergency), or
  their first contact, as `notifications.requested` with event `reminder` and the text as the
  incident snapshot's title; the incident's timeline gets a `reminded` entry.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument

from schemas import (
    NOTIFICATIONS_REQUESTED,
    IncidentSnapshot,
    NotificationEvent,
    NotificationRequested,
    Recipient,
)
from services.escalation.config import EscalationConfig, EscalationUser
from services.escalation.domain.snapshot import incident_url
from services.escalation.domain.timeline import Entry, TimelineEntry
from services.escalation.metrics import QUARANTINED, REMINDERS_SENT
from services.escalation.pages import message_id
from services.escalation.store import EscalationStore
from tocsin.runtime.backoff import backoff_delay
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.consumer import UNAVAILABLE
from tocsin.runtime.live_config import Current
from tocsin.runtime.mongo import Document
from tocsin.runtime.parking import LIVE, Parking
from tocsin.runtime.store import DocumentDatabase

log = logging.getLogger(__name__)

REMINDER_ATTEMPTS = 5  # failed firings of one reminder before it is quarantined
MAX_TEXT = 300
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Reminder:
    id: str
    kind: str
    subject_id: str  # what it is about: an incident, an action item
    incident_id: str  # the incident it belongs to (its timeline, the page's snapshot)
    user_id: str
    text: str
    due_at: datetime
    payload: Mapping[str, str] = field(default_factory=dict)
    failures: int = 0
    generation: int = 0


@dataclass(frozen=True)
class Firing:
    """What a due reminder does: page `user_id` (None: nothing, it is moot) with `text`, then
    fire again at `again_at` (None: it is done and deleted)."""

    user_id: str | None
    text: str
    again_at: datetime | None = None


Handler = Callable[[Reminder, datetime], Awaitable[Firing]]


def _doc(reminder: Reminder) -> Document:
    return {
        "kind": reminder.kind,
        "subject_id": reminder.subject_id,
        "incident_id": reminder.incident_id,
        "user_id": reminder.user_id,
        "text": reminder.text[:MAX_TEXT],
        "due_at": reminder.due_at,
        "payload": dict(reminder.payload),
    }


def _reminder(doc: Document) -> Reminder:
    return Reminder(
        id=doc["_id"],
        kind=doc["kind"],
        subject_id=doc["subject_id"],
        incident_id=doc["incident_id"],
        user_id=doc["user_id"],
        text=doc["text"],
        due_at=doc["due_at"],
        payload={str(k): str(v) for k, v in (doc.get("payload") or {}).items()},
        failures=int(doc.get("failures", 0)),
        generation=int(doc.get("generation", 0)),
    )


class ReminderStore:
    """`escalation_reminders`: pending (or parked: due beyond the horizon of
    `tocsin/runtime/parking.py`) reminders only (a done one is deleted)."""

    def __init__(self, database: DocumentDatabase) -> None:
        self._reminders = database["escalation_reminders"]
        # Reminders due beyond the horizon are parked, out of the claims' way (parking.py).
        self._parking = Parking()

    async def ensure_indexes(self) -> None:
        # The claim query: pending, due, lease lapsed, earliest first.
        await self._reminders.create_index([("state", 1), ("due_at", 1)])
        await self._reminders.create_index("subject_id")

    async def arm(self, reminder: Reminder, *, replace: bool) -> None:
        fields = _doc(reminder)
        if replace:
            await self._reminders.update_one(
                {"_id": reminder.id},
                {
                    "$set": {
                        **fields,
                        "state": self._parking.state_for(reminder.due_at),
                        "lease_until": _EPOCH,
                        "lease_owner": None,
                        "failures": 0,
                    },
                    "$inc": {"generation": 1},
                },
                upsert=True,
            )
            return
        await self._reminders.update_one(
            {"_id": reminder.id},
            {
                "$setOnInsert": {
                    **fields,
                    "state": self._parking.state_for(reminder.due_at),
                    "lease_until": _EPOCH,
                    "lease_owner": None,
                    "failures": 0,
                    "generation": 0,
                }
            },
            upsert=True,
        )

    async def cancel(self, reminder_id: str) -> None:
        await self._reminders.delete_one({"_id": reminder_id})

    async def get(self, reminder_id: str) -> Reminder | None:
        doc = await self._reminders.find_one({"_id": reminder_id})
        return _reminder(doc) if doc else None

    async def pending(self, subject_id: str) -> list[Reminder]:
        cursor = self._reminders.find({"subject_id": subject_id, "state": {"$in": list(LIVE)}})
        return [_reminder(doc) async for doc in cursor]

    async def claim(self, now: datetime, owner: str, lease: timedelta) -> Reminder | None:
        await self._parking.promote_if_due(self._reminders, now)
        doc = await self._reminders.find_one_and_update(
            {"state": "pending", "due_at": {"$lte": now}, "lease_until": {"$lte": now}},
            {"$set": {"lease_until": now + lease, "lease_owner": owner}},
            sort=[("due_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        try:
            return _reminder(doc)
        except (KeyError, TypeError, ValueError) as error:
            reason = f"unreadable reminder: {type(error).__name__}: {error}"[:2048]
            await self._set_aside(doc["_id"], reason)
            return await self.claim(now, owner, lease)

    def _held(self, reminder: Reminder, owner: str) -> Document:
        # Only the lease holder of this version (not re-armed since) may finish it.
        return {
            "_id": reminder.id,
            "lease_owner": owner,
            "state": "pending",
            "generation": reminder.generation,
        }

    async def finish(self, reminder: Reminder, owner: str, again_at: datetime | None) -> None:
        if again_at is None:
            await self._reminders.delete_one(self._held(reminder, owner))
            return
        await self._reminders.update_one(
            self._held(reminder, owner),
            {
                "$set": {
                    "due_at": again_at,
                    "state": self._parking.state_for(again_at),
                    "lease_until": _EPOCH,
                    "lease_owner": None,
                },
                "$inc": {"generation": 1},
            },
        )

    async def retry(
        self, reminder: Reminder, owner: str, error: str, retry_at: datetime | None
    ) -> None:
        if retry_at is None:
            await self._reminders.update_one(
                self._held(reminder, owner),
                {"$set": {"state": "quarantined", "quarantine_reason": error[:2048]}},
            )
            return
        await self._reminders.update_one(
            self._held(reminder, owner),
            {
                "$set": {"lease_until": retry_at, "last_error": error[:2048]},
                "$inc": {"failures": 1},
            },
        )

    async def _set_aside(self, reminder_id: str, reason: str) -> None:
        await self._reminders.update_one(
            {"_id": reminder_id}, {"$set": {"state": "quarantined", "quarantine_reason": reason}}
        )
        QUARANTINED.labels(kind="reminder").inc()
        log.error("reminder %s quarantined: %s", reminder_id, reason)


def reminder_contacts(user: EscalationUser) -> tuple[str, ...]:
    """Where a reminder reaches a user: the contacts their rules use at once (not the ones for
    high urgency only), else their first contact."""
    immediate = [
        rule.contact
        for rule in user.notification_rules
        if rule.after == timedelta(0) and rule.urgency != "high"
    ]
    chosen = tuple(dict.fromkeys(immediate))
    if chosen:
        return chosen
    return user.contact_ids[:1]


def reminder_notification_id(reminder: Reminder, contact_id: str) -> str:
    """One id per reminder, due time and contact: a second firing of the same due reminder (a
    lapsed lease) is the same notification, which the notifier sends once."""
    return f"reminder:{reminder.id}/{reminder.due_at.astimezone(UTC):%Y%m%dT%H%M%S}/{contact_id}"


class Reminders:
    def __init__(
        self,
        store: ReminderStore,
        bus: Bus,
        incidents: EscalationStore,
        config: Current[EscalationConfig],
        clock: Clock,
        owner: str,
        *,
        lease: timedelta = timedelta(seconds=30),
        poll_seconds: float = 1.0,
        public_url: str | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._incidents = incidents
        self._config = config
        self._clock = clock
        self._owner = owner
        self._lease = lease
        self._poll = poll_seconds
        self._public_url = public_url
        self._handlers: dict[str, Handler] = {}

    @property
    def store(self) -> ReminderStore:
        return self._store

    def handle(self, kind: str, handler: Handler) -> None:
        """Decide at firing time what reminders of `kind` do (see `Firing`)."""
        self._handlers[kind] = handler

    async def arm(self, reminder: Reminder, *, replace: bool = False) -> None:
        """Arm a reminder; the same id again changes nothing unless `replace`."""
        await self._store.arm(reminder, replace=replace)

    async def cancel(self, reminder_id: str) -> None:
        await self._store.cancel(reminder_id)

    async def pending(self, subject_id: str) -> list[Reminder]:
        return await self._store.pending(subject_id)

    async def run(self) -> None:
        """Claim due reminders with a lease and fire them, until cancelled."""
        unavailable = 0
        while True:
            try:
                fired = await self.fire_due()
            except UNAVAILABLE as error:
                # Reminders are durable: a claimed one is retaken after its lease.
                log.warning("reminders: %s unavailable (%s)", type(error).__name__, error)
                unavailable += 1
                await asyncio.sleep(
                    backoff_delay(unavailable, base=0.5, cap=10.0, random=random.random)
                )
                continue
            unavailable = 0
            if not fired:
                await asyncio.sleep(self._poll)

    async def fire_due(self, limit: int = 100) -> int:
        """Fire up to `limit` reminders due now; the number fired."""
        fired = 0
        while fired < limit:
            now = self._clock.now()
            reminder = await self._store.claim(now, self._owner, self._lease)
            if reminder is None:
                break
            try:
                firing = await self._decide(reminder, now)
                if firing.user_id is not None:
                    await self._page(reminder, firing, now)
            except UNAVAILABLE:
                raise
            except Exception as error:
                await self._failed(reminder, error)
                continue
            await self._store.finish(reminder, self._owner, firing.again_at)
            fired += 1
        return fired

    async def _decide(self, reminder: Reminder, now: datetime) -> Firing:
        handler = self._handlers.get(reminder.kind)
        if handler is None:
            return Firing(reminder.user_id, reminder.text)
        return await handler(reminder, now)

    async def _page(self, reminder: Reminder, firing: Firing, now: datetime) -> None:
        assert firing.user_id is not None
        incident = await self._incidents.get(reminder.incident_id)
        if incident is None:
            log.warning("reminder %s: incident %s is gone", reminder.id, reminder.incident_id)
            return
        user = self._config.current.user(firing.user_id)
        contacts = reminder_contacts(user) if user is not None else ()
        if not contacts:
            log.warning("reminder %s: %s has no contact", reminder.id, firing.user_id)
            return
        text = firing.text[:MAX_TEXT]
        snapshot = IncidentSnapshot(
            id=incident.id,
            title=text,
            severity=incident.severity,
            status=incident.lifecycle.status.value,
            service=incident.service_id,
            alert_count=incident.alert_count,
            url=incident_url(self._public_url, incident.id),
            commander=incident.lifecycle.commander,
        )
        target = replace(reminder, user_id=firing.user_id)
        requests = [
            NotificationRequested(
                event_id=message_id(reminder_notification_id(target, contact)),
                occurred_at=now,
                correlation_id=incident.id,
                notification_id=reminder_notification_id(target, contact),
                event=NotificationEvent.REMINDER,
                incident=snapshot,
                recipient=Recipient(user_id=firing.user_id, contact_id=contact),
                escalation_level=0,
            )
            for contact in contacts
        ]
        await self._bus.publish_many(
            NOTIFICATIONS_REQUESTED, [(incident.id, request) for request in requests]
        )
        stamp = f"{reminder.due_at.astimezone(UTC):%Y%m%dT%H%M%S}"
        await self._incidents.record(
            incident.id,
            [
                TimelineEntry(
                    id=f"reminded:{reminder.id}/{stamp}",
                    at=now,
                    action=Entry.REMINDED,
                    user_id=firing.user_id,
                    event=NotificationEvent.REMINDER,
                    detail=text,
                )
            ],
        )
        REMINDERS_SENT.labels(kind=reminder.kind).inc()

    async def _failed(self, reminder: Reminder, error: Exception) -> None:
        failures = reminder.failures + 1
        reason = f"{type(error).__name__}: {error}"
        if failures >= REMINDER_ATTEMPTS:
            log.exception("reminder %s failed %d times; quarantined", reminder.id, failures)
            QUARANTINED.labels(kind="reminder").inc()
            await self._store.retry(reminder, self._owner, reason, None)
            return
        delay = backoff_delay(failures, base=1.0, cap=60.0, random=random.random)
        log.warning("reminder %s failed (%s); retrying in %.1fs", reminder.id, reason, delay)
        await self._store.retry(
            reminder, self._owner, reason, self._clock.now() + timedelta(seconds=delay)
        )
