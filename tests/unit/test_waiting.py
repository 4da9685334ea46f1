"""A loop waiting for a wake-up stops when cancelled, even as the wake-up arrives (Python 3.11's
`asyncio.wait_for` swallowed such a cancel: the loop ran on and `tocsin up` hung at shutdown)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from schemas import ALERTS_RAW, AlertReceived
from tocsin.runtime.bus import Subscription
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.waiting import wait_or_timeout


async def test_it_says_whether_the_event_was_set_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await wait_or_timeout(event, 0.01) is False
    event.set()
    assert await wait_or_timeout(event, 5) is True


@pytest.mark.parametrize("steps_between", [0, 1, 2])
async def test_a_cancel_arriving_with_the_wakeup_stops_the_loop(steps_between: int) -> None:
    event = asyncio.Event()

    async def loop() -> None:
        while True:
            await wait_or_timeout(event, 1.0)
            event.clear()

    task = asyncio.create_task(loop())
    for _ in range(3):
        await asyncio.sleep(0)
    event.set()
    for _ in range(steps_between):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=3)
    assert task in done, "the loop ran on after its cancel"
    assert task.cancelled()


async def _ignore(_: AlertReceived) -> None:
    return None


@pytest.mark.parametrize("steps_between", [0, 1, 2])
async def test_the_embedded_consumer_stops_when_cancelled_as_a_message_arrives(
    tmp_path: Path, steps_between: int
) -> None:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file)
    await bus.start()
    try:
        task = asyncio.create_task(
            bus.consume(Subscription(ALERTS_RAW, "triage", AlertReceived, _ignore))
        )
        for _ in range(5):
            await asyncio.sleep(0)
        bus._wakeup(ALERTS_RAW).set()  # what a publish does once its row is written
        for _ in range(steps_between):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=3)
        assert task in done, "the consumer ran on after its cancel"
    finally:
        await bus.stop()
        file.close()
