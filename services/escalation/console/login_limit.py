"""How many failed console logins are allowed: `LIMIT` failures per `WINDOW`, counted apart per
user id tried and per client address; past it, every login for that user or from that address
is refused (429, with `Retry-After`) until the oldest failure counted leaves the window, even
with the right password: otherwise the limit would only slow down a guesser, not stop them.
A successful login clears the user's count (not the address's: one working account must not
buy more guesses at others').

The state is in-process, on purpose: a login is rare, the count need not survive a restart,
and a store write per failure would let a guesser load the database. With N escalation
replicas a guesser gets at most N * LIMIT tries per window, still far too few for a password.
`LoginLimiter` is pure: time is a parameter, nothing else is read."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

LIMIT = 5
# Per client address: higher, since behind a proxy that does not pass the client's address on
# (see FORWARDED_ALLOW_IPS) every login shares the proxy's, and 5 failures from anyone would
# refuse everyone's password logins.
ADDRESS_LIMIT = 30
WINDOW = timedelta(minutes=5)
# Distinct users and addresses remembered; past it, the oldest are forgotten first.
MAX_TRACKED = 10_000


def user_key(user_id: str) -> str:
    return "user:" + user_id.strip().lower()[:200]


def address_key(address: str) -> str:
    return "address:" + address


@dataclass
class LoginLimiter:
    limit: int = LIMIT
    address_limit: int = ADDRESS_LIMIT
    window: timedelta = WINDOW
    max_tracked: int = MAX_TRACKED
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def retry_after(self, keys: list[str], now: datetime) -> int | None:
        """Seconds until a login for these keys may be tried again, None if it may now."""
        waits = []
        for key in keys:
            recent, limit = self._recent(key, now), self._limit(key)
            if recent is not None and len(recent) >= limit:
                waits.append(recent[-limit] + self.window - now)
        if not waits:
            return None
        return max(1, math.ceil(max(waits).total_seconds()))

    def failed(self, keys: list[str], now: datetime) -> None:
        for key in keys:
            recent = self._recent(key, now)
            if recent is None:
                if len(self._failures) >= self.max_tracked:
                    self._forget_oldest(now)
                recent = self._failures[key] = deque(maxlen=self._limit(key))
            recent.append(now)

    def withdraw(self, keys: list[str], at: datetime) -> None:
        """Take back a failure counted at `at` (a login counted before its check, which
        then succeeded or was never made)."""
        for key in keys:
            recent = self._failures.get(key)
            if recent is not None and at in recent:
                recent.remove(at)
                if not recent:
                    del self._failures[key]

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _limit(self, key: str) -> int:
        return self.address_limit if key.startswith("address:") else self.limit

    def _recent(self, key: str, now: datetime) -> deque[datetime] | None:
        """The key's failures inside the window (older ones dropped), None if none."""
        recent = self._failures.get(key)
        if recent is None:
            return None
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if not recent:
            del self._failures[key]
            return None
        return recent

    def _forget_oldest(self, now: datetime) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        while len(self._failures) >= self.max_tracked:
            oldest = min(self._failures, key=lambda k: self._failures[k][-1])
            del self._failures[oldest]
