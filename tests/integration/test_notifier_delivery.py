"""Notifier delivery on the real adapters (embedded bus and store) and real HTTP servers: a
webhook that hangs does not hold up anyone else's page; a failing one is retried with the same
`notification_id` for the retry period, and exactly one final result is published; a channel
with a bug is dead-lettered after bounded retries; a stored notification that no longer validates
is quarantined."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from schemas import (
    NOTIFICATIONS_REQUESTED,
    NOTIFICATIONS_RESULTS,
    AlertDetails,
    DeadLetter,
    DeliveryOutcome,
    Label,
    NotificationRequested,
    NotificationResult,
    dlq_topic,
)
from services.notifier.app import retry_policy
from services.notifier.channels import channels
from services.notifier.config import ContactConfig
from services.notifier.consumers import Delivery
from services.notifier.store import MongoNotifierStore
from tests.e2e.harness import WebhookReceiver
from tests.integration.test_store_contract import request
from tocsin.composition.config import parse_config
from tocsin.runtime.bus import Subscription
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document
from tocsin.runtime.settings import Settings

T0_PAST = datetime(2000, 1, 1, tzinfo=UTC)
T0_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)  # never due: only its outbox field matters

# Short in the test; minutes in production (TOCSIN_NOTIFIER_RETRY_PERIOD_SECONDS).
SETTINGS = Settings(
    notifier_retry_period_seconds=1.5,
    notifier_backoff_seconds=0.1,
    notifier_backoff_cap_seconds=0.4,
    notifier_error_attempts=3,
)


class BuggyChannel:
    """A channel with a bug: it raises something other than `DeliveryFailed`."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, contact: ContactConfig, request: NotificationRequested) -> None:
        self.calls += 1
        raise KeyError("template")


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


@dataclass
class Notifier:
    bus: EmbeddedBus
    database: AsyncDatabase[Document]
    delivery: Delivery
    store: MongoNotifierStore
    buggy: BuggyChannel
    results: list[NotificationResult]
    dead_letters: list[DeadLetter]

    async def wait_for_results(self, count: int, timeout: float) -> list[NotificationResult]:
        deadline = time.monotonic() + timeout
        while len(self.results) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return list(self.results)


@pytest.fixture
async def notifier(
    tmp_path: Path, hanging_port: int, receiver: WebhookReceiver
) -> AsyncIterator[Notifier]:
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
            # bob's contact is served by the channel with a bug (see below).
            + [{"id": "bob", "name": "bob", "contacts": [{"id": "hook", "type": "log"}]}]
        }
    )
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file)
    await bus.start()
    database = cast(AsyncDatabase[Document], EmbeddedDatabase(file))
    store = MongoNotifierStore(database)
    await store.ensure_indexes()
    results: list[NotificationResult] = []
    dead_letters: list[DeadLetter] = []
    buggy = BuggyChannel()

    async def collect(result: NotificationResult) -> None:
        results.append(result)

    async def collect_dead_letter(letter: DeadLetter) -> None:
        dead_letters.append(letter)

    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        delivery = Delivery(
            bus,
            store,
            config.notifier(),
            {**channels(client, config.notifier()), "log": buggy},
            SystemClock(),
            "test",
            retry=retry_policy(SETTINGS),
            lease=timedelta(seconds=2),
            poll_seconds=0.05,
            sweep_every=timedelta(seconds=0.2),
        )
        tasks = [
            asyncio.create_task(delivery.run()),
            asyncio.create_task(
                bus.consume(
                    Subscription(NOTIFICATIONS_RESULTS, "test", NotificationResult, collect)
                )
            ),
            asyncio.create_task(
                bus.consume(
                    Subscription(
                        dlq_topic(NOTIFICATIONS_REQUESTED), "test", DeadLetter, collect_dead_letter
                    )
                )
            ),
        ]
        yield Notifier(bus, database, delivery, store, buggy, results, dead_letters)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    file.close()


async def test_a_hanging_webhook_does_not_hold_up_other_pages(
    notifier: Notifier, receiver: WebhookReceiver
) -> None:
    await notifier.delivery.handle(request("n-stuck", "stuck"))
    queued = time.monotonic()
    await notifier.delivery.handle(request("n-alice", "alice"))
    deadline = queued + 3
    while not receiver.snapshot() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    (page,) = receiver.snapshot()
    assert page.body["notification_id"] == "n-alice"
    # The stuck webhook is still waiting for its answer (5 s timeout) when alice is paged.
    assert page.received_at - queued < 3


async def test_a_receiver_that_recovers_within_the_retry_period_gets_the_page(
    notifier: Notifier, receiver: WebhookReceiver
) -> None:
    receiver.fail_next = 2  # answer 503 twice, then 200
    await notifier.delivery.handle(request("n-retry", "alice"))
    (result,) = await notifier.wait_for_results(1, timeout=10)
    assert [(p.body["notification_id"], p.status) for p in receiver.snapshot()] == [
        ("n-retry", 503),
        ("n-retry", 503),
        ("n-retry", 200),
    ]
    assert (result.notification_id, result.outcome, result.attempt) == (
        "n-retry",
        DeliveryOutcome.DELIVERED,
        3,
    )
    assert (result.recipient.user_id, result.escalation_level) == ("alice", 0)
    await asyncio.sleep(0.5)
    assert len(notifier.results) == 1  # the final result only, once


async def test_a_dead_receiver_is_retried_for_the_whole_period_then_failed_once(
    notifier: Notifier, receiver: WebhookReceiver
) -> None:
    receiver.fail_next = 1_000_000  # answers 503 to everything
    queued = time.monotonic()
    await notifier.delivery.handle(request("n-dead", "alice"))
    (result,) = await notifier.wait_for_results(1, timeout=10)
    gave_up_after = time.monotonic() - queued
    attempts = receiver.snapshot()
    assert (result.outcome, result.error) == (DeliveryOutcome.FAILED, "webhook answered 503")
    assert result.attempt == len(attempts) > 2
    assert {p.body["notification_id"] for p in attempts} == {"n-dead"}
    # Not before the retry period (1.5 s here), and soon after it.
    assert 1.5 <= gave_up_after < 5
    # The last attempt is claimed when the period ends; the receiver's clock also sees each
    # request's own latency (the first one opens the connection), hence the small margin.
    assert attempts[-1].received_at - attempts[0].received_at >= 1.4
    await asyncio.sleep(0.6)
    assert len(notifier.results) == 1
    assert len(receiver.snapshot()) == len(attempts)  # no attempt after giving up
    assert await notifier.store.state("n-dead") == "failed"


async def test_a_result_the_bus_could_not_take_is_published_once_it_is_back(
    notifier: Notifier, receiver: WebhookReceiver
) -> None:
    await notifier.bus.stop()  # publishing fails from here on
    await notifier.delivery.handle(request("n-outage", "alice"))
    deadline = time.monotonic() + 5
    while await notifier.store.state("n-outage") != "delivered" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await notifier.store.state("n-outage") == "delivered"
    await asyncio.sleep(0.3)
    assert notifier.results == []
    await notifier.bus.start()
    (result,) = await notifier.wait_for_results(1, timeout=10)
    assert (result.notification_id, result.outcome) == ("n-outage", DeliveryOutcome.DELIVERED)
    await asyncio.sleep(0.5)
    assert len(notifier.results) == 1
    assert len(receiver.snapshot()) == 1  # published again, never paged again


async def test_a_channel_bug_is_retried_a_few_times_then_dead_lettered_and_failed(
    notifier: Notifier,
) -> None:
    await notifier.delivery.handle(request("n-bug", "bob"))
    (result,) = await notifier.wait_for_results(1, timeout=10)
    assert (result.outcome, result.error, result.attempt) == (
        DeliveryOutcome.FAILED,
        "unexpected error: KeyError",
        3,
    )
    assert (result.recipient.user_id, result.event.value) == ("bob", "incident.triggered")
    assert notifier.buggy.calls == 3
    (letter,) = notifier.dead_letters
    assert (letter.topic, letter.key, letter.attempts) == (NOTIFICATIONS_REQUESTED, "i", 3)
    assert letter.error == "KeyError: 'template'"
    dead = NotificationRequested.model_validate_json(letter.payload)
    assert (dead.notification_id, dead.recipient.user_id) == ("n-bug", "bob")
    await asyncio.sleep(1.0)  # never claimed again
    assert notifier.buggy.calls == 3
    assert (len(notifier.results), len(notifier.dead_letters)) == (1, 1)
    assert await notifier.store.state("n-bug") == "failed"


async def test_a_stored_notification_that_no_longer_validates_is_quarantined(
    notifier: Notifier, receiver: WebhookReceiver
) -> None:
    def quarantined(part: str) -> float:
        value = REGISTRY.get_sample_value("tocsin_notifier_quarantined_total", {"part": part})
        return value or 0.0

    before = quarantined("request"), quarantined("result")
    notifications = notifier.database["notifier_notifications"]
    # Written by another version: an event this one does not know. Queued first, so the loop
    # meets it before the good page.
    bad = request("n-bad", "alice").model_dump(mode="json") | {"event": "incident.exploded"}
    await notifier.store.record(request("n-bad", "alice"), T0_PAST)
    await notifications.update_one({"_id": "n-bad"}, {"$set": {"request": bad}})
    # A final result left unpublished, which no longer validates either.
    await notifier.store.record(request("n-bad-result", "alice"), T0_FUTURE)
    await notifications.update_one(
        {"_id": "n-bad-result"},
        {"$set": {"state": "delivered", "report": "unpublished", "result": {"outcome": "meh"}}},
    )
    await notifier.delivery.handle(request("n-good", "alice"))
    (result,) = await notifier.wait_for_results(1, timeout=5)
    assert result.notification_id == "n-good"
    assert [p.body["notification_id"] for p in receiver.snapshot()] == ["n-good"]
    bad_doc = await notifications.find_one({"_id": "n-bad"})
    assert bad_doc is not None
    assert bad_doc["state"] == "quarantined"
    assert "stored request does not validate" in bad_doc["quarantine_reason"]
    assert "event" in bad_doc["quarantine_reason"]
    await asyncio.sleep(0.5)  # the sweep has run
    bad_result = await notifications.find_one({"_id": "n-bad-result"})
    assert bad_result is not None
    assert (bad_result["state"], bad_result["report"]) == ("delivered", "quarantined")
    assert "stored result does not validate" in bad_result["quarantine_reason"]
    assert (quarantined("request"), quarantined("result")) == (before[0] + 1, before[1] + 1)
    # And the loop goes on.
    await notifier.delivery.handle(request("n-after", "alice"))
    assert len(await notifier.wait_for_results(2, timeout=5)) == 2


async def test_the_webhook_body_carries_the_alerts_and_the_incident_url(
    notifier: Notifier, receiver: WebhookReceiver
) -> None:
    plain = request("n-body", "alice")
    incident = plain.incident.model_copy(
        update={
            "url": "http://tocsin.example:8080/api/v1/incidents/i",
            "alerts": (
                AlertDetails(
                    fingerprint="5f1a9c0e2b7d4a36",
                    summary="Checkout 5xx above 5%",
                    labels=(
                        Label(name="alertname", value="HighErrorRate"),
                        Label(name="service", value="checkout"),
                    ),
                    annotations=(Label(name="description", value="5xx ratio 7.2% for 5m"),),
                    generator_url="http://prometheus:9090/graph?g0.expr=rate",
                    runbook_url="https://runbooks.example/checkout-5xx",
                ),
                AlertDetails(fingerprint="0b2c", summary="no links"),
            ),
        }
    )
    await notifier.delivery.handle(plain.model_copy(update={"incident": incident}))
    await notifier.wait_for_results(1, timeout=5)
    (page,) = receiver.snapshot()
    assert page.body == {
        "event": "incident.triggered",
        "notification_id": "n-body",
        "incident": {
            "id": "i",
            "title": "t",
            "severity": "SEV1",
            "status": "triggered",
            "service": "s",
            "alert_count": 1,
            "url": "http://tocsin.example:8080/api/v1/incidents/i",
            "alerts": [
                {
                    "fingerprint": "5f1a9c0e2b7d4a36",
                    "summary": "Checkout 5xx above 5%",
                    "labels": {"alertname": "HighErrorRate", "service": "checkout"},
                    "annotations": {"description": "5xx ratio 7.2% for 5m"},
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=rate",
                    "runbookURL": "https://runbooks.example/checkout-5xx",
                },
                {
                    "fingerprint": "0b2c",
                    "summary": "no links",
                    "labels": {},
                    "annotations": {},
                    "generatorURL": None,
                    "runbookURL": None,
                },
            ],
            "commander": None,
            "changes": [],
        },
        "recipient": {"user_id": "alice", "contact_id": "hook"},
        "escalation_level": 0,
        "sent_at": "2026-11-25T10:00:00+00:00",
    }


async def test_the_time_to_page_counts_once_per_incident(
    notifier: Notifier, receiver: WebhookReceiver
) -> None:
    from datetime import UTC, datetime

    from prometheus_client import REGISTRY

    def observed() -> float:
        sample = REGISTRY.get_sample_value(
            "tocsin_time_to_page_seconds_count", {"channel": "webhook"}
        )
        return sample or 0.0

    before = observed()
    arrived = AlertDetails(fingerprint="5f1a", summary="s", received_at=datetime.now(UTC))
    # Two first-level pages of one incident (two people, or a reopened incident's page).
    for notification_id in ("n-first-a", "n-first-b"):
        page = request(notification_id, "alice")
        incident = page.incident.model_copy(update={"id": "i-ttp", "alerts": (arrived,)})
        await notifier.delivery.handle(page.model_copy(update={"incident": incident}))
    await notifier.wait_for_results(2, timeout=10)
    assert len(receiver.snapshot()) == 2
    assert observed() - before == 1
