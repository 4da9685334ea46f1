"""Notifier's collection `notifier_notifications`: one document per `notification_id`, which
is the idempotency key, the delivery queue and the record of the outcome at once. (And
`notifier_first_pages`: one document per incident whose first page was delivered, so that the
time to page is observed once per incident.)

A notification is recorded `pending` with its request and a `due_at`; delivery workers claim
due ones with a lease (so several notifier replicas never send one attempt twice), then mark
them `delivered`, schedule a retry, or mark them `failed`.

The final outcome and its `notifications.results` message are written in one update, with
`report: unpublished` (an outbox field): the message is published afterwards and marked
`published`; one left unpublished by a crash or a bus outage is claimed again after the lease
and published then (same `event_id`, so escalation drops a copy).

A channel may put a claimed notification back (`defer`: held by a rate limit, or waiting for a
provider's delivery receipt), due later and without counting the attempt; a provider's callback
makes it due at once (`wake`, which sets `woken` so that a deferral racing with it loses).

A stored request or result that no longer validates (written by another version) is set aside
as `quarantined` with the reason, counted, and skipped: it must not stop every other page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pymongo import ReturnDocument

from schemas import NotificationRequested, NotificationResult
from services.notifier.metrics import QUARANTINED
from tocsin.runtime.mongo import Document
from tocsin.runtime.retention import RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ClaimedNotification:
    request: NotificationRequested
    attempt: int  # this attempt's number, from 1
    first_attempt_at: datetime  # when attempt 1 was claimed: retries are bounded from there
    errors: int = 0  # attempts so far that ended in an unexpected error (not DeliveryFailed)


class NotifierStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def record(self, request: NotificationRequested, at: datetime) -> bool:
        """Queue the notification unless it is known already; True if it was new."""

    async def claim_due(
        self, now: datetime, owner: str, lease: timedelta
    ) -> ClaimedNotification | None: ...

    async def next_due(self) -> datetime | None:
        """When the next pending notification can be claimed (its due time, or its lease's
        end); None when nothing is pending."""

    async def delivered(
        self,
        notification_id: str,
        owner: str,
        at: datetime,
        *,
        result: NotificationResult | None = None,
    ) -> bool:
        """Record the final outcome (and the result to publish); False if the lease was lost."""

    async def retry_at(
        self,
        notification_id: str,
        owner: str,
        due_at: datetime,
        error: str,
        *,
        first_attempt_at: datetime | None = None,
        errors: int | None = None,
    ) -> None: ...

    async def failed(
        self,
        notification_id: str,
        owner: str,
        at: datetime,
        error: str,
        *,
        result: NotificationResult | None = None,
    ) -> bool:
        """Record the final outcome (and the result to publish); False if the lease was lost."""

    async def reported(self, notification_id: str, owner: str) -> None:
        """The outcome's result is published."""

    async def defer(self, notification_id: str, owner: str, due_at: datetime, at: datetime) -> None:
        """Put a claimed notification back, due at `due_at`, without counting the attempt
        (a rate limit holds it, or a provider's receipt is awaited). A `wake` that came during
        the attempt wins: it is due at `at` then."""

    async def wake(self, notification_ids: Sequence[str], at: datetime) -> None:
        """Make pending notifications due at `at` (a provider's receipt came for them)."""

    async def claim_unreported(
        self, now: datetime, owner: str, lease: timedelta
    ) -> NotificationResult | None:
        """A final outcome whose result a crash or an outage left unpublished."""

    async def state(self, notification_id: str) -> str | None: ...

    async def first_page(self, incident_id: str, at: datetime) -> bool:
        """Note that a first page of this incident was delivered; True only the first time
        (any replica), so the time to page counts once per incident."""
        ...

    async def pending(self, notification_id: str) -> ClaimedNotification | None:
        """A notification not finished yet (its request and attempts so far); None once it is
        delivered or failed, or unknown."""


def _claimed(doc: Document, now: datetime) -> ClaimedNotification:
    first_attempt_at = doc.get("first_attempt_at")
    return ClaimedNotification(
        NotificationRequested.model_validate(doc["request"]),
        int(doc["attempts"]),
        first_attempt_at if isinstance(first_attempt_at, datetime) else now,
        int(doc.get("errors", 0)),
    )


def _outbox(result: NotificationResult | None) -> Document:
    if result is None:
        return {}
    return {"result": result.model_dump(mode="json"), "report": "unpublished"}


class MongoNotifierStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._notifications = database["notifier_notifications"]
        self._first_pages = database["notifier_first_pages"]

    async def ensure_indexes(self) -> None:
        await self._notifications.create_index([("state", 1), ("due_at", 1)])
        await self._notifications.create_index("incident_id")
        await self._notifications.create_index([("state", 1), ("finished_at", 1)])
        await self._notifications.create_index([("report", 1), ("lease_until", 1)])
        await self._first_pages.create_index("at")

    async def record(self, request: NotificationRequested, at: datetime) -> bool:
        before = await self._notifications.find_one_and_update(
            {"_id": request.notification_id},
            {
                "$setOnInsert": {
                    "incident_id": request.incident.id,
                    "user_id": request.recipient.user_id,
                    "contact_id": request.recipient.contact_id,
                    "event": request.event.value,
                    "request": request.model_dump(mode="json"),
                    "state": "pending",
                    "attempts": 0,
                    "created_at": at,
                    "due_at": at,
                    "lease_until": _EPOCH,
                    "lease_owner": None,
                }
            },
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return before is None

    async def claim_due(
        self, now: datetime, owner: str, lease: timedelta
    ) -> ClaimedNotification | None:
        while True:
            doc = await self._notifications.find_one_and_update(
                {"state": "pending", "due_at": {"$lte": now}, "lease_until": {"$lte": now}},
                {
                    "$set": {
                        "lease_until": now + lease,
                        "lease_owner": owner,
                        "last_attempt_at": now,
                    },
                    "$inc": {"attempts": 1},
                },
                sort=[("due_at", 1)],
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return None
            try:
                return _claimed(doc, now)
            except (ValueError, KeyError, TypeError) as error:  # ValidationError is a ValueError
                await self._quarantine(doc["_id"], owner, now, "request", error)

    async def next_due(self, limit: int = 20) -> datetime | None:
        cursor = (
            self._notifications.find(
                {"state": "pending"}, projection={"due_at": 1, "lease_until": 1}
            )
            .sort("due_at", 1)
            .limit(limit)
        )
        due = [max(doc["due_at"], doc.get("lease_until", _EPOCH)) async for doc in cursor]
        return min(due, default=None)

    async def _quarantine(
        self, notification_id: str, owner: str, at: datetime, part: str, error: Exception
    ) -> None:
        reason = f"stored {part} does not validate: {type(error).__name__}: {error}"[:2048]
        # A bad request is never attempted again; a bad result keeps its outcome (the page was
        # delivered or failed) and is only no longer published.
        fields: Document = {"quarantined_at": at, "quarantine_reason": reason}
        fields["state" if part == "request" else "report"] = "quarantined"
        await self._notifications.update_one(
            {"_id": notification_id, "lease_owner": owner}, {"$set": fields}
        )
        QUARANTINED.labels(part).inc()
        log.error("notification %s quarantined: %s", notification_id, reason)

    async def delivered(
        self,
        notification_id: str,
        owner: str,
        at: datetime,
        *,
        result: NotificationResult | None = None,
    ) -> bool:
        return await self._finish(
            notification_id, owner, {"state": "delivered", "finished_at": at, **_outbox(result)}
        )

    async def retry_at(
        self,
        notification_id: str,
        owner: str,
        due_at: datetime,
        error: str,
        *,
        first_attempt_at: datetime | None = None,
        errors: int | None = None,
    ) -> None:
        fields: Document = {"due_at": due_at, "lease_until": _EPOCH, "error": error}
        if first_attempt_at is not None:
            fields["first_attempt_at"] = first_attempt_at
        if errors is not None:
            fields["errors"] = errors
        await self._finish(notification_id, owner, fields)

    async def failed(
        self,
        notification_id: str,
        owner: str,
        at: datetime,
        error: str,
        *,
        result: NotificationResult | None = None,
    ) -> bool:
        return await self._finish(
            notification_id,
            owner,
            {"state": "failed", "finished_at": at, "error": error, **_outbox(result)},
        )

    async def _finish(self, notification_id: str, owner: str, fields: Document) -> bool:
        # Only the lease holder records the outcome of its attempt.
        outcome = await self._notifications.update_one(
            {"_id": notification_id, "lease_owner": owner, "state": "pending"}, {"$set": fields}
        )
        return outcome.matched_count == 1

    async def defer(self, notification_id: str, owner: str, due_at: datetime, at: datetime) -> None:
        released: Document = {"lease_until": _EPOCH}
        moved = await self._notifications.update_one(
            {
                "_id": notification_id,
                "lease_owner": owner,
                "state": "pending",
                "woken": {"$ne": True},
            },
            {"$set": {**released, "due_at": due_at}, "$inc": {"attempts": -1}},
        )
        if moved.matched_count == 0:
            await self._notifications.update_one(
                {"_id": notification_id, "lease_owner": owner, "state": "pending"},
                {"$set": {**released, "due_at": at, "woken": False}, "$inc": {"attempts": -1}},
            )

    async def wake(self, notification_ids: Sequence[str], at: datetime) -> None:
        if notification_ids:
            await self._notifications.update_many(
                {"_id": {"$in": list(notification_ids)}, "state": "pending"},
                {"$set": {"due_at": at, "woken": True}},
            )

    async def reported(self, notification_id: str, owner: str) -> None:
        await self._notifications.update_one(
            {"_id": notification_id, "lease_owner": owner, "report": "unpublished"},
            {"$set": {"report": "published", "lease_until": _EPOCH}},
        )

    async def claim_unreported(
        self, now: datetime, owner: str, lease: timedelta
    ) -> NotificationResult | None:
        while True:
            doc = await self._notifications.find_one_and_update(
                {"report": "unpublished", "lease_until": {"$lte": now}},
                {"$set": {"lease_until": now + lease, "lease_owner": owner}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return None
            try:
                return NotificationResult.model_validate(doc["result"])
            except (ValueError, KeyError, TypeError) as error:
                await self._quarantine(doc["_id"], owner, now, "result", error)

    async def first_page(self, incident_id: str, at: datetime) -> bool:
        before = await self._first_pages.find_one_and_update(
            {"_id": incident_id},
            {"$setOnInsert": {"at": at}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return before is None

    async def state(self, notification_id: str) -> str | None:
        doc = await self._notifications.find_one({"_id": notification_id}, projection={"state": 1})
        return str(doc["state"]) if doc else None

    async def pending(self, notification_id: str) -> ClaimedNotification | None:
        doc = await self._notifications.find_one({"_id": notification_id, "state": "pending"})
        if doc is None:
            return None
        try:
            return _claimed(doc, datetime.now(UTC))
        except (ValueError, KeyError, TypeError):
            return None  # claim_due quarantines it


def retention_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    """Delivered and failed notifications past retention (their outcome is on the incident's
    timeline). Pending ones are the queue and quarantined ones wait for a person: both stay."""
    return [
        RetentionRule(
            "notifier_notifications",
            "finished_at",
            policy.notifications,
            {"state": {"$in": ["delivered", "failed"]}},
        ),
        RetentionRule("notifier_first_pages", "at", policy.notifications),
    ]
