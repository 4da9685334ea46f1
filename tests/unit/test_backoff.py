"""The one backoff helper: exponential steps, capped, with equal jitter from an injected source."""

from __future__ import annotations

import random

import pytest

from tocsin.runtime.backoff import backoff_delay


def lowest() -> float:
    return 0.0


def highest() -> float:
    return 1.0 - 1e-12


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (4, 2.0, 4.0), (5, 4.0, 8.0)],
)
def test_each_attempt_doubles_the_window(attempt: int, low: float, high: float) -> None:
    assert backoff_delay(attempt, base=0.5, cap=60, random=lowest) == low
    assert backoff_delay(attempt, base=0.5, cap=60, random=highest) == pytest.approx(high)


def test_the_window_stops_growing_at_the_cap() -> None:
    assert backoff_delay(20, base=1, cap=30, random=lowest) == 15
    assert backoff_delay(20, base=1, cap=30, random=highest) == pytest.approx(30)


def test_a_huge_attempt_number_stays_at_the_cap() -> None:
    assert backoff_delay(10_000, base=1, cap=30, random=highest) == pytest.approx(30)


def test_the_random_source_spreads_delays_within_the_window() -> None:
    source = random.Random(7).random
    delays = [backoff_delay(4, base=1, cap=60, random=source) for _ in range(200)]
    assert all(4 <= d < 8 for d in delays)
    assert len({round(d, 6) for d in delays}) > 150  # not one fixed value


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "draw", "complaint"),
    [
        (0, 1, 10, 0.5, "attempt counts from 1"),
        (1, 0, 10, 0.5, "need 0 < base <= cap"),
        (1, 2, 1, 0.5, "need 0 < base <= cap"),
        (1, 1, 10, 1.0, r"floats in \[0, 1\)"),
        (1, 1, 10, -0.1, r"floats in \[0, 1\)"),
    ],
)
def test_nonsense_arguments_are_refused(
    attempt: int, base: float, cap: float, draw: float, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        backoff_delay(attempt, base=base, cap=cap, random=lambda: draw)
