"""The MongoDB adapter of the store port: pymongo's connection failures become the runtime's
`StoreUnavailable` (which loops and consumers wait out), and the adapter passes the store
contract's calls through unchanged on the real FerretDB."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from tocsin.runtime import mongo
from tocsin.runtime.mongo import MongoDatabase, open_client
from tocsin.runtime.store import StoreUnavailable


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there any more


async def test_an_unreachable_server_raises_store_unavailable() -> None:
    client = open_client(f"mongodb://127.0.0.1:{_closed_port()}/?directConnection=true")
    database = MongoDatabase(client["absent"])
    try:
        with pytest.raises(StoreUnavailable, match="ServerSelectionTimeoutError"):
            await database["things"].find_one({"_id": "x"})
        with pytest.raises(StoreUnavailable):
            async for _ in database["things"].find({}).sort("at", 1).limit(1):
                pass
    finally:
        await client.close()


@pytest.mark.mongo
async def test_the_adapter_passes_calls_through() -> None:
    client = open_client(os.environ["TOCSIN_MONGO_URL"])
    name = f"adapter_{uuid.uuid4().hex[:12]}"
    things = MongoDatabase(client[name])["things"]
    try:
        await things.create_index([("kind", 1), ("at", 1)])
        for n in range(3):
            await things.insert_one({"_id": f"t{n}", "kind": "a", "at": n})
        after = await things.find_one_and_update(
            {"kind": "a"}, {"$inc": {"at": 10}}, sort=[("at", -1)], return_document=True
        )
        assert after == {"_id": "t2", "kind": "a", "at": 12}
        found = [d["_id"] async for d in things.find({"kind": "a"}).sort("at", -1).limit(2)]
        assert found == ["t2", "t1"]
        assert (await things.delete_many({"at": {"$lt": 1}})).deleted_count == 1
        assert await things.count_documents({}) == 2
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.mark.mongo
@pytest.mark.parametrize("per_lookup", [1, 1_000_000])
async def test_a_read_by_ids_answers_the_same_as_lookups_or_as_one_query(
    monkeypatch: pytest.MonkeyPatch, per_lookup: int
) -> None:
    # FerretDB scans the collection for an `$in`: the adapter looks each id up instead when
    # the collection is large for the ids wanted; either way the answer is the query's.
    monkeypatch.setattr(mongo, "SCAN_PER_LOOKUP", per_lookup)
    client = open_client(os.environ["TOCSIN_MONGO_URL"])
    name = f"adapter_{uuid.uuid4().hex[:12]}"
    database = MongoDatabase(client[name])
    things = database["things"]
    try:
        assert await database.is_ferretdb()  # the test infrastructure's store
        assert not await database["absent"].looks_up(5)  # no such collection: nothing to scan
        for n in range(20):
            await things.insert_one({"_id": f"t{n:02d}", "n": n, "tags": ["x"]})
        wanted = {"$in": ["t03", "t07", "missing", "t03", "t19"]}
        assert await things.looks_up(4) is (per_lookup == 1)
        found = [d async for d in things.find({"_id": wanted}, projection={"n": 1})]
        assert sorted(found, key=lambda d: d["_id"]) == [
            {"_id": "t03", "n": 3},
            {"_id": "t07", "n": 7},
            {"_id": "t19", "n": 19},
        ]
        assert [d async for d in things.find({"_id": {"$in": []}})] == []
        # Sorted or limited, the server answers (one query).
        ordered = things.find({"_id": wanted}).sort("n", -1).limit(2)
        assert [d["_id"] async for d in ordered] == ["t19", "t07"]
    finally:
        await client.drop_database(name)
        await client.close()
