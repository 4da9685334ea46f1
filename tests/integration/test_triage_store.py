"""Triage's store and handlers on both adapters (FerretDB and the embedded store): releasing an
incident a person resolved, what a resolve keeps of the trigger, severity with its reasons, and
counting an incident's alerts across a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from schemas import AlertStatus
from services.triage.consumers import AlertTriage, LifecycleTriage
from services.triage.store import AlertRecord, IncidentRecord, MongoTriageStore
from tests.integration.triage_pipeline import T0, occurrence, open_database, resolved_by_person
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document

pytestmark = pytest.mark.mongo

GROUP = "checkout/CheckoutErrors"


@pytest.fixture(params=["mongo", "embedded"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncDatabase[Document]]:
    async for database in open_database(request.param, tmp_path):
        yield database


@pytest.fixture
async def store(db: AsyncDatabase[Document]) -> MongoTriageStore:
    store = MongoTriageStore(db)
    await store.ensure_indexes()
    return store


@pytest.fixture
async def triage(store: MongoTriageStore, tmp_path: Path) -> AsyncIterator[AlertTriage]:
    # What triage publishes is not under test here: an embedded bus takes it.
    file = SqliteFile(tmp_path / "bus.sqlite")
    bus = EmbeddedBus(file)
    await bus.start()
    yield AlertTriage(bus, store, TocsinConfig())
    await bus.stop()
    file.close()


async def stored(store: MongoTriageStore, fingerprint: str) -> AlertRecord:
    record = await store.get_alert(fingerprint)
    assert record is not None
    return record


async def incident_of(store: MongoTriageStore, incident_id: str | None) -> IncidentRecord:
    assert incident_id is not None
    incident = await store.get_incident(incident_id)
    assert incident is not None
    return incident


# -- releasing an incident escalation resolved ----------------------------------------------


async def test_release_closes_the_incident_frees_its_group_and_detaches_firing_alerts(
    store: MongoTriageStore, triage: AlertTriage
) -> None:
    await triage.handle(occurrence("00000000000000a1"))
    await triage.handle(occurrence("00000000000000a2"))
    await triage.handle(occurrence("00000000000000a2", status=AlertStatus.RESOLVED))
    incident = await incident_of(store, (await stored(store, "00000000000000a1")).incident_id)

    assert await store.release(incident.id, T0, "api:admin")

    assert (await incident_of(store, incident.id)).status == "resolved"
    assert (await stored(store, "00000000000000a1")).incident_id is None
    # A resolved alert keeps its history: its next firing is a new occurrence anyway.
    assert (await stored(store, "00000000000000a2")).incident_id == incident.id
    assert await store.firing_count(incident.id) == 0


async def test_release_is_idempotent_and_ignores_unknown_incidents(
    store: MongoTriageStore, triage: AlertTriage
) -> None:
    lifecycle = LifecycleTriage(store)
    await triage.handle(occurrence("00000000000000b1"))
    first = await incident_of(store, (await stored(store, "00000000000000b1")).incident_id)
    change = resolved_by_person(first.id)
    await lifecycle.handle(change)
    await triage.handle(occurrence("00000000000000b1"))  # fires again: a new incident
    second = await incident_of(store, (await stored(store, "00000000000000b1")).incident_id)
    assert second.id != first.id

    await lifecycle.handle(change)  # redelivered late: the new incident is not touched
    assert not await store.release("no-such-incident", T0, None)

    assert (await stored(store, "00000000000000b1")).incident_id == second.id
    assert (await incident_of(store, second.id)).status == "open"
    await triage.handle(occurrence("00000000000000b2"))  # same group: joins the open one
    assert (await stored(store, "00000000000000b2")).incident_id == second.id


async def test_an_alert_never_joins_an_incident_resolved_while_its_group_was_read(
    store: MongoTriageStore, triage: AlertTriage, db: AsyncDatabase[Document]
) -> None:
    await triage.handle(occurrence("00000000000000c1"))
    first = await incident_of(store, (await stored(store, "00000000000000c1")).incident_id)
    assert await store.release(first.id, T0, "api:admin")
    # The state a release leaves when it stops between closing the incident and freeing its
    # group (a crash, or an alert racing it): the group still names the resolved incident.
    await db["triage_open_groups"].insert_one({"_id": GROUP, "incident_id": first.id})

    await triage.handle(occurrence("00000000000000c2"))

    joined = await incident_of(store, (await stored(store, "00000000000000c2")).incident_id)
    assert joined.id != first.id
    assert joined.status == "open"
    assert (await incident_of(store, first.id)).alert_count == 1
