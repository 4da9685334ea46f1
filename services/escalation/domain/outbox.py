"""Turn lifecycle effects into concrete outbox items (pure).

The outbox is stored in the incident document in the same atomic write as the new state, then
carried out and cleared: notification requests, timers to arm or cancel, lifecycle messages and
timeline entries. Every item carries a deterministic id, so carrying one out twice (after
a crash) publishes the same `notification_id` or arms the same timer document again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field

from schemas import Contract, LifecycleStatus, NotificationEvent
from services.escalation.domain.lifecycle import (
    CancelTimers,
    Effect,
    NotifyResponders,
    PageResponder,
    PageStep,
    ScheduleAckTimeout,
    ScheduleEscalation,
)
from services.escalation.domain.timeline import TimelineEntry


@dataclass(frozen=True)
class NotificationRule:
    contact_id: str
    after: timedelta


class SendNotification(Contract):
    type: Literal["send"] = "send"
    id: str
    notification_id: str
    user_id: str
    contact_id: str
    event: NotificationEvent
    escalation_level: int


class ArmTimer(Contract):
    """A durable timer: `escalate` pages a step; `notify` sends a delayed personal rule;
    `ack_timeout` ends an acknowledgement (a snooze)."""

    type: Literal["timer"] = "timer"
    id: str
    timer_id: str
    kind: Literal["escalate", "notify", "ack_timeout"]
    due_at: datetime
    step: int
    cycle: int
    notification: SendNotification | None = None


class CancelPendingTimers(Contract):
    """Cancel the incident's pending timers of `cycle` and earlier (None: every one, as items
    stored before cycles were named did)."""

    type: Literal["cancel_timers"] = "cancel_timers"
    id: str
    cycle: int | None = None


class PublishLifecycle(Contract):
    """Tell `incidents.lifecycle` that the incident moved to `status` (once per transition)."""

    type: Literal["lifecycle"] = "lifecycle"
    id: str
    status: LifecycleStatus
    actor: str | None
    at: datetime


class RecordTimeline(Contract):
    """Write a timeline entry (its id makes the write idempotent)."""

    type: Literal["timeline"] = "timeline"
    id: str
    entry: TimelineEntry


OutboxItem = Annotated[
    SendNotification | ArmTimer | CancelPendingTimers | PublishLifecycle | RecordTimeline,
    Field(discriminator="type"),
]


def timeline_item(entry: TimelineEntry) -> RecordTimeline:
    return RecordTimeline(id=f"timeline:{entry.id}", entry=entry)


def lifecycle_item(
    incident_id: str, status: LifecycleStatus, actor: str | None, at: datetime, cause: str
) -> PublishLifecycle:
    """`cause` is unique to the transition, so its message id is too (and stable on redo)."""
    return PublishLifecycle(
        id=f"lifecycle:{incident_id}/{cause}", status=status, actor=actor, at=at
    )


def _page_items(
    incident_id: str,
    effect: PageStep | PageResponder,
    rules: Mapping[str, Sequence[NotificationRule]],
    now: datetime,
) -> list[OutboxItem]:
    """A page's notifications, one per rule of each user: immediate ones now, delayed ones as
    `notify` timers. An extra responder's page is numbered `r<request>` where a step's is
    `s<step>`, so the two never share an id."""
    if isinstance(effect, PageStep):
        users, key, step, event = effect.users, f"s{effect.step}", effect.step, effect.event
    else:
        users, key, step = (effect.user,), f"r{effect.request}", 0
        event = NotificationEvent.TRIGGERED
    items: list[OutboxItem] = []
    for user_id in users:
        for rule in rules.get(user_id, ()):
            notification_id = f"{incident_id}/c{effect.cycle}/{key}/{user_id}/{rule.contact_id}"
            send = SendNotification(
                id=f"send:{notification_id}",
                notification_id=notification_id,
                user_id=user_id,
                contact_id=rule.contact_id,
                event=event,
                escalation_level=effect.level,
            )
            if rule.after <= timedelta(0):
                items.append(send)
            else:
                items.append(
                    ArmTimer(
                        id=f"timer:{notification_id}",
                        timer_id=f"notify:{notification_id}",
                        kind="notify",
                        due_at=now + rule.after,
                        step=step,
                        cycle=effect.cycle,
                        notification=send,
                    )
                )
    return items


def _responder_items(
    incident_id: str, effect: NotifyResponders, rules: Mapping[str, Sequence[NotificationRule]]
) -> list[OutboxItem]:
    items: list[OutboxItem] = []
    for responder in effect.responders:
        user_id = responder.user
        user_rules = rules.get(user_id, ())
        # Status updates go to the contacts a user is paged on at once (or the first one).
        immediate = [r for r in user_rules if r.after <= timedelta(0)] or list(user_rules[:1])
        for rule in immediate:
            notification_id = (
                f"{incident_id}/c{effect.cycle}/{effect.event.value}/{user_id}/{rule.contact_id}"
            )
            items.append(
                SendNotification(
                    id=f"send:{notification_id}",
                    notification_id=notification_id,
                    user_id=user_id,
                    contact_id=rule.contact_id,
                    event=effect.event,
                    escalation_level=responder.level,
                )
            )
    return items


def outbox_items(
    incident_id: str,
    effects: Sequence[Effect],
    rules: Mapping[str, Sequence[NotificationRule]],
    now: datetime,
    cause: str,
) -> list[OutboxItem]:
    """`cause` makes the id of a cancel item unique to the change that asked for it."""
    items: list[OutboxItem] = []
    for effect in effects:
        if isinstance(effect, PageStep | PageResponder):
            items.extend(_page_items(incident_id, effect, rules, now))
        elif isinstance(effect, ScheduleEscalation):
            timer_id = f"escalate:{incident_id}/c{effect.cycle}/s{effect.step}"
            items.append(
                ArmTimer(
                    id=f"timer:{timer_id}",
                    timer_id=timer_id,
                    kind="escalate",
                    due_at=effect.due_at,
                    step=effect.step,
                    cycle=effect.cycle,
                )
            )
        elif isinstance(effect, ScheduleAckTimeout):
            timer_id = f"ack_timeout:{incident_id}/c{effect.cycle}"
            items.append(
                ArmTimer(
                    id=f"timer:{timer_id}",
                    timer_id=timer_id,
                    kind="ack_timeout",
                    due_at=effect.due_at,
                    step=0,
                    cycle=effect.cycle,
                )
            )
        elif isinstance(effect, CancelTimers):
            items.append(
                CancelPendingTimers(id=f"cancel:{incident_id}/{cause}", cycle=effect.cycle)
            )
        else:
            items.extend(_responder_items(incident_id, effect, rules))
    return items
