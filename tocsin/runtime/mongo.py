"""MongoDB access (pymongo's native async client), restricted to what FerretDB 1.24 supports.

See DESIGN §5: no transactions, no change streams, no TTL indexes; single-document atomic
updates and compare-and-set on `version` only.

`MongoDatabase` is the store port (`tocsin.runtime.store.DocumentDatabase`) over pymongo: it
passes every call through and turns pymongo's connection failures into the runtime's own
`StoreUnavailable`, so nothing outside this module and the services' Mongo stores knows pymongo
(as the bus raises `PublishError`, not aiokafka's errors).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar, cast

from pymongo import AsyncMongoClient, InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError

from tocsin.runtime.store import (
    BulkCollection,
    BulkOutcome,
    DeleteOutcome,
    DocumentCollection,
    InsertOutcome,
    InsertRequest,
    SortFields,
    StoreUnavailable,
    UpdateOutcome,
    WriteRequest,
)

Document = dict[str, Any]
T = TypeVar("T")

# Requests per bulk command. FerretDB 1.24 runs each update of a command as a query and a
# write of its own, and each update's query keeps one of its 50 PostgreSQL connections until the
# whole command ends: a command of 500 updates took them all and hung FerretDB for good (seen
# here). And tools/ferretdb runs one write per collection at a time: a long one holds back
# every other writer of that collection. Short commands keep both from happening; on MongoDB,
# a few more round trips per batch cost nothing that matters.
BULK_CHUNK = 32
_DUPLICATE_KEY = 11000

# FerretDB 1.24 does not hand `{_id: {$in: [...]}}` to its backend: it reads and decodes every
# document of the collection (about 0.07 ms each on PostgreSQL, quiet machine), while `{_id: x}`
# is one indexed lookup (about 1.5 ms a command with scripts/ferretdb-indexes.sql). So on
# FerretDB a read by ids is made of lookups by `_id` once the collection holds more than
# `SCAN_PER_LOOKUP` documents per id wanted: its cost then follows the ids, not the
# collection. MongoDB looks an `$in` up by index: unchanged.
SCAN_PER_LOOKUP = 16
_LOOKUP_CONCURRENCY = 4
_COUNT_TTL_SECONDS = 30.0


# FerretDB answers while its PostgreSQL is down or restarting, with an `InternalError` (code 1)
# whose text is the backend's: "failed to connect to `user=postgres ...`", SQLSTATE 57P01
# (admin shutdown) or 57P03 (cannot connect now), class 08 (connection exceptions), or the
# dial error. That is the store being unavailable, as a refused connection to MongoDB is, not
# a fault of the request: callers back off and retry rather than dead-letter or exit.
_INTERNAL_ERROR = 1
_BACKEND_DOWN = ("failed to connect to", "sqlstate 57p", "sqlstate 08", "connection refused")


def backend_down(code: int | None, message: str) -> bool:
    """Whether a server error says the store's own backend cannot be reached."""
    text = message.lower()
    return code == _INTERNAL_ERROR and any(marker in text for marker in _BACKEND_DOWN)


def _unavailable(error: PyMongoError) -> StoreUnavailable | None:
    if isinstance(error, ConnectionFailure):  # incl. server selection and network timeouts
        return StoreUnavailable(f"{type(error).__name__}: {error}")
    if isinstance(error, OperationFailure) and backend_down(error.code, str(error)):
        return StoreUnavailable(f"store backend unavailable: {error}")
    return None


async def _guarded(call: Awaitable[T]) -> T:
    try:
        return await call
    except PyMongoError as error:
        unavailable = _unavailable(error)
        if unavailable is None:
            raise
        raise unavailable from error


def _ids_wanted(filter: Mapping[str, Any]) -> list[Any] | None:
    """The ids of a filter that is exactly `{_id: {$in: [...]}}`, once each; else None."""
    if len(filter) != 1:
        return None
    condition = filter.get("_id")
    if not isinstance(condition, Mapping) or list(condition) != ["$in"]:
        return None
    ids = condition["$in"]
    if not isinstance(ids, list | tuple) or any(isinstance(i, Mapping | list) for i in ids):
        return None
    return list(dict.fromkeys(ids))


@dataclass(frozen=True)
class _ByIds:
    """A read by ids that may be made of lookups by `_id` (see SCAN_PER_LOOKUP)."""

    collection: MongoCollection
    ids: list[Any]
    projection: Mapping[str, Any] | None


class MongoCursor:
    def __init__(self, cursor: AsyncCursor[Document], by_ids: _ByIds | None = None) -> None:
        self._cursor = cursor
        self._by_ids = by_ids

    def sort(self, key_or_list: str | SortFields, direction: int = 1, /) -> Self:
        self._by_ids = None  # sorted (or limited) by the server
        if isinstance(key_or_list, str):
            self._cursor = self._cursor.sort(key_or_list, direction)
        else:
            self._cursor = self._cursor.sort(list(key_or_list))
        return self

    def limit(self, limit: int, /) -> Self:
        self._by_ids = None
        self._cursor = self._cursor.limit(limit)
        return self

    async def _iterate(self) -> AsyncIterator[Document]:
        try:
            by_ids = self._by_ids
            if by_ids is not None and await by_ids.collection.looks_up(len(by_ids.ids)):
                for document in await by_ids.collection.find_each(by_ids.ids, by_ids.projection):
                    yield document
                return
            async for document in self._cursor:
                yield document
        except PyMongoError as error:
            unavailable = _unavailable(error)
            if unavailable is None:
                raise
            raise unavailable from error

    def __aiter__(self) -> AsyncIterator[Document]:
        return self._iterate()


class MongoCollection:
    def __init__(
        self, collection: AsyncCollection[Document], database: MongoDatabase | None = None
    ) -> None:
        self._collection = collection
        self._database = database

    async def looks_up(self, ids: int) -> bool:
        """Whether a read of `ids` ids is cheaper as lookups by `_id` (SCAN_PER_LOOKUP)."""
        database = self._database
        if database is None or ids == 0 or not await database.is_ferretdb():
            return False
        return await database.document_count(self._collection.name) > ids * SCAN_PER_LOOKUP

    async def find_each(
        self, ids: Sequence[Any], projection: Mapping[str, Any] | None
    ) -> list[Document]:
        """The documents of these ids that exist, one lookup by `_id` each (a few at once)."""
        limit = asyncio.Semaphore(_LOOKUP_CONCURRENCY)

        async def one(doc_id: Any) -> Document | None:
            async with limit:
                return await self._collection.find_one({"_id": doc_id}, projection=projection)

        found = await asyncio.gather(*(one(doc_id) for doc_id in ids))
        return [document for document in found if document is not None]

    async def create_index(self, keys: str | SortFields, /, *, unique: bool = False) -> str:
        spec = keys if isinstance(keys, str) else list(keys)
        return await _guarded(self._collection.create_index(spec, unique=unique))

    async def find_one(
        self, filter: Mapping[str, Any], /, *, projection: Mapping[str, Any] | None = None
    ) -> Document | None:
        return await _guarded(self._collection.find_one(filter, projection=projection))

    def find(
        self, filter: Mapping[str, Any], /, *, projection: Mapping[str, Any] | None = None
    ) -> MongoCursor:
        ids = _ids_wanted(filter)
        by_ids = _ByIds(self, ids, projection) if ids is not None else None
        return MongoCursor(self._collection.find(filter, projection=projection), by_ids)

    async def count_documents(self, filter: Mapping[str, Any], /) -> int:
        return await _guarded(self._collection.count_documents(filter))

    async def insert_one(self, document: Document, /) -> InsertOutcome:
        return await _guarded(self._collection.insert_one(document))

    async def update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], /, *, upsert: bool = False
    ) -> UpdateOutcome:
        return await _guarded(self._collection.update_one(filter, update, upsert=upsert))

    async def update_many(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], /
    ) -> UpdateOutcome:
        return await _guarded(self._collection.update_many(filter, update))

    async def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        /,
        *,
        sort: SortFields | None = None,
        upsert: bool = False,
        return_document: bool = False,
    ) -> Document | None:
        return await _guarded(
            self._collection.find_one_and_update(
                filter,
                update,
                sort=list(sort) if sort is not None else None,
                upsert=upsert,
                return_document=return_document,
            )
        )

    async def delete_one(self, filter: Mapping[str, Any], /) -> DeleteOutcome:
        return await _guarded(self._collection.delete_one(filter))

    async def bulk_write(self, requests: Sequence[WriteRequest], /) -> BulkOutcome:
        return await _bulk_write(self._collection, requests)

    async def delete_many(self, filter: Mapping[str, Any], /) -> DeleteOutcome:
        return await _guarded(self._collection.delete_many(filter))


async def bulk_write(
    collection: DocumentCollection, requests: Sequence[WriteRequest]
) -> BulkOutcome:
    """`requests` on a collection of either adapter, or on pymongo's own collection (which
    tests hand to stores as the port)."""
    if isinstance(collection, AsyncCollection):
        return await _bulk_write(collection, requests)
    return await cast(BulkCollection, collection).bulk_write(requests)


async def _bulk_write(
    collection: AsyncCollection[Document], requests: Sequence[WriteRequest]
) -> BulkOutcome:
    matched = modified = upserted = inserted = 0
    duplicates: list[int] = []
    for start in range(0, len(requests), BULK_CHUNK):
        chunk = requests[start : start + BULK_CHUNK]
        operations: list[InsertOne[Document] | UpdateOne] = [
            InsertOne(r.document)
            if isinstance(r, InsertRequest)
            else UpdateOne(r.filter, r.update, upsert=r.upsert)
            for r in chunk
        ]
        try:
            result = await _guarded(collection.bulk_write(operations, ordered=False))
            details: Mapping[str, Any] = result.bulk_api_result
        except BulkWriteError as error:
            details = error.details
            others = [e for e in details["writeErrors"] if e["code"] != _DUPLICATE_KEY]
            if others and all(backend_down(e["code"], e.get("errmsg", "")) for e in others):
                raise StoreUnavailable(f"store backend unavailable: {others[0]}") from error
            if others:
                raise
            duplicates.extend(start + e["index"] for e in details["writeErrors"])
        matched += details.get("nMatched", 0)
        modified += details.get("nModified", 0)
        upserted += details.get("nUpserted", 0)
        inserted += details.get("nInserted", 0)
    return BulkOutcome(matched, modified, upserted, inserted, tuple(sorted(duplicates)))


class MongoDatabase:
    """The store port over one pymongo database."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.pymongo = database
        self._ferretdb: bool | None = None
        self._counts: dict[str, tuple[float, int]] = {}

    def __getitem__(self, name: str, /) -> MongoCollection:
        return MongoCollection(self.pymongo[name], self)

    async def is_ferretdb(self) -> bool:
        """Whether the server is FerretDB (its buildInfo says so); asked once."""
        if self._ferretdb is None:
            info = await _guarded(self.pymongo.client.admin.command("buildInfo"))
            self._ferretdb = "ferretdbVersion" in info
        return self._ferretdb

    async def document_count(self, collection: str) -> int:
        """About how many documents the collection holds (collStats: FerretDB counts a
        collection by reading it otherwise), at most `_COUNT_TTL_SECONDS` old."""
        now = time.monotonic()
        cached = self._counts.get(collection)
        if cached is not None and now - cached[0] < _COUNT_TTL_SECONDS:
            return cached[1]
        stats = await _guarded(self.pymongo.command("collStats", collection))
        count = int(stats.get("count", 0))
        self._counts[collection] = (now, count)
        return count


def open_client(url: str) -> AsyncMongoClient[Document]:
    # The client connects lazily; short timeouts make /readyz and failures answer fast.
    return AsyncMongoClient(
        url, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True
    )


async def ping(database: AsyncDatabase[Document]) -> bool:
    try:
        await asyncio.wait_for(database.command("ping"), timeout=2)
    except (PyMongoError, TimeoutError):
        return False
    return True
