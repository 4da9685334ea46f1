"""The document store port: exactly the part of a MongoDB collection the services' stores use.

Two adapters satisfy it: `tocsin.runtime.mongo.MongoDatabase` over pymongo (MongoDB, FerretDB)
and the embedded store (`tocsin.runtime.embedded.docstore`), so every `Mongo*Store` runs
unchanged on either. Nothing here imports a driver. A store that needs a method this port lacks
adds it here, to the embedded store, and to the differential test
(tests/integration/test_store_differential.py) in the same change.

Positional-only and keyword-only markers mirror how the stores call each method: the port names
only what is used, and pymongo's much wider signatures stay compatible with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

Document = dict[str, Any]

# A sort or an index: one field name, or (field, 1 | -1) pairs in order of significance.
SortFields = Sequence[tuple[str, int]]


class StoreUnavailable(Exception):
    """The store cannot be reached (a failover, the server down, a network timeout): the
    operation may succeed later. Loops and consumers wait and retry; nothing is dead-lettered."""


class UpdateOutcome(Protocol):
    @property
    def matched_count(self) -> int: ...

    @property
    def modified_count(self) -> int: ...

    @property
    def upserted_id(self) -> Any: ...


class InsertOutcome(Protocol):
    @property
    def inserted_id(self) -> Any: ...


class DeleteOutcome(Protocol):
    @property
    def deleted_count(self) -> int: ...


@dataclass(frozen=True)
class UpdateRequest:
    """One `update_one` of a bulk write."""

    filter: Mapping[str, Any]
    update: Mapping[str, Any]
    upsert: bool = False


@dataclass(frozen=True)
class InsertRequest:
    """One `insert_one` of a bulk write."""

    document: Document


WriteRequest = UpdateRequest | InsertRequest


@dataclass(frozen=True)
class BulkOutcome:
    """What an unordered bulk write did. A request that hit a duplicate key (an insert of an
    existing `_id`, an upsert racing another) did nothing and is listed in `duplicates` by its
    index; any other failure raises."""

    matched_count: int = 0
    modified_count: int = 0
    upserted_count: int = 0
    inserted_count: int = 0
    duplicates: tuple[int, ...] = field(default=())


class DocumentCursor(Protocol):
    def sort(self, key_or_list: str | SortFields, direction: int = 1, /) -> Self: ...

    def limit(self, limit: int, /) -> Self: ...

    def __aiter__(self) -> AsyncIterator[Document]: ...


class DocumentCollection(Protocol):
    async def create_index(self, keys: str | SortFields, /, *, unique: bool = False) -> str: ...

    async def find_one(
        self, filter: Mapping[str, Any], /, *, projection: Mapping[str, Any] | None = None
    ) -> Document | None: ...

    def find(
        self, filter: Mapping[str, Any], /, *, projection: Mapping[str, Any] | None = None
    ) -> DocumentCursor: ...

    async def count_documents(self, filter: Mapping[str, Any], /) -> int: ...

    async def insert_one(self, document: Document, /) -> InsertOutcome: ...

    async def update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], /, *, upsert: bool = False
    ) -> UpdateOutcome: ...

    async def update_many(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], /
    ) -> UpdateOutcome: ...

    async def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        /,
        *,
        sort: SortFields | None = None,
        upsert: bool = False,
        return_document: bool = False,  # pymongo.ReturnDocument.BEFORE (False) or AFTER (True)
    ) -> Document | None: ...

    async def delete_one(self, filter: Mapping[str, Any], /) -> DeleteOutcome: ...

    async def delete_many(self, filter: Mapping[str, Any], /) -> DeleteOutcome: ...


class BulkCollection(DocumentCollection, Protocol):
    """A collection of either adapter: the port plus bulk writes. (pymongo's own collection
    is the port but not this: tocsin.runtime.mongo.bulk_write takes either.)"""

    async def bulk_write(self, requests: Sequence[WriteRequest], /) -> BulkOutcome:
        """Every request, unordered (each one atomic by itself, as its single-document
        operation; not the whole: no transaction), in as few round trips as the server takes."""


class DocumentDatabase(Protocol):
    def __getitem__(self, name: str, /) -> DocumentCollection: ...
