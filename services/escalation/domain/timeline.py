"""What happened to an incident, in order: transitions, pages, delivery statuses and outcomes
(pure).

Each entry has a deterministic id derived from what caused it (the transition's cause, the
notification id, the result), so writing one twice after a crash stores it once. Entries live
in their own collection (see store.py); the incident document stays the same size.

Who is paged next when a contact fails (`contact_order`, `next_contact`) is decided here too:
a user's contacts in the order of their notification rules, then their other contacts in the
order the configuration declares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from schemas import Contract, NotificationEvent


class Entry(StrEnum):
    """Timeline actions besides the lifecycle's own (`acknowledge`, `resolve`, ...)."""

    TRIGGERED = "triggered"
    PAGED = "paged"  # a page (incident.triggered / incident.escalated) was sent
    NOTIFIED = "notified"  # a status notice (incident.acknowledged / incident.resolved) was sent
    QUEUED = "queued"  # not final: the provider accepted the page
    SENT = "sent"  # not final: the provider handed it on (an SMS sent, a call ringing)
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"  # final: the notifier gave up on that contact
    NEXT_CONTACT = "next_contact"  # a failed contact's next one is paged instead
    NO_CONTACT_LEFT = "no_contact_left"
    SEVERITY_CHANGED = "severity_changed"
    ON_CALL = "on_call"  # who a schedule target reached when its level paged
    ALL_LEVELS = "all_levels"  # every level paged at once (page_all_levels_at)
    REMINDED = "reminded"  # a reminder paged someone (a review or action item due, ...)
    NOTE = "note"  # an operator's note
    ALERT_ADDED = "alert_added"  # triage grouped another alert into the incident
    ALERT_HELD = "alert_held"  # triage held back a related alert (silenced, inhibited, ...)
    ALERTS_RESOLVED = "alerts_resolved"  # every alert of the incident resolved
    REVIEW = "review"  # the post-incident review was started or changed status
    ACTION_ITEM = "action_item"  # an action item was added or changed status
    URGENCY_RAISED = "urgency_raised"  # a raised severity made a triggered incident urgent


class TimelineEntry(Contract):
    id: str
    at: datetime
    action: str
    actor: str | None = None
    user_id: str | None = None
    contact_id: str | None = None
    level: int | None = None
    event: NotificationEvent | None = None
    notification_id: str | None = None
    detail: str | None = None


_PAGES = (NotificationEvent.TRIGGERED, NotificationEvent.ESCALATED)


def sent_entry(
    notification_id: str,
    user_id: str,
    contact_id: str,
    level: int,
    event: NotificationEvent,
    at: datetime,
) -> TimelineEntry:
    return TimelineEntry(
        id=f"sent:{notification_id}",
        at=at,
        action=Entry.PAGED if event in _PAGES else Entry.NOTIFIED,
        user_id=user_id,
        contact_id=contact_id,
        level=level,
        event=event,
        notification_id=notification_id,
    )


def contact_order(rule_contacts: Sequence[str], contacts: Sequence[str]) -> tuple[str, ...]:
    """The order in which a user's contacts are tried when one fails."""
    order: list[str] = []
    for contact in (*rule_contacts, *contacts):
        if contact not in order:
            order.append(contact)
    return tuple(order)


def next_contact(order: Sequence[str], failed: str) -> str | None:
    """The contact after `failed`, or None when it was the last (or is no longer known)."""
    if failed not in order:
        return None
    position = order.index(failed)
    return order[position + 1] if position + 1 < len(order) else None


def sibling_notification_id(notification_id: str, failed: str, contact: str) -> str:
    """The id of the same notification sent to `contact`.

    Escalation's ids end with `/<contact id>` (outbox.py), so the fallback to a contact gets
    the id that contact's own notification rule would use for the same step: the notifier
    then sends it once, whether the fallback or the delayed rule asks first."""
    suffix = f"/{failed}"
    if notification_id.endswith(suffix):
        return notification_id[: -len(suffix)] + f"/{contact}"
    return f"{notification_id}/next/{contact}"
