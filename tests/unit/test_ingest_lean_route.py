"""The lean webhook route in a whole service app (embedded bus and store): it answers like the
documented route, the access log and HTTP metrics see its template (never the token), and the
OpenAPI schema still documents `POST /v1/ingest/{token}`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from schemas import AlertReceived
from services.ingest import app as ingest
from services.ingest.domain.formats import FORMATS, ParseContext
from services.ingest.intake import schema_errors
from services.ingest.store import MongoIngestStore
from tocsin.composition.config import parse_config
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.service import create_app

TOKEN = "lean-route-token-0123456789abcdef"
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
BODY = {
    "version": "4",
    "status": "firing",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "DiskFull", "instance": f"db-{n}"}}
        for n in range(3)
    ],
}
ROUTE = "/v1/ingest/{token}"


def _served(status: str) -> float:
    labels = {"method": "POST", "route": ROUTE, "status": status}
    return REGISTRY.get_sample_value("tocsin_http_request_duration_seconds_count", labels) or 0.0


class Running:
    def __init__(self, http: httpx.AsyncClient, file: SqliteFile) -> None:
        self.http = http
        self.file = file

    def published(self) -> list[AlertReceived]:
        rows = self.file.read("SELECT value FROM messages WHERE topic = 'alerts.raw'").fetchall()
        return [AlertReceived.model_validate_json(bytes(row[0])) for row in rows]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file)
    await bus.start()
    service = ingest.build(
        bus, MongoIngestStore(EmbeddedDatabase(file)), CONFIG.ingest(), SystemClock()
    )
    for step in service.on_start:
        await step()
    app = create_app("Tocsin ingest", [service], bus, {})
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            yield Running(http, file)
    finally:
        await bus.stop()
        file.close()


async def test_accepts_through_the_whole_app_and_reports_the_template(running: Running) -> None:
    accepted, refused = _served("202"), _served("401")
    response = await running.http.post(f"/v1/ingest/{TOKEN}", json=BODY)
    assert (response.status_code, response.json()) == (202, {"status": "accepted", "alerts": 3})
    assert sorted(m.labels[1].value for m in running.published()) == ["db-0", "db-1", "db-2"]
    unknown = await running.http.post("/v1/ingest/not-a-token-of-ours-0123456789", json=BODY)
    assert unknown.status_code == 401
    assert (_served("202"), _served("401")) == (accepted + 1, refused + 1)


async def test_refusals_are_the_reference_paths(running: Running) -> None:
    body = {"alerts": [{"status": "firing", "labels": {"": "an empty label name"}}]}
    with pytest.raises(ValidationError) as reference:
        FORMATS["alertmanager"].parse(body, ParseContext("prom", "checkout", datetime.now(UTC)))
    response = await running.http.post(f"/v1/ingest/{TOKEN}", json=body)
    assert (response.status_code, response.json()) == (
        422,
        {"detail": schema_errors(reference.value)},
    )
    assert (await running.http.get(f"/v1/ingest/{TOKEN}")).status_code == 405
    assert running.published() == []


async def test_the_webhook_stays_documented(running: Running) -> None:
    schema = (await running.http.get("/openapi.json")).json()
    assert "post" in schema["paths"][ROUTE]
