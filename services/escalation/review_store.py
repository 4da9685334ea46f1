"""Escalation's after-incident collections: `escalation_reviews` (one post-incident review per
incident, `_id` = incident id) and `escalation_action_items`. Both change by compare-and-set on
`version`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from schemas import Severity
from services.escalation.domain.action_items import ActionItem, ActionItemStatus
from services.escalation.domain.review import ReviewContent, ReviewStatus
from tocsin.runtime.mongo import Document
from tocsin.runtime.retention import RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase


@dataclass(frozen=True)
class StoredReview:
    incident_id: str
    severity: Severity
    service_id: str
    status: ReviewStatus
    content: ReviewContent
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


def _review_doc(review: StoredReview) -> Document:
    return {
        "severity": review.severity.value,
        "service_id": review.service_id,
        "status": review.status.value,
        "content": review.content.model_dump(mode="python"),
        "version": review.version,
        "created_at": review.created_at,
        "created_by": review.created_by,
        "updated_at": review.updated_at,
        "updated_by": review.updated_by,
    }


def _review(doc: Document) -> StoredReview:
    return StoredReview(
        incident_id=doc["_id"],
        severity=Severity(doc["severity"]),
        service_id=doc["service_id"],
        status=ReviewStatus(doc["status"]),
        content=ReviewContent.model_validate(doc["content"]),
        version=int(doc["version"]),
        created_at=doc["created_at"],
        created_by=doc["created_by"],
        updated_at=doc["updated_at"],
        updated_by=doc["updated_by"],
    )


def _item_doc(item: ActionItem) -> Document:
    fields: dict[str, Any] = item.model_dump(mode="python", exclude={"id", "due"})
    # Dates are stored as ISO strings: sortable, and the drivers take no bare `date`.
    fields["due"] = item.due.isoformat()
    fields["status"] = item.status.value
    fields["priority"] = item.priority.value
    return fields


def _item(doc: Document) -> ActionItem:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    return ActionItem.model_validate({**fields, "id": doc["_id"]})


@dataclass(frozen=True)
class ActionItemFilter:
    owner: str | None = None
    status: ActionItemStatus | None = None
    overdue_on: date | None = None  # open items due before this day
    incident_id: str | None = None


class ReviewStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._reviews = database["escalation_reviews"]
        self._items = database["escalation_action_items"]
        self._recurrences = database["escalation_recurrences"]

    async def ensure_indexes(self) -> None:
        await self._reviews.create_index([("severity", 1), ("status", 1)])
        await self._items.create_index([("owner", 1), ("due", 1)])
        await self._items.create_index([("status", 1), ("due", 1)])
        await self._items.create_index("incident_id")

    # -- reviews --------------------------------------------------------------------------

    async def create_review(self, review: StoredReview) -> bool:
        try:
            await self._reviews.insert_one({"_id": review.incident_id, **_review_doc(review)})
        except DuplicateKeyError:
            return False
        return True

    async def review(self, incident_id: str) -> StoredReview | None:
        doc = await self._reviews.find_one({"_id": incident_id})
        return _review(doc) if doc else None

    async def save_review(self, review: StoredReview, expected_version: int) -> bool:
        """Compare-and-set: False if the stored review is no longer at `expected_version`."""
        result = await self._reviews.update_one(
            {"_id": review.incident_id, "version": expected_version},
            {"$set": _review_doc(review)},
        )
        return result.matched_count == 1

    async def count_reviews(self, severities: Collection[Severity], status: ReviewStatus) -> int:
        return await self._reviews.count_documents(
            {"severity": {"$in": [s.value for s in severities]}, "status": status.value}
        )

    # -- recurrences (triage's link from an incident to the last one of its group) --------

    async def record_recurrence(
        self, incident_id: str, previous: str, count: int, at: datetime
    ) -> None:
        await self._recurrences.update_one(
            {"_id": incident_id},
            {
                "$set": {"recurrence_of": previous, "recurrence_count": count},
                "$setOnInsert": {"at": at},
            },
            upsert=True,
        )

    async def recurrence(self, incident_id: str) -> tuple[str, int] | None:
        doc = await self._recurrences.find_one({"_id": incident_id})
        if doc is None:
            return None
        return str(doc["recurrence_of"]), int(doc.get("recurrence_count", 1))

    # -- action items ---------------------------------------------------------------------

    async def add_item(self, item: ActionItem) -> None:
        await self._items.insert_one({"_id": item.id, **_item_doc(item)})

    async def item(self, item_id: str) -> ActionItem | None:
        doc = await self._items.find_one({"_id": item_id})
        return _item(doc) if doc else None

    async def save_item(self, item: ActionItem, expected_version: int) -> bool:
        result = await self._items.update_one(
            {"_id": item.id, "version": expected_version}, {"$set": _item_doc(item)}
        )
        return result.matched_count == 1

    async def items(self, where: ActionItemFilter, limit: int) -> list[ActionItem]:
        query: Document = {}
        if where.owner is not None:
            query["owner"] = where.owner
        if where.incident_id is not None:
            query["incident_id"] = where.incident_id
        if where.status is not None:
            query["status"] = where.status.value
        if where.overdue_on is not None:
            query["due"] = {"$lt": where.overdue_on.isoformat()}
            if where.status is None:
                query["status"] = {"$in": [s.value for s in ActionItemStatus if not s.closed]}
        cursor = self._items.find(query).sort([("due", 1), ("_id", 1)]).limit(limit)
        return [_item(doc) async for doc in cursor]


def retention_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    """Reviews, closed action items and recurrence links go when resolved incidents do (the
    review is the incident's history); a quarantined reminder is kept briefly, for its
    reason."""
    closed = [s.value for s in ActionItemStatus if s.closed]
    return [
        RetentionRule("escalation_reviews", "updated_at", policy.resolved),
        RetentionRule(
            "escalation_action_items", "updated_at", policy.resolved, {"status": {"$in": closed}}
        ),
        RetentionRule("escalation_recurrences", "at", policy.resolved),
        RetentionRule("escalation_reminders", "due_at", policy.internal, {"state": "quarantined"}),
    ]
