"""The embedded store answers as MongoDB does where a shortcut of its own could make it differ:
the equality index, the BSON order of mixed types, and type-exact updates. Expected values are
MongoDB's documented behaviour (and what FerretDB answers; see
tests/integration/test_store_differential.py, which compares the two on random operations)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tocsin.runtime.embedded.docstore import EmbeddedCollection, EmbeddedDatabase
from tocsin.runtime.embedded.matching import InvalidUpdate
from tocsin.runtime.embedded.sqlite import SqliteFile

JAN = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
async def things(tmp_path: Path) -> AsyncIterator[EmbeddedCollection]:
    database = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    yield database["things"]
    database.file.close()


async def ids(collection: EmbeddedCollection, query: dict[str, Any]) -> set[str]:
    return {doc["_id"] async for doc in collection.find(query)}


@pytest.mark.parametrize("indexed", [False, True])
async def test_equality_tells_true_from_1_with_or_without_an_index(
    things: EmbeddedCollection, indexed: bool
) -> None:
    # Python's True == 1 (and equal hashes) made an index bucket hold both.
    if indexed:
        await things.create_index("x")
    for doc_id, x in [("bool", True), ("int", 1), ("float", 1.0), ("str", "1"), ("false", False)]:
        await things.insert_one({"_id": doc_id, "x": x})
    assert await ids(things, {"x": 1}) == {"int", "float"}  # numbers compare by value
    assert await ids(things, {"x": True}) == {"bool"}
    assert await ids(things, {"x": 0}) == set()
    assert await ids(things, {"x": {"$in": [False, "1"]}}) == {"false", "str"}
    assert await things.count_documents({"x": 1}) == 2
    assert await things.count_documents({"x": True}) == 1


async def test_a_unique_index_tells_true_from_1(things: EmbeddedCollection) -> None:
    await things.create_index("token", unique=True)
    await things.insert_one({"_id": "a", "token": True})
    await things.insert_one({"_id": "b", "token": 1})  # no DuplicateKeyError: not equal in BSON
    assert await things.count_documents({}) == 2


# Distinct in BSON order (no ties), so the whole order is determined.
MIXED: list[tuple[str, Any]] = [
    ("date", JAN),
    ("true", True),
    ("obj-k", {"k": 1}),
    ("null", None),
    ("str", "a"),
    ("array", [3, "z"]),  # sorts by its least element ascending, its greatest descending
    ("obj-a", {"a": 2}),
    ("false", False),
    ("float", 2.5),
    ("empty", []),  # an empty array sorts before null
    ("int", 1),
]


async def test_sort_follows_bson_order_across_types(things: EmbeddedCollection) -> None:
    for doc_id, x in MIXED:
        await things.insert_one({"_id": doc_id, "x": x})
    ascending = [doc["_id"] async for doc in things.find({}).sort("x", 1)]
    descending = [doc["_id"] async for doc in things.find({}).sort("x", -1)]
    assert ascending == [
        "empty", "null", "int", "float", "array", "str", "obj-a", "obj-k", "false", "true", "date"
    ]  # fmt: skip
    assert descending == [
        "date", "true", "false", "obj-k", "obj-a", "array", "str", "float", "int", "null", "empty"
    ]  # fmt: skip


async def test_sub_documents_compare_field_type_before_field_name(
    things: EmbeddedCollection,
) -> None:
    # BSON compares each pair's type, then its name, then its value: a number is less than a
    # string, so {"b": 1} < {"a": "x"} although "a" < "b".
    await things.insert_one({"_id": "string-a", "x": {"a": "x"}})
    await things.insert_one({"_id": "number-b", "x": {"b": 1}})
    await things.insert_one({"_id": "longer", "x": {"b": 1, "c": 0}})
    order = [doc["_id"] async for doc in things.find({}).sort("x", 1)]
    assert order == ["number-b", "longer", "string-a"]


async def test_find_one_and_update_sorts_in_bson_order(things: EmbeddedCollection) -> None:
    for doc_id, x in MIXED:
        await things.insert_one({"_id": doc_id, "x": x})
    first = await things.find_one_and_update({}, {"$set": {"y": 1}}, sort=[("x", -1)])
    assert first is not None
    assert first["_id"] == "date"


async def test_equality_on_a_sub_document_respects_field_order(
    things: EmbeddedCollection,
) -> None:
    await things.insert_one({"_id": "ab", "x": {"a": 1, "b": 2}})
    assert await ids(things, {"x": {"a": 1, "b": 2}}) == {"ab"}
    assert await ids(things, {"x": {"b": 2, "a": 1}}) == set()


async def test_min_compares_across_types_in_bson_order(things: EmbeddedCollection) -> None:
    await things.insert_one({"_id": "s", "x": "SEV2"})
    await things.insert_one({"_id": "n", "x": None})
    await things.update_one({"_id": "s"}, {"$min": {"x": 5}})  # numbers < strings
    await things.update_one({"_id": "n"}, {"$min": {"x": 5}})  # null < numbers
    assert await things.find_one({"_id": "s"}) == {"_id": "s", "x": 5}
    assert await things.find_one({"_id": "n"}) == {"_id": "n", "x": None}


async def test_set_to_an_equal_number_of_another_type_is_a_modification(
    things: EmbeddedCollection,
) -> None:
    await things.insert_one({"_id": "a", "x": 1, "d": {"a": 1, "b": 2}})
    changed = await things.update_one({"_id": "a"}, {"$set": {"x": 1.0}})
    reordered = await things.update_one({"_id": "a"}, {"$set": {"d": {"b": 2, "a": 1}}})
    same = await things.update_one({"_id": "a"}, {"$set": {"x": 1.0}})
    assert (changed.modified_count, reordered.modified_count, same.modified_count) == (1, 1, 0)
    stored = await things.find_one({"_id": "a"})
    assert stored is not None
    assert type(stored["x"]) is float
    assert list(stored["d"]) == ["b", "a"]


async def test_add_to_set_uses_bson_equality(things: EmbeddedCollection) -> None:
    await things.insert_one({"_id": "a", "x": [1, "z"]})
    same_number = await things.update_one({"_id": "a"}, {"$addToSet": {"x": 1.0}})
    a_bool = await things.update_one({"_id": "a"}, {"$addToSet": {"x": True}})
    assert (same_number.modified_count, a_bool.modified_count) == (0, 1)
    assert await things.find_one({"_id": "a"}) == {"_id": "a", "x": [1, "z", True]}


@pytest.mark.parametrize(
    ("start", "update"),
    [
        (None, {"$inc": {"x": 1}}),  # null is not a number
        ("1", {"$inc": {"x": 1}}),
        (True, {"$inc": {"x": 1}}),
        (None, {"$push": {"x": 1}}),  # null is not an array
        (1, {"$addToSet": {"x": 1}}),
    ],
)
async def test_updates_of_a_field_of_the_wrong_type_fail_and_change_nothing(
    things: EmbeddedCollection, start: Any, update: dict[str, Any]
) -> None:
    await things.insert_one({"_id": "a", "x": start, "n": 0})
    with pytest.raises(InvalidUpdate):
        await things.update_one({"_id": "a"}, {**update, "$set": {"n": 1}})
    assert await things.find_one({"_id": "a"}) == {"_id": "a", "x": start, "n": 0}


async def test_a_cursor_sorts_by_several_fields_in_order(things: EmbeddedCollection) -> None:
    for doc_id, at in [("a", 2), ("b", 1), ("c", 2), ("d", 3)]:
        await things.insert_one({"_id": doc_id, "at": at})
    order = [doc["_id"] async for doc in things.find({}).sort([("at", -1), ("_id", -1)])]
    assert order == ["d", "c", "a", "b"]


async def test_delete_many_deletes_what_matches_and_survives_a_restart(tmp_path: Path) -> None:
    database = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    things = database["things"]
    await things.create_index("state")
    for n in range(5):
        await things.insert_one({"_id": f"t{n}", "state": "done" if n % 2 else "pending", "n": n})
    deleted = await things.delete_many({"state": "done", "n": {"$lt": 3}})
    assert deleted.deleted_count == 1
    assert await ids(things, {"state": "done"}) == {"t3"}
    database.file.commit()
    database.file.close()
    reopened = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    assert await ids(reopened["things"], {}) == {"t0", "t2", "t3", "t4"}
    reopened.file.close()


async def test_id_is_stored_first_as_in_mongodb(things: EmbeddedCollection) -> None:
    # Found by the differential test: MongoDB moves _id to the front of a new document.
    await things.insert_one({"x": 1, "_id": "a"})
    await things.update_one({"x": 2, "_id": "b"}, {"$set": {"y": 1}}, upsert=True)
    assert [list(doc) async for doc in things.find({}).sort("_id", 1)] == [
        ["_id", "x"],
        ["_id", "x", "y"],
    ]


@pytest.mark.parametrize(
    "update",
    [{"$set": {"x": 1}, "$inc": {"x": 1}}, {"$inc": {"x": "1"}}],
)
async def test_an_invalid_update_fails_even_when_nothing_matches(
    things: EmbeddedCollection, update: dict[str, Any]
) -> None:
    # Found by the differential test: MongoDB checks the update before it looks for documents.
    with pytest.raises(InvalidUpdate):
        await things.update_one({"_id": "none"}, update)
    with pytest.raises(InvalidUpdate):
        await things.update_many({"_id": "none"}, update)
    with pytest.raises(InvalidUpdate):
        await things.find_one_and_update({"_id": "none"}, update)


async def test_new_fields_are_added_in_lexicographic_order(things: EmbeddedCollection) -> None:
    # Found by the differential test. MongoDB 5.0+: "update operators process document fields
    # with string-based names in lexicographic order" (manual, Update Operators, Behavior).
    await things.insert_one({"_id": "a", "m": 0})
    await things.update_one({"_id": "a"}, {"$set": {"y": 1, "b": 1}, "$inc": {"x": 1, "a": 1}})
    stored = await things.find_one({"_id": "a"})
    assert stored is not None
    assert list(stored) == ["_id", "m", "a", "b", "x", "y"]
