"""Differential property test of the embedded document store against a real MongoDB-wire server
(FerretDB, `TOCSIN_MONGO_URL`): random documents, indexes, filters and updates from the subset
the stores use (tocsin/runtime/store.py, tocsin/runtime/embedded/matching.py) run on both, and
every answer must be the same: found documents (type- and field-order-exact), sorted finds,
counts, update results, `find_one_and_update` return values, and errors.

Values are drawn from small pools so that documents and operands collide often, across types
(1, 1.0 and True; null and a missing field; arrays that contain the operand).

Where FerretDB itself departs from MongoDB's documented behaviour, the generator follows
MongoDB's documentation and leaves that case out, with a comment saying why.

Runtime: 100 examples by default (5-10 s on a shared 2-core box);
`TOCSIN_STORE_DIFF_EXAMPLES=4000` for a deeper run (about 4.5 min there). With either fix of
c1f3a99 reverted (the index's `True == 1`, the BSON sort order), the default run fails, 10 runs
out of 10 when this was written.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError, OperationFailure

from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.matching import InvalidUpdate
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import MongoDatabase, open_client
from tocsin.runtime.store import Document, DocumentCollection, DocumentDatabase

pytestmark = pytest.mark.mongo

EXAMPLES = int(os.environ.get("TOCSIN_STORE_DIFF_EXAMPLES", "100"))

# -- values ----------------------------------------------------------------------------------


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn in proportion to its weight (`st.one_of` draws a
    strategy listed twice no more often than once)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


JAN = datetime(2026, 1, 1, tzinfo=UTC)
SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    1.0,
    2,
    2.5,
    -1,
    2**40,  # an int64
    "",
    "a",
    "ab",
    "b",
    "é",
    JAN,
    JAN + timedelta(microseconds=1500),  # stored with millisecond precision
    JAN + timedelta(days=31),
]
# -0.0, NaN and infinities are left out: no store writes them, and the embedded file stores
# JSON (NaN would come back null).
# Drawn half the time: values that are equal, or not, only by MongoDB's rules.
CONFUSABLE: list[Any] = [None, True, False, 0, 1, 1.0]
scalars = st.one_of(st.sampled_from(CONFUSABLE), st.sampled_from(SCALARS))
comparable = st.sampled_from(
    [v for v in SCALARS if v is not None]
)  # $gt/$lt/$lte operands: the stores compare dates, strings and numbers, never null
objects = st.dictionaries(st.sampled_from(["k", "j"]), scalars, max_size=2)
# No array inside an array anywhere: FerretDB refuses nested arrays ("nested arrays are not
# supported", https://docs.ferretdb.io/diff/), which MongoDB stores; no store writes them.
elements = st.one_of(scalars, objects)
arrays = st.lists(elements, max_size=3)
values = weighted((2, scalars), (1, objects), (1, arrays))

IDS = ["a", "b", "c", "d", "e", "f", "g"]
ids = st.sampled_from(IDS)


# `x` is where types collide: mostly 0, 1, 1.0, true, false or null.
confusables = st.sampled_from(CONFUSABLE)
x_values = weighted((2, confusables), (1, values))
# `o` is a sub-document (queried at `o.k`), never an array: a dotted path through an array
# reaches into every element in MongoDB, which no store needs and the embedded store refuses.
o_values = st.one_of(st.none(), scalars, objects, st.fixed_dictionaries({"k": values}))


@st.composite
def documents(draw: st.DrawFn, *, with_u: bool) -> Document:
    doc: Document = {"_id": draw(ids)}
    if with_u:
        doc["u"] = draw(st.sampled_from(["p", "q"]))
    for field, strategy in (("x", x_values), ("y", values), ("o", o_values)):
        if draw(st.integers(0, 3)):  # present three times in four
            doc[field] = draw(strategy)
    return doc


# -- filters ---------------------------------------------------------------------------------

# `x` most often, and alone most often: the field indexed most often, so that the index's
# own lookup (not a scan) answers.
filter_fields = st.sampled_from(["x", "x", "x", "y", "o.k", "_id"])


# Equality operands are never sub-documents: FerretDB does not match {y: {k: 1}} against an
# array field holding {k: 1}, which MongoDB does ("Query for a Document Nested in an Array",
# https://www.mongodb.com/docs/manual/tutorial/query-array-of-documents/). No store queries
# a sub-document by equality; the embedded store's equality on sub-documents (field order
# counts) is covered by tests/unit/test_embedded_docstore.py, and here by $min and $addToSet.
operands = weighted((2, scalars), (1, arrays))


def twins(value: Any) -> list[Any]:
    """The value and those Python finds equal to it but MongoDB does not, or the reverse (no
    sub-documents: they are no operands, see above)."""
    if isinstance(value, dict):
        return []
    if value is True or value is False:
        return [value, int(value), float(value)]
    if type(value) in (int, float) and value in (0, 1):
        return [value, int(value), float(value), bool(value)]
    return [value]


Near = dict[str, st.SearchStrategy[Any]]  # per field: values close to those stored there


def condition(field: str, near: Near) -> st.SearchStrategy[Any]:
    operand = ids if field == "_id" else weighted((3, near.get(field, confusables)), (1, operands))
    return weighted(
        (6, operand),  # plain equality, the stores' most common filter
        (1, st.builds(lambda v: {"$eq": v}, operand)),
        (1, st.builds(lambda v: {"$ne": v}, operand)),
        (1, st.builds(lambda vs: {"$in": vs}, st.lists(operand, max_size=3))),
        (1, st.builds(lambda v: {"$gt": v}, comparable)),
        (1, st.builds(lambda v: {"$lt": v}, comparable)),
        (1, st.builds(lambda v: {"$lte": v}, comparable)),
        (1, st.builds(lambda v: {"$ne": None, "$lte": v}, comparable)),  # the outbox sweep
    )


@st.composite
def filters(draw: st.DrawFn, near: Near, *, by_id: bool = False, seeding: bool = False) -> Document:
    """A conjunction over a few fields, comparing mostly with values `near` those stored;
    `by_id` pins `_id` first (as every single-document write of the stores does); `seeding`
    keeps to what an upsert's filter holds in the stores: equalities, `$eq` and `$ne`."""
    query: Document = {"_id": draw(ids)} if by_id else {}
    if seeding:
        # Top-level fields only (an upsert seeds what they equal), and not `o`, which must
        # stay a sub-document.
        for field in draw(st.lists(st.sampled_from(["x", "y"]), max_size=2, unique=True)):
            query[field] = draw(
                st.one_of(
                    operands,
                    st.builds(lambda v: {"$eq": v}, operands),
                    st.builds(lambda v: {"$ne": v}, operands),
                )
            )
        return query
    fields = filter_fields.filter(lambda field: field != "_id") if by_id else filter_fields
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 0]))):
        field = draw(fields)
        query[field] = draw(condition(field, near))
    return query


# -- updates ---------------------------------------------------------------------------------

UPDATE_FIELDS = st.sampled_from(["x", "y", "z"])
increments = st.sampled_from([1, -1, 2, 0.5])


@st.composite
def updates(draw: st.DrawFn, *, set_only: bool = False) -> Document:
    operators = (
        ["$set"] if set_only else ["$set", "$setOnInsert", "$inc", "$min", "$push", "$addToSet"]
    )
    update: Document = {}
    for operator in draw(st.lists(st.sampled_from(operators), min_size=1, max_size=3, unique=True)):
        fields = draw(st.lists(UPDATE_FIELDS, min_size=1, max_size=2, unique=True))
        update[operator] = {field: draw(_operand(operator)) for field in fields}
    return update


def _operand(operator: str) -> st.SearchStrategy[Any]:
    if operator == "$inc":
        return increments
    if operator == "$push":
        # Into an array: no array values (FerretDB refuses nested arrays, see above); and no
        # empty `$each`, with which MongoDB still creates a missing field as [] and FerretDB
        # does not (as with `$setOnInsert` below). Escalation pushes only non-empty outboxes.
        each = st.lists(elements, min_size=1, max_size=2)
        return st.one_of(elements, st.builds(lambda vs: {"$each": vs}, each))
    if operator == "$addToSet":
        return elements
    if operator == "$setOnInsert":
        # Never null or []: FerretDB inserts no field for `$setOnInsert: {x: null}` or
        # `{x: []}`, where MongoDB sets x to that value (https://www.mongodb.com/docs/manual/
        # reference/operator/update/setOnInsert/). The stores write such nulls (timers'
        # `lease_owner`, heartbeats' `outbox`) and read them with `.get()` or match them with
        # `{field: null}`, which a missing field matches too.
        return values.filter(lambda value: value is not None and value != [])
    return values


# -- operations ------------------------------------------------------------------------------

# `y` most often: its values are of every type, so a sort there meets them all.
SORT_FIELDS = st.sampled_from(["y", "y", "x", "o.k", "_id"])
directions = st.sampled_from([1, -1])


@dataclass(frozen=True)
class Op:
    kind: str
    filter: Document
    update: Document | None = None
    sort: tuple[tuple[str, int], ...] | None = None
    limit: int = 0
    upsert: bool = False
    return_after: bool = False
    projection: Document | None = None


def _sort() -> st.SearchStrategy[tuple[tuple[str, int], ...]]:
    # `_id` breaks ties, so MongoDB's order is fully determined (the stores' sorts on `due_at`
    # do not care which of two equally due timers comes first).
    return st.builds(
        lambda f, d: ((f, d),) if f == "_id" else ((f, d), ("_id", 1)), SORT_FIELDS, directions
    )


def operations(near: Near, *, upserts: bool) -> st.SearchStrategy[Op]:
    def where(**options: bool) -> st.SearchStrategy[Document]:
        return filters(near, **options)

    # Often everything: the more documents a sort meets, the more type pairs it orders.
    everything_or_some = weighted((1, st.just({})), (1, where()))
    sorted_find = st.builds(
        Op,
        st.just("find_sorted"),
        everything_or_some,
        sort=_sort(),
        limit=st.sampled_from([0, 0, 1, 2]),
    )
    # Often one equality on `x` alone, as the stores look documents up by an indexed field:
    # what an index answers by itself.
    lookup = st.builds(lambda value: {"x": value}, near.get("x", confusables))
    lookup_or_some = weighted((1, lookup), (1, where()))
    kinds = [
        st.builds(Op, st.just("find"), lookup_or_some),
        sorted_find,
        sorted_find,
        st.builds(Op, st.just("count"), lookup_or_some),
        st.builds(
            Op,
            st.just("find_one"),
            where(by_id=True),
            projection=st.sampled_from([None, {"x": 1}, {"_id": 1}, {"x": 1, "o": 1}]),
        ),
        st.builds(Op, st.just("update_one"), where(by_id=True), updates()),
        # update_many only `$set`s in the stores; an update that fails half-way through several
        # documents leaves whichever were done first, an order MongoDB does not define.
        st.builds(Op, st.just("update_many"), where(), updates(set_only=True)),
        st.builds(
            Op,
            st.just("find_one_and_update"),
            where(),
            updates(),
            sort=_sort(),
            return_after=st.booleans(),
        ),
        st.builds(
            Op,
            st.just("find_one_and_update"),
            where(by_id=True, seeding=True),
            updates(),
            return_after=st.booleans(),
        ),
        st.builds(Op, st.just("delete_one"), where(by_id=True)),
        st.builds(Op, st.just("delete_many"), where()),
    ]
    if upserts:
        kinds += [
            st.builds(
                Op,
                st.just("update_one"),
                where(by_id=True, seeding=True),
                updates(),
                upsert=st.just(True),
            ),
            st.builds(
                Op,
                st.just("find_one_and_update"),
                where(by_id=True, seeding=True),
                updates(),
                upsert=st.just(True),
                return_after=st.booleans(),
            ),
        ]
    return st.sampled_from(kinds).flatmap(lambda kind: kind)  # st.one_of would dedupe


@dataclass(frozen=True)
class Scenario:
    index: tuple[str, ...] | None
    unique_u: bool
    documents: list[Document]
    operations: list[Op]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    # A unique index on `u` (as ingest's on `token_sha256`) only where every document has `u`:
    # MongoDB indexes a missing field as null, so a second document without it is a duplicate
    # key (https://www.mongodb.com/docs/manual/core/index-unique/#missing-document-field-in-a-
    # unique-single-field-index); FerretDB accepts it. Upserts never set `u`, so none there.
    unique_u = draw(st.booleans())
    # Distinct ids, so every document is stored (inserting one twice is DuplicateKeyError on
    # both sides, seen often enough through upserts).
    docs = draw(
        st.lists(
            documents(with_u=unique_u), min_size=1, max_size=6, unique_by=lambda doc: doc["_id"]
        )
    )
    near = {}
    for field in ("x", "y"):
        stored = [twin for doc in docs if field in doc for twin in twins(doc[field])]
        if stored:
            near[field] = st.sampled_from(stored)
    return Scenario(
        index=draw(st.sampled_from([None, ("x",), ("x",), ("x",), ("y",), ("x", "y")])),
        unique_u=unique_u,
        documents=docs,
        operations=draw(st.lists(operations(near, upserts=not unique_u), min_size=1, max_size=8)),
    )


# -- running ---------------------------------------------------------------------------------


def canon(value: Any) -> Any:
    """Type-exact and field-order-exact, so 1 vs 1.0 vs True and {a, b} vs {b, a} differ."""
    if isinstance(value, dict):
        return ("object", tuple((key, canon(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("array", tuple(canon(item) for item in value))
    if isinstance(value, datetime):
        return ("date", value.astimezone(UTC).isoformat())
    if isinstance(value, int) and not isinstance(value, bool):
        return ("int", int(value))  # pymongo reads an int64 as bson.Int64, an int subclass
    return (type(value).__name__, value)


async def outcome(call: Awaitable[Any]) -> Any:
    try:
        result = await call
    except DuplicateKeyError:
        return "duplicate key"
    except (OperationFailure, InvalidUpdate) as error:
        note(f"refused: {error}")
        return "refused"  # both refuse, each with its own words
    if result is None or isinstance(result, int | dict | list):
        return canon(result)
    if hasattr(result, "deleted_count"):
        return ("deleted", result.deleted_count)
    if hasattr(result, "matched_count"):
        return ("updated", result.matched_count, result.modified_count, result.upserted_id)
    return ("inserted", result.inserted_id)


async def contents(collection: DocumentCollection) -> Any:
    return canon([doc async for doc in collection.find({}).sort("_id", 1)])


async def run(collection: DocumentCollection, scenario: Scenario) -> list[Any]:
    """Everything the scenario observes, in order."""
    seen: list[Any] = []
    if scenario.index is not None:
        await collection.create_index([(field, 1) for field in scenario.index])
    if scenario.unique_u:
        await collection.create_index("u", unique=True)
    for doc in scenario.documents:
        seen.append(await outcome(collection.insert_one(dict(doc))))
    seen.append(await contents(collection))
    for op in scenario.operations:
        seen.append(await outcome(_apply(collection, op)))
        if op.kind not in ("find", "find_sorted", "count", "find_one"):
            seen.append(await contents(collection))
    return seen


async def _apply(collection: DocumentCollection, op: Op) -> Any:
    if op.kind == "find":
        found = [doc async for doc in collection.find(op.filter)]
        return sorted(found, key=lambda doc: str(doc["_id"]))  # no order without a sort
    if op.kind == "find_sorted":
        assert op.sort is not None
        cursor = collection.find(op.filter).sort(list(op.sort))
        return [doc async for doc in (cursor.limit(op.limit) if op.limit else cursor)]
    if op.kind == "count":
        return await collection.count_documents(op.filter)
    if op.kind == "find_one":
        return await collection.find_one(op.filter, projection=op.projection)
    assert op.update is not None or op.kind.startswith("delete")
    if op.kind == "update_one":
        assert op.update is not None
        return await collection.update_one(op.filter, op.update, upsert=op.upsert)
    if op.kind == "update_many":
        assert op.update is not None
        return await collection.update_many(op.filter, op.update)
    if op.kind == "find_one_and_update":
        assert op.update is not None
        return await collection.find_one_and_update(
            op.filter,
            op.update,
            sort=list(op.sort) if op.sort else None,
            upsert=op.upsert,
            return_document=op.return_after,
        )
    if op.kind == "delete_one":
        return await collection.delete_one(op.filter)
    return await collection.delete_many(op.filter)


@dataclass
class Backends:
    loop: asyncio.AbstractEventLoop
    mongo: DocumentDatabase
    embedded: DocumentDatabase
    drop: Any


@pytest.fixture(scope="module")
def backends(mongo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    loop = asyncio.new_event_loop()
    client: AsyncMongoClient[Document] = open_client(mongo_url)
    name = f"differential_{uuid.uuid4().hex[:12]}"
    file = SqliteFile(Path(tmp_path_factory.mktemp("differential")) / "tocsin.sqlite")
    # The MongoDB side goes through the adapter the stores use in `tocsin serve`.
    mongo = MongoDatabase(client[name])
    yield Backends(loop, mongo, EmbeddedDatabase(file), client[name].drop_collection)
    loop.run_until_complete(client.drop_database(name))
    loop.run_until_complete(client.close())
    loop.close()
    file.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # every run draws afresh; a failure prints its minimal example
    phases=[Phase.generate, Phase.shrink],  # "explain" reruns the minimal example ~150 times
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios())
def test_embedded_store_answers_as_mongodb(backends: Backends, scenario: Scenario) -> None:
    collection = f"c{uuid.uuid4().hex[:12]}"

    async def both() -> tuple[list[Any], list[Any]]:
        try:
            expected = await run(backends.mongo[collection], scenario)
        finally:
            await backends.drop(collection)
        return expected, await run(backends.embedded[collection], scenario)

    expected, actual = backends.loop.run_until_complete(both())
    for step, (mongo, embedded) in enumerate(zip(expected, actual, strict=True)):
        assert embedded == mongo, f"step {step} differs in {scenario}"
