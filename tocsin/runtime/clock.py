"""Time as a dependency: domain code takes `now` as a parameter; edges ask a Clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


def utc_now() -> datetime:
    return datetime.now(UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return utc_now()
