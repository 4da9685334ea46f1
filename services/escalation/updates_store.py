"""`escalation_status_updates`: the status updates operators posted on incidents, one document
each (`_id` the update's id), with `published` as the outbox flag: false until
`incidents.updates` took the message, so an update stored while Kafka was down is published
later by the loop (status_updates.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas import ComponentStatus, UpdateStatus
from tocsin.runtime.mongo import Document
from tocsin.runtime.retention import RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase

MAX_UPDATES = 500


@dataclass(frozen=True)
class StatusUpdate:
    id: str
    incident_id: str
    service_id: str
    status: UpdateStatus
    message: str
    public: bool
    components: tuple[tuple[str, ComponentStatus], ...]
    author: str
    created_at: datetime
    published: bool = False


def _doc(update: StatusUpdate) -> Document:
    return {
        "incident_id": update.incident_id,
        "service_id": update.service_id,
        "status": update.status.value,
        "message": update.message,
        "public": update.public,
        "components": [{"component_id": c, "status": s.value} for c, s in update.components],
        "author": update.author,
        "created_at": update.created_at,
        "published": update.published,
    }


def _update(doc: Document) -> StatusUpdate:
    return StatusUpdate(
        id=doc["_id"],
        incident_id=doc["incident_id"],
        service_id=doc["service_id"],
        status=UpdateStatus(doc["status"]),
        message=doc["message"],
        public=bool(doc["public"]),
        components=tuple(
            (c["component_id"], ComponentStatus(c["status"])) for c in doc.get("components") or ()
        ),
        author=doc["author"],
        created_at=doc["created_at"],
        published=bool(doc.get("published")),
    )


class UpdatesStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._updates = database["escalation_status_updates"]

    async def ensure_indexes(self) -> None:
        await self._updates.create_index([("incident_id", 1), ("created_at", 1)])
        await self._updates.create_index([("published", 1), ("created_at", 1)])

    async def add(self, update: StatusUpdate) -> None:
        await self._updates.update_one(
            {"_id": update.id}, {"$setOnInsert": _doc(update)}, upsert=True
        )

    async def mark_published(self, update_id: str) -> None:
        await self._updates.update_one({"_id": update_id}, {"$set": {"published": True}})

    async def of_incident(self, incident_id: str, limit: int = MAX_UPDATES) -> list[StatusUpdate]:
        """Newest first."""
        cursor = (
            self._updates.find({"incident_id": incident_id}).sort([("created_at", -1)]).limit(limit)
        )
        return [_update(doc) async for doc in cursor]

    async def last_at(self, incident_id: str) -> datetime | None:
        latest = await self.of_incident(incident_id, limit=1)
        return latest[0].created_at if latest else None

    async def unpublished(self, before: datetime, limit: int = 100) -> list[StatusUpdate]:
        cursor = (
            self._updates.find({"published": False, "created_at": {"$lte": before}})
            .sort([("created_at", 1)])
            .limit(limit)
        )
        return [_update(doc) async for doc in cursor]


def updates_retention_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    # An incident's updates are part of its record: kept as long as resolved incidents.
    return [
        RetentionRule(
            "escalation_status_updates", "created_at", policy.resolved, {"published": True}
        )
    ]
