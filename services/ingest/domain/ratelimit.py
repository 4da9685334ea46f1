"""Per-integration rate limit for PagerDuty-style senders (pure token bucket).

PagerDuty allows about 120 events a minute per integration key and answers 429 beyond; Tocsin
does the same with a configurable rate (default 600/min), per ingest process. Time is a
parameter (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def allow(self, key: str, per_minute: int, now: float) -> float | None:
        """None if one more event is allowed now; else seconds until the next one is."""
        if per_minute <= 0:
            return None
        capacity = float(per_minute)
        rate = per_minute / 60.0
        bucket = self._buckets.setdefault(key, _Bucket(capacity, now))
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate
