"""A value read from the store at most once per `ttl` (rules in force are read once per batch
of alerts, not once per alert), and at once after this process changed it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from tocsin.runtime.clock import Clock

T = TypeVar("T")


class Refreshed(Generic[T]):
    def __init__(
        self,
        load: Callable[[datetime], Awaitable[T]],
        clock: Clock,
        ttl: timedelta = timedelta(seconds=1),
    ) -> None:
        self._load = load
        self._clock = clock
        self._ttl = ttl
        self._read_at: datetime | None = None
        self._value: T | None = None

    async def current(self) -> T:
        now = self._clock.now()
        if (
            self._value is None
            or self._read_at is None
            or now - self._read_at >= self._ttl
            or now < self._read_at
        ):
            self._value = await self._load(now)
            self._read_at = now
        return self._value

    def invalidate(self) -> None:
        self._read_at = None
