"""Message contracts between Tocsin's services: one pydantic model per topic (DESIGN §2).

`TOPICS` maps each topic to its model; the JSON Schemas under `schemas/json/` are generated
from these models by `python -m schemas.export` and a test keeps them in step.
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.alerts import AlertReceived, AlertStatus
from schemas.changes import ChangeLink, ChangeReceived, ChangeSummary
from schemas.dlq import DeadLetter
from schemas.envelope import Contract, Envelope, Label
from schemas.incidents import (
    AlertDetails,
    CommandKind,
    IncidentCommand,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    LifecycleStatus,
    Severity,
)
from schemas.maintenance import MaintenanceWindowChanged
from schemas.notifications import (
    DeliveryOutcome,
    IncidentSnapshot,
    NotificationEvent,
    NotificationRequested,
    NotificationResult,
    Recipient,
)
from schemas.updates import (
    ComponentStatus,
    ComponentStatusChange,
    IncidentUpdatePosted,
    UpdateStatus,
)

ALERTS_RAW = "alerts.raw"
CHANGES_RAW = "changes.raw"
INCIDENTS_EVENTS = "incidents.events"
INCIDENTS_COMMANDS = "incidents.commands"
INCIDENTS_LIFECYCLE = "incidents.lifecycle"
INCIDENTS_UPDATES = "incidents.updates"
MAINTENANCE_WINDOWS = "maintenance.windows"
NOTIFICATIONS_REQUESTED = "notifications.requested"
NOTIFICATIONS_RESULTS = "notifications.results"

TOPICS: Mapping[str, type[Envelope]] = {
    ALERTS_RAW: AlertReceived,
    CHANGES_RAW: ChangeReceived,
    INCIDENTS_EVENTS: IncidentEvent,
    INCIDENTS_COMMANDS: IncidentCommand,
    INCIDENTS_LIFECYCLE: IncidentLifecycleChanged,
    INCIDENTS_UPDATES: IncidentUpdatePosted,
    MAINTENANCE_WINDOWS: MaintenanceWindowChanged,
    NOTIFICATIONS_REQUESTED: NotificationRequested,
    NOTIFICATIONS_RESULTS: NotificationResult,
}


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


__all__ = [
    "ALERTS_RAW",
    "CHANGES_RAW",
    "INCIDENTS_COMMANDS",
    "INCIDENTS_EVENTS",
    "INCIDENTS_LIFECYCLE",
    "INCIDENTS_UPDATES",
    "MAINTENANCE_WINDOWS",
    "NOTIFICATIONS_REQUESTED",
    "NOTIFICATIONS_RESULTS",
    "TOPICS",
    "AlertDetails",
    "AlertReceived",
    "AlertStatus",
    "ChangeLink",
    "ChangeReceived",
    "ChangeSummary",
    "CommandKind",
    "ComponentStatus",
    "ComponentStatusChange",
    "Contract",
    "DeadLetter",
    "DeliveryOutcome",
    "Envelope",
    "IncidentCommand",
    "IncidentEvent",
    "IncidentEventKind",
    "IncidentLifecycleChanged",
    "IncidentSnapshot",
    "IncidentUpdatePosted",
    "Label",
    "LifecycleStatus",
    "MaintenanceWindowChanged",
    "NotificationEvent",
    "NotificationRequested",
    "NotificationResult",
    "Recipient",
    "Severity",
    "UpdateStatus",
    "dlq_topic",
]
