"""Fuzzing the ingest OpenAPI with schemathesis, against a real ingest server (uvicorn) on the
real Kafka and FerretDB: generated bodies that fit each format's schema, and bodies that do not,
for every integration type. Whatever comes in, the answer is never a 5xx."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from services.ingest import app as ingest
from services.ingest.store import MongoIngestStore
from tests.e2e.harness import free_port
from tocsin.composition.config import parse_config
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.kafka import KafkaBus
from tocsin.runtime.mongo import open_client
from tocsin.runtime.service import create_app

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

TYPES = ("alertmanager", "grafana", "datadog", "pagerduty", "generic")
TOKENS = {kind: f"fuzz-{kind}-token-0123456789" for kind in TYPES}
BEAT_TOKEN = "fuzz-heartbeat-token-0123456789"
CONFIG = parse_config(
    {
        "services": [{"id": "checkout", "name": "Checkout", "escalation_policy": "p"}],
        "integrations": [
            {"id": kind, "type": kind, "token": TOKENS[kind], "service": "checkout"}
            for kind in TYPES
        ],
        "heartbeats": [{"id": "job", "token": BEAT_TOKEN, "service": "checkout", "interval": "1h"}],
        "users": [{"id": "alice", "name": "Alice"}],
        "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "alice"}]}]}],
    }
)


@pytest.fixture(scope="module")
def ingest_url(kafka_bootstrap: str, mongo_url: str) -> Iterator[str]:
    run = uuid.uuid4().hex[:10]
    bus = KafkaBus(kafka_bootstrap, client_id=f"fuzz-{run}", namespace=f"fuzz-{run}.")
    client = open_client(mongo_url)
    database = client[f"fuzz_{run}"]
    service = ingest.build(bus, MongoIngestStore(database), CONFIG.ingest(), SystemClock())

    async def close() -> None:
        await client.drop_database(f"fuzz_{run}")
        await client.close()

    app = create_app("fuzz", [service], bus, {}, on_close=[close])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "ingest did not start"
        assert time.monotonic() < deadline, "ingest did not start in time"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


def _schema(url: str) -> Any:
    return schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json").json())


@pytest.mark.parametrize("kind", TYPES)
def test_schema_shaped_input_never_gets_a_5xx(ingest_url: str, kind: str) -> None:
    schema = _schema(ingest_url)
    cases = schema.as_strategy(GenerationMode.POSITIVE, path_parameters={"token": TOKENS[kind]})
    seen: list[int] = []

    @settings(
        max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=cases, real_key=st.booleans())
    def check(case: Any, real_key: bool) -> None:
        if case.path == "/v1/heartbeats/{token}" and real_key:
            case.path_parameters = {"token": BEAT_TOKEN}
        if real_key and isinstance(case.body, dict) and case.path == "/v2/enqueue":
            case.body = {**case.body, "routing_key": TOKENS["pagerduty"]}
        response = case.call(base_url=ingest_url, timeout=30)
        seen.append(response.status_code)
        assert response.status_code < 500, (case.path, case.body, response.text)

    check()
    if kind != "pagerduty":  # PagerDuty events go through /v2/enqueue's routing key
        assert 202 in seen, f"no generated {kind} body was accepted: {sorted(set(seen))}"


# Schemathesis' negative mode cannot break a free-form path token, so bodies that break every
# schema come from Hypothesis directly: any JSON value, and any bytes.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("kind", TYPES)
def test_arbitrary_bodies_never_get_a_5xx(ingest_url: str, kind: str) -> None:
    @settings(
        max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        body=st.one_of(
            json_values.map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=200),
        ),
        enqueue=st.booleans(),
    )
    def check(body: bytes, enqueue: bool) -> None:
        path = "/v2/enqueue" if enqueue else f"/v1/ingest/{TOKENS[kind]}"
        response = httpx.post(f"{ingest_url}{path}", content=body, timeout=30)
        assert response.status_code < 500, (path, body, response.text)
        assert response.status_code != 202 or not enqueue  # no routing key, no acceptance

    check()
