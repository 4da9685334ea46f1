"""After the incident: what follows a resolve, in escalation.

- A resolved incident whose severity needs a review (`reviews.required_for`) arms a reminder
  (`review:{incident}`, due `reviews.remind_after` after the resolve); when it comes due and no
  review is started, the incident commander (else the acknowledging responder, else the first
  responder paged) is reminded, then once a day until a review exists. The resolve is read from
  `incidents.lifecycle` (escalation's own events), under its own consumer group.
- An open action item arms `action-item:{id}` for the first moment it is overdue; its owner is
  reminded then and once a day while it stays open and overdue.
- An incident triage links as a recurrence (`IncidentEvent.recurrence_of`) keeps the link
  (`escalation_recurrences`), and the incident's API shows the previous incident, its
  review's root causes and its open action items.
- Gauges: SEV0/1 (the required severities) incidents, those with a published review, and the
  share.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from schemas import IncidentEvent, IncidentLifecycleChanged, LifecycleStatus
from services.escalation.config import EscalationConfig
from services.escalation.domain.action_items import (
    REMIND_EVERY,
    ActionItem,
    overdue_from,
    reminder_text,
)
from services.escalation.domain.lifecycle import Status
from services.escalation.domain.review import ReviewStatus
from services.escalation.metrics import (
    REVIEWS_PUBLISHED,
    REVIEWS_PUBLISHED_RATIO,
    REVIEWS_REQUIRED,
)
from services.escalation.reminders import Firing, Reminder, Reminders
from services.escalation.review_store import ActionItemFilter, ReviewStore
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


class OpenActionItem(BaseModel):
    id: str
    title: str
    owner: str
    due: str
    status: str


class RecurrenceView(BaseModel):
    """What the last incident of the same group left behind."""

    previous_incident: str
    previous_title: str | None
    previous_resolved_at: datetime | None
    recurrence_count: int = Field(description="Incidents of this group in the 30 days before.")
    review_status: str | None = Field(description="The previous incident's review, if any.")
    root_causes: list[str]
    open_action_items: list[OpenActionItem]
    summary: str = Field(
        description='e.g. "recurred: last time root cause was X; 2 action items still open"'
    )


def recurrence_summary(
    root_causes: list[str], review_status: str | None, open_items: int, previous: str
) -> str:
    if root_causes:
        said = f"recurred: last time root cause was {'; '.join(root_causes)}"
    elif review_status is not None:
        said = f"recurred: the review of {previous} names no root cause yet"
    else:
        said = f"recurred: {previous} has no post-incident review"
    items = "1 action item" if open_items == 1 else f"{open_items} action items"
    return f"{said}; {items} still open"


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

    # -- incidents.events (after escalation handled them) ---------------------------------

    async def on_incident_event(self, event: IncidentEvent) -> None:
        if event.recurrence_of is not None and event.recurrence_of != event.incident_id:
            await self.reviews.record_recurrence(
                event.incident_id,
                event.recurrence_of,
                max(event.recurrence_count, 1),
                event.occurred_at,
            )

    async def recurrence(self, incident_id: str) -> RecurrenceView | None:
        link = await self.reviews.recurrence(incident_id)
        if link is None:
            return None
        previous_id, count = link
        previous = await self.incidents.get(previous_id)
        review = await self.reviews.review(previous_id)
        items = await self.reviews.items(ActionItemFilter(incident_id=previous_id), 200)
        still_open = [item for item in items if not item.status.closed]
        root_causes = list(review.content.root_causes) if review else []
        status = review.status.value if review else None
        return RecurrenceView(
            previous_incident=previous_id,
            previous_title=previous.title if previous else None,
            previous_resolved_at=previous.resolved.at if previous and previous.resolved else None,
            recurrence_count=count,
            review_status=status,
            root_causes=root_causes,
            open_action_items=[
                OpenActionItem(
                    id=item.id,
                    title=item.title,
                    owner=item.owner,
                    due=item.due.isoformat(),
                    status=item.status.value,
                )
                for item in still_open
            ],
            summary=recurrence_summary(root_causes, status, len(still_open), previous_id),
        )

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
        if incident.lifecycle.status is not Status.RESOLVED:
            return Firing(None, "")  # re-opened: its next resolve arms the reminder again
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
