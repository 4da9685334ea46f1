"""Change events in triage: the `changes.raw` consumer keeps each change (deploy, config change)
in `triage_changes` for 30 days, `changes_before` gives an incident opening the changes on its
service in the 30 minutes before, newest first, and `GET /api/v1/changes?service=` lists them.

Idempotent: a change is stored under its event id, so a redelivery (or a sender's retry that
ingest gave the same id) writes the same document again."""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from schemas import ChangeLink, ChangeReceived, ChangeSummary
from schemas.incidents import MAX_INCIDENT_CHANGES
from tocsin.runtime.clock import Clock
from tocsin.runtime.mongo import Document
from tocsin.runtime.retention import RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase

COLLECTION = "triage_changes"
LOOKBACK = timedelta(minutes=30)
KEEP = timedelta(days=30)


class ChangeStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def record(self, change: ChangeReceived) -> None: ...

    async def on_service(
        self, service_id: str, start: datetime, end: datetime, limit: int
    ) -> list[ChangeSummary]:
        """Changes on the service with `start <= at <= end`, newest first."""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _summary(doc: Document) -> ChangeSummary:
    return ChangeSummary(
        summary=doc["summary"],
        at=_utc(doc["at"]),
        source=doc.get("source"),
        version=doc.get("version"),
        links=tuple(ChangeLink(href=link["href"], text=link.get("text")) for link in doc["links"]),
    )


class MongoChangeStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._changes = database[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._changes.create_index([("service_id", 1), ("at", -1)])
        await self._changes.create_index("at")

    async def record(self, change: ChangeReceived) -> None:
        await self._changes.update_one(
            {"_id": str(change.event_id)},
            {
                "$set": {
                    "service_id": change.service_id,
                    "integration_id": change.integration_id,
                    "integration_type": change.integration_type,
                    "summary": change.summary,
                    "at": change.at,
                    "source": change.source,
                    "version": change.version,
                    "links": [link.model_dump() for link in change.links],
                    "details": [label.model_dump() for label in change.details],
                    "received_at": change.occurred_at,
                }
            },
            upsert=True,
        )

    async def on_service(
        self, service_id: str, start: datetime, end: datetime, limit: int
    ) -> list[ChangeSummary]:
        # `$gt` of a moment before `start`: the common subset has no `$gte` in every adapter.
        query = {
            "service_id": service_id,
            "at": {"$gt": start - timedelta(microseconds=1), "$lte": end},
        }
        found = self._changes.find(query).sort([("at", -1), ("_id", 1)]).limit(limit)
        return [_summary(doc) async for doc in found]


async def changes_before(
    store: ChangeStore | None, service_id: str, opened_at: datetime
) -> tuple[ChangeSummary, ...]:
    """What an incident opening at `opened_at` on `service_id` carries: the changes on the
    service in the 30 minutes before (and at) it, newest first, at most 10."""
    if store is None:
        return ()
    found = await store.on_service(
        service_id, opened_at - LOOKBACK, opened_at, MAX_INCIDENT_CHANGES
    )
    return tuple(found)


class ChangeTriage:
    """The `changes.raw` handler."""

    def __init__(self, store: ChangeStore) -> None:
        self._store = store

    async def handle(self, change: ChangeReceived) -> None:
        await self._store.record(change)


def change_retention(policy: RetentionPolicy) -> list[RetentionRule]:
    """Changes are kept 30 days whatever the policy (only recent ones explain an incident)."""
    return [RetentionRule(COLLECTION, "at", KEEP)]


class ChangeOut(BaseModel):
    summary: str
    at: datetime
    source: str | None
    version: str | None
    links: list[dict[str, str | None]]


def router(store: ChangeStore, clock: Clock, require_api_key: Callable[..., str]) -> APIRouter:
    api = APIRouter(prefix="/api/v1/changes", tags=["changes"])
    ApiKey = Annotated[str, Depends(require_api_key)]

    @api.get("", response_model=list[ChangeOut], responses={401: {}})
    async def list_changes(
        _: ApiKey,
        service: Annotated[str, Query(min_length=1, max_length=100)],
        start: datetime | None = None,
        end: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[ChangeOut]:
        """Changes on a service, newest first (default: the last 24 hours)."""
        until = _utc(end) if end is not None else clock.now()
        since = _utc(start) if start is not None else until - timedelta(days=1)
        found = await store.on_service(service, since, until, limit)
        return [
            ChangeOut(
                summary=c.summary,
                at=c.at,
                source=c.source,
                version=c.version,
                links=[link.model_dump() for link in c.links],
            )
            for c in found
        ]

    return api
