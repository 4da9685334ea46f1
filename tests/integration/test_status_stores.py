"""The status page stores on FerretDB and the embedded store: the notifier's record of an
incident round-trips with compare-and-set, the page's listing (open, and resolved within the
window) uses only what both stores support, a send is marked once, public subscribers confirm;
escalation's updates list newest first and the outbox finds unpublished ones."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from schemas import (
    ComponentStatus,
    ComponentStatusChange,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    IncidentUpdatePosted,
    LifecycleStatus,
    Severity,
    UpdateStatus,
)
from services.escalation.updates_store import StatusUpdate, UpdatesStore
from services.notifier.status_domain import on_incident_event, on_lifecycle, on_update
from services.notifier.status_store import StatusStore
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document, open_client
from tocsin.runtime.store import DocumentDatabase

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["mongo", "embedded"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DocumentDatabase]:
    if request.param == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"status_{uuid.uuid4().hex[:12]}"
        yield client[name]
        await client.drop_database(name)
        await client.close()
        return
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "tocsin.sqlite"))
    yield cast(AsyncDatabase[Document], embedded)
    embedded.file.close()


def opened(incident_id: str, at: datetime = T0) -> IncidentEvent:
    return IncidentEvent(
        occurred_at=at,
        correlation_id=incident_id,
        kind=IncidentEventKind.OPENED,
        incident_id=incident_id,
        service_id="checkout",
        group_key="checkout/Down",
        title="internal title",
        severity=Severity.SEV0,
        alert_count=1,
        firing_count=1,
    )


async def test_the_record_round_trips_with_compare_and_set(database: DocumentDatabase) -> None:
    store = StatusStore(database)
    await store.ensure_indexes()
    record = on_incident_event(None, opened("inc-1"))
    assert await store.save(record)
    assert not await store.save(record)  # inserted already
    stored = await store.get("inc-1")
    assert stored is not None
    assert replace(stored, version=0) == record
    posted = IncidentUpdatePosted(
        occurred_at=T0 + timedelta(minutes=5),
        correlation_id="inc-1",
        incident_id="inc-1",
        service_id="checkout",
        status=UpdateStatus.IDENTIFIED,
        message="Found it.",
        public=True,
        components=(ComponentStatusChange(component_id="checkout", status="partial_outage"),),
    )
    changed = on_update(stored, posted)
    assert await store.save(changed)
    assert not await store.save(changed)  # a stale version loses
    again = await store.get("inc-1")
    assert again is not None
    assert again.version == 2
    assert again.manual == {"checkout": ComponentStatus.PARTIAL_OUTAGE}
    assert [(u.status, u.body, u.at) for u in again.updates] == [
        (UpdateStatus.IDENTIFIED, "Found it.", T0 + timedelta(minutes=5))
    ]


async def test_the_page_lists_open_and_recently_resolved_incidents(
    database: DocumentDatabase,
) -> None:
    store = StatusStore(database)
    await store.ensure_indexes()
    for incident_id, resolved_after in (("open", None), ("recent", 2), ("old", 20)):
        record = on_incident_event(None, opened(incident_id, T0 - timedelta(days=25)))
        if resolved_after is not None:
            change = IncidentLifecycleChanged(
                occurred_at=T0 - timedelta(days=resolved_after),
                correlation_id=incident_id,
                incident_id=incident_id,
                service_id="checkout",
                status=LifecycleStatus.RESOLVED,
            )
            resolved = on_lifecycle(record, change)
            assert resolved is not None
            record = resolved
        assert await store.save(record)
    shown = await store.shown(T0 - timedelta(days=14))
    assert sorted(i.id for i in shown) == ["open", "recent"]


async def test_sends_are_marked_once_and_subscribers_confirm(database: DocumentDatabase) -> None:
    store = StatusStore(database)
    await store.ensure_indexes()
    assert await store.first_send("u1/email:x", T0)
    assert not await store.first_send("u1/email:x", T0)
    await store.unsend("u1/email:x")
    assert await store.first_send("u1/email:x", T0)
    assert await store.may_confirm("public", "a@example.com", T0, timedelta(hours=1))
    assert not await store.may_confirm("public", "a@example.com", T0, timedelta(hours=1))
    assert await store.confirmed_subscribers("public") == []
    assert await store.confirm_subscriber("public", "a@example.com", T0)
    assert not await store.confirm_subscriber("public", "b@example.com", T0)
    assert await store.confirmed_subscribers("public") == ["a@example.com"]
    await store.remove_subscriber("public", "a@example.com")
    assert await store.confirmed_subscribers("public") == []


async def test_updates_list_newest_first_and_the_outbox_finds_unpublished(
    database: DocumentDatabase,
) -> None:
    store = UpdatesStore(database)
    await store.ensure_indexes()
    for n in range(3):
        await store.add(
            StatusUpdate(
                id=f"u{n}",
                incident_id="inc-1",
                service_id="checkout",
                status=UpdateStatus.MONITORING,
                message=f"update {n}",
                public=n % 2 == 0,
                components=(("checkout", ComponentStatus.DEGRADED_PERFORMANCE),),
                author="api:admin",
                created_at=T0 + timedelta(minutes=n),
            )
        )
    assert [u.id for u in await store.of_incident("inc-1")] == ["u2", "u1", "u0"]
    assert await store.last_at("inc-1") == T0 + timedelta(minutes=2)
    await store.mark_published("u0")
    pending = await store.unpublished(T0 + timedelta(minutes=1))
    assert [u.id for u in pending] == ["u1"]
    assert pending[0].components == (("checkout", ComponentStatus.DEGRADED_PERFORMANCE),)
