"""Operator routes for incidents: list, show, and the responder's actions (Bearer API key):
acknowledge (or snooze), resolve, escalate, reassign, responders, commander.

No action is applied here: the route checks the action against
the incident as it is (a clear 404/409 at once), publishes an `IncidentCommand` on
`incidents.commands` and waits (5 s by default) for the escalation consumer to record its
outcome. Applied: 200 with the incident; refused meanwhile: 409; not applied within the wait
(the consumer is behind, or on another replica that is restarting): 202 with the command id,
which `GET /api/v1/incidents/{id}/commands/{command_id}` reports on. The same path serves both
run modes and every replica, and SMS, voice and chat replies take it too.

The listing pages newest first with an opaque cursor (the listing key of the last incident
returned), the same parameters and shape as `/api/v1/alerts`, so paging visits every incident
once even while incidents keep opening and changing.
"""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from schemas import ChangeSummary, CommandKind, IncidentCommand, Severity
from services.escalation.after_incident import RecurrenceView
from services.escalation.consumers import action_of
from services.escalation.domain.lifecycle import Assignment, Refused, Status
from services.escalation.domain.timeline import TimelineEntry
from services.escalation.domain.urgency import Urgency
from services.escalation.engine import Escalation
from services.escalation.planning import UnknownName
from services.escalation.store import (
    CommandOutcome,
    EscalationIncident,
    EscalationStore,
    IncidentFilter,
)
from tocsin.runtime.bus import PublishError
from tocsin.runtime.durations import parse_duration
from tocsin.runtime.paging import decode_cursor, encode_cursor

log = logging.getLogger(__name__)

MAX_LIMIT = 500
MAX_SNOOZE_SECONDS = 7 * 24 * 3600  # IncidentCommand.snooze_seconds' bound
_POLL_SECONDS = 0.02

MAX_TIMELINE = 500
"""Timeline entries an incident shows (the latest ones)."""


class TimelineView(BaseModel):
    at: datetime
    action: str = Field(
        description="A lifecycle action (`acknowledge`, `resolve`, `reopen`, `escalate`, ...), "
        "`triggered`, `paged`, `notified`, `queued`, `sent` (a provider's progress), "
        "`delivered`, `delivery_failed`, `next_contact`, `no_contact_left`, `on_call`, "
        "`severity_changed`, `alert_added`, `alerts_resolved`, `note`, `review`, "
        "`action_item`, `reminded`, or what another part of escalation records (e.g. a "
        "status update)."
    )
    actor: str | None = Field(description="Who did it; null for Tocsin's own steps.")
    actor_name: str | None = Field(
        default=None,
        description="The person's name from the configuration when `actor` names a user "
        "(`api:<user id>`, `console:<user id>`).",
    )
    user_id: str | None = None
    contact_id: str | None = None
    escalation_level: int | None = None
    event: str | None = Field(default=None, description="The notification's event.")
    notification_id: str | None = None
    detail: str | None = None

    @classmethod
    def of(cls, entry: TimelineEntry) -> "TimelineView":
        return cls(
            at=entry.at,
            action=entry.action,
            actor=entry.actor,
            user_id=entry.user_id,
            contact_id=entry.contact_id,
            escalation_level=entry.level,
            event=entry.event.value if entry.event else None,
            notification_id=entry.notification_id,
            detail=entry.detail,
        )


class AssignmentView(BaseModel):
    type: Literal["user", "schedule", "policy"]
    id: str

    @classmethod
    def of(cls, assignment: Assignment) -> "AssignmentView":
        return cls(type=assignment.kind, id=assignment.id)


class IncidentSummary(BaseModel):
    id: str
    status: Status
    title: str
    severity: str
    service: str
    escalation_policy: str | None
    alert_count: int
    opened_at: datetime
    escalation_step: int
    responders: list[str]
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="Null when Tocsin did it.")
    resolved_at: datetime | None
    resolved_by: str | None = Field(description="Null when Tocsin did it (every alert resolved).")
    snoozed_until: datetime | None = Field(
        description="A snoozed acknowledgement triggers again then."
    )
    ack_timeout_at: datetime | None = Field(
        description="The acknowledgement expires then (the policy's ack_timeout)."
    )
    urgency: Urgency
    commander: str | None = Field(description="The incident commander (a user id).")
    assigned_to: AssignmentView | None = Field(
        description="Set by a reassign; null: the service's escalation policy."
    )

    @classmethod
    def fields_of(cls, incident: EscalationIncident) -> dict[str, Any]:
        acknowledged, resolved = incident.acknowledged, incident.resolved
        assignment = incident.lifecycle.assignment
        return {
            "id": incident.id,
            "status": incident.lifecycle.status,
            "title": incident.title,
            "severity": incident.severity.value,
            "service": incident.service_id,
            "escalation_policy": (
                assignment.id
                if assignment is not None and assignment.kind == "policy"
                else incident.policy_id
            ),
            "alert_count": incident.alert_count,
            "opened_at": incident.opened_at,
            "escalation_step": incident.lifecycle.next_step,
            "responders": list(incident.lifecycle.responder_ids),
            "acknowledged_at": acknowledged.at if acknowledged else None,
            "acknowledged_by": acknowledged.by if acknowledged else None,
            "resolved_at": resolved.at if resolved else None,
            "resolved_by": resolved.by if resolved else None,
            "snoozed_until": incident.lifecycle.snoozed_until,
            "ack_timeout_at": incident.lifecycle.ack_timeout_at,
            "urgency": incident.urgency,
            "commander": incident.lifecycle.commander,
            "assigned_to": AssignmentView.of(assignment) if assignment else None,
        }

    @classmethod
    def of(cls, incident: EscalationIncident) -> "IncidentSummary":
        return cls(**cls.fields_of(incident))


class IncidentView(IncidentSummary):
    timeline: list[TimelineView] = Field(
        description=f"Oldest first; the latest {MAX_TIMELINE} entries."
    )
    recurrence: RecurrenceView | None = Field(
        default=None,
        description="Set when triage linked the incident to the last one of its group: that "
        "incident, its review's root causes and its open action items.",
    )
    changes: list[ChangeSummary] = Field(
        default_factory=list,
        description="Changes (deploys, config) on its service in the 30 minutes before it "
        "opened, newest first (from triage).",
    )

    @classmethod
    def with_timeline(
        cls,
        incident: EscalationIncident,
        timeline: list[TimelineEntry],
        recurrence: RecurrenceView | None = None,
    ) -> "IncidentView":
        return cls(
            **cls.fields_of(incident),
            timeline=[TimelineView.of(e) for e in timeline],
            recurrence=recurrence,
            changes=list(incident.changes),
        )


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    snooze: str | None = Field(
        default=None,
        description="e.g. `30m`: acknowledged now; unless resolved, it triggers again after "
        "this long and escalation starts over from the first level (at most 7d).",
    )

    def snooze_seconds(self) -> int | None:
        if self.snooze is None:
            return None
        try:
            seconds = parse_duration(self.snooze).total_seconds()
        except ValueError as error:
            raise HTTPException(422, f"snooze: {error}") from None
        if seconds < 1 or seconds != int(seconds) or seconds > MAX_SNOOZE_SECONDS:
            raise HTTPException(422, "snooze: whole seconds from 1s to 7d, e.g. '30m'")
        return int(seconds)


class ReassignRequest(BaseModel):
    """Exactly one of `user`, `schedule` (whoever is on call) or `policy`."""

    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(default=None, min_length=1, max_length=100)
    schedule: str | None = Field(default=None, min_length=1, max_length=100)
    policy: str | None = Field(default=None, min_length=1, max_length=100)

    def assignment(self) -> Assignment:
        named = (
            Assignment("user", self.user) if self.user is not None else None,
            Assignment("schedule", self.schedule) if self.schedule is not None else None,
            Assignment("policy", self.policy) if self.policy is not None else None,
        )
        given = [assignment for assignment in named if assignment is not None]
        if len(given) != 1:
            raise HTTPException(
                422, 'give exactly one of user, schedule or policy, e.g. {"user": "bob"}'
            )
        return given[0]


class UserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=100)


class CommandStatus(BaseModel):
    """A command handed to `incidents.commands` that was not applied within the wait."""

    command_id: str
    incident_id: str
    status: Literal["pending", "applied", "refused"]
    reason: str | None = None

    @classmethod
    def pending(cls, command: IncidentCommand) -> "CommandStatus":
        return cls(
            command_id=str(command.event_id), incident_id=command.incident_id, status="pending"
        )


class TimelinePage(BaseModel):
    incident_id: str
    timeline: list[TimelineView] = Field(
        description=f"Oldest first; the latest {MAX_TIMELINE} entries."
    )


class IncidentPage(BaseModel):
    incidents: list[IncidentSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def router(
    engine: Escalation,
    store: EscalationStore,
    require_api_key: Callable[..., str],
    *,
    command_wait_seconds: float = 5.0,
    recurrence: Callable[[str], Awaitable[RecurrenceView | None]] | None = None,
) -> APIRouter:
    """`recurrence`: what an incident's recurrence link shows (see after_incident.py)."""
    api = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
    ApiKey = Annotated[str, Depends(require_api_key)]

    @api.get("", response_model=IncidentPage, responses={400: {}, 401: {}})
    async def list_incidents(
        _: ApiKey,
        status: Status | None = None,
        service: Annotated[str | None, Query(max_length=200)] = None,
        severity: Severity | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> IncidentPage:
        where = IncidentFilter(status=status, service_id=service, severity=severity)
        before = decode_cursor(cursor) if cursor is not None else None
        # One more than asked tells whether another page exists without a second query.
        found = await store.list_incidents(where, before, limit + 1)
        page = found[:limit]
        next_cursor = encode_cursor(page[-1].listing_key) if len(found) > limit else None
        return IncidentPage(
            incidents=[IncidentSummary.of(i) for i in page], next_cursor=next_cursor
        )

    def _named(views: list[TimelineView]) -> list[TimelineView]:
        # `api:alice` -> Alice: people's names, as the configuration has them now.
        named = []
        for view in views:
            user = engine.config.user((view.actor or "").partition(":")[2])
            named.append(view.model_copy(update={"actor_name": user.name}) if user else view)
        return named

    async def _view(incident: EscalationIncident) -> IncidentView:
        timeline = await store.timeline(incident.id, MAX_TIMELINE)
        recurred = await recurrence(incident.id) if recurrence is not None else None
        view = IncidentView.with_timeline(incident, timeline, recurred)
        return view.model_copy(update={"timeline": _named(view.timeline)})

    @api.get("/{incident_id}", response_model=IncidentView, responses={404: {}})
    async def get_incident(incident_id: str, _: ApiKey) -> IncidentView:
        incident = await store.get(incident_id)
        if incident is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        return await _view(incident)

    @api.get("/{incident_id}/timeline", response_model=TimelinePage, responses={404: {}})
    async def get_timeline(incident_id: str, _: ApiKey) -> TimelinePage:
        """Everything that happened to the incident, oldest first, with who did it: alerts
        added and resolved, severity changes with reasons, pages and their delivery statuses,
        escalations, acknowledgements, reassignments, notes, status updates, role changes,
        reviews, action items, reminders and the resolve."""
        incident = await store.get(incident_id)
        if incident is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        timeline = await store.timeline(incident_id, MAX_TIMELINE)
        return TimelinePage(
            incident_id=incident_id, timeline=_named([TimelineView.of(e) for e in timeline])
        )

    async def _outcome(command_id: str) -> CommandOutcome | None:
        deadline = time.monotonic() + command_wait_seconds
        while True:
            outcome = await store.command_outcome(command_id)
            if outcome is not None or time.monotonic() >= deadline:
                return outcome
            await asyncio.sleep(_POLL_SECONDS)

    async def _act(
        incident_id: str,
        kind: CommandKind,
        key_name: str,
        snooze_seconds: int | None = None,
        *,
        user: str | None = None,
        assignment: Assignment | None = None,
    ) -> IncidentView | JSONResponse:
        incident = await store.get(incident_id)
        if incident is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        command = IncidentCommand(
            occurred_at=engine.now(),
            correlation_id=incident_id,
            command=kind,
            incident_id=incident_id,
            actor=f"api:{key_name}",
            via="api",
            snooze_seconds=snooze_seconds,
            user=assignment.id if assignment and assignment.kind == "user" else user,
            schedule=assignment.id if assignment and assignment.kind == "schedule" else None,
            policy=assignment.id if assignment and assignment.kind == "policy" else None,
        )
        try:
            action, until = action_of(command)
            # A clear 422/409 now rather than after the bus.
            await engine.check(incident, action, until, user=user, assignment=assignment)
        except UnknownName as error:
            raise HTTPException(422, str(error)) from None
        except Refused as error:
            raise HTTPException(409, str(error)) from None
        try:
            await engine.submit(command)
        except PublishError:
            raise HTTPException(
                503, "cannot take commands right now; retry", {"Retry-After": "5"}
            ) from None
        outcome = await _outcome(str(command.event_id))
        if outcome is None:
            return JSONResponse(
                CommandStatus.pending(command).model_dump(mode="json"), status_code=202
            )
        if not outcome.applied:
            raise HTTPException(409, outcome.reason or "refused")
        return await _view(await store.get(incident_id) or incident)

    @api.post(
        "/{incident_id}/acknowledge",
        response_model=IncidentView,
        responses={202: {"model": CommandStatus}, 404: {}, 409: {}, 422: {}, 503: {}},
    )
    async def acknowledge(
        incident_id: str, key_name: ApiKey, body: AcknowledgeRequest | None = None
    ) -> IncidentView | JSONResponse:
        snooze = body.snooze_seconds() if body is not None else None
        kind = CommandKind.ACKNOWLEDGE if snooze is None else CommandKind.SNOOZE
        return await _act(incident_id, kind, key_name, snooze)

    @api.post(
        "/{incident_id}/resolve",
        response_model=IncidentView,
        responses={202: {"model": CommandStatus}, 404: {}, 409: {}, 503: {}},
    )
    async def resolve(incident_id: str, key_name: ApiKey) -> IncidentView | JSONResponse:
        return await _act(incident_id, CommandKind.RESOLVE, key_name)

    @api.post(
        "/{incident_id}/escalate",
        response_model=IncidentView,
        responses={202: {"model": CommandStatus}, 404: {}, 409: {}, 503: {}},
    )
    async def escalate(incident_id: str, key_name: ApiKey) -> IncidentView | JSONResponse:
        return await _act(incident_id, CommandKind.ESCALATE, key_name)

    _ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {404: {}, 409: {}, 422: {}}

    @api.post("/{incident_id}/reassign", response_model=IncidentView, responses=_ACTION_RESPONSES)
    async def reassign(
        incident_id: str, body: ReassignRequest, key_name: ApiKey
    ) -> IncidentView | JSONResponse:
        """Escalation starts over with a user, whoever is on call for a schedule, or another
        policy; the incident is triggered again (an acknowledgement ends)."""
        return await _act(incident_id, CommandKind.REASSIGN, key_name, assignment=body.assignment())

    @api.post("/{incident_id}/responders", response_model=IncidentView, responses=_ACTION_RESPONSES)
    async def add_responder(
        incident_id: str, body: UserRequest, key_name: ApiKey
    ) -> IncidentView | JSONResponse:
        """Page someone extra now, without changing the policy."""
        return await _act(incident_id, CommandKind.ADD_RESPONDER, key_name, user=body.user)

    @api.post("/{incident_id}/commander", response_model=IncidentView, responses=_ACTION_RESPONSES)
    async def set_commander(
        incident_id: str, body: UserRequest, key_name: ApiKey
    ) -> IncidentView | JSONResponse:
        """Name the incident commander (shown on the incident)."""
        return await _act(incident_id, CommandKind.SET_COMMANDER, key_name, user=body.user)

    @api.get("/{incident_id}/commands/{command_id}", response_model=CommandStatus)
    async def command_status(incident_id: str, command_id: str, _: ApiKey) -> CommandStatus:
        outcome = await store.command_outcome(command_id)
        if outcome is None or outcome.incident_id != incident_id:
            return CommandStatus(command_id=command_id, incident_id=incident_id, status="pending")
        return CommandStatus(
            command_id=command_id,
            incident_id=incident_id,
            status="applied" if outcome.applied else "refused",
            reason=outcome.reason,
        )

    return api
