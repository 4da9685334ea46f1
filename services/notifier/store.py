"""Notifier's collection `notifier_notifications`: one document per `notification_id`
(idempotency), with attempts and outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from schemas import NotificationRequested
from tocsin.mongo import Document


@dataclass(frozen=True)
class NotificationRecord:
    notification_id: str
    state: str  # pending | delivered | failed
    attempts: int


class NotifierStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def begin(self, request: NotificationRequested, at: datetime) -> NotificationRecord: ...

    async def record_attempt(self, notification_id: str, at: datetime) -> int: ...

    async def finish(
        self, notification_id: str, state: str, at: datetime, error: str | None
    ) -> None: ...


class MongoNotifierStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._notifications = database["notifier_notifications"]

    async def ensure_indexes(self) -> None:
        await self._notifications.create_index("incident_id")

    async def begin(self, request: NotificationRequested, at: datetime) -> NotificationRecord:
        doc = await self._notifications.find_one_and_update(
            {"_id": request.notification_id},
            {
                "$setOnInsert": {
                    "incident_id": request.incident.id,
                    "user_id": request.recipient.user_id,
                    "contact_id": request.recipient.contact_id,
                    "event": request.event.value,
                    "state": "pending",
                    "attempts": 0,
                    "created_at": at,
                }
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # an upsert always returns the document
        return NotificationRecord(doc["_id"], doc["state"], doc["attempts"])

    async def record_attempt(self, notification_id: str, at: datetime) -> int:
        doc = await self._notifications.find_one_and_update(
            {"_id": notification_id},
            {"$inc": {"attempts": 1}, "$set": {"last_attempt_at": at}},
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["attempts"]) if doc else 0

    async def finish(
        self, notification_id: str, state: str, at: datetime, error: str | None
    ) -> None:
        await self._notifications.update_one(
            {"_id": notification_id},
            {"$set": {"state": state, "finished_at": at, "error": error}},
        )
