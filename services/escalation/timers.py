"""Escalation's timer loop: claim due timers with a lease and fire them (through the engine),
and carry out outboxes a crash left behind.

Timers are documents (`due_at`, a lease), so a restart or a second replica never loses or
double-fires one. The loop never stops on one document: a timer whose firing keeps failing is
retried with jittered backoff a bounded number of times, then quarantined with its reason; an
outbox that cannot be carried out is skipped until the next sweep. Only the store or the bus
being unavailable pauses the whole loop (with backoff), since nothing could progress then.

Idle, the loop does not poll: it sleeps until the next pending timer is due (or its lease
ends), and wakes at once when this process arms one; it looks again at least every
`IDLE_SECONDS` for timers other replicas armed. Outboxes a crash left behind are swept every
`_SWEEP_EVERY` from the small collection that names pending outboxes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta
from typing import Protocol

from services.escalation.metrics import QUARANTINED, TIMERS_FIRED
from services.escalation.store import EscalationStore, Timer
from tocsin.runtime.backoff import backoff_delay
from tocsin.runtime.clock import Clock
from tocsin.runtime.consumer import UNAVAILABLE
from tocsin.runtime.waiting import wait_or_timeout

log = logging.getLogger(__name__)

TIMER_ATTEMPTS = 5  # failed firings of one timer before it is quarantined
_STALE_OUTBOX = timedelta(seconds=10)
_SWEEP_EVERY = timedelta(seconds=5)
IDLE_SECONDS = 5.0  # the longest sleep: a timer another replica armed waits at most this


class Fires(Protocol):
    async def fire(self, timer: Timer) -> None: ...

    async def flush(self, incident_id: str) -> None: ...


class TimerLoop:
    def __init__(
        self,
        engine: Fires,
        store: EscalationStore,
        clock: Clock,
        owner: str,
        *,
        lease: timedelta,
        poll_seconds: float,
    ) -> None:
        self._engine = engine
        self._store = store
        self._clock = clock
        self._owner = owner
        self._lease = lease
        self._poll = poll_seconds

    async def run(self) -> None:
        """Claim due timers with a lease and fire them; sweep outboxes a crash left behind."""
        unavailable = 0
        next_sweep = self._clock.now()
        while True:
            try:
                self._store.timer_armed.clear()
                fired = await self.fire_due()
                if self._clock.now() >= next_sweep:
                    for incident_id in await self._store.with_stale_outbox(
                        self._clock.now() - _STALE_OUTBOX, limit=50
                    ):
                        await self._flush_left_behind(incident_id)
                    next_sweep = self._clock.now() + _SWEEP_EVERY
                idle = 0.0 if fired else await self._idle_seconds(next_sweep)
            except UNAVAILABLE as error:
                # Timers and outboxes are durable: a claimed timer is retaken after its lease.
                log.warning(
                    "timer loop: %s unavailable (%s); retrying", type(error).__name__, error
                )
                fired = 0
                unavailable += 1
                await asyncio.sleep(
                    backoff_delay(unavailable, base=0.5, cap=10.0, random=random.random)
                )
                continue
            unavailable = 0
            if idle > 0:
                await wait_or_timeout(self._store.timer_armed, idle)

    async def _idle_seconds(self, next_sweep: datetime) -> float:
        """How long to sleep: until the next timer is due or the next sweep, within
        [poll_seconds, IDLE_SECONDS]."""
        now = self._clock.now()
        wake = min(next_sweep, now + timedelta(seconds=IDLE_SECONDS))
        due = await self._store.next_timer_due()
        if due is not None:
            wake = min(wake, due)
        return max((wake - now).total_seconds(), self._poll)

    async def _flush_left_behind(self, incident_id: str) -> None:
        try:
            await self._engine.flush(incident_id)
            await self._store.forget_outbox(incident_id)
        except UNAVAILABLE:
            raise
        except Exception:
            # One incident's outbox that cannot be carried out must not stop the loop (and
            # every other incident's timers with it); it is retried on the next sweep.
            QUARANTINED.labels(kind="outbox").inc()
            log.exception("incident %s: carrying out its outbox failed", incident_id)

    async def fire_due(self, limit: int = 100) -> int:
        fired = 0
        while fired < limit:
            timer = await self._store.claim_due_timer(self._clock.now(), self._owner, self._lease)
            if timer is None:
                break
            try:
                await self._engine.fire(timer)
            except UNAVAILABLE:
                raise
            except Exception as error:
                await self._timer_failed(timer, error)
                continue
            await self._store.finish_timer(timer.id, self._owner)
            TIMERS_FIRED.labels(kind=timer.kind).inc()
            fired += 1
        return fired

    async def _timer_failed(self, timer: Timer, error: Exception) -> None:
        """A timer whose firing fails (a bug, a document that no longer reads) is retried a
        bounded number of times with backoff, then quarantined: the loop never stops on it."""
        failures = timer.failures + 1
        reason = f"{type(error).__name__}: {error}"
        if failures >= TIMER_ATTEMPTS:
            log.exception("timer %s failed %d times; quarantined", timer.id, failures)
            QUARANTINED.labels(kind="timer").inc()
            await self._store.retry_timer(timer.id, self._owner, reason, None)
            return
        delay = backoff_delay(failures, base=1.0, cap=60.0, random=random.random)
        log.warning("timer %s failed (%s); retrying in %.1fs", timer.id, reason, delay)
        await self._store.retry_timer(
            timer.id, self._owner, reason, self._clock.now() + timedelta(seconds=delay)
        )
