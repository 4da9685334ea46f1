"""Work queues that keep far-off work out of the way of their polls.

A queue of due work (escalation timers, reminders) is claimed with
`{state: "pending", due_at <= now, lease_until <= now}`, earliest first. MongoDB serves that
from the `(state, due_at)` index, whatever the queue holds. FerretDB 1.24 hands only the
equality on `state` to its backend and filters and sorts the rest in Go: every claim, and every
"when is the next one due" look, decoded every pending document, and every open incident keeps
one pending (its next escalation step, an hour ahead; a status update reminder). With a
thousand open incidents a timer poll cost FerretDB 40 ms, once per incident opened: the store's
cost grew with the store, exactly during a storm.

So work due beyond a horizon is stored `parked`, not `pending`: the claims never read it. Each
claiming process moves parked work that comes within `NEAR` of its clock to `pending`
(`promote`, one `update_many`) at most every `EVERY`, and at its first claim. The horizon is
the last promotion's time plus `NEAR`; before this process promoted anything it has none and
everything is stored `pending` (always correct, only costlier), and so it is while its last
promotion is older than `STALE_SECONDS`. Work is promoted at least
`NEAR - EVERY - a poll's sleep` before it is due by any replica that claims, so it fires on
time; a promotion that runs twice (replicas) changes nothing the second time.

    parking = Parking()
    state = parking.state_for(due_at)                   # when arming: "pending" or "parked"
    await parking.promote_if_due(collection, now)       # before claiming
    {"state": {"$in": list(LIVE)}}                      # cancel / list: both states

Versions before this module neither claim nor promote parked work: before rolling back to one,
make it pending again (`updateMany({state: "parked"}, {$set: {state: "pending"}})` on
`escalation_timers` and `escalation_reminders`), or those timers and reminders never fire.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from tocsin.runtime.store import DocumentCollection

PENDING: Final = "pending"
PARKED: Final = "parked"
LIVE: Final = (PENDING, PARKED)  # armed and not finished: `{"state": {"$in": list(LIVE)}}`

NEAR = timedelta(seconds=60)  # work due within this of the last promotion is pending
EVERY = timedelta(seconds=20)  # the longest a claiming process goes between promotions
# A horizon older than this (by the process's own monotonic clock) is not trusted: a claiming
# loop that stalled (a slow firing, a store outage) would park work another replica's last
# promotion already passed, and that work would wait for the next one. Stale: store pending.
STALE_SECONDS = EVERY.total_seconds() + 5.0


def state_for(due_at: datetime, promoted_at: datetime | None) -> str:
    """Where work due at `due_at` is stored, given this process's last promotion."""
    if promoted_at is None or due_at <= promoted_at + NEAR:
        return PENDING
    return PARKED


def promotion_due(now: datetime, promoted_at: datetime | None) -> bool:
    """Whether to promote before claiming at `now` (a clock that went back promotes too)."""
    return promoted_at is None or now - promoted_at >= EVERY or now < promoted_at


class Parking:
    """One process's horizon for one queue (a store holds one per collection)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._promoted_at: datetime | None = None
        self._promoted_mono = 0.0

    def state_for(self, due_at: datetime) -> str:
        if self._monotonic() - self._promoted_mono > STALE_SECONDS:
            return PENDING
        return state_for(due_at, self._promoted_at)

    async def promote_if_due(self, collection: DocumentCollection, now: datetime) -> None:
        if not promotion_due(now, self._promoted_at):
            return
        await collection.update_many(
            {"state": PARKED, "due_at": {"$lte": now + NEAR}}, {"$set": {"state": PENDING}}
        )
        self._promoted_at = now
        self._promoted_mono = self._monotonic()
