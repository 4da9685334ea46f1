"""`GET /api/v1/alerts` on real FerretDB, fed by the real triage handler: fields, filters,
cursor paging, resolve transitions, and the API key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from schemas import AlertReceived, AlertStatus, Label
from services.triage import app as triage
from services.triage.config import TriageConfig
from services.triage.consumers import AlertTriage
from services.triage.silence_store import MongoSilenceStore
from services.triage.store import MongoTriageStore
from tests.integration.test_kafka_bus import bus
from tocsin.runtime.http import ApiKeys, api_key_dependency, token_digest
from tocsin.runtime.kafka import KafkaBus
from tocsin.runtime.mongo import Document

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

API_KEY = "alerts-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def occurrence(
    fingerprint: str,
    *,
    status: AlertStatus = AlertStatus.FIRING,
    service: str = "checkout",
    source: str = "alertmanager",
    alertname: str = "CheckoutErrors",
    labels: dict[str, str] | None = None,
) -> AlertReceived:
    return AlertReceived(
        occurred_at=datetime.now(UTC),
        correlation_id=fingerprint,
        fingerprint=fingerprint,
        status=status,
        integration_id=f"{source}-int",
        source=source,
        service_id=service,
        alertname=alertname,
        summary=f"{alertname} on {service}",
        severity="critical",
        labels=tuple(
            Label(name=n, value=v)
            for n, v in (labels or {"alertname": alertname, "service": service}).items()
        ),
        annotations=(Label(name="runbook.url", value="https://runbooks.example/checkout"),),
    )


@dataclass
class Api:
    http: httpx.AsyncClient
    triage: AlertTriage

    async def alerts(self, **params: Any) -> dict[str, Any]:
        response = await self.http.get("/api/v1/alerts", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def api(
    kafka_bootstrap: str, namespace: str, database: AsyncDatabase[Document]
) -> AsyncIterator[Api]:
    kafka: KafkaBus = bus(kafka_bootstrap, namespace)
    await kafka.start()
    store = MongoTriageStore(database)
    keys = ApiKeys({"admin": token_digest(API_KEY)})
    service = triage.build(
        kafka,
        store,
        TriageConfig(),
        api_key_dependency(keys),
        silence_store=MongoSilenceStore(database),
    )
    for step in service.on_start:
        await step()
    app = FastAPI()
    app.include_router(service.router)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://triage") as http:
            yield Api(http, AlertTriage(kafka, store, TriageConfig()))
    finally:
        await kafka.stop()


async def test_without_a_valid_api_key_is_401(api: Api) -> None:
    assert (await api.http.get("/api/v1/alerts")).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    assert (await api.http.get("/api/v1/alerts", headers=wrong)).status_code == 401


async def test_alert_shows_every_field_with_labels_as_objects(api: Api) -> None:
    labels = {"alertname": "DiskFull", "app.kubernetes.io/name": "db", "$weird": "ü ✓"}
    await api.triage.handle(occurrence("00000000000000f1", labels=labels, alertname="DiskFull"))
    await api.triage.handle(occurrence("00000000000000f1", labels=labels, alertname="DiskFull"))

    (alert,) = (await api.alerts())["alerts"]
    assert alert["fingerprint"] == "00000000000000f1"
    assert alert["labels"] == labels
    assert alert["annotations"] == {"runbook.url": "https://runbooks.example/checkout"}
    assert alert["status"] == "firing"
    assert alert["source"] == "alertmanager"
    assert alert["integration"] == "alertmanager-int"
    assert alert["service"] == "checkout"
    assert alert["summary"] == "DiskFull on checkout"
    assert alert["severity"] == "critical"
    assert alert["count"] == 2  # a resend counts; it does not make a second alert
    assert alert["incident_id"]
    assert alert["resolved_at"] is None
    first_seen = datetime.fromisoformat(alert["first_seen"])
    last_seen = datetime.fromisoformat(alert["last_seen"])
    assert first_seen.tzinfo is not None
    assert first_seen <= last_seen


async def test_resolve_transition_shows_in_status(api: Api) -> None:
    await api.triage.handle(occurrence("00000000000000a1"))
    await api.triage.handle(occurrence("00000000000000a2"))
    await api.triage.handle(occurrence("00000000000000a1", status=AlertStatus.RESOLVED))

    by_fingerprint = {a["fingerprint"]: a for a in (await api.alerts())["alerts"]}
    assert by_fingerprint["00000000000000a1"]["status"] == "resolved"
    assert by_fingerprint["00000000000000a1"]["resolved_at"] is not None
    assert by_fingerprint["00000000000000a2"]["status"] == "firing"
    resolved = (await api.alerts(status="resolved"))["alerts"]
    assert [a["fingerprint"] for a in resolved] == ["00000000000000a1"]

    # Firing again clears it.
    await api.triage.handle(occurrence("00000000000000a1"))
    (again,) = (await api.alerts(fingerprint="00000000000000a1"))["alerts"]
    assert again["status"] == "firing"
    assert again["resolved_at"] is None


async def test_filters_are_exact_and_combine(api: Api) -> None:
    await api.triage.handle(occurrence("0000000000000b01", service="checkout"))
    await api.triage.handle(occurrence("0000000000000b02", service="payments"))
    await api.triage.handle(occurrence("0000000000000b03", service="payments", source="grafana"))
    await api.triage.handle(
        occurrence("0000000000000b04", service="payments", status=AlertStatus.RESOLVED)
    )

    async def fingerprints(**params: Any) -> list[str]:
        return [a["fingerprint"] for a in (await api.alerts(**params))["alerts"]]

    assert await fingerprints(service="payments") == [
        "0000000000000b02",
        "0000000000000b03",
        "0000000000000b04",
    ]
    assert await fingerprints(source="grafana") == ["0000000000000b03"]
    assert await fingerprints(service="payments", status="firing") == [
        "0000000000000b02",
        "0000000000000b03",
    ]
    assert await fingerprints(fingerprint="0000000000000b01") == ["0000000000000b01"]
    assert await fingerprints(fingerprint="0000000000000b01", service="payments") == []
    assert await fingerprints(service="nope") == []
    # A value that looks like an operator is only ever compared as a string.
    assert await fingerprints(service='{"$ne": null}') == []


async def test_cursor_pages_visit_every_alert_once_in_fingerprint_order(api: Api) -> None:
    fingerprints = sorted(uuid.uuid4().hex[:16] for _ in range(7))
    for fingerprint in fingerprints:
        await api.triage.handle(occurrence(fingerprint, alertname=f"A{fingerprint}"))

    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = await api.alerts(**params)
        seen.extend(a["fingerprint"] for a in page["alerts"])
        sizes.append(len(page["alerts"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert seen == fingerprints

    # Exactly `limit` left: the page that ends the listing says so.
    assert (await api.alerts(limit=7))["next_cursor"] is None
    # A cursor combines with an equality filter on the fingerprint.
    first_page = await api.alerts(limit=1)
    assert first_page["next_cursor"] is not None
    after_first = await api.alerts(fingerprint=fingerprints[0], cursor=first_page["next_cursor"])
    assert after_first["alerts"] == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"cursor": "not a cursor!"}, 400),
        ({"cursor": "eyJhZnRlciI6IDF9"}, 400),  # {"after": 1}
        ({"status": "burning"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 501}, 422),
    ],
)
async def test_bad_parameters_are_4xx(api: Api, params: dict[str, Any], status: int) -> None:
    response = await api.http.get("/api/v1/alerts", params=params, headers=AUTH)
    assert response.status_code == status, response.text
