"""Triage's `triage_silences` collection: Alertmanager-compatible silences created through the
REST API. Expiring a silence sets its end to now (as Alertmanager does); it is never deleted
before retention, so the alerts it silenced still name it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from services.triage.domain.matchers import Matcher
from services.triage.domain.silences import Silence, matcher_op
from services.triage.refreshed import Refreshed
from tocsin.runtime.clock import Clock, SystemClock
from tocsin.runtime.mongo import Document
from tocsin.runtime.store import DocumentDatabase


@dataclass(frozen=True)
class SilenceMatcher:
    name: str
    value: str
    is_regex: bool
    is_equal: bool

    def compiled(self) -> Matcher:
        return Matcher.of(self.name, matcher_op(self.is_regex, self.is_equal), self.value)


@dataclass(frozen=True)
class SilenceRecord:
    id: str
    matchers: tuple[SilenceMatcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    updated_at: datetime

    def silence(self) -> Silence:
        return Silence(
            id=self.id,
            matchers=tuple(m.compiled() for m in self.matchers),
            starts_at=self.starts_at,
            ends_at=self.ends_at,
        )


class SilenceStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def save(self, silence: SilenceRecord) -> None:
        """Create the silence, or replace the one with its id."""

    async def get(self, silence_id: str) -> SilenceRecord | None: ...

    async def list_all(self) -> list[SilenceRecord]: ...

    async def expire(self, silence_id: str, at: datetime) -> bool:
        """End the silence at `at` if it ends later; False if there is no such silence."""

    async def in_force(self, at: datetime) -> list[Silence]:
        """Silences not yet ended at `at` (active or pending), compiled."""


def _matcher_doc(matcher: SilenceMatcher) -> Document:
    return {
        "name": matcher.name,
        "value": matcher.value,
        "is_regex": matcher.is_regex,
        "is_equal": matcher.is_equal,
    }


def _record(doc: Document) -> SilenceRecord:
    return SilenceRecord(
        id=doc["_id"],
        matchers=tuple(
            SilenceMatcher(m["name"], m["value"], m["is_regex"], m["is_equal"])
            for m in doc["matchers"]
        ),
        starts_at=doc["starts_at"],
        ends_at=doc["ends_at"],
        created_by=doc.get("created_by", ""),
        comment=doc.get("comment", ""),
        updated_at=doc["updated_at"],
    )


class MongoSilenceStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._silences = database["triage_silences"]

    async def ensure_indexes(self) -> None:
        await self._silences.create_index("ends_at")

    async def save(self, silence: SilenceRecord) -> None:
        await self._silences.update_one(
            {"_id": silence.id},
            {
                "$set": {
                    "matchers": [_matcher_doc(m) for m in silence.matchers],
                    "starts_at": silence.starts_at,
                    "ends_at": silence.ends_at,
                    "created_by": silence.created_by,
                    "comment": silence.comment,
                    "updated_at": silence.updated_at,
                }
            },
            upsert=True,
        )

    async def get(self, silence_id: str) -> SilenceRecord | None:
        doc = await self._silences.find_one({"_id": silence_id})
        return _record(doc) if doc is not None else None

    async def list_all(self) -> list[SilenceRecord]:
        return [_record(doc) async for doc in self._silences.find({}).sort("_id", 1)]

    async def expire(self, silence_id: str, at: datetime) -> bool:
        if await self._silences.find_one({"_id": silence_id}, projection={"_id": 1}) is None:
            return False
        await self._silences.update_one(
            {"_id": silence_id, "ends_at": {"$gt": at}},
            {"$set": {"ends_at": at, "updated_at": at}},
        )
        return True

    async def in_force(self, at: datetime) -> list[Silence]:
        found = self._silences.find({"ends_at": {"$gt": at}})
        return [_record(doc).silence() async for doc in found]


# The silences in force as the consumer sees them: read at most once a second (one query per
# batch of alerts, not one per alert), and at once after this process created or expired one.
# Another replica's change is seen within the second.
SilencesInForce = Refreshed[list[Silence]]


def silences_in_force(store: SilenceStore, clock: Clock) -> SilencesInForce:
    return Refreshed(store.in_force, clock)


async def _no_silences(at: datetime) -> list[Silence]:
    return []


def no_silences() -> SilencesInForce:
    """No silences ever (a triage built without a silence store, in tests)."""
    return Refreshed(_no_silences, SystemClock(), timedelta.max)
