"""Every ingest format over HTTP with the real Kafka adapter and FerretDB: what is accepted ends
on `alerts.raw`; bad input gets a 4xx and publishes nothing; PagerDuty senders get PagerDuty's
answers; heartbeats fire and resolve through the real loop, once even with two replicas."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from schemas import ALERTS_RAW, AlertReceived, AlertStatus
from services.ingest import app as ingest
from services.ingest.store import MongoIngestStore
from tests.integration.test_kafka_bus import bus, read_topic
from tocsin.composition.config import parse_config
from tocsin.runtime.kafka import KafkaBus
from tocsin.runtime.mongo import Document
from tocsin.runtime.service import Service

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
SECRET = "shared-hmac-secret-0123456789"
TOKENS = {
    kind: f"{kind}-token-0123456789abcdef"
    for kind in ("alertmanager", "grafana", "datadog", "pagerduty", "generic", "signed")
}
PD_LIMITED = "pagerduty-limited-0123456789"
BEAT_TOKEN = "heartbeat-token-0123456789abcdef"
CONFIG = parse_config(
    {
        "services": [{"id": "checkout", "name": "Checkout", "escalation_policy": "p"}],
        "integrations": [
            *(
                {"id": kind, "type": kind, "token": TOKENS[kind], "service": "checkout"}
                for kind in ("alertmanager", "datadog", "pagerduty", "generic")
            ),
            {
                "id": "grafana",
                "type": "grafana",
                "token": TOKENS["grafana"],
                "service": "checkout",
                "hmac": {"secret": SECRET, "timestamp_header": "X-Grafana-Alerting-Timestamp"},
            },
            {
                "id": "signed",
                "type": "generic",
                "token": TOKENS["signed"],
                "service": "checkout",
                "hmac": {"secret": SECRET},
                "limits": {"max_body_bytes": 2048, "max_labels": 3, "max_value_length": 50},
            },
            {
                "id": "pd-limited",
                "type": "pagerduty",
                "token": PD_LIMITED,
                "service": "checkout",
                "rate_limit_per_minute": 2,
            },
        ],
        "heartbeats": [
            {"id": "backup", "token": BEAT_TOKEN, "service": "checkout", "interval": "1m"}
        ],
        "users": [{"id": "alice", "name": "Alice"}],
        "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "alice"}]}]}],
    }
)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class SettableClock:
    def __init__(self) -> None:
        self.value = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.value


@pytest.fixture
async def kafka(kafka_bootstrap: str, namespace: str) -> AsyncIterator[KafkaBus]:
    kafka = bus(kafka_bootstrap, namespace)
    await kafka.start()
    yield kafka
    await kafka.stop()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


async def _start(service: Service) -> tuple[httpx.AsyncClient, list[asyncio.Task[None]]]:
    for step in service.on_start:
        await step()
    tasks = [asyncio.create_task(loop()) for loop in service.loops]
    app = FastAPI()
    app.include_router(service.router)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest")
    return client, tasks


@pytest.fixture
async def client(
    kafka: KafkaBus, database: AsyncDatabase[Document], clock: SettableClock
) -> AsyncIterator[httpx.AsyncClient]:
    service = ingest.build(
        kafka, MongoIngestStore(database), CONFIG.ingest(), clock, heartbeat_poll_seconds=0.05
    )
    http, tasks = await _start(service)
    yield http
    await http.aclose()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def on_topic(bootstrap: str, namespace: str, count: int) -> list[AlertReceived]:
    raw = await read_topic(bootstrap, f"{namespace}{ALERTS_RAW}", count)
    return [AlertReceived.model_validate_json(value) for value in raw]


async def nothing_on_topic(bootstrap: str, namespace: str) -> None:
    with pytest.raises(TimeoutError):
        await read_topic(bootstrap, f"{namespace}{ALERTS_RAW}", 1, timeout=2)


def grafana_headers(body: bytes, now: datetime) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    signature = hmac.new(SECRET.encode(), f"{stamp}:".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Grafana-Alerting-Signature": signature.hexdigest(),
        "X-Grafana-Alerting-Timestamp": stamp,
    }


def tocsin_headers(body: bytes) -> dict[str, str]:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Tocsin-Signature": f"sha256={signature}"}


@pytest.mark.parametrize(
    ("kind", "fixture_name", "count", "source"),
    [
        ("datadog", "datadog_default_triggered.json", 1, "datadog"),
        ("datadog", "datadog_rich.json", 1, "datadog"),
        ("datadog", "datadog_unsubstituted.json", 1, "datadog"),
        ("generic", "generic.json", 1, "generic"),
        ("generic", "generic_batch.json", 2, "generic"),
        ("pagerduty", "pagerduty_trigger.json", 1, "pagerduty"),
    ],
)
async def test_each_format_ends_on_the_topic(
    client: httpx.AsyncClient,
    kafka_bootstrap: str,
    namespace: str,
    kind: str,
    fixture_name: str,
    count: int,
    source: str,
) -> None:
    response = await client.post(f"/v1/ingest/{TOKENS[kind]}", json=fixture(fixture_name))
    assert response.status_code == 202, response.text
    messages = await on_topic(kafka_bootstrap, namespace, count)
    assert {m.source for m in messages} == {source}
    assert {m.integration_id for m in messages} == {kind}
    assert {m.service_id for m in messages} == {"checkout"}


async def test_signed_grafana_body_is_accepted_with_its_fingerprints(
    client: httpx.AsyncClient, kafka_bootstrap: str, namespace: str, clock: SettableClock
) -> None:
    body = (FIXTURES / "grafana.json").read_bytes()
    response = await client.post(
        f"/v1/ingest/{TOKENS['grafana']}", content=body, headers=grafana_headers(body, clock.value)
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "alerts": 2}
    messages = await on_topic(kafka_bootstrap, namespace, 2)
    assert {m.fingerprint for m in messages} == {"c6eadffa33fcdf37", "bc97ff14869b13e3"}


async def test_signed_generic_body_is_accepted_and_labels_kept_exactly(
    client: httpx.AsyncClient, kafka_bootstrap: str, namespace: str
) -> None:
    body = json.dumps(
        {"summary": "s", "labels": {"app.kubernetes.io/name": "db", "$weird": "ü"}}
    ).encode()
    response = await client.post(
        f"/v1/ingest/{TOKENS['signed']}", content=body, headers=tocsin_headers(body)
    )
    assert response.status_code == 202, response.text
    (message,) = await on_topic(kafka_bootstrap, namespace, 1)
    assert {(x.name, x.value) for x in message.labels} == {
        ("app.kubernetes.io/name", "db"),
        ("$weird", "ü"),
    }


def _signed(document: object) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document).encode()
    return body, tocsin_headers(body)


BAD_REQUESTS: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("grafana-unsigned", "grafana", b'{"alerts": []}', {}, 401, "signature"),
    ("generic-unsigned", "signed", b'{"summary": "s"}', {}, 401, "signature"),
    (
        "generic-wrong-signature",
        "signed",
        b'{"summary": "s"}',
        {"X-Tocsin-Signature": "sha256=" + "0" * 64},
        401,
        "signature",
    ),
    ("too-large", "signed", *_signed({"summary": "s" * 3000}), 413, "2048 bytes"),
    (
        "too-many-labels",
        "signed",
        *_signed({"summary": "s", "labels": {f"l{n}": "v" for n in range(4)}}),
        413,
        "$.labels",
    ),
    (
        "value-too-long",
        "signed",
        *_signed({"summary": "s", "labels": {"big": "v" * 51}}),
        422,
        "$.labels.big",
    ),
    ("invalid-json", "generic", b"{not json", {}, 400, "not valid UTF-8 JSON"),
    ("utf-16", "generic", '{"summary": "s"}'.encode("utf-16"), {}, 400, "UTF-8"),
    ("nan", "generic", b'{"summary": NaN}', {}, 400, "JSON"),
    ("deep", "generic", b"[" * 50_000, {}, 400, "JSON"),
    (
        "surrogate",
        "alertmanager",
        b'{"alerts":[{"status":"firing","labels":{"a":"\\ud800"}}]}',
        {},
        422,
        "$.alerts[0].labels",
    ),
    ("generic-schema", "generic", b'{"summary": ""}', {}, 422, "$.summary"),
    ("datadog-empty", "datadog", b'{"body": "x"}', {}, 422, "title"),
]


@pytest.mark.parametrize(
    ("token_of", "body", "headers", "status", "says"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_bad_input_is_refused_and_publishes_nothing(
    client: httpx.AsyncClient,
    kafka_bootstrap: str,
    namespace: str,
    token_of: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    says: str,
) -> None:
    response = await client.post(
        f"/v1/ingest/{TOKENS[token_of]}",
        content=body,
        headers={"Content-Type": "application/json", **headers},
    )
    assert response.status_code == status, response.text
    assert says in response.text
    await nothing_on_topic(kafka_bootstrap, namespace)


async def test_a_422_speaks_the_senders_terms(
    client: httpx.AsyncClient, kafka_bootstrap: str, namespace: str
) -> None:
    missing = await client.post(f"/v1/ingest/{TOKENS['alertmanager']}", json={})
    assert missing.status_code == 422
    assert missing.json() == {
        "detail": [
            {"path": "$.alerts", "loc": ["alerts"], "msg": "field required", "type": "missing"}
        ]
    }
    not_an_object = await client.post(f"/v1/ingest/{TOKENS['datadog']}", json=[])
    assert not_an_object.status_code == 422
    ((path, msg),) = [(item["path"], item["msg"]) for item in not_an_object.json()["detail"]]
    assert (path, msg) == ("$", "expected a JSON object")
    for response in (missing, not_an_object):
        assert "instance of" not in response.text
        assert "Webhook" not in response.text
    await nothing_on_topic(kafka_bootstrap, namespace)


# --- PagerDuty Events API v2 -----------------------------------------------------------------


def pd_event(name: str, routing_key: str = TOKENS["pagerduty"]) -> dict[str, Any]:
    return {**fixture(name), "routing_key": routing_key}


async def test_pagerduty_trigger_acknowledge_resolve_answers_exactly_as_documented(
    client: httpx.AsyncClient, kafka_bootstrap: str, namespace: str
) -> None:
    trigger = await client.post("/v2/enqueue", json=pd_event("pagerduty_trigger.json"))
    assert trigger.status_code == 202
    assert trigger.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "db-1/replication-lag",
    }
    acknowledge = await client.post("/v2/enqueue", json=pd_event("pagerduty_acknowledge.json"))
    assert (acknowledge.status_code, acknowledge.json()) == (202, trigger.json())
    resolve = await client.post("/v2/enqueue", json=pd_event("pagerduty_resolve.json"))
    assert (resolve.status_code, resolve.json()) == (202, trigger.json())
    fired, resolved = await on_topic(kafka_bootstrap, namespace, 2)  # acknowledge adds nothing
    assert (fired.status, resolved.status) == (AlertStatus.FIRING, AlertStatus.RESOLVED)
    assert fired.fingerprint == resolved.fingerprint
    assert fired.dedup_key == "db-1/replication-lag"


async def test_pagerduty_trigger_without_dedup_key_returns_the_generated_one(
    client: httpx.AsyncClient, kafka_bootstrap: str, namespace: str
) -> None:
    response = await client.post(
        "/v2/enqueue", json=pd_event("pagerduty_trigger_no_dedup_key.json")
    )
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"status", "message", "dedup_key"}
    assert len(body["dedup_key"]) == 32
    (message,) = await on_topic(kafka_bootstrap, namespace, 1)
    assert message.dedup_key == body["dedup_key"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"event_action": "resolve", "dedup_key": None}, "'dedup_key' is required"),
        ({"payload": {"summary": "s", "source": "h", "severity": "fatal"}}, "severity"),
        ({"payload": {"summary": "x" * 1025, "source": "h", "severity": "info"}}, "summary"),
    ],
)
async def test_pagerduty_invalid_event_is_400_with_errors_and_publishes_nothing(
    client: httpx.AsyncClient,
    kafka_bootstrap: str,
    namespace: str,
    change: dict[str, Any],
    error: str,
) -> None:
    event = {**pd_event("pagerduty_trigger.json"), **change}
    event = {key: value for key, value in event.items() if value is not None}
    response = await client.post("/v2/enqueue", json=event)
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert any(error in message for message in body["errors"]), body
    await nothing_on_topic(kafka_bootstrap, namespace)


async def test_pagerduty_bad_json_and_unknown_routing_key(client: httpx.AsyncClient) -> None:
    bad = await client.post("/v2/enqueue", content=b"{nope")
    assert bad.status_code == 400
    assert bad.json()["status"] == "invalid event"
    unknown = await client.post("/v2/enqueue", json=pd_event("pagerduty_trigger.json", "nope"))
    assert unknown.status_code == 401
    # A token of another type is no routing key.
    other = await client.post(
        "/v2/enqueue", json=pd_event("pagerduty_trigger.json", TOKENS["generic"])
    )
    assert other.status_code == 401


async def test_pagerduty_body_over_512_kb_is_413(client: httpx.AsyncClient) -> None:
    event = pd_event("pagerduty_trigger.json")
    event["payload"]["custom_details"] = {"blob": "x" * (512 * 1024)}
    response = await client.post("/v2/enqueue", json=event)
    assert response.status_code == 413
    assert response.json()["status"] == "invalid event"


async def test_pagerduty_rate_limit_answers_429_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    statuses = []
    for _ in range(3):
        response = await client.post(
            "/v2/enqueue", json=pd_event("pagerduty_trigger.json", PD_LIMITED)
        )
        statuses.append(response.status_code)
    assert statuses == [202, 202, 429]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["status"] == "throttle event"


async def test_bus_that_cannot_accept_gives_503_never_4xx(
    client: httpx.AsyncClient, kafka: KafkaBus
) -> None:
    await kafka.stop()
    for kind, name in (("datadog", "datadog_rich.json"), ("generic", "generic.json")):
        response = await client.post(f"/v1/ingest/{TOKENS[kind]}", json=fixture(name))
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
    pd = await client.post("/v2/enqueue", json=pd_event("pagerduty_trigger.json"))
    assert pd.status_code == 503
    assert pd.headers["Retry-After"] == "5"


# --- heartbeats ------------------------------------------------------------------------------


async def test_missed_heartbeat_fires_and_the_next_ping_resolves(
    client: httpx.AsyncClient, kafka_bootstrap: str, namespace: str, clock: SettableClock
) -> None:
    assert (await client.post(f"/v1/heartbeats/{BEAT_TOKEN}")).status_code == 202
    clock.value += timedelta(seconds=59)
    await nothing_on_topic(kafka_bootstrap, namespace)
    clock.value += timedelta(seconds=2)
    (fired,) = await on_topic(kafka_bootstrap, namespace, 1)
    assert fired.status is AlertStatus.FIRING
    assert (fired.source, fired.alertname, fired.service_id) == (
        "heartbeat",
        "HeartbeatMissed",
        "checkout",
    )
    clock.value += timedelta(seconds=5)
    assert (await client.post(f"/v1/heartbeats/{BEAT_TOKEN}")).status_code == 202
    fired_again, resolved = await on_topic(kafka_bootstrap, namespace, 2)
    assert fired_again == fired
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.fingerprint == fired.fingerprint


async def test_unknown_heartbeat_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/heartbeats/not-a-heartbeat-token")
    assert response.status_code == 401
    assert response.json() == {"detail": "unknown heartbeat token"}


async def test_two_replicas_fire_a_missed_heartbeat_once(
    kafka_bootstrap: str, namespace: str, database: AsyncDatabase[Document]
) -> None:
    clock = SettableClock()
    buses = [bus(kafka_bootstrap, namespace) for _ in range(2)]
    started = []
    for replica_bus in buses:
        await replica_bus.start()
        service = ingest.build(
            replica_bus,
            MongoIngestStore(database),
            copy.deepcopy(CONFIG).ingest(),
            clock,
            heartbeat_poll_seconds=0.01,
        )
        started.append(await _start(service))
    try:
        clock.value += timedelta(minutes=2)  # never pinged: due one minute after declaration
        (fired,) = await on_topic(kafka_bootstrap, namespace, 1)
        assert fired.status is AlertStatus.FIRING
        with pytest.raises(TimeoutError):
            await read_topic(kafka_bootstrap, f"{namespace}{ALERTS_RAW}", 2, timeout=3)
    finally:
        for http, tasks in started:
            await http.aclose()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for replica_bus in buses:
            await replica_bus.stop()
