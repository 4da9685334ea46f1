"""Waiting for a wake-up with a timeout, in loops that must stop when cancelled."""

from __future__ import annotations

import asyncio


async def wait_or_timeout(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` passed; True when it was set.

    Not `asyncio.wait_for(event.wait(), ...)`: on Python 3.11 that swallows a cancel arriving
    while the event is being set, so a consumer or timer loop told to stop just then runs on
    (and `tocsin up` hangs at shutdown). `asyncio.timeout` lets the cancel through.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
