"""How long to wait before the next try of something that failed: exponential backoff with
jitter, the one helper every retry in Tocsin uses.

Equal jitter: the delay before attempt `attempt + 1` is drawn uniformly from the upper half of
`min(cap, base * 2 ** (attempt - 1))`. The random half spreads out the retries of everything
that failed together (one receiver outage fails every page to it at once); the fixed half keeps
retries from bunching up right after a failure, so a bounded number of attempts still spans
the time the exponential steps promise. Randomness is a parameter, so the function is pure.
"""

from __future__ import annotations

from collections.abc import Callable

Random = Callable[[], float]
"""A source of floats in [0, 1), such as `random.random`."""

# 2**63 seconds is far beyond any cap; it keeps the power an exact, finite number.
_MAX_EXPONENT = 63


def backoff_delay(attempt: int, *, base: float, cap: float, random: Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (counted from 1)."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if base <= 0 or cap < base:
        raise ValueError(f"need 0 < base <= cap, got base={base} cap={cap}")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    draw = random()
    if not 0.0 <= draw < 1.0:
        raise ValueError(f"random source must give floats in [0, 1), gave {draw}")
    return ceiling / 2 + ceiling / 2 * draw
