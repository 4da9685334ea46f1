"""The embedded document store: the document store port (`tocsin.runtime.store`, the subset of
pymongo's async collection API that Tocsin's stores use) on the embedded SQLite file (WAL), so
every `Mongo*Store` runs unchanged in `tocsin up`.

Documents live in memory and every change is written to SQLite before an operation returns
(durable at the next commit: see sqlite.py). Operations run on the event loop without awaiting
in between, so each one is atomic, exactly like MongoDB's single-document operations. Unique
indexes are enforced; other indexes are accepted and ignored (everything is in memory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from tocsin.runtime.embedded.matching import (
    MISSING,
    Document,
    UnsupportedOperation,
    apply_update,
    bson_key,
    check_update,
    clone_document,
    identical,
    matches,
    project,
    seed_from_query,
    sort_key,
)
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.store import (
    BulkOutcome,
    InsertRequest,
    SortFields,
    WriteRequest,
)

IndexKey = tuple[tuple[str, ...], tuple[Any, ...]]  # (fields, values)

# An upsert that rewrites the row in place: `INSERT OR REPLACE` deletes the row and inserts
# a new one (a new rowid, its key index entry moved), about 6x the CPU per document written.
_UPSERT = (
    "INSERT INTO docs (collection, id, body) VALUES (?, ?, ?)"
    " ON CONFLICT (collection, id) DO UPDATE SET body = excluded.body"
)


def _json_default(value: Any) -> Any:
    # Called by the encoder only for what JSON lacks: datetimes (and tuples never reach it).
    if type(value) is datetime and value.tzinfo is UTC:
        return {"$date": value.isoformat()}  # as stored (normalized): UTC already
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {"$date": aware.astimezone(UTC).isoformat()}
    raise TypeError(f"cannot store {type(value).__name__} in the embedded store")


def _revive(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        if len(value) == 1 and "$date" in value:
            return datetime.fromisoformat(value["$date"])
        return {key: _revive(item) for key, item in value.items()}
    if kind is list:
        return [_revive(item) for item in value]
    return value


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def _loads(text: str | bytes) -> Any:
    return _revive(orjson.loads(text))


def _normalized(doc: Mapping[str, Any]) -> Document:
    result: Document = _normalize(doc)
    return result


def _normalized_filter(query: Mapping[str, Any]) -> Document:
    if len(query) == 1 and type(query.get("_id")) is str:
        return {"_id": query["_id"]}  # the common lookup: nothing to normalize
    return _normalized(query)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _normalize(value: Any) -> Any:
    """What MongoDB would give back: tuples become lists, naive datetimes UTC, ms precision.
    Containers are always copied: the result shares no container with `value`."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {key: _normalize(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_normalize(item) for item in value]
    if kind is datetime and value.tzinfo is UTC:
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.replace(microsecond=aware.microsecond // 1000 * 1000)
    if isinstance(value, Mapping):
        return {key: _normalize(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(item) for item in value]
    return value


def _indexable(value: Any) -> bool:
    """A value an equality index holds and looks up: a scalar. An array or a sub-document in a
    document is scanned instead; in a query, it is not a plain equality."""
    return not isinstance(value, Mapping | list | tuple)


def _index_value(value: Any) -> tuple[Any, ...]:
    # Keyed by BSON equality, not Python's: True == 1 and hash(True) == hash(1) would put
    # {x: true} in the bucket of {x: 1}; a missing field is indexed as null, as in MongoDB.
    return bson_key(None if value is MISSING else value)


def _same(old: Any, new: Any) -> bool:
    """The same stored value for an index: the very object (copy-on-write shares untouched
    fields), or an equal scalar of the same type (BSON tells 1 from True, Python does not)."""
    return old is new or (type(old) is type(new) and _indexable(old) and old == new)


def _sorted(docs: list[Document], fields: list[tuple[str, int]]) -> list[Document]:
    # Stable sorts applied from the last key to the first give a multi-key order.
    for path, direction in reversed(fields):
        docs = sorted(docs, key=sort_key([(path, direction)]), reverse=direction < 0)
    return docs


@dataclass(frozen=True)
class UpdateResult:
    matched_count: int
    modified_count: int
    upserted_id: Any = None


@dataclass(frozen=True)
class InsertOneResult:
    inserted_id: Any


@dataclass(frozen=True)
class DeleteResult:
    deleted_count: int


class EmbeddedCursor:
    def __init__(self, collection: EmbeddedCollection, query: Document, projection: Any) -> None:
        self._collection = collection
        self._query = query
        self._projection = projection
        self._sort: list[tuple[str, int]] = []
        self._limit = 0

    def sort(self, key_or_list: str | SortFields, direction: int = 1) -> EmbeddedCursor:
        self._sort = (
            [(key_or_list, direction)] if isinstance(key_or_list, str) else list(key_or_list)
        )
        return self

    def limit(self, limit: int) -> EmbeddedCursor:
        self._limit = limit
        return self

    def _results(self) -> list[Document]:
        docs = self._collection._matching(self._query)
        if self._sort:
            docs = _sorted(docs, self._sort)
        if self._limit:
            docs = docs[: self._limit]
        return [project(doc, self._projection) for doc in docs]

    def __aiter__(self) -> AsyncIterator[Document]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Document]:
        for doc in self._results():
            yield doc


class EmbeddedCollection:
    def __init__(self, database: EmbeddedDatabase, name: str) -> None:
        self._database = database
        self.name = name
        self._docs: dict[Any, Document] = {}
        self._unique: list[tuple[str, ...]] = []
        # Equality indexes on every prefix of each declared index: values -> ids. Documents
        # whose value there is not hashable (an array, a sub-document) are always scanned.
        self._indexes: dict[tuple[str, ...], dict[tuple[Any, ...], set[Any]]] = {}
        self._unindexable: dict[tuple[str, ...], set[Any]] = {}

    # -- reading ---------------------------------------------------------------------------

    def _index_for(self, query: Mapping[str, Any]) -> IndexKey | None:
        """The longest declared index whose every field the query pins to a plain value."""
        best: IndexKey | None = None
        for fields in self._indexes:
            if not all(f in query and _indexable(query[f]) for f in fields):
                continue
            if best is None or len(fields) > len(best[0]):
                best = (fields, tuple(_index_value(query[f]) for f in fields))
        return best

    def _matching(self, query: Mapping[str, Any]) -> list[Document]:
        by_id = query.get("_id")
        if type(by_id) is str:  # every stored _id is a string (see _store)
            doc = self._docs.get(by_id)
            return [doc] if doc is not None and matches(doc, query) else []
        if type(by_id) is dict and len(by_id) == 1 and type(by_id.get("$in")) is list:
            # A bulk read by ids (`{_id: {$in: [...]}}`): look each one up, as MongoDB's _id
            # index does; ids that are not strings match no stored document.
            looked_up = [self._docs.get(i) for i in dict.fromkeys(by_id["$in"]) if type(i) is str]
            if len(query) == 1:
                return [doc for doc in looked_up if doc is not None]  # matched by construction
            return [doc for doc in looked_up if doc is not None and matches(doc, query)]
        chosen = self._index_for(query)
        if chosen is None:
            return [doc for doc in self._docs.values() if matches(doc, query)]
        fields, values = chosen
        bucket = self._indexes[fields].get(values, set())
        unindexed = [self._docs[i] for i in self._unindexable[fields]]
        if len(fields) == len(query):
            # The query is exactly the index's equalities: the bucket matches as it is.
            found = [self._docs[i] for i in bucket]
        else:
            found = [self._docs[i] for i in bucket if matches(self._docs[i], query)]
        # Like MongoDB, no order is promised without a sort.
        return found + [doc for doc in unindexed if matches(doc, query)]

    def _keys(self, doc: Document, fields: tuple[str, ...]) -> tuple[Any, ...] | None:
        values = []
        for field in fields:
            value = doc.get(field, MISSING)
            if not _indexable(value):
                return None
            values.append(_index_value(value))
        return tuple(values)

    def _index_add(self, doc: Document) -> None:
        for fields, index in self._indexes.items():
            key = self._keys(doc, fields)
            if key is None:
                self._unindexable[fields].add(doc["_id"])
            else:
                index.setdefault(key, set()).add(doc["_id"])

    def _index_remove(self, doc: Document) -> None:
        for fields, index in self._indexes.items():
            self._unindexable[fields].discard(doc["_id"])
            key = self._keys(doc, fields)
            ids = index.get(key) if key is not None else None
            if ids is not None:
                ids.discard(doc["_id"])

    def _first(
        self, query: Mapping[str, Any], sort: list[tuple[str, int]] | None
    ) -> Document | None:
        docs = self._matching(query)
        if sort:
            docs = _sorted(docs, sort)
        return docs[0] if docs else None

    async def find_one(
        self, filter: Mapping[str, Any] | None = None, projection: Any = None
    ) -> Document | None:
        doc = self._first(_normalized(filter or {}), None)
        return project(doc, projection) if doc is not None else None

    def find(
        self, filter: Mapping[str, Any] | None = None, projection: Any = None
    ) -> EmbeddedCursor:
        return EmbeddedCursor(self, _normalized(filter or {}), projection)

    async def count_documents(self, filter: Mapping[str, Any]) -> int:
        filter = _normalized(filter)
        chosen = self._index_for(filter)
        if chosen is not None and len(chosen[0]) == len(filter):
            # Exactly the index's equalities: count the bucket without touching documents.
            fields, values = chosen
            bucket = self._indexes[fields].get(values, set())
            unindexed = (self._docs[i] for i in self._unindexable[fields])
            return len(bucket) + sum(1 for doc in unindexed if matches(doc, filter))
        return len(self._matching(filter))

    # -- writing ---------------------------------------------------------------------------

    async def create_index(self, keys: str | SortFields, *, unique: bool = False) -> str:
        fields = (keys,) if isinstance(keys, str) else tuple(path for path, _direction in keys)
        if any("." in field for field in fields):
            raise UnsupportedOperation("indexes on dotted paths")
        if unique and fields not in self._unique:
            self._unique.append(fields)
        for length in range(1, len(fields) + 1):
            prefix = fields[:length]
            if prefix[0] != "_id" and prefix not in self._indexes:
                self._indexes[prefix] = {}
                self._unindexable[prefix] = set()
                index = self._indexes[prefix]
                for doc in self._docs.values():
                    key = self._keys(doc, prefix)
                    if key is None:
                        self._unindexable[prefix].add(doc["_id"])
                    else:
                        index.setdefault(key, set()).add(doc["_id"])
        return "_".join(fields)

    def _check_unique(self, doc: Document) -> None:
        for fields in self._unique:
            values = tuple(bson_key(doc.get(f)) for f in fields)
            for other in self._docs.values():
                if (
                    other["_id"] != doc["_id"]
                    and tuple(bson_key(other.get(f)) for f in fields) == values
                ):
                    raise DuplicateKeyError(f"E11000 duplicate key {fields} in {self.name}")

    def _insert(self, doc: Document) -> Document:
        doc_id = doc.get("_id")
        if type(doc_id) is not str:
            # Every store names its documents; a generated ObjectId has no equivalent here.
            raise UnsupportedOperation("documents without a string _id")
        if doc_id in self._docs:
            raise DuplicateKeyError(f"E11000 duplicate key _id in {self.name}")
        if next(iter(doc)) != "_id":
            doc = {"_id": doc_id, **doc}  # MongoDB stores _id first
        self._store(doc)
        return doc

    def _store(self, doc: Document, changed: set[str] | None = None) -> None:
        """Keep `doc` (a new version of the document if one is stored: `changed` names the
        fields that may differ from it, None for any)."""
        if self._unique:
            self._check_unique(doc)
        self._database._write(self.name, doc)
        doc_id = doc["_id"]
        previous = self._docs.get(doc_id)
        self._docs[doc_id] = doc
        if previous is None:
            self._index_add(doc)
            return
        for fields, index in self._indexes.items():
            # Most updates touch a few fields: an index none of whose fields changed stays.
            if changed is not None:
                if changed.isdisjoint(fields):
                    continue
            elif all(_same(previous.get(f, MISSING), doc.get(f, MISSING)) for f in fields):
                continue
            unindexable = self._unindexable[fields]
            unindexable.discard(doc_id)
            old = self._keys(previous, fields)
            ids = index.get(old) if old is not None else None
            if ids is not None:
                ids.discard(doc_id)
            new = self._keys(doc, fields)
            if new is None:
                unindexable.add(doc_id)
            else:
                index.setdefault(new, set()).add(doc_id)

    async def insert_one(self, document: Mapping[str, Any]) -> InsertOneResult:
        # Normalizing copies every container: the stored document is the store's own.
        doc = self._insert(_normalized(document))
        return InsertOneResult(doc["_id"])

    def _upsert(self, query: Mapping[str, Any], update: Mapping[str, Any]) -> Document:
        doc = apply_update(seed_from_query(query), update, inserting=True, owned=True)
        # As in MongoDB, the filter did not match but the insert can still collide on _id.
        return self._insert(doc)

    def _update(self, doc: Document, update: Mapping[str, Any]) -> Document:
        # Stored documents are normalized already; so are the operands (by the caller, which
        # checked the update and owns its values: several documents may share them, as
        # nothing changes a stored value in place).
        updated = apply_update(doc, update, inserting=False, owned=True)
        # Stored documents are never changed in place, so comparing what was touched suffices;
        # like MongoDB, 1.0 replacing 1 or a reordered sub-document is a change.
        changed = {
            field
            for fields in update.values()
            for field in fields
            if not identical(updated.get(field, MISSING), doc.get(field, MISSING))
        }
        if changed:
            self._store(updated, changed)
            return updated
        return doc

    def _update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], upsert: bool
    ) -> UpdateResult:
        filter, update = _normalized_filter(filter), _normalized(update)
        check_update(update)
        doc = self._first(filter, None)
        if doc is None:
            if not upsert:
                return UpdateResult(0, 0)
            inserted = self._upsert(filter, update)
            return UpdateResult(0, 0, inserted["_id"])
        updated = self._update(doc, update)
        return UpdateResult(1, int(updated is not doc))

    async def update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any], upsert: bool = False
    ) -> UpdateResult:
        return self._update_one(filter, update, upsert)

    async def update_many(
        self, filter: Mapping[str, Any], update: Mapping[str, Any]
    ) -> UpdateResult:
        update = _normalized(update)
        check_update(update)
        docs = self._matching(_normalized(filter))
        modified = 0
        for doc in docs:
            if self._update(doc, update) is not doc:
                modified += 1
        return UpdateResult(len(docs), modified)

    async def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        sort: SortFields | None = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
    ) -> Document | None:
        filter, update = _normalized(filter), _normalized(update)
        check_update(update)
        doc = self._first(filter, list(sort) if sort else None)
        if doc is None:
            if not upsert:
                return None
            inserted = self._upsert(filter, update)
            return clone_document(inserted) if return_document else None
        updated = self._update(doc, update)
        return clone_document(updated if return_document else doc)

    async def bulk_write(self, requests: Sequence[WriteRequest]) -> BulkOutcome:
        # The documents' rows go to SQLite in one executemany at the end (also on a failure
        # half-way: what changed in memory is written), in the same open transaction.
        with self._database.deferred_writes():
            return await self._bulk_write(requests)

    async def _bulk_write(self, requests: Sequence[WriteRequest]) -> BulkOutcome:
        matched = modified = upserted = inserted = 0
        duplicates: list[int] = []
        for n, request in enumerate(requests):
            try:
                if isinstance(request, InsertRequest):
                    self._insert(_normalized(request.document))
                    inserted += 1
                    continue
                result = self._update_one(request.filter, request.update, request.upsert)
            except DuplicateKeyError:
                duplicates.append(n)  # unordered: the others still run, as in MongoDB
                continue
            matched += result.matched_count
            modified += result.modified_count
            upserted += int(result.upserted_id is not None)
        return BulkOutcome(matched, modified, upserted, inserted, tuple(duplicates))

    async def delete_one(self, filter: Mapping[str, Any]) -> DeleteResult:
        doc = self._first(_normalized(filter), None)
        if doc is None:
            return DeleteResult(0)
        self._database._delete(self.name, doc["_id"])
        self._index_remove(doc)
        del self._docs[doc["_id"]]
        return DeleteResult(1)

    async def delete_many(self, filter: Mapping[str, Any]) -> DeleteResult:
        docs = self._matching(_normalized(filter))
        for doc in docs:
            self._database._delete(self.name, doc["_id"])
            self._index_remove(doc)
            del self._docs[doc["_id"]]
        return DeleteResult(len(docs))


class EmbeddedDatabase:
    """Every collection in one table of the embedded SQLite file: `docs(collection, id, body)`.

    Writes join the file's open transaction; it commits as sqlite.py describes.
    """

    def __init__(self, file: SqliteFile) -> None:
        self.name = file.path.stem
        self.file = file
        file.schema(
            "CREATE TABLE IF NOT EXISTS docs ("
            " collection TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,"
            " PRIMARY KEY (collection, id))"
        )
        self._collections: dict[str, EmbeddedCollection] = {}
        self._deferred: list[tuple[str, str, bytes]] | None = None
        for name, body in file.read("SELECT collection, body FROM docs"):
            doc = _loads(body)
            self[name]._docs[doc["_id"]] = doc

    def __getitem__(self, name: str) -> EmbeddedCollection:
        collection = self._collections.get(name)
        if collection is None:
            collection = self._collections[name] = EmbeddedCollection(self, name)
        return collection

    async def command(self, command: str) -> dict[str, Any]:
        if command != "ping":
            raise UnsupportedOperation(f"command {command}")
        self.file.read("SELECT 1")
        return {"ok": 1.0}

    def _key(self, doc_id: Any) -> str:
        return _dumps(doc_id).decode()

    def _write(self, collection: str, doc: Document) -> None:
        row = (collection, self._key(doc["_id"]), _dumps(doc))
        if self._deferred is not None:
            self._deferred.append(row)
            return
        self.file.write(_UPSERT, row)

    @contextmanager
    def deferred_writes(self) -> Iterator[None]:
        """Collect the rows written meanwhile and write them at once on the way out."""
        if self._deferred is not None:
            yield  # already deferring: the outer block writes them
            return
        self._deferred = []
        try:
            yield
        finally:
            rows, self._deferred = self._deferred, None
            if rows:
                self.file.write_many(_UPSERT, rows)

    def _delete(self, collection: str, doc_id: Any) -> None:
        self.file.write(
            "DELETE FROM docs WHERE collection = ? AND id = ?", (collection, self._key(doc_id))
        )
