"""A rebalance never stops a consumer: two consumers of one group are mid-batch (slow handler)
when a third joins; partitions are revoked under them, their batches end without committing,
and all three keep consuming until every message was handled at least once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from schemas import ALERTS_RAW, AlertReceived, AlertStatus
from tocsin.runtime.bus import Subscription
from tocsin.runtime.kafka import ConsumerTiming, KafkaBus

pytestmark = pytest.mark.kafka

MESSAGES = 240


def _bus(bootstrap: str, namespace: str, name: str) -> KafkaBus:
    return KafkaBus(
        bootstrap,
        client_id=f"{name}-{uuid.uuid4().hex[:6]}",
        namespace=namespace,
        timing=ConsumerTiming(max_poll_interval_seconds=60, batch_budget_seconds=20),
    )


def _alert(n: int) -> AlertReceived:
    return AlertReceived(
        occurred_at=datetime.now(UTC),
        correlation_id=f"c{n}",
        fingerprint=f"fp{n}",
        status=AlertStatus.FIRING,
        integration_id="i",
        source="generic",
        service_id="s",
        alertname="a",
        summary=f"alert {n}",
    )


async def test_a_member_joining_mid_batch_stops_no_consumer(
    kafka_bootstrap: str, namespace: str
) -> None:
    producer = _bus(kafka_bootstrap, namespace, "producer")
    await producer.start()
    alerts = [_alert(n) for n in range(MESSAGES)]
    await producer.publish_many(ALERTS_RAW, [(a.fingerprint, a) for a in alerts])

    handled: Counter[str] = Counter()
    by_member: Counter[str] = Counter()

    def handler_of(member: str) -> Callable[[AlertReceived], Awaitable[None]]:
        async def handle(message: AlertReceived) -> None:
            await asyncio.sleep(0.05)  # slow enough that a rebalance lands mid-batch
            handled[message.fingerprint] += 1
            by_member[member] += 1

        return handle

    buses = [_bus(kafka_bootstrap, namespace, f"member{i}") for i in range(3)]
    tasks: list[asyncio.Task[None]] = []
    try:
        for i, bus in enumerate(buses[:2]):
            await bus.start()
            sub = Subscription(ALERTS_RAW, "rebalance", AlertReceived, handler_of(f"m{i}"))
            tasks.append(asyncio.create_task(bus.consume(sub)))
        async with asyncio.timeout(60):
            while sum(by_member.values()) < 20:  # both are inside their first batches
                await asyncio.sleep(0.05)
        await buses[2].start()
        sub = Subscription(ALERTS_RAW, "rebalance", AlertReceived, handler_of("m2"))
        tasks.append(asyncio.create_task(buses[2].consume(sub)))

        def stopped() -> list[BaseException | None]:
            return [task.exception() for task in tasks if task.done()]

        # Keep work coming until the joining member has some (a slow machine may take a while
        # to rebalance), so the partitions really move while batches are in flight.
        more = MESSAGES
        async with asyncio.timeout(120):
            while by_member["m2"] == 0:
                assert stopped() == [], f"a consumer stopped: {stopped()}"
                batch = [_alert(n) for n in range(more, more + 20)]
                await producer.publish_many(ALERTS_RAW, [(a.fingerprint, a) for a in batch])
                alerts.extend(batch)
                more += 20
                await asyncio.sleep(0.5)
        async with asyncio.timeout(120):
            while len(handled) < len(alerts):
                assert stopped() == [], f"a consumer stopped: {stopped()}"
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # let any late failure of a commit surface
        assert stopped() == [], f"consumers stopped after the rebalance: {stopped()}"
        assert set(handled) == {a.fingerprint for a in alerts}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for bus in [*buses, producer]:
            await bus.stop()


async def test_a_batch_past_its_time_budget_commits_what_is_done_and_refetches_the_rest(
    kafka_bootstrap: str, namespace: str
) -> None:
    bus = KafkaBus(
        kafka_bootstrap,
        client_id=f"budget-{uuid.uuid4().hex[:6]}",
        namespace=namespace,
        timing=ConsumerTiming(max_poll_interval_seconds=30, batch_budget_seconds=0.2),
    )
    await bus.start()
    alerts = [_alert(n) for n in range(60)]
    await bus.publish_many(ALERTS_RAW, [("one-key", a) for a in alerts])  # one partition
    order: list[str] = []

    async def handle(message: AlertReceived) -> None:
        await asyncio.sleep(0.02)  # 60 records take ~1.2 s: six budgets
        order.append(message.fingerprint)

    task = asyncio.create_task(
        bus.consume(Subscription(ALERTS_RAW, "budget", AlertReceived, handle))
    )
    try:
        async with asyncio.timeout(60):
            while len(order) < len(alerts):
                assert not task.done(), task.exception()
                await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        # In order, none skipped and none repeated: the seek resumed exactly after the last one.
        assert order == [a.fingerprint for a in alerts]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.stop()
