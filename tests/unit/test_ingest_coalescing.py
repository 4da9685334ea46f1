"""Ingest's coalescing publisher: concurrent requests' records go to the bus in one call, each
request returns only once that call succeeded, and a failure reaches every one of them;
requests inside a trace publish alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from services.ingest.intake import Coalescing
from tocsin.runtime.bus import PublishError
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.sqlite import SqliteFile

TOPIC = "alerts.raw"


class RecordingBus:
    """A bus that keeps each call's records, and answers each call when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[tuple[str, bytes]]] = []
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def publish_serialized(self, topic: str, messages: Sequence[tuple[str, bytes]]) -> None:
        self.calls.append(list(messages))
        await self.release.wait()
        if self.fail:
            raise PublishError(f"{topic}: broker unavailable")


def _records(request: int, count: int = 2) -> list[tuple[str, bytes]]:
    return [(f"fp-{request}-{n}", f'{{"r": {request}, "n": {n}}}'.encode()) for n in range(count)]


async def test_concurrent_requests_share_one_publish() -> None:
    bus = RecordingBus()
    publisher = Coalescing(bus, spans_recorded=lambda: False)
    await asyncio.gather(*(publisher.publish_serialized(TOPIC, _records(r)) for r in range(5)))
    assert bus.calls == [[record for r in range(5) for record in _records(r)]]


async def test_a_request_returns_only_once_its_batch_is_durable() -> None:
    bus = RecordingBus()
    bus.release.clear()
    publisher = Coalescing(bus, spans_recorded=lambda: False)
    pending = [
        asyncio.create_task(publisher.publish_serialized(TOPIC, _records(r))) for r in (1, 2)
    ]
    await asyncio.sleep(0.01)
    assert len(bus.calls) == 1
    assert not any(task.done() for task in pending)
    # A request arriving while that batch is in flight does not wait for it: its own batch.
    late = asyncio.create_task(publisher.publish_serialized(TOPIC, _records(3)))
    await asyncio.sleep(0.01)
    assert bus.calls[1] == _records(3)
    bus.release.set()
    await asyncio.gather(*pending, late)


async def test_a_failed_batch_fails_each_of_its_requests() -> None:
    publisher = Coalescing(RecordingBus(fail=True), spans_recorded=lambda: False)
    outcomes = await asyncio.gather(
        *(publisher.publish_serialized(TOPIC, _records(r)) for r in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, PublishError) for outcome in outcomes)
    assert "broker unavailable" in str(outcomes[0])
    assert len({id(outcome) for outcome in outcomes}) == 3  # one exception per request


async def test_requests_publish_alone_when_spans_are_recorded() -> None:
    bus = RecordingBus()
    publisher = Coalescing(bus, spans_recorded=lambda: True)
    await asyncio.gather(*(publisher.publish_serialized(TOPIC, _records(r)) for r in range(3)))
    assert bus.calls == [_records(0), _records(1), _records(2)]


async def test_a_request_inside_a_callers_trace_publishes_alone() -> None:
    bus = RecordingBus()
    publisher = Coalescing(bus, spans_recorded=lambda: False)
    tracer = TracerProvider().get_tracer("test")

    async def traced(request: int) -> None:
        with tracer.start_as_current_span("caller"):
            await publisher.publish_serialized(TOPIC, _records(request))

    await asyncio.gather(traced(1), publisher.publish_serialized(TOPIC, _records(2)), traced(3))
    assert sorted(map(tuple, bus.calls)) == sorted(
        [tuple(_records(1)), tuple(_records(2)), tuple(_records(3))]
    )
    assert not trace.get_current_span().get_span_context().is_valid


async def test_on_the_embedded_bus_every_request_is_in_the_file_when_answered(
    tmp_path: Path,
) -> None:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file)
    await bus.start()
    try:
        publisher = Coalescing(bus, spans_recorded=lambda: False)
        await asyncio.gather(*(publisher.publish_serialized(TOPIC, _records(r)) for r in range(4)))
        # Read through a second connection: only what was committed.
        other = SqliteFile(tmp_path / "tocsin.sqlite")
        keys = [row[0] for row in other.read("SELECT key FROM messages ORDER BY seq").fetchall()]
        other.close()
        assert keys == [key for r in range(4) for key, _ in _records(r)]
    finally:
        await bus.stop()
        file.close()


@pytest.mark.parametrize("count", [1, 3])
async def test_sequential_requests_each_publish_at_once(count: int) -> None:
    bus = RecordingBus()
    publisher = Coalescing(bus, spans_recorded=lambda: False)
    for r in range(count):
        await publisher.publish_serialized(TOPIC, _records(r))
    assert bus.calls == [_records(r) for r in range(count)]
