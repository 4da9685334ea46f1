"""Escalation's collections: `escalation_incidents` (lifecycle and outbox),
`escalation_timeline` (one document per timeline entry, indexed by incident and time),
`escalation_timers` (durable timers claimed with a lease) and `escalation_commands` (what
became of each person's command, by command id).

Every incident change is a compare-and-set on `version` that also appends the outbox items to
carry out; timers are documents with `due_at` and a lease, so a restart or a second replica
never loses or double-fires a step. Timeline entries are written with `$setOnInsert` under
their deterministic id, so writing one again changes nothing.

The polled collections hold only pending work, so a poll costs what is pending, not what
happened (FerretDB filters most queries in its own process, document by document, whatever
the indexes: a poll over history grows with the history):
- `escalation_timers` holds pending, parked (due beyond the horizon of
  `tocsin/runtime/parking.py`) and quarantined timers; a fired or cancelled timer leaves
  a tombstone in `escalation_timers_done` (written before the timer is deleted) and arming a
  timer that has one deletes it again, so a replayed outbox never re-arms a finished timer.
- `escalation_outboxes` names the incidents whose outbox may hold items (`since`: the oldest,
  `floor`: minus the highest version that added items). It is written before the incident, and
  clearing the outbox at version V deletes it only if no save above V has marked it since, so a
  crash never leaves a pending outbox unnamed; the sweeper reads this small collection only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import TypeAdapter
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from schemas import AlertDetails, ChangeSummary, Severity
from services.escalation.domain.lifecycle import Assignment, Lifecycle, Responder, Status
from services.escalation.domain.outbox import ArmTimer, OutboxItem, SendNotification
from services.escalation.domain.timeline import TimelineEntry
from services.escalation.domain.urgency import Urgency
from services.escalation.metrics import QUARANTINED
from tocsin.runtime.mongo import Document
from tocsin.runtime.parking import LIVE, Parking
from tocsin.runtime.retention import Cascade, RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase

log = logging.getLogger(__name__)

_ITEMS = TypeAdapter(list[OutboxItem])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MAX_EVENT_IDS = 100
"""Message ids an incident remembers for deduplication: the latest ones."""


@dataclass(frozen=True)
class IncidentFilter:
    status: Status | None = None
    service_id: str | None = None
    severity: Severity | None = None


def listing_key(opened_at: datetime, incident_id: str) -> str:
    """Incidents list newest first in the order of this key (open time, then id)."""
    return f"{opened_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}/{incident_id}"


@dataclass(frozen=True)
class Details:
    """What triage says about an incident; the latest alerts are bounded (MAX_SNAPSHOT_ALERTS)."""

    title: str
    severity: Severity
    alert_count: int
    alerts: tuple[AlertDetails, ...] = ()
    urgency: Urgency = Urgency.HIGH  # escalation's decision (see domain/urgency.py)


@dataclass(frozen=True)
class CommandOutcome:
    """What became of a person's command (`incidents.commands`), by the command's id."""

    command_id: str
    incident_id: str
    applied: bool
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class Stamp:
    """Who moved the incident to a status, and when."""

    at: datetime
    by: str | None


@dataclass(frozen=True)
class EscalationIncident:
    id: str
    service_id: str
    policy_id: str | None
    title: str
    severity: Severity
    alert_count: int
    opened_at: datetime
    lifecycle: Lifecycle
    version: int
    outbox: tuple[OutboxItem, ...] = ()
    acknowledged: Stamp | None = None
    resolved: Stamp | None = None
    alerts: tuple[AlertDetails, ...] = ()
    event_ids: tuple[str, ...] = ()  # the latest ones that changed it (see MAX_EVENT_IDS)
    urgency: Urgency = Urgency.HIGH
    changes: tuple[ChangeSummary, ...] = ()  # on its service before it opened (from triage)

    @property
    def details(self) -> Details:
        return Details(self.title, self.severity, self.alert_count, self.alerts, self.urgency)

    @property
    def listing_key(self) -> str:
        return listing_key(self.opened_at, self.id)


@dataclass(frozen=True)
class Timer:
    id: str
    incident_id: str
    kind: str
    step: int
    cycle: int
    due_at: datetime
    notification: SendNotification | None
    failures: int = 0


class EscalationStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def create(self, incident: EscalationIncident, event_id: uuid.UUID) -> bool:
        """Insert a new incident; False if it exists already."""

    async def get(self, incident_id: str) -> EscalationIncident | None: ...

    async def has_event(self, incident_id: str, event_id: uuid.UUID) -> bool: ...

    async def list_incidents(
        self, where: IncidentFilter, before: str | None, limit: int
    ) -> list[EscalationIncident]:
        """Up to `limit` incidents matching `where`, newest first, older than the listing key
        `before` (see `listing_key`)."""

    async def save(
        self,
        incident: EscalationIncident,
        items: list[OutboxItem],
        event_id: uuid.UUID | None,
        at: datetime,
    ) -> bool:
        """Compare-and-set on `incident.version`; False if someone else changed it first."""

    async def update_details(self, incident_id: str, details: Details) -> None:
        """Overwrite what triage says about the incident (not its lifecycle)."""

    async def clear_outbox(self, incident_id: str, version: int) -> bool:
        """Empty the outbox if the incident is still at `version` (nothing new was added)."""

    async def with_stale_outbox(self, before: datetime, limit: int) -> list[str]:
        """Incidents whose outbox has held items since `before` or earlier, oldest first."""

    async def forget_outbox(self, incident_id: str) -> None:
        """The incident's outbox is found empty: it is no longer named as pending."""

    async def record(self, incident_id: str, entries: list[TimelineEntry]) -> None:
        """Write timeline entries; an entry whose id is stored already is left as it is."""

    async def timeline(self, incident_id: str, limit: int) -> list[TimelineEntry]:
        """The incident's latest `limit` entries, oldest first."""

    async def record_command(self, outcome: CommandOutcome) -> None:
        """Keep the first outcome recorded for a command."""

    async def command_outcome(self, command_id: str) -> CommandOutcome | None: ...

    async def arm_timer(self, incident_id: str, timer: ArmTimer) -> None: ...

    async def cancel_timers(self, incident_id: str, through_cycle: int | None) -> None:
        """Cancel pending timers of cycles up to `through_cycle` (None: all of them)."""

    async def claim_due_timer(
        self, now: datetime, owner: str, lease: timedelta
    ) -> Timer | None: ...

    async def next_timer_due(self) -> datetime | None:
        """When the next pending timer can be claimed (its due time, or its lease's end)."""

    @property
    def timer_armed(self) -> asyncio.Event:
        """Set when this process arms a timer (the loop clears it before looking)."""

    async def finish_timer(self, timer_id: str, owner: str) -> None: ...

    async def retry_timer(
        self, timer_id: str, owner: str, error: str, retry_at: datetime | None
    ) -> None:
        """Firing failed: release the timer for another try at `retry_at`, or, with None,
        set it aside as `quarantined` with the reason (it is never claimed again)."""


def _lifecycle_fields(lifecycle: Lifecycle) -> Document:
    return {
        "status": lifecycle.status.value,
        "cycle": lifecycle.cycle,
        "next_step": lifecycle.next_step,
        "responders": [{"user": r.user, "level": r.level} for r in lifecycle.responders],
        "snoozed_until": lifecycle.snoozed_until,
        "ack_timeout_at": lifecycle.ack_timeout_at,
        "assignment": (
            {"kind": lifecycle.assignment.kind, "id": lifecycle.assignment.id}
            if lifecycle.assignment is not None
            else None
        ),
        "commander": lifecycle.commander,
        "requests": lifecycle.requests,
    }


def _key(entry: TimelineEntry) -> str:
    # Time, then id: a total order in one sortable field (entries of one instant stay in order).
    return f"{entry.at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}/{entry.id}"


def _details_fields(details: Details) -> Document:
    return {
        "title": details.title,
        "severity": details.severity.value,
        "alert_count": details.alert_count,
        "alerts": [alert.model_dump(mode="python") for alert in details.alerts],
        "urgency": details.urgency.value,
    }


def _stamp_fields(prefix: str, stamp: Stamp | None) -> Document:
    return {
        f"{prefix}_at": stamp.at if stamp else None,
        f"{prefix}_by": stamp.by if stamp else None,
    }


def _stamp(doc: Document, prefix: str) -> Stamp | None:
    at = doc.get(f"{prefix}_at")
    return Stamp(at, doc.get(f"{prefix}_by")) if at is not None else None


def _responder(stored: Document | str) -> Responder:
    # Documents written before levels were kept hold bare user ids.
    if isinstance(stored, str):
        return Responder(stored, 0)
    return Responder(stored["user"], stored["level"])


def _assignment(stored: Document | None) -> Assignment | None:
    if stored is None:
        return None
    kind = stored["kind"]
    if kind not in ("user", "schedule", "policy"):
        raise ValueError(f"unknown assignment kind {kind!r}")
    return Assignment(kind, stored["id"])


def _incident(doc: Document) -> EscalationIncident:
    return EscalationIncident(
        id=doc["_id"],
        service_id=doc["service_id"],
        policy_id=doc.get("policy_id"),
        title=doc["title"],
        severity=Severity(doc["severity"]),
        alert_count=doc.get("alert_count", 0),
        opened_at=doc["opened_at"],
        lifecycle=Lifecycle(
            status=Status(doc["status"]),
            cycle=doc.get("cycle", 0),
            next_step=doc.get("next_step", 0),
            responders=tuple(_responder(r) for r in doc.get("responders", ())),
            snoozed_until=doc.get("snoozed_until"),
            ack_timeout_at=doc.get("ack_timeout_at"),
            assignment=_assignment(doc.get("assignment")),
            commander=doc.get("commander"),
            requests=int(doc.get("requests", 0)),
        ),
        version=doc["version"],
        outbox=tuple(_ITEMS.validate_python(doc.get("outbox", []))),
        acknowledged=_stamp(doc, "acknowledged"),
        resolved=_stamp(doc, "resolved"),
        alerts=tuple(AlertDetails.model_validate(a) for a in doc.get("alerts", ())),
        event_ids=tuple(doc.get("event_ids", ())),
        # Incidents stored before urgency existed paged as high urgency does.
        urgency=Urgency(doc.get("urgency", Urgency.HIGH.value)),
        changes=tuple(ChangeSummary.model_validate(c) for c in doc.get("changes", ())),
    )


class MongoEscalationStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._incidents = database["escalation_incidents"]
        self._timeline = database["escalation_timeline"]
        self._timers = database["escalation_timers"]
        self._timers_done = database["escalation_timers_done"]
        # Timers due beyond the horizon are parked, out of the claims' way (parking.py).
        self._parking = Parking()
        self._outboxes = database["escalation_outboxes"]
        self._commands = database["escalation_commands"]
        # Set whenever this process arms a timer: the timer loop sleeps until the next due time
        # and wakes at once for new work it armed itself.
        self.timer_armed = asyncio.Event()

    async def ensure_indexes(self) -> None:
        await self._incidents.create_index([("status", 1), ("listing_key", -1)])
        await self._incidents.create_index("listing_key")
        await self._incidents.create_index("outbox_since")
        await self._timeline.create_index([("incident_id", 1), ("key", 1)])
        await self._timers.create_index([("state", 1), ("due_at", 1)])
        await self._timers.create_index("incident_id")
        await self._incidents.create_index([("status", 1), ("resolved_at", 1)])
        await self._commands.create_index("at")
        await self._timers_done.create_index("at")
        await self._timers_done.create_index("incident_id")
        await self._outboxes.create_index("since")
        # Incidents stored before `escalation_outboxes` existed: name their pending outboxes
        # (one pass at start; an empty outbox is never marked).
        async for doc in self._incidents.find(
            {"outbox_since": {"$ne": None}}, projection={"_id": 1, "outbox_since": 1, "version": 1}
        ):
            await self._mark_outbox(doc["_id"], int(doc.get("version", 1)), doc["outbox_since"])

    async def create(self, incident: EscalationIncident, event_id: uuid.UUID) -> bool:
        doc: Document = {
            "_id": incident.id,
            "service_id": incident.service_id,
            "policy_id": incident.policy_id,
            **_details_fields(incident.details),
            "opened_at": incident.opened_at,
            "listing_key": incident.listing_key,
            "updated_at": incident.opened_at,
            **_lifecycle_fields(incident.lifecycle),
            "version": 1,
            "event_ids": [str(event_id)],
            "outbox": [item.model_dump(mode="python") for item in incident.outbox],
            "outbox_since": incident.opened_at if incident.outbox else None,
            **_stamp_fields("acknowledged", incident.acknowledged),
            **_stamp_fields("resolved", incident.resolved),
            "changes": [change.model_dump(mode="python") for change in incident.changes],
        }
        if incident.outbox:
            await self._mark_outbox(incident.id, 1, incident.opened_at)
        try:
            await self._incidents.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, incident_id: str) -> EscalationIncident | None:
        doc = await self._incidents.find_one({"_id": incident_id})
        return _incident(doc) if doc else None

    async def has_event(self, incident_id: str, event_id: uuid.UUID) -> bool:
        # By `_id` alone, checked here: the only filter FerretDB's SQLite handler answers from
        # its primary key (anything more reads the whole collection).
        found = await self._incidents.find_one({"_id": incident_id}, projection={"event_ids": 1})
        return found is not None and str(event_id) in found.get("event_ids", ())

    async def list_incidents(
        self, where: IncidentFilter, before: str | None, limit: int
    ) -> list[EscalationIncident]:
        # One sortable field (open time, then id) orders incidents totally and never changes,
        # so a cursor on it visits each incident once while others open and change.
        query: Document = {}
        if where.status is not None:
            query["status"] = where.status.value
        if where.service_id is not None:
            query["service_id"] = where.service_id
        if where.severity is not None:
            query["severity"] = where.severity.value
        if before is not None:
            query["listing_key"] = {"$lt": before}
        cursor = self._incidents.find(query).sort("listing_key", -1).limit(limit)
        return [_incident(doc) async for doc in cursor]

    async def save(
        self,
        incident: EscalationIncident,
        items: list[OutboxItem],
        event_id: uuid.UUID | None,
        at: datetime,
    ) -> bool:
        update: dict[str, Any] = {
            "$set": {
                **_lifecycle_fields(incident.lifecycle),
                **_stamp_fields("acknowledged", incident.acknowledged),
                **_stamp_fields("resolved", incident.resolved),
                "listing_key": incident.listing_key,  # documents written before it get it here
                "updated_at": at,
            },
            "$inc": {"version": 1},
        }
        if items:
            update["$push"] = {
                "outbox": {"$each": [item.model_dump(mode="python") for item in items]}
            }
            update["$set"]["outbox_since"] = at
            await self._mark_outbox(incident.id, incident.version + 1, at)
        if event_id is not None:
            # The latest MAX_EVENT_IDS only (a redelivery comes soon after the original), so the
            # document stays bounded; the compare-and-set makes this read-modify-write safe.
            recent = [*incident.event_ids, str(event_id)][-MAX_EVENT_IDS:]
            update["$set"]["event_ids"] = recent
        result = await self._incidents.update_one(
            {"_id": incident.id, "version": incident.version}, update
        )
        return result.modified_count == 1

    async def update_details(self, incident_id: str, details: Details) -> None:
        await self._incidents.update_one({"_id": incident_id}, {"$set": _details_fields(details)})

    async def clear_outbox(self, incident_id: str, version: int) -> bool:
        # Compare-and-set without bumping `version`: a writer that appended items since has
        # changed the version and will carry out (and clear) the whole outbox itself.
        result = await self._incidents.update_one(
            {"_id": incident_id, "version": version},
            {"$set": {"outbox": [], "outbox_since": None}},
        )
        if result.matched_count != 1:
            return False
        await self._unmark_outbox(incident_id, version)
        return True

    async def _mark_outbox(self, incident_id: str, version: int, since: datetime) -> None:
        await self._outboxes.update_one(
            {"_id": incident_id}, {"$min": {"since": since, "floor": -version}}, upsert=True
        )

    async def _unmark_outbox(self, incident_id: str, version: int) -> None:
        # Only if no save above `version` marked it meanwhile (floor >= -version).
        await self._outboxes.delete_one({"_id": incident_id, "floor": {"$gt": -version - 1}})

    async def with_stale_outbox(self, before: datetime, limit: int) -> list[str]:
        cursor = (
            self._outboxes.find({"since": {"$lte": before}}, projection={"_id": 1})
            .sort("since", 1)
            .limit(limit)
        )
        return [doc["_id"] async for doc in cursor]

    async def forget_outbox(self, incident_id: str) -> None:
        doc = await self._incidents.find_one(
            {"_id": incident_id}, projection={"outbox": 1, "version": 1}
        )
        if doc is None:
            await self._outboxes.delete_one({"_id": incident_id})
        elif not doc.get("outbox"):
            await self._unmark_outbox(incident_id, int(doc["version"]))

    async def record(self, incident_id: str, entries: list[TimelineEntry]) -> None:
        for entry in entries:
            fields = entry.model_dump(mode="python", exclude={"id"}, exclude_none=True)
            await self._timeline.update_one(
                {"_id": entry.id},
                {"$setOnInsert": {**fields, "incident_id": incident_id, "key": _key(entry)}},
                upsert=True,
            )

    async def timeline(self, incident_id: str, limit: int) -> list[TimelineEntry]:
        cursor = self._timeline.find({"incident_id": incident_id}).sort("key", -1).limit(limit)
        latest = [
            TimelineEntry.model_validate(
                {k: v for k, v in doc.items() if k not in ("_id", "incident_id", "key")}
                | {"id": doc["_id"]}
            )
            async for doc in cursor
        ]
        return latest[::-1]

    async def record_command(self, outcome: CommandOutcome) -> None:
        await self._commands.update_one(
            {"_id": outcome.command_id},
            {
                "$setOnInsert": {
                    "incident_id": outcome.incident_id,
                    "applied": outcome.applied,
                    "reason": outcome.reason,
                    "at": outcome.at,
                }
            },
            upsert=True,
        )

    async def command_outcome(self, command_id: str) -> CommandOutcome | None:
        doc = await self._commands.find_one({"_id": command_id})
        if doc is None:
            return None
        return CommandOutcome(
            command_id=doc["_id"],
            incident_id=doc["incident_id"],
            applied=doc["applied"],
            reason=doc.get("reason"),
            at=doc["at"],
        )

    async def arm_timer(self, incident_id: str, timer: ArmTimer) -> None:
        await self._timers.update_one(
            {"_id": timer.timer_id},
            {
                "$setOnInsert": {
                    "incident_id": incident_id,
                    "kind": timer.kind,
                    "due_at": timer.due_at,
                    "step": timer.step,
                    "cycle": timer.cycle,
                    "notification": (
                        timer.notification.model_dump(mode="python") if timer.notification else None
                    ),
                    "state": self._parking.state_for(timer.due_at),
                    "lease_until": _EPOCH,
                    "lease_owner": None,
                }
            },
            upsert=True,
        )
        if await self._timers_done.find_one({"_id": timer.timer_id}, projection={"_id": 1}):
            # Fired or cancelled already (an outbox carried out again): never twice.
            await self._timers.delete_one({"_id": timer.timer_id, "state": {"$in": list(LIVE)}})
            return
        self.timer_armed.set()

    async def _tombstone(self, timer_id: str, incident_id: str, state: str, at: datetime) -> None:
        await self._timers_done.update_one(
            {"_id": timer_id},
            {"$setOnInsert": {"incident_id": incident_id, "state": state, "at": at}},
            upsert=True,
        )

    async def cancel_timers(self, incident_id: str, through_cycle: int | None) -> None:
        query: Document = {"incident_id": incident_id, "state": {"$in": list(LIVE)}}
        if through_cycle is not None:
            query["cycle"] = {"$lte": through_cycle}
        ids = [doc["_id"] async for doc in self._timers.find(query, projection={"_id": 1})]
        if not ids:
            return
        at = datetime.now(UTC)
        for timer_id in ids:
            await self._tombstone(timer_id, incident_id, "cancelled", at)
        await self._timers.delete_many({"_id": {"$in": ids}, "state": {"$in": list(LIVE)}})

    async def next_timer_due(self, limit: int = 20) -> datetime | None:
        cursor = (
            self._timers.find({"state": "pending"}, projection={"due_at": 1, "lease_until": 1})
            .sort("due_at", 1)
            .limit(limit)
        )
        due = [max(doc["due_at"], doc.get("lease_until", _EPOCH)) async for doc in cursor]
        return min(due, default=None)

    async def claim_due_timer(self, now: datetime, owner: str, lease: timedelta) -> Timer | None:
        await self._parking.promote_if_due(self._timers, now)
        doc = await self._timers.find_one_and_update(
            {"state": "pending", "due_at": {"$lte": now}, "lease_until": {"$lte": now}},
            {"$set": {"lease_until": now + lease, "lease_owner": owner}},
            sort=[("due_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        if await self._timers_done.find_one({"_id": doc["_id"]}, projection={"_id": 1}):
            # Cancelled (or fired) by someone who crashed before deleting it: finish that.
            await self._timers.delete_one({"_id": doc["_id"], "lease_owner": owner})
            return await self.claim_due_timer(now, owner, lease)
        try:
            return _timer(doc)
        except (KeyError, TypeError, ValueError) as error:
            # Written by another version, or damaged: never claim it again, say why, go on.
            reason = f"unreadable timer: {type(error).__name__}: {error}"[:2048]
            await self._timers.update_one(
                {"_id": doc["_id"]}, {"$set": {"state": "quarantined", "quarantine_reason": reason}}
            )
            QUARANTINED.labels(kind="timer").inc()
            log.error("timer %s quarantined: %s", doc["_id"], reason)
            return await self.claim_due_timer(now, owner, lease)

    async def finish_timer(self, timer_id: str, owner: str) -> None:
        # Only the lease holder finishes a timer; a lapsed lease means someone else may retry.
        doc = await self._timers.find_one(
            {"_id": timer_id}, projection={"lease_owner": 1, "incident_id": 1}
        )
        if doc is None or doc.get("lease_owner") != owner:
            return
        # The tombstone first: a crash in between leaves a fired timer that re-arming skips
        # and the next claim fires once more (a no-op for a step already taken).
        await self._tombstone(timer_id, doc.get("incident_id", ""), "done", datetime.now(UTC))
        await self._timers.delete_one({"_id": timer_id, "lease_owner": owner, "state": "pending"})

    async def retry_timer(
        self, timer_id: str, owner: str, error: str, retry_at: datetime | None
    ) -> None:
        update: Document
        if retry_at is None:
            update = {"$set": {"state": "quarantined", "quarantine_reason": error[:2048]}}
        else:
            update = {
                "$set": {"due_at": retry_at, "lease_until": retry_at, "last_error": error[:2048]},
                "$inc": {"failures": 1},
            }
        await self._timers.update_one(
            {"_id": timer_id, "lease_owner": owner, "state": "pending"}, update
        )


def _timer(doc: Document) -> Timer:
    notification = doc.get("notification")
    return Timer(
        id=doc["_id"],
        incident_id=doc["incident_id"],
        kind=doc["kind"],
        step=doc["step"],
        cycle=doc["cycle"],
        due_at=doc["due_at"],
        notification=SendNotification.model_validate(notification) if notification else None,
        failures=int(doc.get("failures", 0)),
    )


def retention_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    """Resolved incidents past retention go with their timeline and timers; finished timers
    (tombstones, and those stored with a final state before tombstones existed) and recorded
    command outcomes are kept only briefly (they matter while an action is answered)."""
    return [
        RetentionRule(
            "escalation_incidents",
            "resolved_at",
            policy.resolved,
            {"status": "resolved"},
            cascade=(
                Cascade("escalation_timeline", "incident_id"),
                Cascade("escalation_timers", "incident_id"),
                Cascade("escalation_timers_done", "incident_id"),
                Cascade("escalation_outboxes", "_id"),
            ),
        ),
        # Tombstones of fired and cancelled timers (they only guard against re-arming).
        RetentionRule("escalation_timers_done", "at", policy.internal),
        RetentionRule(
            "escalation_timers",
            "due_at",
            policy.internal,
            {"state": {"$in": ["done", "cancelled", "quarantined"]}},
        ),
        RetentionRule("escalation_commands", "at", policy.internal),
        # An override that ended is history, kept as long as resolved incidents are.
        RetentionRule("escalation_overrides", "end", policy.resolved),
    ]
