"""The adapters satisfy the document store port (tocsin/runtime/store.py): the embedded store,
the MongoDB adapter the stores use (`tocsin.runtime.mongo.MongoDatabase`), and pymongo's async
database and collection themselves (so the adapter stays a pass-through).

The typed assignments below are the proof: `mypy .` (in `make lint`) rejects this module if one
of them stops matching a method of the port, in its parameters or its result. One gap mypy
leaves: pymongo's collection answers any unknown attribute with a sub-collection
(`__getattr__`) that is callable, so a port method pymongo does not have would still
type-check; the first test closes it at run time.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor

from tocsin.runtime.embedded.docstore import EmbeddedCollection, EmbeddedCursor, EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import MongoCollection, MongoCursor, MongoDatabase
from tocsin.runtime.store import Document, DocumentCollection, DocumentCursor, DocumentDatabase


def _methods(port: type) -> set[str]:
    return {
        name
        for name, member in vars(port).items()
        if inspect.isfunction(member) and (not name.startswith("_") or name == "__aiter__")
    }


def test_every_port_method_is_a_real_method_of_both_adapters() -> None:
    assert _methods(DocumentCollection) == {
        "create_index",
        "find_one",
        "find",
        "count_documents",
        "insert_one",
        "update_one",
        "update_many",
        "find_one_and_update",
        "delete_one",
        "delete_many",
    }
    for port, adapters in (
        (DocumentCollection, (AsyncCollection, MongoCollection, EmbeddedCollection)),
        (DocumentCursor, (AsyncCursor, MongoCursor, EmbeddedCursor)),
    ):
        for adapter in adapters:
            missing = {name for name in _methods(port) if not hasattr(adapter, name)}
            assert not missing, f"{adapter.__name__} lacks {missing}"


def test_pymongo_database_and_collection_are_the_port() -> None:
    # connect=False: nothing here reaches a server.
    client: AsyncMongoClient[Document] = AsyncMongoClient("mongodb://127.0.0.1:1", connect=False)
    database: DocumentDatabase = client["port"]
    collection: DocumentCollection = database["things"]
    cursor: DocumentCursor = collection.find({}).sort("_id", 1).limit(1)
    by_list: DocumentCursor = collection.find({}).sort([("a", 1), ("_id", -1)])
    assert isinstance(cursor, AsyncCursor)
    assert isinstance(by_list, AsyncCursor)


def test_the_mongodb_adapter_is_the_port() -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient("mongodb://127.0.0.1:1", connect=False)
    database: DocumentDatabase = MongoDatabase(client["port"])
    collection: DocumentCollection = database["things"]
    cursor: DocumentCursor = collection.find({}).sort([("a", 1), ("_id", -1)]).limit(1)
    assert isinstance(cursor, MongoCursor)


def test_embedded_database_and_collection_are_the_port(tmp_path: Path) -> None:
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "port.sqlite"))
    try:
        database: DocumentDatabase = embedded
        collection: DocumentCollection = database["things"]
        cursor: DocumentCursor = collection.find({}).sort("_id", 1).limit(1)
        assert isinstance(cursor, EmbeddedCursor)
        assert collection is embedded["things"]
    finally:
        embedded.file.close()
