"""Notifier: `notifications.requested` in, pages out, once per `notification_id`.

The consumer only queues a notification in the store (durable before the offset commits) and
wakes the delivery loop. The loop claims due notifications with a lease and delivers several
at once, so one slow or dead webhook never holds up anyone else's page; a failed attempt is
retried with backoff, durably, until the last attempt marks it failed.

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
from datetime import timedelta

from prometheus_client import Counter, Histogram

from schemas import (
    NOTIFICATIONS_RESULTS,
    DeliveryOutcome,
    NotificationRequested,
    NotificationResult,
)
from services.notifier.channels import Channel, DeliveryFailed
from services.notifier.store import ClaimedNotification, NotifierStore
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.backoff import Random, backoff_delay
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.consumer import UNAVAILABLE

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("3e2a9d4c-51f0-4c8b-a7e6-94b1c0d2f311")

DELIVERIES = Counter(
    "tocsin_notifier_deliveries_total", "Notification outcomes by channel.", ["channel", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "tocsin_notifier_delivery_seconds", "Time spent delivering one notification.", ["channel"]
)


class Delivery:
    def __init__(
        self,
        bus: Bus,
        store: NotifierStore,
        config: TocsinConfig,
        channels: Mapping[str, Channel],
        clock: Clock,
        owner: str,
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.5,
        backoff_cap_seconds: float = 30.0,
        random_source: Random = random.random,
        concurrency: int = 16,
        # One attempt takes at most the webhook timeout (5 s); a lease a few times that lets a
        # restarted process retake what a crashed one had claimed soon enough.
        lease: timedelta = timedelta(seconds=15),
        poll_seconds: float = 0.25,
    ) -> None:
        self._bus = bus
        self._store = store
        self._config = config
        self._channels = channels
        self._clock = clock
        self._owner = owner
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._backoff_cap = backoff_cap_seconds
        self._random = random_source
        self._concurrency = concurrency
        self._lease = lease
        self._poll = poll_seconds
        self._wakeup = asyncio.Event()

    async def handle(self, request: NotificationRequested) -> None:
        """Queue the notification (idempotent on its id) and wake the delivery loop."""
        await self._store.record(request, self._clock.now())
        self._wakeup.set()

    async def run(self) -> None:
        """Claim due notifications and deliver up to `concurrency` of them at once."""
        in_flight: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            self._wakeup.set()  # a slot is free

        unavailable_for = 0
        try:
            while True:
                self._wakeup.clear()
                while len(in_flight) < self._concurrency:
                    now = self._clock.now()
                    try:
                        claimed = await self._store.claim_due(now, self._owner, self._lease)
                    except UNAVAILABLE as error:
                        unavailable_for += 1
                        delay = backoff_delay(
                            unavailable_for, base=0.5, cap=10.0, random=self._random
                        )
                        log.warning(
                            "delivery loop: store unavailable (%s); retrying in %.1fs",
                            error,
                            delay,
                        )
                        await asyncio.sleep(delay)
                        break
                    unavailable_for = 0
                    if claimed is None:
                        break
                    task = asyncio.create_task(self._attempt(claimed))
                    in_flight.add(task)
                    task.add_done_callback(done)
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll)
                except TimeoutError:
                    pass
        finally:
            # Stopping: attempts in flight stay pending under their lease and are claimed
            # again when it lapses (by this process after a restart, or another replica).
            for task in list(in_flight):
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _attempt(self, claimed: ClaimedNotification) -> None:
        try:
            await self._deliver(claimed)
        except Exception:
            # The notification stays pending under our lease; when the lease lapses it is
            # claimed again. Log it: a store or bus failure here is an operator's problem.
            log.exception("delivering %s failed", claimed.request.notification_id)

    async def _deliver(self, claimed: ClaimedNotification) -> None:
        request, attempt = claimed.request, claimed.attempt
        user = self._config.user(request.recipient.user_id)
        contact = next(
            (c for c in (user.contacts if user else ()) if c.id == request.recipient.contact_id),
            None,
        )
        if contact is None or contact.type not in self._channels:
            await self._give_up(request, attempt, "unknown contact", "unknown")
            return
        try:
            with DELIVERY_SECONDS.labels(contact.type).time():
                await self._channels[contact.type].send(contact, request)
        except DeliveryFailed as failure:
            log.warning(
                "notification %s to %s/%s failed (attempt %d): %s",
                request.notification_id,
                request.recipient.user_id,
                contact.id,
                attempt,
                failure,
            )
            if failure.retryable and attempt < self._attempts:
                delay = backoff_delay(
                    attempt, base=self._backoff, cap=self._backoff_cap, random=self._random
                )
                due = self._clock.now() + timedelta(seconds=delay)
                await self._store.retry_at(request.notification_id, self._owner, due, str(failure))
            else:
                await self._give_up(request, attempt, str(failure), contact.type)
            return
        now = self._clock.now()
        await self._store.delivered(request.notification_id, self._owner, now)
        DELIVERIES.labels(contact.type, "delivered").inc()
        log.info(
            "paged %s via %s: %s %s",
            request.recipient.user_id,
            contact.id,
            request.event.value,
            request.incident.id,
        )
        await self._publish(request, DeliveryOutcome.DELIVERED, attempt, None)

    async def _give_up(
        self, request: NotificationRequested, attempt: int, error: str, channel: str
    ) -> None:
        await self._store.failed(request.notification_id, self._owner, self._clock.now(), error)
        DELIVERIES.labels(channel, "failed").inc()
        await self._publish(request, DeliveryOutcome.FAILED, attempt, error)

    async def _publish(
        self,
        request: NotificationRequested,
        outcome: DeliveryOutcome,
        attempt: int,
        error: str | None,
    ) -> None:
        await self._bus.publish(
            NOTIFICATIONS_RESULTS,
            request.incident.id,
            NotificationResult(
                event_id=uuid.uuid5(_NAMESPACE, f"{request.notification_id}/{outcome.value}"),
                occurred_at=self._clock.now(),
                correlation_id=request.correlation_id,
                notification_id=request.notification_id,
                incident_id=request.incident.id,
                outcome=outcome,
                attempt=attempt,
                error=error,
                event=request.event,
                recipient=request.recipient,
                escalation_level=request.escalation_level,
            ),
        )
