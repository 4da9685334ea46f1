"""The bus contract, run against both adapters (Kafka and the embedded SQLite bus): delivery
with trace context, per-key order, redelivery of what was not committed, bounded retries and
dead-lettering."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from opentelemetry import trace

from schemas import ALERTS_RAW, AlertReceived, AlertStatus, DeadLetter, Envelope, dlq_topic
from tocsin.runtime import telemetry
from tocsin.runtime.bus import Bus, PublishError, Subscription
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.kafka import KafkaBus

GROUP = "contract"
E = TypeVar("E", bound=Envelope)

BusFactory = Callable[[], Bus]


@pytest.fixture(params=["kafka", "embedded"])
def new_bus(request: pytest.FixtureRequest, tmp_path: Path, namespace: str) -> Iterator[BusFactory]:
    """Makes bus instances that share one log (one Kafka namespace, or one SQLite file)."""
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        yield lambda: KafkaBus(
            bootstrap,
            client_id=f"contract-{uuid.uuid4().hex[:6]}",
            namespace=namespace,
            handler_attempts=3,
            handler_backoff_seconds=0.01,
        )
        return
    files: list[SqliteFile] = []

    def embedded() -> Bus:
        # Each instance has its own connection, as a restarted process would.
        files.append(SqliteFile(tmp_path / "tocsin.sqlite"))
        return EmbeddedBus(files[-1], handler_attempts=3, handler_backoff_seconds=0.01)

    yield embedded
    for file in files:
        file.close()


@pytest.fixture
async def started(new_bus: BusFactory) -> AsyncIterator[Bus]:
    bus = new_bus()
    await bus.start()
    yield bus
    await bus.stop()


def alert(n: int) -> AlertReceived:
    return AlertReceived(
        occurred_at=datetime.now(UTC),
        correlation_id=f"c{n}",
        fingerprint=f"{n:016x}",
        status=AlertStatus.FIRING,
        integration_id="prom",
        source="alertmanager",
        service_id="checkout",
        alertname="CheckoutErrors",
        summary="errors",
    )


class Running:
    """A consume loop in the background, stopped (like a crash) on exit."""

    def __init__(self, bus: Bus, subscription: Subscription[AlertReceived]) -> None:
        self._task = asyncio.create_task(bus.consume(subscription))

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def collect(bus: Bus, topic: str, model: type[E], count: int, timeout: float = 30) -> list[E]:
    """Read `count` messages of `topic` with a fresh consumer group."""
    seen: list[E] = []
    done = asyncio.Event()

    async def handler(message: E) -> None:
        seen.append(message)
        if len(seen) >= count:
            done.set()

    task = asyncio.create_task(
        bus.consume(Subscription(topic, f"reader-{uuid.uuid4().hex[:6]}", model, handler))
    )
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return seen


async def test_published_message_is_handled_with_its_trace_context(started: Bus) -> None:
    telemetry.setup("tocsin-test")
    received: asyncio.Queue[tuple[AlertReceived, int]] = asyncio.Queue()

    async def handler(message: AlertReceived) -> None:
        await received.put((message, trace.get_current_span().get_span_context().trace_id))

    running = Running(started, Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    try:
        with telemetry.tracer("test").start_as_current_span("ingest") as span:
            sent_trace = span.get_span_context().trace_id
            await started.publish(ALERTS_RAW, "k", alert(1))
        message, handled_trace = await asyncio.wait_for(received.get(), 30)
        assert (message.fingerprint, message.correlation_id) == (f"{1:016x}", "c1")
        assert handled_trace == sent_trace
    finally:
        await running.stop()


async def test_messages_of_one_key_are_handled_in_order(started: Bus) -> None:
    order: list[str] = []
    done = asyncio.Event()

    async def handler(message: AlertReceived) -> None:
        order.append(message.correlation_id)
        if len(order) == 50:
            done.set()

    await started.publish_many(ALERTS_RAW, [("one-key", alert(n)) for n in range(50)])
    running = Running(started, Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    try:
        await asyncio.wait_for(done.wait(), 30)
        assert order == [f"c{n}" for n in range(50)]
    finally:
        await running.stop()


async def test_message_not_committed_before_a_crash_is_delivered_again(
    new_bus: BusFactory,
) -> None:
    first = new_bus()
    await first.start()
    started = asyncio.Event()

    async def never_returns(message: AlertReceived) -> None:
        started.set()
        await asyncio.Event().wait()

    sent = alert(2)
    await first.publish(ALERTS_RAW, "k", sent)
    running = Running(first, Subscription(ALERTS_RAW, GROUP, AlertReceived, never_returns))
    await asyncio.wait_for(started.wait(), 30)
    await running.stop()  # the process dies with the message in flight
    await first.stop()

    second = new_bus()
    await second.start()
    redelivered: asyncio.Queue[AlertReceived] = asyncio.Queue()

    async def handler(message: AlertReceived) -> None:
        await redelivered.put(message)

    running = Running(second, Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    try:
        assert (await asyncio.wait_for(redelivered.get(), 60)).event_id == sent.event_id
    finally:
        await running.stop()
        await second.stop()


async def test_committed_message_is_not_delivered_again(new_bus: BusFactory) -> None:
    first = new_bus()
    await first.start()
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def handler(message: AlertReceived) -> None:
        await handled.put(message.correlation_id)

    await first.publish(ALERTS_RAW, "k", alert(5))
    running = Running(first, Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    assert await asyncio.wait_for(handled.get(), 30) == "c5"
    await asyncio.sleep(0.5)  # let the position be committed after the handler returned
    await running.stop()
    await first.publish(ALERTS_RAW, "k", alert(6))
    await first.stop()

    second = new_bus()
    await second.start()
    running = Running(second, Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    try:
        assert await asyncio.wait_for(handled.get(), 60) == "c6"
    finally:
        await running.stop()
        await second.stop()


async def test_failing_handler_is_retried_then_dead_lettered_and_the_loop_moves_on(
    started: Bus,
) -> None:
    attempts: list[str] = []
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def handler(message: AlertReceived) -> None:
        if message.correlation_id == "c3":
            attempts.append(message.correlation_id)
            raise ValueError("cannot triage this one")
        await handled.put(message.correlation_id)

    await started.publish_many(ALERTS_RAW, [("same-key", alert(3)), ("same-key", alert(4))])
    running = Running(started, Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    try:
        assert await asyncio.wait_for(handled.get(), 60) == "c4"
        assert attempts == ["c3", "c3", "c3"]
        (letter,) = await collect(started, dlq_topic(ALERTS_RAW), DeadLetter, 1)
        assert letter.topic == ALERTS_RAW
        assert letter.attempts == 3
        assert "ValueError: cannot triage this one" in letter.error
        assert AlertReceived.model_validate_json(letter.payload).correlation_id == "c3"
    finally:
        await running.stop()


async def test_handler_failing_on_unavailable_infrastructure_waits_instead_of_dead_lettering(
    started: Bus,
) -> None:
    calls: list[str] = []
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def handler(message: AlertReceived) -> None:
        calls.append(message.correlation_id)
        if len(calls) <= 5:  # more failures than the 3 attempts a poison message gets
            raise PublishError("incidents.events: KafkaConnectionError: broker down")
        await handled.put(message.correlation_id)

    await started.publish(ALERTS_RAW, "k", alert(7))
    running = Running(started, Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    try:
        assert await asyncio.wait_for(handled.get(), 60) == "c7"
        assert calls == ["c7"] * 6
        with pytest.raises(TimeoutError):
            await collect(started, dlq_topic(ALERTS_RAW), DeadLetter, 1, timeout=2)
    finally:
        await running.stop()


async def test_a_batch_handler_gets_batches_in_order_and_only_a_poison_message_is_dead_lettered(
    started: Bus,
) -> None:
    batches: list[list[str]] = []
    handled: list[str] = []
    done = asyncio.Event()

    async def one(message: AlertReceived) -> None:
        raise AssertionError("a batch subscription never calls the per-message handler")

    async def many(messages: Sequence[AlertReceived]) -> None:
        ids = [m.correlation_id for m in messages]
        batches.append(ids)
        if "c5" in ids:
            raise ValueError("cannot triage c5")
        handled.extend(ids)
        if "c9" in handled:
            done.set()

    await started.publish_many(ALERTS_RAW, [("same-key", alert(n)) for n in range(10)])
    running = Running(
        started, Subscription(ALERTS_RAW, GROUP, AlertReceived, one, batch_handler=many)
    )
    try:
        await asyncio.wait_for(done.wait(), 60)
        # Handed over in batches (several messages at once), retried whole, then one at a time.
        assert any(len(batch) > 1 for batch in batches)
        assert [n for n in handled if n != "c5"] == [f"c{n}" for n in range(10) if n != 5]
        assert "c5" not in handled
        (letter,) = await collect(started, dlq_topic(ALERTS_RAW), DeadLetter, 1)
        assert AlertReceived.model_validate_json(letter.payload).correlation_id == "c5"
        assert "ValueError: cannot triage c5" in letter.error
    finally:
        await running.stop()
