"""The Kafka adapter on a real broker: delivery, redelivery of what was not committed,
bounded retries, dead-lettering, and trace context in headers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry import trace

from schemas import ALERTS_RAW, AlertReceived, AlertStatus, DeadLetter, dlq_topic
from tocsin import telemetry
from tocsin.bus import Subscription
from tocsin.kafka import KafkaBus

pytestmark = pytest.mark.kafka

GROUP = "bus-test"


def alert(n: int = 0) -> AlertReceived:
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


def bus(bootstrap: str, namespace: str, *, attempts: int = 3) -> KafkaBus:
    return KafkaBus(
        bootstrap,
        client_id=f"test-{uuid.uuid4().hex[:6]}",
        namespace=namespace,
        handler_attempts=attempts,
        handler_backoff_seconds=0.01,
    )


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            while len(values) < count:
                batch = await consumer.getmany(timeout_ms=200)
                values.extend(r.value for records in batch.values() for r in records)
    finally:
        await consumer.stop()
    return values


async def test_message_published_is_handled_with_its_trace_context(
    kafka_bootstrap: str, namespace: str
) -> None:
    telemetry.setup("tocsin-test")
    kafka = bus(kafka_bootstrap, namespace)
    await kafka.start()
    received: asyncio.Queue[tuple[AlertReceived, str]] = asyncio.Queue()

    async def handler(message: AlertReceived) -> None:
        span_context = trace.get_current_span().get_span_context()
        await received.put((message, format(span_context.trace_id, "032x")))

    task = asyncio.create_task(
        kafka.consume(Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    )
    try:
        tracer = telemetry.tracer("test")
        with tracer.start_as_current_span("ingest") as span:
            sent_trace = format(span.get_span_context().trace_id, "032x")
            await kafka.publish(ALERTS_RAW, "k", alert(1))
        message, handled_trace = await asyncio.wait_for(received.get(), 30)
        assert message.fingerprint == f"{1:016x}"
        assert handled_trace == sent_trace
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await kafka.stop()


async def test_message_not_committed_before_a_crash_is_delivered_again(
    kafka_bootstrap: str, namespace: str
) -> None:
    first = bus(kafka_bootstrap, namespace)
    await first.start()
    started = asyncio.Event()
    seen_first: list[uuid.UUID] = []

    async def crashing_handler(message: AlertReceived) -> None:
        seen_first.append(message.event_id)
        started.set()
        await asyncio.Event().wait()  # "crashes" here: never returns, never commits

    sent = alert(2)
    await first.publish(ALERTS_RAW, "k", sent)
    task = asyncio.create_task(
        first.consume(Subscription(ALERTS_RAW, GROUP, AlertReceived, crashing_handler))
    )
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()  # the process dies with the message in flight
    await asyncio.gather(task, return_exceptions=True)
    await first.stop()

    second = bus(kafka_bootstrap, namespace)
    await second.start()
    redelivered: asyncio.Queue[AlertReceived] = asyncio.Queue()

    async def handler(message: AlertReceived) -> None:
        await redelivered.put(message)

    task = asyncio.create_task(
        second.consume(Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    )
    try:
        again = await asyncio.wait_for(redelivered.get(), 60)
        assert seen_first == [sent.event_id]
        assert again.event_id == sent.event_id
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await second.stop()


async def test_failing_handler_is_retried_then_dead_lettered_and_the_loop_moves_on(
    kafka_bootstrap: str, namespace: str
) -> None:
    kafka = bus(kafka_bootstrap, namespace, attempts=3)
    await kafka.start()
    attempts: list[str] = []
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def handler(message: AlertReceived) -> None:
        if message.correlation_id == "c3":
            attempts.append(message.correlation_id)
            raise ValueError("cannot triage this one")
        await handled.put(message.correlation_id)

    await kafka.publish_many(ALERTS_RAW, [("same-key", alert(3)), ("same-key", alert(4))])
    task = asyncio.create_task(
        kafka.consume(Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    )
    try:
        assert await asyncio.wait_for(handled.get(), 60) == "c4"
        assert attempts == ["c3", "c3", "c3"]
        (raw,) = await read_topic(kafka_bootstrap, f"{namespace}{dlq_topic(ALERTS_RAW)}", 1)
        letter = DeadLetter.model_validate_json(raw)
        assert letter.topic == ALERTS_RAW
        assert letter.attempts == 3
        assert "ValueError: cannot triage this one" in letter.error
        assert AlertReceived.model_validate_json(letter.payload).correlation_id == "c3"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await kafka.stop()


async def test_invalid_message_is_dead_lettered_without_calling_the_handler(
    kafka_bootstrap: str, namespace: str
) -> None:
    kafka = bus(kafka_bootstrap, namespace)
    await kafka.start()
    calls: list[AlertReceived] = []

    async def handler(message: AlertReceived) -> None:
        calls.append(message)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    await producer.send_and_wait(f"{namespace}{ALERTS_RAW}", b'{"not": "an alert"}', key=b"k")
    await producer.stop()
    task = asyncio.create_task(
        kafka.consume(Subscription(ALERTS_RAW, GROUP, AlertReceived, handler))
    )
    try:
        (raw,) = await read_topic(kafka_bootstrap, f"{namespace}{dlq_topic(ALERTS_RAW)}", 1)
        letter = DeadLetter.model_validate_json(raw)
        assert letter.error.startswith("invalid message")
        assert letter.payload == '{"not": "an alert"}'
        assert calls == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await kafka.stop()
