"""MongoDB query and update semantics of the embedded store (the subset DESIGN §5 allows)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tocsin.runtime.embedded.matching import (
    UnsupportedOperation,
    apply_update,
    matches,
    project,
    seed_from_query,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DOC = {
    "_id": "a",
    "status": "pending",
    "due_at": NOW,
    "lease_until": None,
    "event_ids": ["e1", "e2"],
    "outbox": [{"id": "x", "v": 1}, {"id": "y", "v": 2}],
    "count": 3,
    "nested": {"level": 1},
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "pending"}, True),
        ({"status": "done"}, False),
        ({"event_ids": "e2"}, True),  # an array field matches an element
        ({"event_ids": {"$ne": "e2"}}, False),
        ({"event_ids": {"$ne": "e9"}}, True),
        ({"missing": None}, True),  # a missing field equals null
        ({"lease_until": {"$ne": None, "$lte": NOW}}, False),
        ({"due_at": {"$lte": NOW}}, True),
        ({"due_at": {"$gt": NOW}}, False),
        ({"due_at": {"$lte": "2030"}}, False),  # other types never compare
        ({"lease_until": {"$lte": NOW}}, False),  # null never compares either
        ({"count": {"$gt": 2, "$lte": 3}}, True),
        ({"count": {"$lt": 3}}, False),
        ({"due_at": {"$lt": datetime(2027, 1, 1, tzinfo=UTC)}}, True),
        ({"count": {"$in": [1, 3]}}, True),
        ({"nested.level": 1}, True),
        ({"_id": {"$eq": "a"}}, True),
    ],
)
def test_query_semantics(query: dict[str, object], expected: bool) -> None:
    assert matches(DOC, query) is expected


@pytest.mark.parametrize(
    "query",
    [
        {"count": {"$gte": 3}},
        {"count": {"$nin": [1]}},
        {"missing": {"$exists": False}},
        {"outbox": {"$size": 2}},
        {"$or": [{"status": "done"}]},
        {"$and": [{"status": "pending"}]},
    ],
)
def test_query_operators_no_store_uses_are_refused(query: dict[str, object]) -> None:
    with pytest.raises(UnsupportedOperation):
        matches(DOC, query)


def test_update_operators() -> None:
    updated = apply_update(
        DOC,
        {
            "$set": {"status": "done", "nested": {"level": 2}},
            "$inc": {"count": 2, "new_counter": 1},
            "$min": {"due_at": datetime(2026, 1, 1, tzinfo=UTC)},
            "$addToSet": {"event_ids": "e2"},
            "$push": {"timeline": {"at": 1}, "outbox": {"$each": [{"id": "z", "v": 3}]}},
        },
        inserting=False,
    )
    assert updated == {
        "_id": "a",
        "status": "done",
        "due_at": datetime(2026, 1, 1, tzinfo=UTC),
        "lease_until": None,
        "event_ids": ["e1", "e2"],
        "outbox": [{"id": "x", "v": 1}, {"id": "y", "v": 2}, {"id": "z", "v": 3}],
        "count": 5,
        "new_counter": 1,
        "nested": {"level": 2},
        "timeline": [{"at": 1}],
    }
    assert DOC["count"] == 3  # the original is untouched
    assert DOC["outbox"] == [{"id": "x", "v": 1}, {"id": "y", "v": 2}]


def test_set_on_insert_applies_only_when_inserting() -> None:
    update = {"$setOnInsert": {"first_seen": NOW}, "$inc": {"count": 1}}
    assert apply_update({"_id": "a"}, update, inserting=False) == {"_id": "a", "count": 1}
    assert apply_update({"_id": "a"}, update, inserting=True)["first_seen"] == NOW


def test_upsert_seed_takes_plain_equalities_only() -> None:
    query = {"_id": "fp", "last_event_id": {"$ne": "e1"}, "kind": {"$eq": "x"}}
    assert seed_from_query(query) == {"_id": "fp", "kind": "x"}


@pytest.mark.parametrize(
    "update",
    [
        {"status": "replacement"},
        {"$rename": {"a": "b"}},
        {"$inc": {"_id": 1}},
        {"$unset": {"status": ""}},
        {"$max": {"count": 9}},
        {"$pull": {"event_ids": "e1"}},
        {"$addToSet": {"event_ids": {"$each": ["e3"]}}},
        {"$set": {"nested.level": 2}},
    ],
)
def test_what_is_outside_the_subset_is_refused(update: dict[str, object]) -> None:
    with pytest.raises(UnsupportedOperation):
        apply_update(DOC, update, inserting=False)


def test_projection_includes_top_level_fields_only() -> None:
    assert project(DOC, {"status": 1}) == {"_id": "a", "status": "pending"}
    assert project(DOC, {"_id": 1}) == {"_id": "a"}
    with pytest.raises(UnsupportedOperation):
        project(DOC, {"outbox": 0})
    with pytest.raises(UnsupportedOperation):
        project(DOC, {"nested.level": 1})
