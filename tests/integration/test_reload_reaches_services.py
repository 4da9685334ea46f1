"""A reload reaches ingest and the notifier as the composition root builds them (wiring.py) on
the embedded adapters: after `ConfigReloader.reload`, a new integration's token is accepted, a
removed one answers 401 and a new heartbeat takes pings; the next page goes to a contact's new
address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from schemas import NOTIFICATIONS_REQUESTED, NOTIFICATIONS_RESULTS, NotificationResult
from services.ingest import app as ingest
from services.ingest.store import Integration, MongoIngestStore
from tests.e2e.harness import WebhookReceiver
from tests.integration.test_store_contract import request
from tocsin.composition.config import TocsinConfig, load_config
from tocsin.composition.reload import ConfigReloader
from tocsin.composition.wiring import ServiceName, build_service
from tocsin.runtime.bus import Subscription
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.live_config import LiveConfig
from tocsin.runtime.parts import Parts
from tocsin.runtime.service import Service
from tocsin.runtime.settings import Settings
from tocsin.runtime.store import StoreUnavailable

OLD_TOKEN = "old-integration-token-0123456789"
NEW_TOKEN = "new-integration-token-0123456789"
BEAT_TOKEN = "nightly-heartbeat-token-0123456789"
FIRING = {
    "version": "4",
    "status": "firing",
    "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull"}}],
}


def document(integrations: dict[str, str], hook: str) -> dict[str, Any]:
    return {
        "services": [{"id": "checkout", "name": "Checkout", "escalation_policy": "p"}],
        "integrations": [
            {"id": name, "type": "alertmanager", "token": token, "service": "checkout"}
            for name, token in integrations.items()
        ],
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [{"id": "hook", "type": "webhook", "address": hook}],
                "notification_rules": [{"contact": "hook", "after": "0s"}],
            }
        ],
        "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "alice"}]}]}],
    }


def write(path: Path, doc: object) -> None:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def no_api_key() -> str:
    return "none"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@asynccontextmanager
async def running(
    tmp_path: Path, name: ServiceName, doc: dict[str, Any]
) -> AsyncIterator[tuple[Path, ConfigReloader, Service, EmbeddedBus]]:
    """`name` built by the wiring from a config file, started, with a reloader of that file."""
    path = tmp_path / "tocsin.yaml"
    write(path, doc)
    live = LiveConfig[TocsinConfig](load_config(path))
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file)
    await bus.start()
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        parts = Parts(
            bus=bus,
            database=EmbeddedDatabase(file),
            settings=Settings(timer_poll_seconds=0.05),
            clock=SystemClock(),
            http_client=client,
            instance_id="test",
            require_api_key=no_api_key,
        )
        service = build_service(name, parts, live)
        for step in service.on_start:
            await step()
        tasks = [asyncio.create_task(loop()) for loop in service.loops]
        tasks += [asyncio.create_task(bus.consume(s)) for s in service.subscriptions]
        try:
            yield path, ConfigReloader(path, live, [name]), service, bus
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await bus.stop()
            file.close()


async def test_after_a_reload_a_new_token_is_accepted_and_a_removed_one_answers_401(
    tmp_path: Path,
) -> None:
    hook = "http://127.0.0.1:9/alice"
    async with running(tmp_path, "ingest", document({"old": OLD_TOKEN}, hook)) as started:
        path, reloader, service, _ = started
        app = FastAPI()
        app.include_router(service.router)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            assert (await http.post(f"/v1/ingest/{OLD_TOKEN}", json=FIRING)).status_code == 202
            assert (await http.post(f"/v1/ingest/{NEW_TOKEN}", json=FIRING)).status_code == 401

            assert (await http.post(f"/v1/heartbeats/{BEAT_TOKEN}")).status_code == 401

            reloaded = document({"new": NEW_TOKEN}, hook)
            reloaded["heartbeats"] = [
                {"id": "nightly", "token": BEAT_TOKEN, "service": "checkout", "interval": "1h"}
            ]
            write(path, reloaded)
            assert reloader.reload().sections == {"ingest": "reloaded"}

            # Several requests in flight at once: each sees the new integrations.
            answers = await asyncio.gather(
                *(http.post(f"/v1/ingest/{token}", json=FIRING) for token in [NEW_TOKEN] * 3),
                *(http.post(f"/v1/ingest/{token}", json=FIRING) for token in [OLD_TOKEN] * 3),
            )
            assert [a.status_code for a in answers] == [202] * 3 + [401] * 3
            assert (await http.post(f"/v1/heartbeats/{BEAT_TOKEN}")).status_code == 202


class SwitchableStore(MongoIngestStore):
    """The embedded store, with a switch that makes writing an integration fail as an outage."""

    down = False

    async def upsert_integration(self, integration: Integration) -> None:
        if self.down:
            raise StoreUnavailable("the database is down")
        await super().upsert_integration(integration)


async def test_a_reload_ingest_cannot_store_answers_503_then_applies_once_the_store_is_back(
    tmp_path: Path,
) -> None:
    hook = "http://127.0.0.1:9/alice"
    path = tmp_path / "tocsin.yaml"
    write(path, document({"old": OLD_TOKEN}, hook))
    live = LiveConfig[TocsinConfig](load_config(path))
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file)
    await bus.start()
    store = SwitchableStore(EmbeddedDatabase(file))
    service = ingest.build(bus, store, live.view(TocsinConfig.ingest), SystemClock())
    for step in service.on_start:
        await step()
    app = FastAPI()
    app.include_router(service.router)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
            write(path, document({"new": NEW_TOKEN}, hook))
            ConfigReloader(path, live, ["ingest"]).reload()
            store.down = True
            refused = await http.post(f"/v1/ingest/{NEW_TOKEN}", json=FIRING)
            assert (refused.status_code, refused.headers["Retry-After"]) == (503, "5")
            store.down = False
            assert (await http.post(f"/v1/ingest/{NEW_TOKEN}", json=FIRING)).status_code == 202
            assert (await http.post(f"/v1/ingest/{OLD_TOKEN}", json=FIRING)).status_code == 401
    finally:
        await bus.stop()
        file.close()


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def test_after_a_reload_the_next_page_goes_to_the_contacts_new_address(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    doc = document({"old": OLD_TOKEN}, receiver.url("/before"))
    async with running(tmp_path, "notifier", doc) as (path, reloader, _, bus):
        results: list[NotificationResult] = []

        async def collect(result: NotificationResult) -> None:
            results.append(result)

        consumer = asyncio.create_task(
            bus.consume(Subscription(NOTIFICATIONS_RESULTS, "test", NotificationResult, collect))
        )
        try:
            await bus.publish(NOTIFICATIONS_REQUESTED, "i", request("n1"))
            await wait_for(lambda: len(results) == 1)

            write(path, document({"old": OLD_TOKEN}, receiver.url("/after")))
            assert reloader.reload().sections == {"notifier": "reloaded"}

            await bus.publish(NOTIFICATIONS_REQUESTED, "i", request("n2"))
            await wait_for(lambda: len(results) == 2)
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
    assert [(r.notification_id, r.outcome.value) for r in results] == [
        ("n1", "delivered"),
        ("n2", "delivered"),
    ]
    assert [(p.path, p.body["notification_id"]) for p in receiver.snapshot()] == [
        ("/before", "n1"),
        ("/after", "n2"),
    ]
