"""Ingest's collections: `ingest_integrations` (tokens stored only as SHA-256 digests) and
`ingest_heartbeats` (each heartbeat's last ping, up/down state, `version` for compare-and-set,
and an outbox holding the alert a state change must publish)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pymongo import ReturnDocument

from services.ingest.domain.heartbeats import Heartbeat, HeartbeatStatus
from tocsin.runtime.mongo import Document
from tocsin.runtime.store import DocumentDatabase


@dataclass(frozen=True)
class Integration:
    id: str
    type: str
    service_id: str
    token_sha256: str


@dataclass(frozen=True)
class HeartbeatDeclaration:
    id: str
    token_sha256: str
    service_id: str
    interval: timedelta
    grace: timedelta
    severity: str
    summary: str | None


@dataclass(frozen=True)
class Outbox:
    """An alert a heartbeat's state change must publish; removed once it is on the bus."""

    event_id: uuid.UUID
    message_json: str
    created_at: datetime


class IngestStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def upsert_integration(self, integration: Integration) -> None: ...

    async def integrations(self) -> list[Integration]: ...

    async def declare_heartbeat(self, declaration: HeartbeatDeclaration, now: datetime) -> None: ...

    async def heartbeats(self, ids: list[str]) -> list[tuple[Heartbeat, Outbox | None]]: ...

    async def record_ping(self, heartbeat_id: str, now: datetime) -> bool: ...

    async def claim_transition(
        self, heartbeat: Heartbeat, status: HeartbeatStatus, now: datetime, outbox: Outbox
    ) -> bool:
        """Compare-and-set on `version` with an empty outbox: only one replica wins."""

    async def clear_outbox(self, heartbeat_id: str, event_id: uuid.UUID) -> None: ...


def _heartbeat(doc: Document) -> tuple[Heartbeat, Outbox | None]:
    heartbeat = Heartbeat(
        id=doc["_id"],
        service_id=doc["service_id"],
        interval=timedelta(milliseconds=doc["interval_ms"]),
        grace=timedelta(milliseconds=doc["grace_ms"]),
        severity=doc["severity"],
        summary=doc.get("summary"),
        declared_at=doc["declared_at"],
        last_ping_at=doc.get("last_ping_at"),
        status=HeartbeatStatus(doc["status"]),
        changed_at=doc.get("changed_at"),
        version=doc["version"],
    )
    raw = doc.get("outbox")
    outbox = (
        Outbox(uuid.UUID(raw["event_id"]), raw["message_json"], raw["created_at"]) if raw else None
    )
    return heartbeat, outbox


class MongoIngestStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._integrations = database["ingest_integrations"]
        self._heartbeats = database["ingest_heartbeats"]

    async def ensure_indexes(self) -> None:
        await self._integrations.create_index("token_sha256", unique=True)
        await self._heartbeats.create_index("token_sha256", unique=True)

    async def upsert_integration(self, integration: Integration) -> None:
        await self._integrations.update_one(
            {"_id": integration.id},
            {
                "$set": {
                    "type": integration.type,
                    "service_id": integration.service_id,
                    "token_sha256": integration.token_sha256,
                }
            },
            upsert=True,
        )

    async def integrations(self) -> list[Integration]:
        return [
            Integration(
                id=doc["_id"],
                type=doc["type"],
                service_id=doc["service_id"],
                token_sha256=doc["token_sha256"],
            )
            async for doc in self._integrations.find({})
        ]

    async def declare_heartbeat(self, declaration: HeartbeatDeclaration, now: datetime) -> None:
        await self._heartbeats.update_one(
            {"_id": declaration.id},
            {
                "$set": {
                    "token_sha256": declaration.token_sha256,
                    "service_id": declaration.service_id,
                    "interval_ms": round(declaration.interval.total_seconds() * 1000),
                    "grace_ms": round(declaration.grace.total_seconds() * 1000),
                    "severity": declaration.severity,
                    "summary": declaration.summary,
                },
                "$setOnInsert": {
                    "declared_at": now,
                    "last_ping_at": None,
                    "status": HeartbeatStatus.UP.value,
                    "changed_at": None,
                    "version": 0,
                    "outbox": None,
                },
            },
            upsert=True,
        )

    async def heartbeats(self, ids: list[str]) -> list[tuple[Heartbeat, Outbox | None]]:
        return [_heartbeat(doc) async for doc in self._heartbeats.find({"_id": {"$in": ids}})]

    async def record_ping(self, heartbeat_id: str, now: datetime) -> bool:
        doc = await self._heartbeats.find_one_and_update(
            {"_id": heartbeat_id},
            {"$set": {"last_ping_at": now}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return doc is not None

    async def claim_transition(
        self, heartbeat: Heartbeat, status: HeartbeatStatus, now: datetime, outbox: Outbox
    ) -> bool:
        result = await self._heartbeats.update_one(
            {"_id": heartbeat.id, "version": heartbeat.version, "outbox": None},
            {
                "$set": {
                    "status": status.value,
                    "changed_at": now,
                    "outbox": {
                        "event_id": str(outbox.event_id),
                        "message_json": outbox.message_json,
                        "created_at": outbox.created_at,
                    },
                },
                "$inc": {"version": 1},
            },
        )
        return result.modified_count == 1

    async def clear_outbox(self, heartbeat_id: str, event_id: uuid.UUID) -> None:
        await self._heartbeats.update_one(
            {"_id": heartbeat_id, "outbox.event_id": str(event_id)}, {"$set": {"outbox": None}}
        )
