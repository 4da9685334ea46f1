"""Kafka-specific checks of the Kafka adapter, and helpers other Kafka tests share. The bus
contract both adapters meet is in test_bus_contract.py."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import ALERTS_RAW, AlertReceived, DeadLetter, dlq_topic
from tocsin.runtime.bus import Subscription
from tocsin.runtime.kafka import KafkaBus

pytestmark = pytest.mark.kafka

GROUP = "bus-test"


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
