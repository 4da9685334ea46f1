"""Ingest over HTTP with the real Kafka adapter: bad input is refused and changes nothing;
when the bus cannot accept durably the answer is 503 with Retry-After."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from schemas import ALERTS_RAW, AlertReceived
from services.ingest import app as ingest
from services.ingest.store import MongoIngestStore
from tests.integration.test_kafka_bus import bus, read_topic
from tocsin.composition.config import parse_config
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.kafka import KafkaBus
from tocsin.runtime.mongo import Document

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

TOKEN = "integration-token-0123456789abcdef"
CONFIG = parse_config(
    {
        "services": [{"id": "checkout", "name": "Checkout", "escalation_policy": "p"}],
        "integrations": [
            {"id": "prom", "type": "alertmanager", "token": TOKEN, "service": "checkout"}
        ],
        "users": [{"id": "alice", "name": "Alice"}],
        "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "alice"}]}]}],
    }
)
FIRING = {
    "version": "4",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "app.kubernetes.io/name": "db", "$weird": "ü"},
            "annotations": {"summary": "disk full"},
            "startsAt": "2026-11-25T10:00:00Z",
        }
    ],
}


@pytest.fixture
async def kafka(kafka_bootstrap: str, namespace: str) -> AsyncIterator[KafkaBus]:
    kafka = bus(kafka_bootstrap, namespace)
    await kafka.start()
    yield kafka
    await kafka.stop()


@pytest.fixture
async def client(
    kafka: KafkaBus, database: AsyncDatabase[Document]
) -> AsyncIterator[httpx.AsyncClient]:
    service = ingest.build(kafka, MongoIngestStore(database), CONFIG.ingest(), SystemClock())
    for step in service.on_start:
        await step()
    app = FastAPI()
    app.include_router(service.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        yield http


async def test_accepted_alert_is_on_the_topic_keyed_by_fingerprint_with_labels_exact(
    client: httpx.AsyncClient, kafka_bootstrap: str, namespace: str
) -> None:
    response = await client.post(f"/v1/ingest/{TOKEN}", json=FIRING)
    assert response.status_code == 202
    (raw,) = await read_topic(kafka_bootstrap, f"{namespace}{ALERTS_RAW}", 1)
    alert = AlertReceived.model_validate_json(raw)
    assert {(label.name, label.value) for label in alert.labels} == {
        ("alertname", "DiskFull"),
        ("app.kubernetes.io/name", "db"),
        ("$weird", "ü"),
    }
    assert len(alert.fingerprint) == 16
    assert alert.service_id == "checkout"


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "not valid UTF-8 JSON"),
        (b"\xff\xfe", 400, "not valid UTF-8 JSON"),
        (b'{"alerts": "nope"}', 422, "alerts"),
        (b'{"alerts": [{"status": "burning"}]}', 422, "status"),
    ],
)
async def test_bad_input_is_refused_and_publishes_nothing(
    client: httpx.AsyncClient,
    kafka_bootstrap: str,
    namespace: str,
    body: bytes,
    status: int,
    reason: str,
) -> None:
    response = await client.post(
        f"/v1/ingest/{TOKEN}", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert reason in response.text
    with pytest.raises(TimeoutError):
        await read_topic(kafka_bootstrap, f"{namespace}{ALERTS_RAW}", 1, timeout=2)


async def test_unknown_token_is_401_and_says_nothing_else(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/v1/ingest/{uuid.uuid4().hex}", json=FIRING)
    assert response.status_code == 401
    assert response.json() == {"detail": "unknown integration token"}


async def test_bus_that_cannot_accept_gives_503_with_retry_after(
    client: httpx.AsyncClient, kafka: KafkaBus
) -> None:
    await kafka.stop()  # the producer is gone: nothing can be made durable
    response = await client.post(f"/v1/ingest/{TOKEN}", json=FIRING)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
