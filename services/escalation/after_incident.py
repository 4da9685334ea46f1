"""After the incident: what follows a resolve, in escalation.

- A resolved incident whose severity needs a review (`reviews.required_for`) arms a reminder
  (`review:{incident}`, due `reviews.remind_after` after the resolve); when it comes due and no
  review is started, the incident commander (else the acknowledging responder, else the first
  responder paged) is reminded, then once a day until a review exists. The resolve is read from
  `incidents.lifecycle` (escalation's own events), under its own consumer group.
- An open action item arms `action-item:{id}` for the first moment it is overdue; its owner is
  reminded then and once a day while it stays open and overdue.
- Gauges: SEV0/1 (the required severities) incidents, those with a published review, and the
  share.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from schemas import IncidentLifecycleChanged, LifecycleStatus
from services.escalation.config import EscalationConfig
from services.escalation.domain.action_items import (
    REMIND_EVERY,
    ActionItem,
    overdue_from,
    reminder_text,
)
from services.escalation.domain.review import ReviewStatus
from services.escalation.metrics import (
    REVIEWS_PUBLISHED,
    REVIEWS_PUBLISHED_RATIO,
    REVIEWS_REQUIRED,
)
from services.escalation.reminders import Firing, Reminder, Reminders
from services.escalation.review_store import ReviewStore
from services.escalation.store import EscalationIncident, EscalationStore
from tocsin.runtime.clock import Clock
from tocsin.runtime.live_config import Current
from tocsin.runtime.store import DocumentDatabase

log = logging.getLogger(__name__)

REVIEW_DUE = "review_due"
ACTION_ITEM_OVERDUE = "action_item_overdue"
REVIEW_REMIND_EVERY = timedelta(days=1)


def review_reminder_id(incident_id: str) -> str:
    return f"review:{incident_id}"


def action_item_reminder_id(item_id: str) -> str:
    return f"action-item:{item_id}"


def review_owner(incident: EscalationIncident, users: set[str]) -> str | None:
    """Who is reminded of a review: the incident commander, else whoever acknowledged (when it
    was a person with a user id), else the first responder paged."""
    candidates = [
        incident.lifecycle.commander,
        incident.acknowledged.by if incident.acknowledged else None,
        *incident.lifecycle.responder_ids,
    ]
    return next((user for user in candidates if user is not None and user in users), None)


class AfterIncident:
    def __init__(
        self,
        incidents: EscalationStore,
        reviews: ReviewStore,
        reminders: Reminders,
        config: Current[EscalationConfig],
        clock: Clock,
        database: DocumentDatabase,
    ) -> None:
        self.incidents = incidents
        self.reviews = reviews
        self.reminders = reminders
        self._config = config
        self._clock = clock
        self._incident_docs = database["escalation_incidents"]
        reminders.handle(REVIEW_DUE, self._review_due)
        reminders.handle(ACTION_ITEM_OVERDUE, self._action_item_overdue)

    @property
    def config(self) -> EscalationConfig:
        return self._config.current

    def now(self) -> datetime:
        return self._clock.now()

    # -- incidents.lifecycle ---------------------------------------------------------------

    async def on_lifecycle(self, event: IncidentLifecycleChanged) -> None:
        if event.status is not LifecycleStatus.RESOLVED:
            return
        incident = await self.incidents.get(event.incident_id)
        if incident is None:
            return
        reviews = self.config.reviews
        if incident.severity in reviews.required_for:
            # Replaced at each resolve (a re-opened incident resolves again later); the same
            # event redelivered computes the same due time.
            await self.reminders.arm(
                Reminder(
                    id=review_reminder_id(incident.id),
                    kind=REVIEW_DUE,
                    subject_id=incident.id,
                    incident_id=incident.id,
                    user_id=incident.lifecycle.commander or "",
                    text=f"Post-incident review due: {incident.title}",
                    due_at=event.occurred_at + reviews.remind_after,
                ),
                replace=True,
            )
        await self.refresh_gauges()

    async def _review_due(self, reminder: Reminder, now: datetime) -> Firing:
        incident = await self.incidents.get(reminder.incident_id)
        if incident is None or incident.severity not in self.config.reviews.required_for:
            return Firing(None, "")
        if await self.reviews.review(incident.id) is not None:
            return Firing(None, "")  # started: the reminder is moot
        users = {user.id for user in self.config.users}
        owner = review_owner(incident, users)
        if owner is None:
            log.warning("incident %s: a review is due and nobody to remind", incident.id)
            return Firing(None, "")
        return Firing(owner, reminder.text, again_at=now + REVIEW_REMIND_EVERY)

    # -- action items ----------------------------------------------------------------------

    async def arm_item(self, item: ActionItem) -> None:
        """(Re-)arm or cancel the item's overdue reminder after it was added or changed."""
        if item.status.closed:
            await self.reminders.cancel(action_item_reminder_id(item.id))
            return
        await self.reminders.arm(
            Reminder(
                id=action_item_reminder_id(item.id),
                kind=ACTION_ITEM_OVERDUE,
                subject_id=item.id,
                incident_id=item.incident_id,
                user_id=item.owner,
                text=reminder_text(item),
                due_at=overdue_from(item.due),
            ),
            replace=True,
        )

    async def _action_item_overdue(self, reminder: Reminder, now: datetime) -> Firing:
        item = await self.reviews.item(reminder.subject_id)
        if item is None or item.status.closed:
            return Firing(None, "")
        overdue = overdue_from(item.due)
        if now < overdue:
            return Firing(None, "", again_at=overdue)
        return Firing(item.owner, reminder_text(item), again_at=now + REMIND_EVERY)

    # -- gauges ----------------------------------------------------------------------------

    async def refresh_gauges(self) -> None:
        required = self.config.reviews.required_for
        incidents = await self._incident_docs.count_documents(
            {"severity": {"$in": [s.value for s in required]}}
        )
        published = await self.reviews.count_reviews(required, ReviewStatus.PUBLISHED)
        REVIEWS_REQUIRED.set(incidents)
        REVIEWS_PUBLISHED.set(published)
        REVIEWS_PUBLISHED_RATIO.set(min(1.0, published / incidents) if incidents else 0.0)
