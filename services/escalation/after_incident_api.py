"""Operator routes after (and during) an incident (Bearer API key):

- `POST /api/v1/incidents/{id}/notes` `{text}`: a note on the incident's timeline.
- `POST/GET/PATCH /api/v1/incidents/{id}/review`, `GET .../review.md`: the post-incident
  review (see domain/review.py); PATCH is a compare-and-set on `version` (409 when stale).
- `POST /api/v1/incidents/{id}/action-items`, `PATCH /api/v1/action-items/{id}`,
  `GET /api/v1/action-items?owner=&status=&overdue=true&incident=`.

Bad input answers 404 (unknown incident or item) or 422 whose `detail` starts with the field
(`due: 2026-01-01 is in the past`); nothing is changed then.
"""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from services.escalation.after_incident import AfterIncident
from services.escalation.api import TimelineView
from services.escalation.domain.action_items import (
    ActionItem,
    ActionItemProblem,
    ActionItemStatus,
    Priority,
    check_due,
    check_owner,
    check_url,
    is_overdue,
)
from services.escalation.domain.review import (
    Impact,
    IncidentFacts,
    ReviewContent,
    ReviewProblem,
    ReviewStatus,
    ReviewTimelineItem,
    Why,
    markdown,
    patched,
    prefilled,
    transition,
)
from services.escalation.domain.timeline import Entry, TimelineEntry
from services.escalation.review_store import ActionItemFilter, StoredReview
from services.escalation.store import EscalationIncident

MAX_NOTE = 4000
MAX_LIMIT = 500


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_NOTE)


class ReviewRequest(BaseModel):
    """A new review; what is left out is pre-filled from the incident (original report, impact
    window and component, the timeline)."""

    model_config = ConfigDict(extra="forbid")

    original_report: str | None = None
    symptoms: str | None = None
    impact: Impact | None = None
    timeline: list[ReviewTimelineItem] | None = None
    root_causes: list[str] | None = None
    five_whys: list[Why] | None = None
    symptom_fix: str | None = None
    root_cause_fix: str | None = None
    prevention: str | None = None
    lessons: str | None = None


class ReviewPatch(ReviewRequest):
    version: int = Field(description="The version read; a stale one answers 409.")
    status: ReviewStatus | None = None


class ReviewView(ReviewContent):
    incident_id: str
    severity: str
    status: ReviewStatus
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, review: StoredReview) -> "ReviewView":
        return cls(
            **review.content.model_dump(),
            incident_id=review.incident_id,
            severity=review.severity.value,
            status=review.status,
            version=review.version,
            created_at=review.created_at,
            created_by=review.created_by,
            updated_at=review.updated_at,
            updated_by=review.updated_by,
        )


class ActionItemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=100, description="A configured user's id.")
    due: date = Field(description="A day (UTC), today or later.")
    priority: Priority = Priority.MEDIUM
    url: str | None = Field(default=None, max_length=2048, description="The external tracker.")
    status: ActionItemStatus = ActionItemStatus.OPEN


class ActionItemPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=500)
    owner: str | None = Field(default=None, min_length=1, max_length=100)
    due: date | None = None
    priority: Priority | None = None
    url: str | None = Field(default=None, max_length=2048)
    status: ActionItemStatus | None = None
    version: int | None = Field(default=None, description="If given, a stale one answers 409.")


class ActionItemView(ActionItem):
    overdue: bool

    @classmethod
    def of(cls, item: ActionItem, now: datetime) -> "ActionItemView":
        return cls(**item.model_dump(), overdue=is_overdue(item, now))


class ActionItemList(BaseModel):
    action_items: list[ActionItemView]


def _problem(error: ReviewProblem | ActionItemProblem) -> HTTPException:
    return HTTPException(422, str(error))


def facts_of(incident: EscalationIncident, timeline: list[TimelineEntry]) -> IncidentFacts:
    first_alert = incident.alerts[-1].summary if incident.alerts else None
    return IncidentFacts(
        id=incident.id,
        title=incident.title,
        severity=incident.severity.value,
        service_id=incident.service_id,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved.at if incident.resolved else None,
        first_alert=first_alert,
        timeline=[review_item(entry) for entry in timeline if entry.action not in _PROGRESS],
    )


_PROGRESS = frozenset({"queued", "sent"})
"""A provider's progress before the outcome: not worth a row of the review's timeline."""


def review_item(entry: TimelineEntry) -> ReviewTimelineItem:
    words = entry.action.replace("_", " ")
    parts = [words]
    if entry.user_id:
        parts.append(entry.user_id)
    if entry.contact_id:
        parts.append(f"via {entry.contact_id}")
    text = " ".join(parts) + (f": {entry.detail}" if entry.detail else "")
    return ReviewTimelineItem(at=entry.at, text=text[:2000], actor=entry.actor)


def router(after: AfterIncident, require_api_key: Callable[..., str]) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["after the incident"])
    ApiKey = Annotated[str, Depends(require_api_key)]
    incidents, reviews = after.incidents, after.reviews

    async def _incident(incident_id: str) -> EscalationIncident:
        incident = await incidents.get(incident_id)
        if incident is None:
            raise HTTPException(404, f"incident: no incident {incident_id!r}")
        return incident

    async def _record(incident_id: str, entry: TimelineEntry) -> None:
        await incidents.record(incident_id, [entry])

    # -- notes -----------------------------------------------------------------------------

    @api.post(
        "/incidents/{incident_id}/notes",
        status_code=201,
        response_model=TimelineView,
        responses={404: {}, 422: {}},
    )
    async def add_note(incident_id: str, body: NoteRequest, key_name: ApiKey) -> TimelineView:
        await _incident(incident_id)
        entry = TimelineEntry(
            id=f"note:{incident_id}/{uuid.uuid4().hex}",
            at=after.now(),
            action=Entry.NOTE,
            actor=f"api:{key_name}",
            detail=body.text,
        )
        await _record(incident_id, entry)
        return TimelineView.of(entry)

    # -- review ----------------------------------------------------------------------------

    @api.post(
        "/incidents/{incident_id}/review",
        status_code=201,
        response_model=ReviewView,
        responses={404: {}, 409: {}, 422: {}},
    )
    async def create_review(
        incident_id: str, key_name: ApiKey, body: ReviewRequest | None = None
    ) -> ReviewView:
        incident = await _incident(incident_id)
        settings = after.config.reviews
        if not settings.allows(incident.severity):
            allowed = sorted({s.value for s in (*settings.allowed_for, *settings.required_for)})
            raise HTTPException(
                422,
                f"severity: reviews are written for {', '.join(allowed)} incidents "
                f"(reviews.allowed_for); {incident_id} is {incident.severity.value}",
            )
        given = body.model_dump(exclude_unset=True) if body is not None else {}
        timeline = await incidents.timeline(incident_id, 500)
        try:
            content = prefilled(facts_of(incident, timeline), given)
        except ReviewProblem as error:
            raise _problem(error) from None
        now, actor = after.now(), f"api:{key_name}"
        review = StoredReview(
            incident_id=incident_id,
            severity=incident.severity,
            service_id=incident.service_id,
            status=ReviewStatus.DRAFT,
            content=content,
            version=1,
            created_at=now,
            created_by=actor,
            updated_at=now,
            updated_by=actor,
        )
        if not await reviews.create_review(review):
            raise HTTPException(409, "review: this incident has one; PATCH it")
        await _record(
            incident_id,
            TimelineEntry(
                id=f"review:{incident_id}/created",
                at=now,
                action=Entry.REVIEW,
                actor=actor,
                detail="post-incident review started (draft)",
            ),
        )
        return ReviewView.of(review)

    async def _review(incident_id: str) -> StoredReview:
        await _incident(incident_id)
        review = await reviews.review(incident_id)
        if review is None:
            raise HTTPException(404, f"review: incident {incident_id!r} has none yet; POST one")
        return review

    @api.get("/incidents/{incident_id}/review", response_model=ReviewView, responses={404: {}})
    async def get_review(incident_id: str, _: ApiKey) -> ReviewView:
        return ReviewView.of(await _review(incident_id))

    @api.get(
        "/incidents/{incident_id}/review.md",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/markdown": {}}}, 404: {}},
    )
    async def review_markdown(incident_id: str, _: ApiKey) -> PlainTextResponse:
        review = await _review(incident_id)
        incident = await _incident(incident_id)
        text = markdown(
            incident_id, incident.title, review.severity.value, review.status, review.content
        )
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    @api.patch(
        "/incidents/{incident_id}/review",
        response_model=ReviewView,
        responses={404: {}, 409: {}, 422: {}},
    )
    async def patch_review(incident_id: str, body: ReviewPatch, key_name: ApiKey) -> ReviewView:
        review = await _review(incident_id)
        if body.version != review.version:
            raise HTTPException(
                409, f"version: the review is at version {review.version}; read it again"
            )
        changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"version", "status"})
        try:
            content = patched(review.content, changes)
            status = body.status or review.status
            words = transition(review.status, status, content)
        except ReviewProblem as error:
            raise _problem(error) from None
        now, actor = after.now(), f"api:{key_name}"
        changed = StoredReview(
            incident_id=incident_id,
            severity=review.severity,
            service_id=review.service_id,
            status=status,
            content=content,
            version=review.version + 1,
            created_at=review.created_at,
            created_by=review.created_by,
            updated_at=now,
            updated_by=actor,
        )
        if not await reviews.save_review(changed, review.version):
            raise HTTPException(409, "version: the review changed meanwhile; read it again")
        if words is not None:
            await _record(
                incident_id,
                TimelineEntry(
                    id=f"review:{incident_id}/v{changed.version}",
                    at=now,
                    action=Entry.REVIEW,
                    actor=actor,
                    detail=f"post-incident review {words}",
                ),
            )
            await after.refresh_gauges()
        return ReviewView.of(changed)

    # -- action items ----------------------------------------------------------------------

    def _check(owner: str | None, due: date | None, url: str | None, now: datetime) -> None:
        try:
            if owner is not None:
                check_owner(owner, {user.id for user in after.config.users})
            if due is not None:
                check_due(due, now)
            check_url(url)
        except ActionItemProblem as error:
            raise _problem(error) from None

    @api.post(
        "/incidents/{incident_id}/action-items",
        status_code=201,
        response_model=ActionItemView,
        responses={404: {}, 422: {}},
    )
    async def add_action_item(
        incident_id: str, body: ActionItemRequest, key_name: ApiKey
    ) -> ActionItemView:
        await _incident(incident_id)
        now = after.now()
        _check(body.owner, body.due, body.url, now)
        actor = f"api:{key_name}"
        item = ActionItem(
            id=f"ai-{uuid.uuid4().hex[:16]}",
            incident_id=incident_id,
            title=body.title,
            owner=body.owner,
            due=body.due,
            priority=body.priority,
            url=body.url,
            status=body.status,
            created_at=now,
            created_by=actor,
            updated_at=now,
        )
        await reviews.add_item(item)
        await after.arm_item(item)
        await _record(
            incident_id,
            TimelineEntry(
                id=f"action-item:{item.id}/1",
                at=now,
                action=Entry.ACTION_ITEM,
                actor=actor,
                user_id=item.owner,
                detail=f"action item added: {item.title} (due {item.due.isoformat()})",
            ),
        )
        return ActionItemView.of(item, now)

    @api.patch(
        "/action-items/{item_id}",
        response_model=ActionItemView,
        responses={404: {}, 409: {}, 422: {}},
    )
    async def patch_action_item(
        item_id: str, body: ActionItemPatch, key_name: ApiKey
    ) -> ActionItemView:
        item = await reviews.item(item_id)
        if item is None:
            raise HTTPException(404, f"action item: no action item {item_id!r}")
        if body.version is not None and body.version != item.version:
            raise HTTPException(409, f"version: the item is at version {item.version}")
        now = after.now()
        changes = body.model_dump(exclude_unset=True, exclude={"version"})
        if changes.get("title", "") is None or changes.get("owner", "") is None:
            raise HTTPException(422, "title/owner: cannot be null")
        _check(
            changes.get("owner"),
            changes.get("due") if changes.get("due") != item.due else None,
            changes.get("url"),
            now,
        )
        changed = item.model_copy(
            update={
                **{k: v for k, v in changes.items() if v is not None or k == "url"},
                "updated_at": now,
                "version": item.version + 1,
            }
        )
        if not await reviews.save_item(changed, item.version):
            raise HTTPException(409, "version: the item changed meanwhile; read it again")
        await after.arm_item(changed)
        if changed.status is not item.status:
            await _record(
                item.incident_id,
                TimelineEntry(
                    id=f"action-item:{item.id}/{changed.version}",
                    at=now,
                    action=Entry.ACTION_ITEM,
                    actor=f"api:{key_name}",
                    user_id=changed.owner,
                    detail=f"action item {changed.status.value}: {changed.title}",
                ),
            )
        return ActionItemView.of(changed, now)

    @api.get("/action-items", response_model=ActionItemList, responses={422: {}})
    async def list_action_items(
        _: ApiKey,
        owner: Annotated[str | None, Query(max_length=100)] = None,
        status: ActionItemStatus | None = None,
        overdue: bool = False,
        incident: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> ActionItemList:
        now = after.now()
        if overdue and status is not None and status.closed:
            return ActionItemList(action_items=[])  # a closed item is never overdue
        where = ActionItemFilter(
            owner=owner,
            status=status,
            overdue_on=now.astimezone(UTC).date() if overdue else None,
            incident_id=incident,
        )
        found = await reviews.items(where, limit)
        return ActionItemList(action_items=[ActionItemView.of(item, now) for item in found])

    return api
