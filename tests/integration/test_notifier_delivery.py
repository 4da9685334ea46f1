"""Notifier delivery on the real adapters (embedded bus and store) and real HTTP servers: a
webhook that hangs does not hold up anyone else's page, and a failing one is retried with the
same `notification_id` until it succeeds."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.channels import channels
from services.notifier.consumers import Delivery
from services.notifier.store import MongoNotifierStore
from tests.e2e.harness import WebhookReceiver
from tests.integration.test_store_contract import request
from tocsin.composition.config import parse_config
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
async def delivery(
    tmp_path: Path, hanging_port: int, receiver: WebhookReceiver
) -> AsyncIterator[Delivery]:
    config = parse_config(
        {
            "users": [
                {
                    "id": user,
                    "name": user,
                    "contacts": [{"id": "hook", "type": "webhook", "address": address}],
                }
                for user, address in (
                    ("stuck", f"http://127.0.0.1:{hanging_port}/"),
                    ("alice", receiver.url("/alice")),
                )
            ]
        }
    )
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file)
    await bus.start()
    database = cast(AsyncDatabase[Document], EmbeddedDatabase(file))
    store = MongoNotifierStore(database)
    await store.ensure_indexes()
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        delivery = Delivery(
            bus, store, config, channels(client), SystemClock(), "test", backoff_seconds=0.1
        )
        loop = asyncio.create_task(delivery.run())
        yield delivery
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    file.close()


async def test_a_hanging_webhook_does_not_hold_up_other_pages(
    delivery: Delivery, receiver: WebhookReceiver
) -> None:
    await delivery.handle(request("n-stuck", "stuck"))
    queued = time.monotonic()
    await delivery.handle(request("n-alice", "alice"))
    deadline = queued + 3
    while not receiver.snapshot() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    (page,) = receiver.snapshot()
    assert page.body["notification_id"] == "n-alice"
    # The stuck webhook is still waiting for its answer (5 s timeout) when alice is paged.
    assert page.received_at - queued < 3


async def test_a_failing_webhook_is_retried_with_the_same_notification_id(
    delivery: Delivery, receiver: WebhookReceiver
) -> None:
    receiver.fail_next = 2  # answer 503 twice, then 200
    await delivery.handle(request("n-retry", "alice"))
    deadline = time.monotonic() + 10
    while len(receiver.snapshot()) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    ids = [p.body["notification_id"] for p in receiver.snapshot()]
    assert ids == ["n-retry"] * 3
    assert [p.status for p in receiver.snapshot()] == [503, 503, 200]
