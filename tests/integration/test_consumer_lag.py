"""Consumer lag per topic and group: the Kafka consumer sets it after each round, from the
high watermark and its position on the partitions it holds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from schemas import ALERTS_RAW, AlertReceived, AlertStatus
from tocsin.runtime.bus import Subscription
from tocsin.runtime.kafka import ConsumerTiming, KafkaBus

pytestmark = pytest.mark.kafka


def lag(group: str) -> float | None:
    return REGISTRY.get_sample_value(
        "tocsin_consumer_lag_messages", {"topic": ALERTS_RAW, "group": group}
    )


def alert(n: int) -> AlertReceived:
    return AlertReceived(
        occurred_at=datetime.now(UTC),
        correlation_id=f"c-{n}",
        fingerprint="fp-lag",  # one key: one partition, in order
        status=AlertStatus.FIRING,
        integration_id="am",
        source="alertmanager",
        service_id="checkout",
        alertname="Lag",
        summary=f"alert {n}",
    )


async def test_lag_counts_down_as_the_group_catches_up(
    kafka_bootstrap: str, namespace: str
) -> None:
    group = f"lag-{uuid.uuid4().hex[:6]}"
    kafka = KafkaBus(
        kafka_bootstrap,
        client_id="lag-test",
        namespace=namespace,
        timing=ConsumerTiming(max_records=1),  # one record per round: the lag shows each step
    )
    await kafka.start()
    await kafka.publish_many(ALERTS_RAW, [("fp-lag", alert(n)) for n in range(4)])
    seen: list[float | None] = []
    done = asyncio.Event()

    async def handler(message: AlertReceived) -> None:
        seen.append(lag(group))
        if len(seen) == 4:
            done.set()

    task = asyncio.create_task(
        kafka.consume(Subscription(ALERTS_RAW, group, AlertReceived, handler))
    )
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
        async with asyncio.timeout(10):
            while lag(group) != 0:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await kafka.stop()
    # Before the first round nothing is known (0); then 3, 2, 1 still to handle.
    assert seen == [0.0, 3.0, 2.0, 1.0]
