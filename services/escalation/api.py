"""Operator routes for incidents: list, show, acknowledge, resolve (Bearer API key)."""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from services.escalation.domain.lifecycle import Action, InvalidTransition, Status
from services.escalation.engine import Actor, Escalation, IncidentNotFound
from services.escalation.store import EscalationIncident, EscalationStore


class TimelineView(BaseModel):
    at: datetime
    action: str
    actor: str


class IncidentView(BaseModel):
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
    timeline: list[TimelineView]

    @classmethod
    def of(cls, incident: EscalationIncident) -> "IncidentView":
        return cls(
            id=incident.id,
            status=incident.lifecycle.status,
            title=incident.title,
            severity=incident.severity.value,
            service=incident.service_id,
            escalation_policy=incident.policy_id,
            alert_count=incident.alert_count,
            opened_at=incident.opened_at,
            escalation_step=incident.lifecycle.next_step,
            responders=list(incident.lifecycle.responder_ids),
            timeline=[
                TimelineView(at=e.at, action=e.action, actor=e.actor) for e in incident.timeline
            ],
        )


class IncidentList(BaseModel):
    incidents: list[IncidentView]


def router(
    engine: Escalation, store: EscalationStore, require_api_key: Callable[..., str]
) -> APIRouter:
    api = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
    ApiKey = Annotated[str, Depends(require_api_key)]

    @api.get("", response_model=IncidentList)
    async def list_incidents(
        _: ApiKey,
        status: Status | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> IncidentList:
        incidents = await store.list_incidents(status, limit)
        return IncidentList(incidents=[IncidentView.of(i) for i in incidents])

    @api.get("/{incident_id}", response_model=IncidentView, responses={404: {}})
    async def get_incident(incident_id: str, _: ApiKey) -> IncidentView:
        incident = await store.get(incident_id)
        if incident is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        return IncidentView.of(incident)

    async def _act(incident_id: str, action: Action, actor: str) -> IncidentView:
        try:
            incident = await engine.command(incident_id, action, Actor(actor))
        except IncidentNotFound:
            raise HTTPException(404, f"no incident {incident_id!r}") from None
        except InvalidTransition as error:
            raise HTTPException(409, str(error)) from None
        # Show the stored state, with the timeline entry just written.
        return IncidentView.of(await store.get(incident_id) or incident)

    @api.post(
        "/{incident_id}/acknowledge", response_model=IncidentView, responses={404: {}, 409: {}}
    )
    async def acknowledge(incident_id: str, key_name: ApiKey) -> IncidentView:
        return await _act(incident_id, Action.ACKNOWLEDGE, f"api:{key_name}")

    @api.post("/{incident_id}/resolve", response_model=IncidentView, responses={404: {}, 409: {}})
    async def resolve(incident_id: str, key_name: ApiKey) -> IncidentView:
        return await _act(incident_id, Action.RESOLVE, f"api:{key_name}")

    return api
