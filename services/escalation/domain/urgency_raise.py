"""When an open incident's urgency rises (a SEV2 becomes SEV0), the people already paged at low
urgency are paged as a high-urgency incident pages them (pure).

Only the contacts their high-urgency rules add are paged: a contact their low-urgency rules
reached already (or will reach, by a delayed rule) is not paged again for the same step. Ids
are deterministic (`{incident}/c{cycle}/urgency/{user}/{contact}`), so the same raise carried
out twice pages once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from schemas import NotificationEvent
from services.escalation.domain.lifecycle import Responder
from services.escalation.domain.outbox import (
    ArmTimer,
    NotificationRule,
    OutboxItem,
    SendNotification,
)

Rules = Mapping[str, Sequence[NotificationRule]]


def urgency_raised_items(
    incident_id: str,
    cycle: int,
    responders: Sequence[Responder],
    low_rules: Rules,
    high_rules: Rules,
    now: datetime,
) -> list[OutboxItem]:
    items: list[OutboxItem] = []
    for responder in responders:
        user = responder.user
        reached = {rule.contact_id for rule in low_rules.get(user, ())}
        for rule in high_rules.get(user, ()):
            if rule.contact_id in reached:
                continue
            notification_id = f"{incident_id}/c{cycle}/urgency/{user}/{rule.contact_id}"
            send = SendNotification(
                id=f"send:{notification_id}",
                notification_id=notification_id,
                user_id=user,
                contact_id=rule.contact_id,
                event=NotificationEvent.TRIGGERED,
                escalation_level=responder.level,
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
                        step=0,
                        cycle=cycle,
                        notification=send,
                    )
                )
    return items
