"""Configuration that a reload can replace while the process runs.

The composition root keeps the whole file in a `LiveConfig` and hands each service a view of
its own section (`live.view(TocsinConfig.escalation)`); the service reads `.current` each time
it needs the configuration, never keeps a copy. A reload validates the new file completely
before `replace` swaps it in one assignment, so a reader sees the old or the new configuration,
never a mix, and a bad file changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
S = TypeVar("S")
T_co = TypeVar("T_co", covariant=True)


class Current(Protocol[T_co]):
    """What a service holds: the configuration as it is now."""

    @property
    def current(self) -> T_co: ...


class Fixed(Generic[T]):
    """A configuration that never changes (tests, and sections that are not reloaded)."""

    def __init__(self, value: T) -> None:
        self._value = value

    @property
    def current(self) -> T:
        return self._value


class LiveConfig(Generic[T]):
    def __init__(self, value: T) -> None:
        self._value = value
        self._generation = 0

    @property
    def current(self) -> T:
        return self._value

    @property
    def generation(self) -> int:
        """Bumped by every replace (views recompute their section once per generation)."""
        return self._generation

    def replace(self, value: T) -> None:
        self._value = value
        self._generation += 1

    def view(self, section: Callable[[T], S]) -> View[T, S]:
        return View(self, section)


class View(Generic[T, S]):
    """A section of a live configuration, recomputed once after each replace."""

    def __init__(self, source: LiveConfig[T], section: Callable[[T], S]) -> None:
        self._source = source
        self._section = section
        self._generation = -1
        self._value: S | None = None

    @property
    def current(self) -> S:
        generation = self._source.generation
        if self._value is None or generation != self._generation:
            self._value = self._section(self._source.current)
            self._generation = generation
        return self._value
