"""`notifications.results` in: each notification's statuses go on its incident's timeline:
the non-final ones (queued, sent; entry id `status:{notification_id}/{status}`) only that, the
final one (`result:{notification_id}`) too, and a failed one pages the same person's next
contact method (in the order of their notification rules, then their other contacts), once:
the fallback's notification id is the one that contact's own rule would use for the same step,
so the notifier sends it once whoever asks first. When no contact is left, the timeline says so.

A failed page (triggered, escalated) falls back only while the incident is still triggered; a
failed status notice (acknowledged, resolved) falls back too, so the person learns of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from schemas import (
    NOTIFICATIONS_REQUESTED,
    DeliveryOutcome,
    NotificationEvent,
    NotificationResult,
)
from services.escalation.config import EscalationConfig
from services.escalation.domain.lifecycle import Status
from services.escalation.domain.outbox import SendNotification
from services.escalation.domain.timeline import (
    Entry,
    TimelineEntry,
    contact_order,
    next_contact,
    sibling_notification_id,
)
from services.escalation.pages import page_request, sent_entry_of
from services.escalation.store import EscalationStore
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.live_config import Current

log = logging.getLogger(__name__)

_PAGES = (NotificationEvent.TRIGGERED, NotificationEvent.ESCALATED)


class DeliveryResults:
    def __init__(
        self,
        bus: Bus,
        store: EscalationStore,
        config: Current[EscalationConfig],
        clock: Clock,
        *,
        public_url: str | None = None,
    ) -> None:
        self._bus = bus
        self._store = store
        self._config = config
        self._orders: tuple[EscalationConfig, Mapping[str, tuple[str, ...]]] | None = None
        self._clock = clock
        self._public_url = public_url

    def _contact_order(self, user_id: str) -> tuple[str, ...]:
        config = self._config.current  # as it is now: a reload may have changed contacts
        if self._orders is None or self._orders[0] is not config:
            orders = {
                user.id: contact_order(
                    [r.contact for r in user.notification_rules], user.contact_ids
                )
                for user in config.users
            }
            self._orders = (config, orders)
        return self._orders[1].get(user_id, ())

    async def on_notification_result(self, result: NotificationResult) -> None:
        """Put the status on the timeline; after a final failure, page the same person's next
        contact method (once: the fallback's id is deterministic), or say none is left. A
        non-final status (queued, sent) never pages anyone."""
        if not result.outcome.final:
            await self._store.record(result.incident_id, [status_entry(result)])
            return
        entries = [result_entry(result)]
        if result.outcome is DeliveryOutcome.FAILED:
            entries.extend(await self._next_contact(result))
        await self._store.record(result.incident_id, entries)

    async def _next_contact(self, result: NotificationResult) -> list[TimelineEntry]:
        incident = await self._store.get(result.incident_id)
        if incident is None:
            return []
        if result.event in _PAGES and incident.lifecycle.status is not Status.TRIGGERED:
            return []  # acknowledged or resolved since: nobody needs paging any more
        user, failed = result.recipient.user_id, result.recipient.contact_id
        base = TimelineEntry(
            id=f"result:{result.notification_id}/next",
            at=result.occurred_at,
            action=Entry.NO_CONTACT_LEFT,
            user_id=user,
            contact_id=failed,
            level=result.escalation_level,
            event=result.event,
            notification_id=result.notification_id,
            detail=f"{failed} failed and {user} has no other contact",
        )
        contact = next_contact(self._contact_order(user), failed)
        if contact is None:
            log.warning("incident %s: no contact of %s left after %s", incident.id, user, failed)
            return [base]
        send = SendNotification(
            id=f"send:{result.notification_id}/next",
            notification_id=sibling_notification_id(result.notification_id, failed, contact),
            user_id=user,
            contact_id=contact,
            event=result.event,
            escalation_level=result.escalation_level,
        )
        await self._bus.publish(
            NOTIFICATIONS_REQUESTED,
            incident.id,
            page_request(incident, send, self._clock.now(), self._public_url),
        )
        return [
            base.model_copy(
                update={
                    "action": Entry.NEXT_CONTACT,
                    "contact_id": contact,
                    "notification_id": send.notification_id,
                    "detail": f"{failed} failed; paging {user} on {contact}",
                }
            ),
            sent_entry_of(send, result.occurred_at),
        ]


def result_entry(result: NotificationResult) -> TimelineEntry:
    delivered = result.outcome is DeliveryOutcome.DELIVERED
    return TimelineEntry(
        id=f"result:{result.notification_id}",
        at=result.occurred_at,
        action=Entry.DELIVERED if delivered else Entry.DELIVERY_FAILED,
        user_id=result.recipient.user_id,
        contact_id=result.recipient.contact_id,
        level=result.escalation_level,
        event=result.event,
        notification_id=result.notification_id,
        detail=None if delivered else f"after {result.attempt} attempt(s): {result.error}",
    )


_STATUS_ENTRIES = {DeliveryOutcome.QUEUED: Entry.QUEUED, DeliveryOutcome.SENT: Entry.SENT}


def status_entry(result: NotificationResult) -> TimelineEntry:
    """A non-final status: one entry per notification and status, however often it comes."""
    return TimelineEntry(
        id=f"status:{result.notification_id}/{result.outcome.value}",
        at=result.occurred_at,
        action=_STATUS_ENTRIES[result.outcome],
        user_id=result.recipient.user_id,
        contact_id=result.recipient.contact_id,
        level=result.escalation_level,
        event=result.event,
        notification_id=result.notification_id,
    )
