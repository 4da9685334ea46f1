"""Notifier: `notifications.requested` in, pages out, once per `notification_id`.

The consumer only queues a notification in the store (durable before the offset commits) and
wakes the delivery loop. The loop claims due notifications with a lease and delivers several
at once, so one slow or dead webhook never holds up anyone else's page. A failed attempt is
retried with backoff, durably, for the retry period (see domain.py); then the notification is
marked failed. An unexpected error (not the channel's `DeliveryFailed`) is retried a few
times, then the request is dead-lettered to `notifications.requested.dlq` and marked failed.
A channel may also answer `Deferred`: the page is held by a contact's rate limit, or the
provider took it and its delivery receipt is awaited; it goes back to the queue, due then (not
counted as an attempt). The final outcome goes to `notifications.results` (once per
outcome; the store's outbox field republishes it after a crash), and escalation pages the next
contact method on a failure. Before it, a provider that reports progress adds non-final
statuses (statuses.py): `queued` when it took the message (the channel's `Accepted`), `sent`
from its callbacks; they only go on the timeline.

A delivered notification is never sent again. A crash after the provider accepted but before
the outcome was stored can resend it once, after the lease; the body carries the same
`notification_id` (and an `Idempotency-Key` header) so receivers can drop the copy.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from schemas import (
    NOTIFICATIONS_REQUESTED,
    NOTIFICATIONS_RESULTS,
    DeadLetter,
    DeliveryOutcome,
    NotificationRequested,
    NotificationResult,
    dlq_topic,
)
from services.notifier.channels import Channel, Deferred, DeliveryFailed
from services.notifier.channels.accepted import Accepted
from services.notifier.config import ContactConfig, NotifierConfig
from services.notifier.domain.retry import (
    DEFAULT_RETRY,
    RetryPolicy,
    retry_after_error,
    retry_after_failure,
)
from services.notifier.metrics import (
    DELIVERIES,
    DELIVERY_LATENCY,
    DELIVERY_SECONDS,
    TIME_TO_PAGE,
    time_to_page,
)
from services.notifier.statuses import StatusReporter
from services.notifier.store import ClaimedNotification, NotifierStore
from tocsin.runtime.backoff import Random, backoff_delay
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.consumer import UNAVAILABLE
from tocsin.runtime.live_config import Current, Fixed
from tocsin.runtime.metrics import DEAD_LETTERED
from tocsin.runtime.telemetry import context_of, current_traceparent, tracer
from tocsin.runtime.waiting import wait_or_timeout

log = logging.getLogger(__name__)

_TRACER = tracer(__name__)
_NAMESPACE = uuid.UUID("3e2a9d4c-51f0-4c8b-a7e6-94b1c0d2f311")


class Delivery:
    def __init__(
        self,
        bus: Bus,
        store: NotifierStore,
        config: NotifierConfig | Current[NotifierConfig],
        channels: Mapping[str, Channel],
        clock: Clock,
        owner: str,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        random_source: Random = random.random,
        concurrency: int = 16,
        # One attempt takes at most the webhook timeout (5 s); a lease a few times that lets a
        # restarted process retake what a crashed one had claimed soon enough.
        lease: timedelta = timedelta(seconds=15),
        # Idle, the loop sleeps until the next notification is due (at least this long, at
        # most `idle_seconds`: what another replica queued waits at most that) or a wake-up.
        poll_seconds: float = 0.25,
        idle_seconds: float = 5.0,
        # How often to look for final results a crash or a bus outage left unpublished.
        sweep_every: timedelta = timedelta(seconds=5),
    ) -> None:
        self._bus = bus
        self._store = store
        # Read at each delivery: a reload's contacts reach the next one.
        self._live = Fixed(config) if isinstance(config, NotifierConfig) else config
        self._channels = channels
        self._clock = clock
        self._owner = owner
        self._retry = retry
        self._random = random_source
        self._concurrency = concurrency
        self._lease = lease
        self._poll = poll_seconds
        self._idle = idle_seconds
        self._sweep_every = sweep_every
        self._wakeup = asyncio.Event()
        self._statuses = StatusReporter(bus, store)

    async def handle(self, request: NotificationRequested) -> None:
        """Queue the notification (idempotent on its id) and wake the delivery loop. The
        queued request keeps this trace's context: the delivery loop continues it."""
        if request.traceparent is None:
            request = request.model_copy(update={"traceparent": current_traceparent()})
        await self._store.record(request, self._clock.now())
        self._wakeup.set()

    def wake(self) -> None:
        """Something made a queued notification due now (a provider's final status): claim."""
        self._wakeup.set()

    async def run(self) -> None:
        """Claim due notifications and deliver up to `concurrency` of them at once."""
        in_flight: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            self._wakeup.set()  # a slot is free

        unavailable_for = 0
        next_sweep = self._clock.now()
        try:
            while True:
                self._wakeup.clear()
                try:
                    if self._clock.now() >= next_sweep:
                        await self.publish_unreported()
                        next_sweep = self._clock.now() + self._sweep_every
                    while len(in_flight) < self._concurrency:
                        now = self._clock.now()
                        claimed = await self._store.claim_due(now, self._owner, self._lease)
                        if claimed is None:
                            break
                        task = asyncio.create_task(self._attempt(claimed))
                        in_flight.add(task)
                        task.add_done_callback(done)
                    idle = await self._idle_seconds(next_sweep, busy=bool(in_flight))
                    unavailable_for = 0
                except UNAVAILABLE as error:
                    unavailable_for += 1
                    delay = backoff_delay(unavailable_for, base=0.5, cap=10.0, random=self._random)
                    log.warning(
                        "delivery loop: %s unavailable (%s); retrying in %.1fs",
                        type(error).__name__,
                        error,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                await wait_or_timeout(self._wakeup, idle)
        finally:
            # Stopping: attempts in flight stay pending under their lease and are claimed
            # again when it lapses (by this process after a restart, or another replica).
            for task in list(in_flight):
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _idle_seconds(self, next_sweep: datetime, *, busy: bool) -> float:
        """How long to wait for a wake-up: until the next notification is due or the next
        sweep, within [poll_seconds, idle_seconds]. With attempts in flight, their end wakes
        the loop."""
        now = self._clock.now()
        wake = min(next_sweep, now + timedelta(seconds=self._idle))
        if not busy:
            due = await self._store.next_due()
            if due is not None:
                wake = min(wake, due)
        else:
            wake = min(wake, now + timedelta(seconds=self._poll))
        return max((wake - now).total_seconds(), self._poll)

    async def publish_unreported(self, limit: int = 100) -> int:
        """Publish final results a crash or a bus outage left unpublished; how many."""
        published = 0
        while published < limit:
            result = await self._store.claim_unreported(self._clock.now(), self._owner, self._lease)
            if result is None:
                break
            await self._report(result)
            published += 1
        return published

    async def _attempt(self, claimed: ClaimedNotification) -> None:
        notification_id = claimed.request.notification_id
        try:
            try:
                await self._deliver(claimed)
            except UNAVAILABLE:
                raise
            except Exception as error:
                # Not the channel's own failure: a bug or a malformed contact. Bounded retries,
                # then the dead-letter topic and a failed result, never a retry forever.
                log.exception("delivering %s raised %s", notification_id, type(error).__name__)
                await self._after_error(claimed, error)
        except UNAVAILABLE as error:
            # The store or the bus is down: the notification stays pending under our lease and
            # is claimed again when it lapses; the page is not at fault.
            log.warning(
                "delivering %s: %s unavailable (%s); retried after the lease",
                notification_id,
                type(error).__name__,
                error,
            )
        except Exception:
            # Recording the error failed too: the notification stays pending under our lease.
            log.exception("recording the outcome of %s failed", notification_id)

    def _contact(self, request: NotificationRequested) -> ContactConfig | None:
        return self._live.current.contact(request.recipient.user_id, request.recipient.contact_id)

    async def _deliver(self, claimed: ClaimedNotification) -> None:
        request, attempt = claimed.request, claimed.attempt
        contact = self._contact(request)
        if contact is None or contact.type not in self._channels:
            await self._finish(claimed, DeliveryOutcome.FAILED, "unknown contact", "unknown")
            return
        try:
            with (
                _TRACER.start_as_current_span(
                    f"deliver {contact.type}", context=context_of(request.traceparent)
                ) as span,
                DELIVERY_SECONDS.labels(contact.type).time(),
            ):
                span.set_attribute("tocsin.channel", contact.type)
                span.set_attribute("tocsin.attempt", attempt)
                await self._channels[contact.type].send(contact, request)
        except Deferred as deferred:
            # Not an attempt: a rate limit holds the page, or a provider's receipt is awaited.
            log.debug("notification %s deferred: %s", request.notification_id, deferred)
            await self._store.defer(
                request.notification_id, self._owner, deferred.until, self._clock.now()
            )
            if isinstance(deferred, Accepted):
                # The provider took the message: each page it carries is queued.
                await self._statuses.report(
                    deferred.notification_ids, DeliveryOutcome.QUEUED, deferred.at
                )
            return
        except DeliveryFailed as failure:
            now = self._clock.now()
            due = (
                retry_after_failure(
                    self._retry,
                    attempt=attempt,
                    first_attempt_at=claimed.first_attempt_at,
                    now=now,
                    random=self._random,
                )
                if failure.retryable
                else None
            )
            log.warning(
                "notification %s to %s/%s failed (attempt %d): %s; %s",
                request.notification_id,
                request.recipient.user_id,
                contact.id,
                attempt,
                failure,
                f"retrying in {(due - now).total_seconds():.1f}s" if due else "giving up",
            )
            if due is not None:
                await self._store.retry_at(
                    request.notification_id,
                    self._owner,
                    due,
                    str(failure),
                    first_attempt_at=claimed.first_attempt_at,
                )
            else:
                await self._finish(claimed, DeliveryOutcome.FAILED, str(failure), contact.type)
            return
        log.info(
            "paged %s via %s: %s %s",
            request.recipient.user_id,
            contact.id,
            request.event.value,
            request.incident.id,
        )
        await self._finish(claimed, DeliveryOutcome.DELIVERED, None, contact.type)

    async def _after_error(self, claimed: ClaimedNotification, error: Exception) -> None:
        request, errors, now = claimed.request, claimed.errors + 1, self._clock.now()
        # The message may hold details that do not belong on a timeline: the type says enough
        # there; the dead letter (for operators) carries the message too.
        summary = f"unexpected error: {type(error).__name__}"
        due = retry_after_error(self._retry, errors=errors, now=now, random=self._random)
        if due is not None:
            await self._store.retry_at(
                request.notification_id,
                self._owner,
                due,
                summary,
                first_attempt_at=claimed.first_attempt_at,
                errors=errors,
            )
            return
        await self._bus.publish(
            dlq_topic(NOTIFICATIONS_REQUESTED),
            request.incident.id,
            DeadLetter(
                event_id=uuid.uuid5(_NAMESPACE, f"{request.notification_id}/dead-letter"),
                occurred_at=now,
                correlation_id=request.correlation_id,
                topic=NOTIFICATIONS_REQUESTED,
                key=request.incident.id,
                error=f"{type(error).__name__}: {error}"[:8192],
                attempts=claimed.attempt,
                payload=request.model_dump_json(),
            ),
        )
        DEAD_LETTERED.labels(topic=NOTIFICATIONS_REQUESTED).inc()
        contact = self._contact(request)
        await self._finish(
            claimed, DeliveryOutcome.FAILED, summary, contact.type if contact else "unknown"
        )

    async def _finish(
        self,
        claimed: ClaimedNotification,
        outcome: DeliveryOutcome,
        error: str | None,
        channel: str,
    ) -> None:
        """Record the final outcome with its result (one update), then publish the result."""
        request, now = claimed.request, self._clock.now()
        result = NotificationResult(
            event_id=uuid.uuid5(_NAMESPACE, f"{request.notification_id}/{outcome.value}"),
            occurred_at=now,
            correlation_id=request.correlation_id,
            notification_id=request.notification_id,
            incident_id=request.incident.id,
            outcome=outcome,
            attempt=claimed.attempt,
            error=error,
            event=request.event,
            recipient=request.recipient,
            escalation_level=request.escalation_level,
        )
        if outcome is DeliveryOutcome.DELIVERED:
            recorded = await self._store.delivered(
                request.notification_id, self._owner, now, result=result
            )
        else:
            recorded = await self._store.failed(
                request.notification_id, self._owner, now, error or "", result=result
            )
        if not recorded:
            # Our lease lapsed mid-attempt and another worker took the notification over: its
            # attempt decides the outcome, and it reports it.
            log.warning("lost the lease on %s; not reporting", request.notification_id)
            return
        DELIVERIES.labels(channel, outcome.value).inc()
        if outcome is DeliveryOutcome.DELIVERED:
            latency = (now - request.occurred_at).total_seconds()
            DELIVERY_LATENCY.labels(channel).observe(max(latency, 0.0))
            first_page = time_to_page(request, now)
            # Once per incident: the first level may page several people, and a reopened
            # incident pages again; only the first delivered page is the time to page.
            if first_page is not None and await self._store.first_page(request.incident.id, now):
                TIME_TO_PAGE.labels(channel).observe(first_page)
        await self._report(result)

    async def _report(self, result: NotificationResult) -> None:
        await self._bus.publish(NOTIFICATIONS_RESULTS, result.incident_id, result)
        await self._store.reported(result.notification_id, self._owner)
