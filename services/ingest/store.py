"""Ingest's collections: `integrations` (tokens stored only as SHA-256 digests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase

from tocsin.mongo import Document


@dataclass(frozen=True)
class Integration:
    id: str
    type: str
    service_id: str
    token_sha256: str


class IngestStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def upsert_integration(self, integration: Integration) -> None: ...

    async def integrations(self) -> list[Integration]: ...


class MongoIngestStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._integrations = database["ingest_integrations"]

    async def ensure_indexes(self) -> None:
        await self._integrations.create_index("token_sha256", unique=True)

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
