"""Escalation's on-call store on both adapters (FerretDB over the MongoDB wire protocol, and the
embedded SQLite store): overrides by schedule and time range, oldest first, deleted only from
their own schedule; calendar token digests issued, replaced and revoked."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.escalation.domain.schedules import Override
from services.escalation.oncall_store import MongoOncallStore, StoredOverride
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document, open_client

pytestmark = pytest.mark.mongo

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(params=["mongo", "embedded"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MongoOncallStore]:
    if request.param == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"oncall_{uuid.uuid4().hex[:12]}"
        oncall = MongoOncallStore(client[name])
        await oncall.ensure_indexes()
        yield oncall
        await client.drop_database(name)
        await client.close()
        return
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    oncall = MongoOncallStore(cast(AsyncDatabase[Document], embedded))
    await oncall.ensure_indexes()
    yield oncall
    embedded.file.close()


def stored(
    override_id: str, start: datetime, end: datetime, *, schedule: str = "primary", n: int = 0
) -> StoredOverride:
    return StoredOverride(
        schedule, Override(override_id, "carol", start, end), T0 + n * timedelta(seconds=1), "api:x"
    )


async def test_overrides_overlapping_a_range_come_back_oldest_first(
    store: MongoOncallStore,
) -> None:
    await store.add_override(stored("late", T0 + 2 * HOUR, T0 + 3 * HOUR, n=0))
    await store.add_override(stored("now-b", T0, T0 + HOUR, n=2))
    await store.add_override(stored("now-a", T0 - HOUR, T0 + HOUR, n=1))
    await store.add_override(stored("past", T0 - 2 * HOUR, T0 - HOUR, n=3))
    await store.add_override(stored("other", T0, T0 + HOUR, schedule="secondary", n=4))

    found = await store.overrides("primary", T0, T0 + timedelta(milliseconds=1))
    assert [s.override.id for s in found] == ["now-a", "now-b"]
    first = found[0]
    assert first.override == Override("now-a", "carol", T0 - HOUR, T0 + HOUR)
    assert first.override.start.tzinfo is not None
    assert (first.schedule_id, first.created_by) == ("primary", "api:x")
    assert first.created_at == T0 + timedelta(seconds=1)

    # One ending exactly at the range's start, or starting at its end, does not overlap it.
    assert [s.override.id for s in await store.overrides("primary", T0 - HOUR, T0)] == ["now-a"]


async def test_an_override_is_deleted_only_from_its_own_schedule(store: MongoOncallStore) -> None:
    await store.add_override(stored("o1", T0, T0 + HOUR))
    assert not await store.delete_override("secondary", "o1")
    assert await store.delete_override("primary", "o1")
    assert not await store.delete_override("primary", "o1")
    assert await store.overrides("primary", T0, T0 + HOUR) == []


async def test_a_calendar_token_is_replaced_and_revoked(store: MongoOncallStore) -> None:
    assert await store.calendar_token("alice") is None
    await store.set_calendar_token("alice", "digest-1", T0)
    await store.set_calendar_token("alice", "digest-2", T0 + HOUR)
    assert await store.calendar_token("alice") == "digest-2"
    assert await store.calendar_token("bob") is None
    assert await store.delete_calendar_token("alice")
    assert not await store.delete_calendar_token("alice")
    assert await store.calendar_token("alice") is None
