"""Triage's store and handlers on both adapters (FerretDB and the embedded store): releasing an
incident a person resolved, what a resolve keeps of the trigger, severity with its reasons, and
counting an incident's alerts across a crash."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from schemas import AlertStatus, Severity
from services.ingest.domain.formats import FORMATS, ParseContext
from services.triage.config import TriageConfig
from services.triage.consumers import AlertTriage, LifecycleTriage
from services.triage.domain import Occurrence
from services.triage.domain.flapping import FlapState
from services.triage.store import (
    AlertFilter,
    AlertRecord,
    AlertWrite,
    IncidentRecord,
    MongoTriageStore,
)
from tests.integration.triage_pipeline import T0, occurrence, open_database, resolved_by_person
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
    yield AlertTriage(bus, store, TriageConfig())
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


# -- a resolve keeps what the trigger said ---------------------------------------------------

RESOLVE_PATHS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "alertmanager": (
        {
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "page"},
                    "annotations": {
                        "summary": "Disk 95% full on db-1",
                        "runbook_url": "https://rb",
                    },
                }
            ]
        },
        {
            "alerts": [
                {
                    "status": "resolved",
                    "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "page"},
                }
            ]
        },
    ),
    "grafana": (
        {
            "title": "[FIRING:1] DiskFull",
            "alerts": [
                {
                    "status": "firing",
                    "fingerprint": "a1b2c3d4e5f60718",
                    "labels": {"alertname": "DiskFull", "severity": "critical"},
                    "annotations": {"summary": "Disk 95% full on db-1"},
                    "dashboardURL": "https://grafana.example/d/disk",
                }
            ],
        },
        {
            "title": "[RESOLVED] DiskFull",
            "alerts": [
                {
                    "status": "resolved",
                    "fingerprint": "a1b2c3d4e5f60718",
                    "labels": {"alertname": "DiskFull", "severity": "critical"},
                }
            ],
        },
    ),
    "datadog": (
        {
            "title": "[Warn on {host:db-1}] Disk almost full",
            "alert_id": "42",
            "body": "disk at 91%",
            "tags": "env:prod,team:storage",
        },
        {"title": "[Recovered on {host:db-1}] Disk almost full", "alert_id": "42"},
    ),
    "generic": (
        {
            "summary": "Nightly backup failed on db-1",
            "dedup_key": "backup/db-1",
            "severity": "critical",
            "labels": {"alertname": "BackupFailed", "host": "db-1"},
        },
        {"dedup_key": "backup/db-1", "status": "resolved"},
    ),
    "pagerduty": (
        {
            "routing_key": "r",
            "event_action": "trigger",
            "dedup_key": "db-1/replication-lag",
            "payload": {"summary": "Replication lag 45s", "source": "db-1", "severity": "error"},
        },
        {"routing_key": "r", "event_action": "resolve", "dedup_key": "db-1/replication-lag"},
    ),
}


@pytest.mark.parametrize("source", sorted(RESOLVE_PATHS))
async def test_a_bare_resolve_keeps_the_triggers_summary_severity_and_labels(
    source: str, store: MongoTriageStore, triage: AlertTriage
) -> None:
    trigger_body, resolve_body = RESOLVE_PATHS[source]
    context = ParseContext(f"{source}-1", "checkout", T0)
    (trigger,) = FORMATS[source].parse(trigger_body, context)
    (resolve,) = FORMATS[source].parse(resolve_body, context)
    assert resolve.fingerprint == trigger.fingerprint
    await triage.handle(trigger)
    await triage.handle(resolve)

    (alert,) = await store.list_alerts(AlertFilter(fingerprint=trigger.fingerprint), None, 2)
    assert alert.status is AlertStatus.RESOLVED
    assert alert.summary == trigger.summary
    assert alert.severity == trigger.severity is not None
    kept_labels = dict(alert.labels)
    assert {label.name: label.value for label in trigger.labels}.items() <= kept_labels.items()
    carried = {label.name for label in resolve.annotations}
    for label in trigger.annotations:
        if label.name not in carried:
            assert dict(alert.annotations)[label.name] == label.value
    assert await store.firing_count(alert.incident_id or "") == 0


# -- severity with its reasons ---------------------------------------------------------------


async def test_a_more_severe_alert_stores_its_severity_and_reasons_together(
    store: MongoTriageStore, triage: AlertTriage
) -> None:
    await triage.handle(occurrence("00000000000000e1", severity="info"))
    raising = occurrence("00000000000000e2", severity="page")
    await triage.handle(raising)
    await triage.handle(occurrence("00000000000000e3", severity="warning"))

    incident = await incident_of(store, (await stored(store, "00000000000000e1")).incident_id)
    assert incident.severity is Severity.SEV1
    assert incident.severity_reasons == (
        "sender severity 'page' maps to SEV1",
        "raised from SEV3 by a later alert",
    )
    assert incident.severity_event_id == raising.event_id


async def test_raise_severity_is_a_compare_and_set(
    store: MongoTriageStore, triage: AlertTriage
) -> None:
    await triage.handle(occurrence("00000000000000e4", severity="warning"))
    incident = await incident_of(store, (await stored(store, "00000000000000e4")).incident_id)
    cause = uuid.uuid4()

    stale = await store.raise_severity(incident.id, Severity.SEV3, Severity.SEV1, ("a",), cause)
    assert not stale  # the incident is SEV2, not SEV3: someone changed it since we read it
    assert await store.raise_severity(incident.id, Severity.SEV2, Severity.SEV1, ("b",), cause)
    raised = await incident_of(store, incident.id)
    assert (raised.severity, raised.severity_reasons) == (Severity.SEV1, ("b",))
    assert await store.release(incident.id, T0, "api:admin")
    closed = await store.raise_severity(incident.id, Severity.SEV1, Severity.SEV0, ("c",), cause)
    assert not closed


# -- counting an incident's alerts across a crash --------------------------------------------


async def test_a_crash_between_joining_and_counting_does_not_undercount(
    store: MongoTriageStore, triage: AlertTriage, db: AsyncDatabase[Document]
) -> None:
    await triage.handle(occurrence("00000000000000f1"))
    incident = await incident_of(store, (await stored(store, "00000000000000f1")).incident_id)
    joining = occurrence("00000000000000f2")
    # The state a crash leaves after the first write of f2's join (its membership document)
    # and before anything else: the message is delivered again.
    await db["triage_incident_alerts"].insert_one(
        {"_id": f"{incident.id}/00000000000000f2", "incident_id": incident.id}
    )

    await triage.handle(joining)

    assert (await incident_of(store, incident.id)).alert_count == 2
    await triage.handle(joining)  # and a plain redelivery counts nothing more
    await triage.handle(occurrence("00000000000000f2"))  # nor a resend
    assert (await incident_of(store, incident.id)).alert_count == 2


async def test_an_incident_counted_the_old_way_keeps_its_count(
    store: MongoTriageStore, triage: AlertTriage, db: AsyncDatabase[Document]
) -> None:
    # As an earlier release left it: a counter, and memberships without `incident_id`.
    await triage.handle(occurrence("00000000000000f3"))
    incident = await incident_of(store, (await stored(store, "00000000000000f3")).incident_id)
    membership = f"{incident.id}/00000000000000f3"
    await db["triage_incident_alerts"].delete_one({"_id": membership})
    await db["triage_incident_alerts"].insert_one({"_id": membership})
    await db["triage_incidents"].update_one({"_id": incident.id}, {"$set": {"alert_count": 1}})

    await triage.handle(occurrence("00000000000000f4"))

    assert (await incident_of(store, incident.id)).alert_count == 2


# -- the flapping sweep's query ----------------------------------------------------------------


async def test_quiet_flapping_finds_resolved_flapping_alerts_by_their_last_change(
    store: MongoTriageStore,
) -> None:
    def write(fingerprint: str, status: AlertStatus, minutes: int, flapping: bool) -> AlertWrite:
        changed = T0 + timedelta(minutes=minutes)
        return AlertWrite(
            alert=occurrence(fingerprint, status=status).model_copy(
                update={"event_id": uuid.uuid4()}
            ),
            occurrence=Occurrence.RESOLVED if status is AlertStatus.RESOLVED else Occurrence.NEW,
            group_key=GROUP,
            incident_id="i1",
            flap=FlapState((changed,), changed, changed if flapping else None),
        )

    resolved, firing = AlertStatus.RESOLVED, AlertStatus.FIRING
    await store.record_alerts(
        [
            write("a1", resolved, 0, True),
            write("a2", resolved, 10, True),
            write("a3", resolved, 0, False),  # not flapping
            write("a4", firing, 0, True),  # still firing: its own occurrences clear it
            write("a5", resolved, 5, True),
        ]
    )
    found = await store.quiet_flapping(T0 + timedelta(minutes=5), None, 10)
    assert [(a.fingerprint, a.last_change) for a in found] == [
        ("a1", T0),
        ("a5", T0 + timedelta(minutes=5)),
    ]
    later = await store.quiet_flapping(T0 + timedelta(hours=1), "a1", 1)
    assert [a.fingerprint for a in later] == ["a2"]


# -- the unsilence sweep's query ---------------------------------------------------------------


async def test_held_firing_finds_firing_held_alerts_by_equality_only(
    store: MongoTriageStore, db: AsyncDatabase[Document]
) -> None:
    def write(
        fingerprint: str, kind: Occurrence, held_by: str | None, incident_id: str | None
    ) -> AlertWrite:
        status = AlertStatus.RESOLVED if kind is Occurrence.RESOLVED else AlertStatus.FIRING
        return AlertWrite(
            alert=occurrence(fingerprint, status=status).model_copy(
                update={"event_id": uuid.uuid4()}
            ),
            occurrence=kind,
            group_key=GROUP,
            incident_id=incident_id,
            held_by=held_by,
        )

    new, repeat, resolved = Occurrence.NEW, Occurrence.REPEAT, Occurrence.RESOLVED
    await store.record_alerts(
        [
            write("h1", new, "silence:s1", None),
            write("h2", new, "alert:00000000000000aa", None),
            write("h3", new, None, "i1"),  # paged: in an incident
            write("h4", new, "silence:s1", None),
        ]
    )
    await store.record_alerts(
        [
            write("h2", repeat, None, None),  # a repeat keeps what held it
            write("h4", resolved, None, None),  # resolved while held: nothing to triage
        ]
    )
    found = await store.held_firing(None, 10)
    assert [(a.fingerprint, a.held_by) for a in found] == [
        ("h1", "silence:s1"),
        ("h2", "alert:00000000000000aa"),
    ]
    assert [a.fingerprint for a in await store.held_firing("h1", 1)] == ["h2"]
    # Triaged once nothing holds it: the alert joins an incident and leaves the sweep's reach.
    await store.record_alerts([write("h1", new, None, "i2")])
    assert [a.fingerprint for a in await store.held_firing(None, 10)] == ["h2"]
    # The flag is what the query reads: no filter on null or ranges besides the page's `_id`.
    assert await db["triage_alerts"].count_documents({"held": True}) == 1


async def test_alerts_stored_before_the_flags_get_them_once_at_start(
    store: MongoTriageStore, db: AsyncDatabase[Document]
) -> None:
    # As an earlier release left them: not flagged (it wrote no `held` or `flapping` field).
    await store.record_alerts(
        [
            AlertWrite(
                alert=occurrence(fingerprint, status=status).model_copy(
                    update={"event_id": uuid.uuid4()}
                ),
                occurrence=Occurrence.RESOLVED
                if status is AlertStatus.RESOLVED
                else Occurrence.NEW,
                group_key=GROUP,
                incident_id=incident_id,
                held_by=held_by,
                flap=flap,
            )
            for fingerprint, status, held_by, incident_id, flap in [
                ("o1", AlertStatus.FIRING, "silence:s1", None, None),
                ("o2", AlertStatus.FIRING, None, "i1", None),
                ("o3", AlertStatus.RESOLVED, None, "i1", FlapState((T0,), T0, T0)),
            ]
        ]
    )
    await db["triage_alerts"].update_many({}, {"$set": {"held": False, "flapping": False}})
    assert await store.held_firing(None, 10) == []
    assert await store.quiet_flapping(T0 + timedelta(hours=1), None, 10) == []

    await db["triage_migrations"].delete_many({})  # a database the new release has not seen
    await MongoTriageStore(db).ensure_indexes()

    assert [a.fingerprint for a in await store.held_firing(None, 10)] == ["o1"]
    found = await store.quiet_flapping(T0 + timedelta(hours=1), None, 10)
    assert [a.fingerprint for a in found] == ["o3"]
    # Once: a flag taken away later is not put back by the next start.
    await db["triage_alerts"].update_one({"_id": "o1"}, {"$set": {"held": False}})
    await MongoTriageStore(db).ensure_indexes()
    assert await store.held_firing(None, 10) == []
