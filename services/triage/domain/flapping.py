"""Flapping: an alert that changes between firing and resolved more than `transitions` times
within `window` is flapping (Nagios' flap detection, by counted transitions rather than a
percentage). While it flaps its incident stays open and its flaps page nobody; it stops
flapping once it went `quiet` without a change.

Pure: the caller keeps a `FlapState` per alert and passes the time of each occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class FlappingRule:
    transitions: int = 5
    window: timedelta = timedelta(minutes=30)
    quiet: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class FlapState:
    # The alert's last changes (firing <-> resolved) within the window, oldest first; never
    # more than the rule's transitions + 1 (enough to tell).
    changes: tuple[datetime, ...] = ()
    last_change: datetime | None = None
    since: datetime | None = None  # flapping since then; None: not flapping

    @property
    def flapping(self) -> bool:
        return self.since is not None


NOT_FLAPPING = FlapState()


def track(rule: FlappingRule, state: FlapState, changed: bool, at: datetime) -> FlapState:
    """The state after an occurrence at `at` (`changed`: it turned firing <-> resolved)."""
    since, before = state.since, state.changes
    if since is not None and state.last_change is not None and at - state.last_change >= rule.quiet:
        # Quiet for long enough: no longer flapping; counting starts over (with this change).
        since, before = None, ()
    changes = (*before, at) if changed else before
    changes = tuple(c for c in changes if at - c <= rule.window)[-(rule.transitions + 1) :]
    if since is None and len(changes) > rule.transitions:
        since = at
    return FlapState(changes, at if changed else state.last_change, since)
