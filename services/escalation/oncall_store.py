"""Escalation's on-call collections: `escalation_overrides` (a person covers a schedule for a
time range; created, listed and deleted through the API) and `escalation_calendar_tokens` (the
digest of each user's secret calendar-feed token).

Schedules themselves are declared in the configuration file; only these runtime objects live in
the database. An override is written once and deleted, never changed, so it needs no version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.escalation.domain.schedules import Override
from tocsin.runtime.mongo import Document
from tocsin.runtime.store import DocumentDatabase

MAX_OVERRIDES = 1000
"""Overrides one query returns at most (a schedule's range of interest holds far fewer)."""


@dataclass(frozen=True)
class StoredOverride:
    schedule_id: str
    override: Override
    created_at: datetime
    created_by: str


class OncallStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def add_override(self, stored: StoredOverride) -> None: ...

    async def overrides(
        self, schedule_id: str, start: datetime, end: datetime
    ) -> list[StoredOverride]:
        """Overrides of the schedule overlapping `start`..`end`, oldest first (newest wins)."""

    async def delete_override(self, schedule_id: str, override_id: str) -> bool:
        """False if the schedule has no such override."""

    async def set_calendar_token(self, user_id: str, digest: str, at: datetime) -> None:
        """Store the digest of the user's feed token, replacing the one before."""

    async def calendar_token(self, user_id: str) -> str | None:
        """The digest of the user's feed token, if one was issued."""

    async def delete_calendar_token(self, user_id: str) -> bool: ...


def _utc(instant: datetime) -> datetime:
    # The embedded store and some MongoDB drivers hand back naive UTC datetimes.
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def _stored(doc: Document) -> StoredOverride:
    return StoredOverride(
        schedule_id=doc["schedule_id"],
        override=Override(
            id=doc["_id"], user=doc["user"], start=_utc(doc["start"]), end=_utc(doc["end"])
        ),
        created_at=_utc(doc["created_at"]),
        created_by=doc["created_by"],
    )


class MongoOncallStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._overrides = database["escalation_overrides"]
        self._tokens = database["escalation_calendar_tokens"]

    async def ensure_indexes(self) -> None:
        await self._overrides.create_index([("schedule_id", 1), ("end", 1)])
        await self._overrides.create_index("end")  # retention

    async def add_override(self, stored: StoredOverride) -> None:
        override = stored.override
        await self._overrides.insert_one(
            {
                "_id": override.id,
                "schedule_id": stored.schedule_id,
                "user": override.user,
                "start": override.start,
                "end": override.end,
                "created_at": stored.created_at,
                "created_by": stored.created_by,
            }
        )

    async def overrides(
        self, schedule_id: str, start: datetime, end: datetime
    ) -> list[StoredOverride]:
        cursor = (
            self._overrides.find(
                {"schedule_id": schedule_id, "end": {"$gt": start}, "start": {"$lt": end}}
            )
            .sort([("created_at", 1), ("_id", 1)])
            .limit(MAX_OVERRIDES)
        )
        return [_stored(doc) async for doc in cursor]

    async def delete_override(self, schedule_id: str, override_id: str) -> bool:
        result = await self._overrides.delete_one({"_id": override_id, "schedule_id": schedule_id})
        return result.deleted_count == 1

    async def set_calendar_token(self, user_id: str, digest: str, at: datetime) -> None:
        await self._tokens.update_one(
            {"_id": user_id}, {"$set": {"digest": digest, "created_at": at}}, upsert=True
        )

    async def calendar_token(self, user_id: str) -> str | None:
        doc = await self._tokens.find_one({"_id": user_id})
        return str(doc["digest"]) if doc is not None else None

    async def delete_calendar_token(self, user_id: str) -> bool:
        result = await self._tokens.delete_one({"_id": user_id})
        return result.deleted_count == 1
