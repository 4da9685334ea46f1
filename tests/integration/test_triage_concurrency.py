"""Two triage workers racing on one group against real FerretDB open exactly one incident."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from schemas import INCIDENTS_EVENTS, AlertReceived, AlertStatus, IncidentEvent, IncidentEventKind
from services.triage.config import ServiceGroupingConfig, TriageConfig
from services.triage.consumers import AlertTriage
from services.triage.store import MongoTriageStore
from tests.integration.test_kafka_bus import bus, read_topic
from tocsin.runtime.mongo import Document, open_client

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

GROUPS = 15


def firing(alertname: str, fingerprint: str) -> AlertReceived:
    return AlertReceived(
        occurred_at=datetime.now(UTC),
        correlation_id=fingerprint,
        fingerprint=fingerprint,
        status=AlertStatus.FIRING,
        integration_id="prom",
        source="alertmanager",
        service_id="checkout",
        alertname=alertname,
        summary=alertname,
        severity="critical",
    )


async def test_two_workers_on_one_group_open_exactly_one_incident(
    kafka_bootstrap: str, mongo_url: str, namespace: str, database: AsyncDatabase[Document]
) -> None:
    kafka = bus(kafka_bootstrap, namespace)
    await kafka.start()
    # Each worker has its own client: two replicas, one database.
    second_client = open_client(mongo_url)
    workers = [
        AlertTriage(kafka, MongoTriageStore(database), TriageConfig()),
        AlertTriage(kafka, MongoTriageStore(second_client[database.name]), TriageConfig()),
    ]
    try:
        for store in (MongoTriageStore(database),):
            await store.ensure_indexes()
        for group in range(GROUPS):
            alertname = f"Group{group}"
            # Same group, different fingerprints, handled at the same moment by each worker.
            await asyncio.gather(
                workers[0].handle(firing(alertname, uuid.uuid4().hex[:16])),
                workers[1].handle(firing(alertname, uuid.uuid4().hex[:16])),
            )
        incidents = [doc async for doc in database["triage_incidents"].find({})]
        assert len(incidents) == GROUPS
        for doc in incidents:
            incident = await MongoTriageStore(database).get_incident(doc["_id"])
            assert incident is not None
            assert incident.alert_count == 2
        raw = await read_topic(kafka_bootstrap, f"{namespace}{INCIDENTS_EVENTS}", 2 * GROUPS)
        events = [IncidentEvent.model_validate_json(value) for value in raw]
        opened = Counter(e.group_key for e in events if e.kind is IncidentEventKind.OPENED)
        added = Counter(e.group_key for e in events if e.kind is IncidentEventKind.ALERT_ADDED)
        assert len(opened) == GROUPS
        assert set(opened.values()) == {1}
        assert len(added) == GROUPS
        assert set(added.values()) == {1}
    finally:
        await second_client.close()
        await kafka.stop()


async def test_redelivered_alert_counts_once_and_resend_is_a_repeat(
    kafka_bootstrap: str, namespace: str, database: AsyncDatabase[Document]
) -> None:
    kafka = bus(kafka_bootstrap, namespace)
    await kafka.start()
    store = MongoTriageStore(database)
    triage = AlertTriage(kafka, store, TriageConfig())
    try:
        first = firing("Dedup", "00000000000000aa")
        await triage.handle(first)
        await triage.handle(first)  # redelivery of the same message: no second count
        resend = firing("Dedup", "00000000000000aa")  # Alertmanager re-sends the group
        await triage.handle(resend)
        record = await store.get_alert("00000000000000aa")
        assert record is not None
        assert record.count == 2
        raw = await read_topic(kafka_bootstrap, f"{namespace}{INCIDENTS_EVENTS}", 2, timeout=10)
        events = [IncidentEvent.model_validate_json(value) for value in raw]
        # The redelivery republished the same event id (downstream dedupes); the resend nothing.
        assert {e.event_id for e in events} == {events[0].event_id}
        assert events[0].kind is IncidentEventKind.OPENED
    finally:
        await kafka.stop()


async def test_two_workers_filling_groups_keep_max_alerts_per_incident(
    kafka_bootstrap: str, mongo_url: str, namespace: str, database: AsyncDatabase[Document]
) -> None:
    """`max_alerts` holds under racing replicas: the group moves on to its next incident once
    one is full, and both workers agree on it."""
    kafka = bus(kafka_bootstrap, namespace)
    await kafka.start()
    second_client = open_client(mongo_url)
    config = TriageConfig(grouping={"checkout": ServiceGroupingConfig(max_alerts=4)})
    workers = [
        AlertTriage(kafka, MongoTriageStore(database), config),
        AlertTriage(kafka, MongoTriageStore(second_client[database.name]), config),
    ]
    try:
        await MongoTriageStore(database).ensure_indexes()
        alerts = [firing("Storm", f"{n:016x}") for n in range(20)]
        await asyncio.gather(
            *(workers[n % 2].handle(alert) for n, alert in enumerate(alerts)),
        )
        store = MongoTriageStore(database)
        counts = []
        async for doc in database["triage_incidents"].find({}):
            incident = await store.get_incident(doc["_id"])
            assert incident is not None
            counts.append(incident.alert_count)
        assert sorted(counts) == [4, 4, 4, 4, 4]
        for alert in alerts:
            record = await store.get_alert(alert.fingerprint)
            assert record is not None
            assert record.incident_id is not None
    finally:
        await second_client.close()
        await kafka.stop()
