"""Notifier's handler of `notifications.requested`: deliver once per `notification_id`.

A delivered notification is never sent again. A crash after the provider accepted but before
the outcome was stored can resend it once; the body carries the same `notification_id` (and an
`Idempotency-Key` header) so receivers can drop the copy.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping

from prometheus_client import Counter, Histogram

from schemas import (
    NOTIFICATIONS_RESULTS,
    DeliveryOutcome,
    NotificationRequested,
    NotificationResult,
)
from services.notifier.channels import Channel, DeliveryFailed
from services.notifier.store import NotifierStore
from tocsin.bus import Bus
from tocsin.clock import Clock
from tocsin.config import TocsinConfig

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
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.5,
    ) -> None:
        self._bus = bus
        self._store = store
        self._config = config
        self._channels = channels
        self._clock = clock
        self._attempts = attempts
        self._backoff = backoff_seconds

    async def handle(self, request: NotificationRequested) -> None:
        record = await self._store.begin(request, self._clock.now())
        if record.state != "pending":
            return  # delivered or given up already: never page twice for one notification
        user = self._config.user(request.recipient.user_id)
        contact = next(
            (c for c in (user.contacts if user else ()) if c.id == request.recipient.contact_id),
            None,
        )
        if contact is None or contact.type not in self._channels:
            await self._finish(
                request, DeliveryOutcome.FAILED, record.attempts or 1, "unknown contact"
            )
            return
        channel = self._channels[contact.type]
        error = "no attempt made"
        for _ in range(self._attempts):
            attempt = await self._store.record_attempt(request.notification_id, self._clock.now())
            try:
                with DELIVERY_SECONDS.labels(contact.type).time():
                    await channel.send(contact, request)
            except DeliveryFailed as failure:
                error = str(failure)
                log.warning(
                    "notification %s to %s/%s failed (attempt %d): %s",
                    request.notification_id,
                    request.recipient.user_id,
                    contact.id,
                    attempt,
                    error,
                )
                if not failure.retryable:
                    break
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            else:
                DELIVERIES.labels(contact.type, "delivered").inc()
                await self._finish(request, DeliveryOutcome.DELIVERED, attempt, None)
                log.info(
                    "paged %s via %s: %s %s",
                    request.recipient.user_id,
                    contact.id,
                    request.event.value,
                    request.incident.id,
                )
                return
        DELIVERIES.labels(contact.type, "failed").inc()
        await self._finish(request, DeliveryOutcome.FAILED, max(record.attempts, 1), error)

    async def _finish(
        self,
        request: NotificationRequested,
        outcome: DeliveryOutcome,
        attempt: int,
        error: str | None,
    ) -> None:
        now = self._clock.now()
        state = "delivered" if outcome is DeliveryOutcome.DELIVERED else "failed"
        await self._store.finish(request.notification_id, state, now, error)
        await self._bus.publish(
            NOTIFICATIONS_RESULTS,
            request.incident.id,
            NotificationResult(
                event_id=uuid.uuid5(_NAMESPACE, f"{request.notification_id}/{state}"),
                occurred_at=now,
                correlation_id=request.correlation_id,
                notification_id=request.notification_id,
                incident_id=request.incident.id,
                outcome=outcome,
                attempt=max(attempt, 1),
                error=error,
            ),
        )
