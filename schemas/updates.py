"""`incidents.updates` (escalation → notifier): an operator posted a status update on an
incident (`POST /api/v1/incidents/{id}/updates`). The notifier puts public ones on the status
pages and sends every one to the stakeholder subscribers of the incident's service."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from schemas.envelope import Contract, Envelope


class UpdateStatus(StrEnum):
    """Statuspage's incident statuses."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class ComponentStatus(StrEnum):
    """Statuspage's component statuses."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    UNDER_MAINTENANCE = "under_maintenance"


class ComponentStatusChange(Contract):
    """An operator set a status page component's status by hand for this incident."""

    component_id: str = Field(min_length=1, max_length=100)
    status: ComponentStatus


class IncidentUpdatePosted(Envelope):
    """A status update on an incident; `event_id` is the update's id (idempotency)."""

    kind: Literal["incident.update_posted"] = "incident.update_posted"
    incident_id: str = Field(min_length=1, max_length=200)
    service_id: str = Field(min_length=1, max_length=200)
    status: UpdateStatus
    message: str = Field(min_length=1, max_length=10_000)
    public: bool
    components: tuple[ComponentStatusChange, ...] = Field(default=(), max_length=100)
    author: str | None = Field(default=None, max_length=200)
