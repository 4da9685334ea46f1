"""Change events through ingest over HTTP with the real Kafka adapter: PagerDuty's Change
Events API and the generic deploy body land on `changes.raw` keyed by service; bad input is
refused with the sender's kind of answer and publishes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from schemas import CHANGES_RAW, ChangeLink, ChangeReceived, Label
from services.ingest import app as ingest
from services.ingest.store import MongoIngestStore
from tests.integration.test_kafka_bus import bus, read_topic
from tocsin.composition.config import parse_config
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.kafka import KafkaBus
from tocsin.runtime.mongo import Document, MongoDatabase

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

TOKEN = "deploys-token-0123456789abcdef"
CONFIG = parse_config(
    {
        "services": [
            {"id": "checkout", "name": "Checkout", "escalation_policy": "p"},
            {"id": "search", "name": "Search", "escalation_policy": "p"},
        ],
        "integrations": [
            {"id": "deploys", "type": "generic", "token": TOKEN, "service": "checkout"}
        ],
        "users": [{"id": "alice", "name": "Alice"}],
        "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "alice"}]}]}],
    }
)
PAGERDUTY_CHANGE = {
    "routing_key": TOKEN,
    "payload": {
        "summary": "Build Success: deployed checkout v2.3.1",
        "timestamp": "2026-11-25T10:00:00.000+0100",
        "source": "ci-pipeline-42",
        "custom_details": {"build_state": "passed", "build_number": 220, "run_time": "1236s"},
    },
    "links": [{"href": "https://ci.example/runs/42", "text": "Run 42"}],
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
    service = ingest.build(
        kafka, MongoIngestStore(MongoDatabase(database)), CONFIG.ingest(), SystemClock()
    )
    for step in service.on_start:
        await step()
    app = FastAPI()
    app.include_router(service.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        yield http


async def test_pagerduty_change_event_and_deploy_body_reach_changes_raw(
    client: httpx.AsyncClient, kafka_bootstrap: str, namespace: str
) -> None:
    answer = await client.post("/v2/change/enqueue", json=PAGERDUTY_CHANGE)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "success", "message": "Change event processed"}
    deploy = {
        "summary": "deployed search v7",
        "service": "search",
        "version": "v7",
        "source": "argo",
        "links": [{"href": "https://git.example/pr/9"}],
        "details": {"commit": "abc123"},
    }
    answer = await client.post(f"/v1/changes/{TOKEN}", json=deploy)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"

    # Keyed by service, so the two may sit in different partitions: read order is not send order.
    first, second = sorted(
        (
            ChangeReceived.model_validate_json(raw)
            for raw in await read_topic(kafka_bootstrap, f"{namespace}{CHANGES_RAW}", 2)
        ),
        key=lambda change: change.service_id != "checkout",
    )
    assert first.service_id == "checkout"
    assert first.integration_id == "deploys"
    assert first.integration_type == "generic"
    assert first.summary == "Build Success: deployed checkout v2.3.1"
    assert first.at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert first.source == "ci-pipeline-42"
    assert first.links == (ChangeLink(href="https://ci.example/runs/42", text="Run 42"),)
    assert first.details == (
        Label(name="build_state", value="passed"),
        Label(name="build_number", value="220"),
        Label(name="run_time", value="1236s"),
    )
    assert second.service_id == "search"
    assert second.version == "v7"
    assert str(second.event_id) == answer.json()["change_id"]
    assert second.details == (Label(name="commit", value="abc123"),)


async def test_a_retried_change_with_its_timestamp_keeps_its_event_id(
    client: httpx.AsyncClient, kafka_bootstrap: str, namespace: str
) -> None:
    for _ in range(2):
        assert (await client.post("/v2/change/enqueue", json=PAGERDUTY_CHANGE)).status_code == 202
    first, second = (
        ChangeReceived.model_validate_json(raw)
        for raw in await read_topic(kafka_bootstrap, f"{namespace}{CHANGES_RAW}", 2)
    )
    assert first.event_id == second.event_id


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({**PAGERDUTY_CHANGE, "routing_key": "nope"}, 401, "unknown routing key"),
        ({"payload": {"summary": "x"}}, 401, "unknown routing key"),
        ({"routing_key": TOKEN, "payload": {}}, 400, "payload.summary: Field required"),
        ({"routing_key": TOKEN, "payload": {"summary": ""}}, 400, "payload.summary"),
        (
            {"routing_key": TOKEN, "payload": {"summary": "x", "timestamp": "yesterday"}},
            400,
            "payload.timestamp",
        ),
        (
            {"routing_key": TOKEN, "payload": {"summary": "x"}, "links": [{"text": "no href"}]},
            400,
            "links.0.href",
        ),
    ],
)
async def test_bad_pagerduty_change_events_are_refused_like_pagerduty(
    client: httpx.AsyncClient,
    kafka_bootstrap: str,
    namespace: str,
    body: dict[str, object],
    status: int,
    error: str,
) -> None:
    answer = await client.post("/v2/change/enqueue", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["status"] == "invalid event"
    assert any(error in e for e in [answer.json()["message"], *answer.json()["errors"]])
    with pytest.raises(TimeoutError):
        await read_topic(kafka_bootstrap, f"{namespace}{CHANGES_RAW}", 1, timeout=2)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/changes/wrong-token", {"summary": "x"}, 401),
        (f"/v1/changes/{TOKEN}", {"version": "v1"}, 422),
        (f"/v1/changes/{TOKEN}", {"summary": "x", "colour": "red"}, 422),
        (f"/v1/changes/{TOKEN}", {"summary": "x", "timestamp": "2026-11-25T10:00:00"}, 422),
        (f"/v1/changes/{TOKEN}", {"summary": "x", "service": "bad id!"}, 422),
    ],
)
async def test_bad_deploy_bodies_are_refused_and_publish_nothing(
    client: httpx.AsyncClient,
    kafka_bootstrap: str,
    namespace: str,
    path: str,
    body: dict[str, object],
    status: int,
) -> None:
    assert (await client.post(path, json=body)).status_code == status
    bad_json = await client.post(f"/v1/changes/{TOKEN}", content=b"{not json")
    assert bad_json.status_code == 400
    with pytest.raises(TimeoutError):
        await read_topic(kafka_bootstrap, f"{namespace}{CHANGES_RAW}", 1, timeout=2)
