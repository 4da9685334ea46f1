"""Non-final delivery statuses on `notifications.results`: `queued` when the provider accepted a
page, `sent` when it handed it on (Twilio's `sent` message status, a call ringing). Escalation
puts them on the incident's timeline; only the final outcome (consumers.py) pages anyone.

Each notification of a message (a bundle carries several) gets its own status. The `event_id`
comes from the notification id and the status, so a status reported twice (Twilio's callback
and its `201 queued`, a redelivered callback) is one timeline entry. A notification already
finished gets no more non-final statuses (a late callback must not follow its outcome). A
status that cannot be published is logged and dropped: it is news, not a decision; the final
outcome is stored and published durably.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime

from schemas import NOTIFICATIONS_RESULTS, DeliveryOutcome, NotificationResult
from services.notifier.store import NotifierStore
from tocsin.runtime.bus import Bus, PublishError

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("b7d51c0e-8f2a-4e63-9a1d-5c3e7f90a2b4")

_MESSAGE_PROGRESS = {"queued": DeliveryOutcome.QUEUED, "sent": DeliveryOutcome.SENT}
_CALL_PROGRESS = {"queued": DeliveryOutcome.QUEUED, "ringing": DeliveryOutcome.SENT}


def progress(kind: str, status: str) -> DeliveryOutcome | None:
    """The non-final outcome a Twilio status of an SMS (`kind` sms) or a call (voice) means,
    if any."""
    return (_CALL_PROGRESS if kind == "voice" else _MESSAGE_PROGRESS).get(status)


def status_event_id(notification_id: str, outcome: DeliveryOutcome) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{notification_id}/{outcome.value}")


class StatusReporter:
    def __init__(self, bus: Bus, store: NotifierStore) -> None:
        self._bus = bus
        self._store = store

    async def report(
        self, notification_ids: Sequence[str], outcome: DeliveryOutcome, at: datetime
    ) -> int:
        """Publish `outcome` (non-final) for each notification still pending; how many."""
        if outcome.final:
            raise ValueError(f"{outcome.value} is final: the delivery loop reports it")
        published = 0
        for notification_id in notification_ids:
            pending = await self._store.pending(notification_id)
            if pending is None:
                continue
            request = pending.request
            result = NotificationResult(
                event_id=status_event_id(notification_id, outcome),
                occurred_at=at,
                correlation_id=request.correlation_id,
                notification_id=notification_id,
                incident_id=request.incident.id,
                outcome=outcome,
                attempt=max(pending.attempt, 1),
                event=request.event,
                recipient=request.recipient,
                escalation_level=request.escalation_level,
            )
            try:
                await self._bus.publish(NOTIFICATIONS_RESULTS, request.incident.id, result)
            except PublishError as error:
                log.warning(
                    "%s status of %s not published: %s", outcome.value, notification_id, error
                )
                continue
            published += 1
        return published
