"""Escalation's collections: `escalation_incidents` (lifecycle, outbox, timeline) and
`escalation_timers` (durable timers claimed with a lease).

Every incident change is a compare-and-set on `version` that also appends the outbox items to
carry out; timers are documents with `due_at` and a lease, so a restart or a second replica
never loses or double-fires a step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import TypeAdapter
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas import Severity
from services.escalation.domain.lifecycle import Lifecycle, Responder, Status
from services.escalation.domain.outbox import ArmTimer, OutboxItem, SendNotification
from tocsin.runtime.mongo import Document

_ITEMS = TypeAdapter(list[OutboxItem])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    action: str
    actor: str


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
    timeline: tuple[TimelineEntry, ...] = ()


@dataclass(frozen=True)
class Timer:
    id: str
    incident_id: str
    kind: str
    step: int
    cycle: int
    due_at: datetime
    notification: SendNotification | None


class EscalationStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def create(
        self, incident: EscalationIncident, event_id: uuid.UUID, entry: TimelineEntry
    ) -> bool:
        """Insert a new incident; False if it exists already."""

    async def get(self, incident_id: str) -> EscalationIncident | None: ...

    async def status(self, incident_id: str) -> Status | None:
        """Just the lifecycle status (cheap), or None for an unknown incident."""

    async def has_event(self, incident_id: str, event_id: uuid.UUID) -> bool: ...

    async def list_incidents(
        self, status: Status | None, limit: int
    ) -> list[EscalationIncident]: ...

    async def save(
        self,
        incident: EscalationIncident,
        items: list[OutboxItem],
        entry: TimelineEntry | None,
        event_id: uuid.UUID | None,
        at: datetime,
    ) -> bool:
        """Compare-and-set on `incident.version`; False if someone else changed it first."""

    async def update_details(
        self, incident_id: str, title: str, severity: Severity, alert_count: int
    ) -> None: ...

    async def clear_outbox(self, incident_id: str, version: int) -> bool:
        """Empty the outbox if the incident is still at `version` (nothing new was added)."""

    async def with_stale_outbox(self, before: datetime, limit: int) -> list[str]: ...

    async def arm_timer(self, incident_id: str, timer: ArmTimer) -> None: ...

    async def cancel_timers(self, incident_id: str) -> None: ...

    async def claim_due_timer(
        self, now: datetime, owner: str, lease: timedelta
    ) -> Timer | None: ...

    async def finish_timer(self, timer_id: str, owner: str) -> None: ...


def _lifecycle_fields(lifecycle: Lifecycle) -> Document:
    return {
        "status": lifecycle.status.value,
        "cycle": lifecycle.cycle,
        "next_step": lifecycle.next_step,
        "responders": [{"user": r.user, "level": r.level} for r in lifecycle.responders],
    }


def _entry(entry: TimelineEntry) -> Document:
    return {"at": entry.at, "action": entry.action, "actor": entry.actor}


def _responder(stored: Document | str) -> Responder:
    # Documents written before levels were kept hold bare user ids.
    if isinstance(stored, str):
        return Responder(stored, 0)
    return Responder(stored["user"], stored["level"])


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
        ),
        version=doc["version"],
        outbox=tuple(_ITEMS.validate_python(doc.get("outbox", []))),
        timeline=tuple(
            TimelineEntry(at=e["at"], action=e["action"], actor=e["actor"])
            for e in doc.get("timeline", [])
        ),
    )


class MongoEscalationStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._incidents = database["escalation_incidents"]
        self._timers = database["escalation_timers"]

    async def ensure_indexes(self) -> None:
        await self._incidents.create_index([("status", 1), ("opened_at", -1)])
        await self._incidents.create_index("outbox_since")
        await self._timers.create_index([("state", 1), ("due_at", 1)])
        await self._timers.create_index("incident_id")

    async def create(
        self, incident: EscalationIncident, event_id: uuid.UUID, entry: TimelineEntry
    ) -> bool:
        doc: Document = {
            "_id": incident.id,
            "service_id": incident.service_id,
            "policy_id": incident.policy_id,
            "title": incident.title,
            "severity": incident.severity.value,
            "alert_count": incident.alert_count,
            "opened_at": incident.opened_at,
            "updated_at": incident.opened_at,
            **_lifecycle_fields(incident.lifecycle),
            "version": 1,
            "event_ids": [str(event_id)],
            "outbox": [item.model_dump(mode="python") for item in incident.outbox],
            "outbox_since": incident.opened_at if incident.outbox else None,
            "timeline": [_entry(entry)],
        }
        try:
            await self._incidents.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, incident_id: str) -> EscalationIncident | None:
        doc = await self._incidents.find_one({"_id": incident_id})
        return _incident(doc) if doc else None

    async def status(self, incident_id: str) -> Status | None:
        doc = await self._incidents.find_one({"_id": incident_id}, projection={"status": 1})
        return Status(doc["status"]) if doc else None

    async def has_event(self, incident_id: str, event_id: uuid.UUID) -> bool:
        found = await self._incidents.find_one(
            {"_id": incident_id, "event_ids": str(event_id)}, projection={"_id": 1}
        )
        return found is not None

    async def list_incidents(self, status: Status | None, limit: int) -> list[EscalationIncident]:
        query: Document = {} if status is None else {"status": status.value}
        cursor = self._incidents.find(query).sort("opened_at", -1).limit(limit)
        return [_incident(doc) async for doc in cursor]

    async def save(
        self,
        incident: EscalationIncident,
        items: list[OutboxItem],
        entry: TimelineEntry | None,
        event_id: uuid.UUID | None,
        at: datetime,
    ) -> bool:
        update: dict[str, Any] = {
            "$set": {**_lifecycle_fields(incident.lifecycle), "updated_at": at},
            "$inc": {"version": 1},
        }
        pushes: Document = {}
        if items:
            pushes["outbox"] = {"$each": [item.model_dump(mode="python") for item in items]}
            update["$set"]["outbox_since"] = at
        if entry is not None:
            pushes["timeline"] = _entry(entry)
        if pushes:
            update["$push"] = pushes
        if event_id is not None:
            update["$addToSet"] = {"event_ids": str(event_id)}
        result = await self._incidents.update_one(
            {"_id": incident.id, "version": incident.version}, update
        )
        return result.modified_count == 1

    async def update_details(
        self, incident_id: str, title: str, severity: Severity, alert_count: int
    ) -> None:
        await self._incidents.update_one(
            {"_id": incident_id},
            {"$set": {"title": title, "severity": severity.value, "alert_count": alert_count}},
        )

    async def clear_outbox(self, incident_id: str, version: int) -> bool:
        # Compare-and-set without bumping `version`: a writer that appended items since has
        # changed the version and will carry out (and clear) the whole outbox itself.
        result = await self._incidents.update_one(
            {"_id": incident_id, "version": version},
            {"$set": {"outbox": [], "outbox_since": None}},
        )
        return result.matched_count == 1

    async def with_stale_outbox(self, before: datetime, limit: int) -> list[str]:
        cursor = self._incidents.find(
            {"outbox_since": {"$ne": None, "$lte": before}}, projection={"_id": 1}
        ).limit(limit)
        return [doc["_id"] async for doc in cursor]

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
                    "state": "pending",
                    "lease_until": _EPOCH,
                    "lease_owner": None,
                }
            },
            upsert=True,
        )

    async def cancel_timers(self, incident_id: str) -> None:
        await self._timers.update_many(
            {"incident_id": incident_id, "state": "pending"}, {"$set": {"state": "cancelled"}}
        )

    async def claim_due_timer(self, now: datetime, owner: str, lease: timedelta) -> Timer | None:
        doc = await self._timers.find_one_and_update(
            {"state": "pending", "due_at": {"$lte": now}, "lease_until": {"$lte": now}},
            {"$set": {"lease_until": now + lease, "lease_owner": owner}},
            sort=[("due_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        notification = doc.get("notification")
        return Timer(
            id=doc["_id"],
            incident_id=doc["incident_id"],
            kind=doc["kind"],
            step=doc["step"],
            cycle=doc["cycle"],
            due_at=doc["due_at"],
            notification=SendNotification.model_validate(notification) if notification else None,
        )

    async def finish_timer(self, timer_id: str, owner: str) -> None:
        # Only the lease holder finishes a timer; a lapsed lease means someone else may retry.
        await self._timers.update_one(
            {"_id": timer_id, "lease_owner": owner, "state": "pending"},
            {"$set": {"state": "done"}},
        )
