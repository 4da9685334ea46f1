"""Operator routes for incidents: list, show, acknowledge, resolve (Bearer API key).

The listing pages newest first with an opaque cursor (the listing key of the last incident
returned), the same parameters and shape as `/api/v1/alerts`, so paging visits every incident
once even while incidents keep opening and changing.
"""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from schemas import Severity
from services.escalation.domain.lifecycle import Action, InvalidTransition, Status
from services.escalation.domain.timeline import TimelineEntry
from services.escalation.engine import Actor, Escalation, IncidentNotFound
from services.escalation.store import EscalationIncident, EscalationStore, IncidentFilter

MAX_LIMIT = 500

MAX_TIMELINE = 500
"""Timeline entries an incident shows (the latest ones)."""


class TimelineView(BaseModel):
    at: datetime
    action: str = Field(
        description="A lifecycle action (`acknowledge`, `resolve`, `reopen`, `escalate`, ...), "
        "`triggered`, `paged`, `notified`, `delivered`, `delivery_failed`, `next_contact`, "
        "`no_contact_left` or `severity_changed`."
    )
    actor: str | None = Field(description="Who did it; null for Tocsin's own steps.")
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

    @classmethod
    def fields_of(cls, incident: EscalationIncident) -> dict[str, Any]:
        acknowledged, resolved = incident.acknowledged, incident.resolved
        return {
            "id": incident.id,
            "status": incident.lifecycle.status,
            "title": incident.title,
            "severity": incident.severity.value,
            "service": incident.service_id,
            "escalation_policy": incident.policy_id,
            "alert_count": incident.alert_count,
            "opened_at": incident.opened_at,
            "escalation_step": incident.lifecycle.next_step,
            "responders": list(incident.lifecycle.responder_ids),
            "acknowledged_at": acknowledged.at if acknowledged else None,
            "acknowledged_by": acknowledged.by if acknowledged else None,
            "resolved_at": resolved.at if resolved else None,
            "resolved_by": resolved.by if resolved else None,
        }

    @classmethod
    def of(cls, incident: EscalationIncident) -> "IncidentSummary":
        return cls(**cls.fields_of(incident))


class IncidentView(IncidentSummary):
    timeline: list[TimelineView] = Field(
        description=f"Oldest first; the latest {MAX_TIMELINE} entries."
    )

    @classmethod
    def with_timeline(
        cls, incident: EscalationIncident, timeline: list[TimelineEntry]
    ) -> "IncidentView":
        return cls(**cls.fields_of(incident), timeline=[TimelineView.of(e) for e in timeline])


class IncidentPage(BaseModel):
    incidents: list[IncidentSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


# The same opaque cursor as `/api/v1/alerts` (services may not share code: see DESIGN §3).
def encode_cursor(after: str) -> str:
    raw = json.dumps({"after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise HTTPException(400, "invalid cursor") from None
    if not isinstance(after, str):
        raise HTTPException(400, "invalid cursor")
    return after


def router(
    engine: Escalation, store: EscalationStore, require_api_key: Callable[..., str]
) -> APIRouter:
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

    async def _view(incident: EscalationIncident) -> IncidentView:
        timeline = await store.timeline(incident.id, MAX_TIMELINE)
        return IncidentView.with_timeline(incident, timeline)

    @api.get("/{incident_id}", response_model=IncidentView, responses={404: {}})
    async def get_incident(incident_id: str, _: ApiKey) -> IncidentView:
        incident = await store.get(incident_id)
        if incident is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        return await _view(incident)

    async def _act(incident_id: str, action: Action, actor: str) -> IncidentView:
        try:
            incident = await engine.command(incident_id, action, Actor(actor))
        except IncidentNotFound:
            raise HTTPException(404, f"no incident {incident_id!r}") from None
        except InvalidTransition as error:
            raise HTTPException(409, str(error)) from None
        # Show the stored state, with the timeline entry just written.
        return await _view(await store.get(incident_id) or incident)

    @api.post(
        "/{incident_id}/acknowledge", response_model=IncidentView, responses={404: {}, 409: {}}
    )
    async def acknowledge(incident_id: str, key_name: ApiKey) -> IncidentView:
        return await _act(incident_id, Action.ACKNOWLEDGE, f"api:{key_name}")

    @api.post("/{incident_id}/resolve", response_model=IncidentView, responses={404: {}, 409: {}})
    async def resolve(incident_id: str, key_name: ApiKey) -> IncidentView:
        return await _act(incident_id, Action.RESOLVE, f"api:{key_name}")

    return api
