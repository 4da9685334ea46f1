"""A consumer batch is validated in one call (tocsin/runtime/consumer.py): the handler gets the
same messages, in the same order, and an invalid record is still dead-lettered alone, also when
records that are invalid one by one would read as a valid message once joined."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from schemas import ALERTS_RAW, AlertReceived, AlertStatus, DeadLetter, Envelope, dlq_topic
from tocsin.runtime.bus import Subscription
from tocsin.runtime.consumer import GC_YOUNG_THRESHOLD, Record, RecordProcessor


def alert(n: int, summary: str = "errors") -> AlertReceived:
    return AlertReceived(
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        correlation_id=f"c{n}",
        fingerprint=f"{n:016x}",
        status=AlertStatus.FIRING,
        integration_id="prom",
        source="alertmanager",
        service_id="checkout",
        alertname="CheckoutErrors",
        summary=summary,
    )


def record(value: bytes, offset: int) -> Record:
    return Record(key=b"k", value=value, headers=(), partition=0, offset=offset)


class Consumer:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.letters: list[tuple[str, DeadLetter]] = []
        self.processor = RecordProcessor(self._publish, attempts=1, backoff_seconds=0)

    async def _publish(self, topic: str, key: str, message: Envelope) -> None:
        assert isinstance(message, DeadLetter)
        self.letters.append((topic, message))

    async def _one(self, message: AlertReceived) -> None:
        raise AssertionError("a batch subscription never calls the per-message handler")

    async def _many(self, messages: Sequence[AlertReceived]) -> None:
        self.batches.append([m.correlation_id for m in messages])

    async def consume(self, values: Sequence[bytes]) -> None:
        subscription = Subscription(ALERTS_RAW, "g", AlertReceived, self._one, self._many)
        await self.processor.process_batch(
            subscription, [record(value, n) for n, value in enumerate(values)]
        )

    @property
    def dead(self) -> list[int | None]:
        assert all(topic == dlq_topic(ALERTS_RAW) for topic, _ in self.letters)
        return [letter.offset for _, letter in self.letters]


async def test_a_valid_batch_reaches_the_handler_whole_and_in_order() -> None:
    consumer = Consumer()
    await consumer.consume([alert(n).model_dump_json().encode() for n in range(5)])
    assert consumer.batches == [[f"c{n}" for n in range(5)]]
    assert consumer.dead == []


@pytest.mark.parametrize(
    "bad",
    [b'{"event_id": "not a uuid"}', b"not json", b"", b"[]", b'{"a": 1}, {"b": 2}'],
)
async def test_an_invalid_record_is_dead_lettered_alone(bad: bytes) -> None:
    consumer = Consumer()
    values = [alert(n).model_dump_json().encode() for n in range(4)]
    await consumer.consume([*values[:2], bad, *values[2:]])
    assert consumer.batches == [["c0", "c1", "c2", "c3"]]
    assert consumer.dead == [2]


async def test_records_that_read_as_one_message_once_joined_are_dead_lettered() -> None:
    # Alone, neither is JSON; joined with a comma they are one valid alert whose summary is
    # "},{" (and a third record must not make up for the lost one: the count tells).
    whole = alert(1, summary="@").model_dump_json().encode()
    head, _, tail = whole.partition(b'"@"')
    first, second = head + b'"}', b'{"' + tail
    split = alert(2).model_dump_json().encode() + b"," + alert(3).model_dump_json().encode()
    consumer = Consumer()
    await consumer.consume([first, second, split])
    assert consumer.batches == []
    assert consumer.dead == [0, 1, 2]


@pytest.fixture
def default_gc() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("default_gc")
def test_a_consumer_lets_a_batch_die_young() -> None:
    Consumer()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    gc.set_threshold(50_000, 10, 10)
    Consumer()  # a higher threshold someone chose stays
    assert gc.get_threshold() == (50_000, 10, 10)
