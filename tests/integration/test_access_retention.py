"""Retention of the audit log, keys and console sessions on both store adapters: old entries,
long-revoked and long-expired keys and long-expired sessions go; the rest stays."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.escalation.audit_api import audit_rules
from services.escalation.console.sessions import session_rules
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import open_client
from tocsin.runtime.retention import RetentionPolicy, RetentionSweeper
from tocsin.runtime.store import DocumentDatabase

pytestmark = pytest.mark.mongo

T0 = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)


class Clock:
    def now(self) -> datetime:
        return T0


@pytest.fixture(params=["mongo", "embedded"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentDatabase]:
    if request.param == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"access_retention_{uuid.uuid4().hex[:12]}"
        yield client[name]
        await client.drop_database(name)
        await client.close()
        return
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    yield embedded
    embedded.file.close()


async def ids(db: DocumentDatabase, collection: str) -> set[str]:
    return {doc["_id"] async for doc in db[collection].find({})}


async def test_old_audit_entries_dead_keys_and_sessions_go(db: DocumentDatabase) -> None:
    old = T0 - 400 * DAY
    docs: dict[str, list[dict[str, object]]] = {
        "audit_log": [{"_id": "old", "at": old}, {"_id": "new", "at": T0}],
        "access_keys": [
            {"_id": "active", "revoked_at": None, "expires_at": None},
            {"_id": "revoked-long-ago", "revoked_at": old, "expires_at": None},
            {"_id": "revoked-lately", "revoked_at": T0 - DAY, "expires_at": None},
            {"_id": "expired-long-ago", "revoked_at": None, "expires_at": old},
            {"_id": "expires-later", "revoked_at": None, "expires_at": T0 + DAY},
        ],
        "console_sessions": [
            {"_id": "expired", "expires_at": T0 - 30 * DAY},
            {"_id": "live", "expires_at": T0 + DAY},
        ],
    }
    for collection, items in docs.items():
        for doc in items:
            await db[collection].insert_one(doc)
    policy = RetentionPolicy(resolved=180 * DAY, notifications=30 * DAY, internal=7 * DAY)
    await RetentionSweeper(db, [*audit_rules(policy), *session_rules(policy)], Clock()).sweep_once()
    assert await ids(db, "audit_log") == {"new"}
    assert await ids(db, "access_keys") == {"active", "revoked-lately", "expires-later"}
    assert await ids(db, "console_sessions") == {"live"}
