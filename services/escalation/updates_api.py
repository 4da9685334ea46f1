"""Operator routes for an incident's status updates (Bearer API key):
`POST /api/v1/incidents/{id}/updates` (`status` investigating|identified|monitoring|resolved,
`message`, `public`, optional `components` {component id: status} set by hand on the status
pages for this incident) and `GET /api/v1/incidents/{id}/updates` (newest first).

An update lands on the incident's timeline at once; a public one appears on the status pages
that show the incident's service, and every one goes to the pages' stakeholder subscribers
(the notifier reads `incidents.updates`). Posting an update restarts the update cadence.
`status: resolved` is the public wording; it does not resolve the incident (use /resolve)."""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from schemas import ComponentStatus, UpdateStatus
from services.escalation.status_updates import PostUpdate, StatusUpdates, UnknownComponent
from services.escalation.store import EscalationStore
from services.escalation.updates_store import StatusUpdate


class UpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: UpdateStatus
    message: str = Field(min_length=1, max_length=10_000)
    public: bool = Field(
        default=False, description="Show it on the status pages (and to public subscribers)."
    )
    components: dict[str, ComponentStatus] = Field(
        default_factory=dict,
        max_length=100,
        description="Status page components (by id) and the status to show for this incident, "
        "instead of the one its severity gives; they hold until the incident resolves.",
    )


class UpdateView(BaseModel):
    id: str
    incident_id: str
    status: UpdateStatus
    message: str
    public: bool
    components: dict[str, ComponentStatus]
    author: str
    created_at: datetime
    published: bool = Field(
        description="The notifier has been told (false only while the message bus is down)."
    )

    @classmethod
    def of(cls, update: StatusUpdate) -> "UpdateView":
        return cls(
            id=update.id,
            incident_id=update.incident_id,
            status=update.status,
            message=update.message,
            public=update.public,
            components=dict(update.components),
            author=update.author,
            created_at=update.created_at,
            published=update.published,
        )


class UpdateList(BaseModel):
    incident_id: str
    updates: list[UpdateView] = Field(description="Newest first.")


def router(
    updates: StatusUpdates, incidents: EscalationStore, require_api_key: Callable[..., str]
) -> APIRouter:
    api = APIRouter(prefix="/api/v1/incidents", tags=["status updates"])
    ApiKey = Annotated[str, Depends(require_api_key)]

    @api.post(
        "/{incident_id}/updates",
        response_model=UpdateView,
        status_code=201,
        responses={401: {}, 404: {}, 422: {}},
    )
    async def post_update(incident_id: str, body: UpdateRequest, key_name: ApiKey) -> UpdateView:
        """Post a status update on the incident."""
        incident = await incidents.get(incident_id)
        if incident is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        request = PostUpdate(
            status=body.status,
            message=body.message,
            public=body.public,
            components=tuple(body.components.items()),
            author=f"api:{key_name}",
        )
        try:
            update = await updates.post(incident, request)
        except UnknownComponent as error:
            raise HTTPException(
                422, f"components: unknown status page component {error.args[0]!r}"
            ) from None
        return UpdateView.of(update)

    @api.get("/{incident_id}/updates", response_model=UpdateList, responses={401: {}, 404: {}})
    async def list_updates(incident_id: str, _: ApiKey) -> UpdateList:
        """The incident's status updates, newest first."""
        if await incidents.get(incident_id) is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        found = await updates.store.of_incident(incident_id)
        return UpdateList(incident_id=incident_id, updates=[UpdateView.of(u) for u in found])

    return api
