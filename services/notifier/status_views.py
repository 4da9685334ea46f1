"""A page as Atlassian Statuspage's public API v2 shapes it (`/api/v2/summary.json`, ...), pure.

Field names and values follow Statuspage's documented responses so its widgets and monitors
read Tocsin's pages: `page {id, name, url, time_zone, updated_at}`, `status {indicator,
description}`, components (a `group` is a component with `group: true` and its members' ids,
a member names it in `group_id`), incidents with `incident_updates` newest first."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from services.notifier.status_domain import (
    ComponentView,
    IncidentView,
    MaintenanceView,
    PageView,
    PublicUpdate,
    worst,
)

Json = dict[str, Any]


def timestamp(at: datetime | None) -> str | None:
    """Statuspage writes ISO 8601 with milliseconds; Tocsin writes UTC."""
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def group_id(page_id: str, group: str) -> str:
    return "grp-" + hashlib.sha256(f"{page_id}/{group}".encode()).hexdigest()[:12]


def page_url(public_url: str | None, page_id: str) -> str:
    return f"{(public_url or '').rstrip('/')}/status/{page_id}"


def page_json(view: PageView, public_url: str | None) -> Json:
    return {
        "id": view.page.id,
        "name": view.page.title,
        "url": page_url(public_url, view.page.id),
        "time_zone": view.page.time_zone,
        "updated_at": timestamp(view.updated_at),
    }


def status_json(view: PageView) -> Json:
    return {"indicator": view.indicator, "description": view.description}


def _component(view: PageView, component: ComponentView) -> Json:
    group = component.config.group
    return {
        "id": component.config.id,
        "name": component.config.name,
        "status": component.status.value,
        "created_at": timestamp(component.updated_at),
        "updated_at": timestamp(component.updated_at),
        "position": component.position,
        "description": component.config.description,
        "showcase": False,
        "start_date": None,
        "group_id": group_id(view.page.id, group) if group else None,
        "page_id": view.page.id,
        "group": False,
        "only_show_if_degraded": False,
    }


def components_json(view: PageView) -> list[Json]:
    members = [_component(view, c) for c in view.components]
    groups = []
    for position, (name, components) in enumerate(view.groups, start=len(members) + 1):
        if name is None:
            continue
        changed = max(c.updated_at for c in components)
        groups.append(
            {
                "id": group_id(view.page.id, name),
                "name": name,
                "status": worst(c.status for c in components).value,
                "created_at": timestamp(min(c.updated_at for c in components)),
                "updated_at": timestamp(changed),
                "position": position,
                "description": None,
                "showcase": False,
                "start_date": None,
                "group_id": None,
                "page_id": view.page.id,
                "group": True,
                "only_show_if_degraded": False,
                "components": [c.config.id for c in components],
            }
        )
    return members + groups


def _update(incident: IncidentView, update: PublicUpdate) -> Json:
    return {
        "id": update.id,
        "status": update.status.value,
        "body": update.body,
        "incident_id": incident.id,
        "created_at": timestamp(update.at),
        "updated_at": timestamp(update.at),
        "display_at": timestamp(update.at),
        "affected_components": [
            {
                "code": c.config.id,
                "name": c.config.name,
                "old_status": c.status.value,
                "new_status": c.status.value,
            }
            for c in incident.components
        ],
        "deliver_notifications": True,
        "custom_tweet": None,
        "tweet_id": None,
    }


def incident_json(view: PageView, incident: IncidentView, public_url: str | None) -> Json:
    return {
        "id": incident.id,
        "name": incident.name,
        "status": incident.status.value,
        "created_at": timestamp(incident.created_at),
        "updated_at": timestamp(incident.updated_at),
        "monitoring_at": timestamp(incident.monitoring_at),
        "resolved_at": timestamp(incident.resolved_at),
        "impact": incident.impact,
        "shortlink": f"{page_url(public_url, view.page.id)}#incident-{incident.id}",
        "started_at": timestamp(incident.created_at),
        "page_id": view.page.id,
        "incident_updates": [_update(incident, u) for u in incident.updates],
        "components": [_component(view, c) for c in incident.components],
    }


def maintenance_json(view: PageView, item: MaintenanceView, public_url: str | None) -> Json:
    """A scheduled maintenance as Statuspage shapes it: an incident with `scheduled_for`,
    `scheduled_until` and a maintenance status."""
    announced = timestamp(view.updated_at)
    return {
        "id": item.id,
        "name": item.name,
        "status": item.status,
        "created_at": announced,
        "updated_at": announced,
        "monitoring_at": None,
        "resolved_at": None,
        "impact": "maintenance",
        "shortlink": f"{page_url(public_url, view.page.id)}#maintenance-{item.id}",
        "started_at": timestamp(item.start),
        "page_id": view.page.id,
        "incident_updates": [
            {
                "id": f"{item.id}-{item.status}",
                "status": item.status,
                "body": item.body,
                "incident_id": item.id,
                "created_at": announced,
                "updated_at": announced,
                "display_at": announced,
                "affected_components": [],
                "deliver_notifications": False,
                "custom_tweet": None,
                "tweet_id": None,
            }
        ],
        "components": [_component(view, c) for c in item.components],
        "scheduled_for": timestamp(item.start),
        "scheduled_until": timestamp(item.end),
    }


def summary_json(view: PageView, public_url: str | None) -> Json:
    return {
        "page": page_json(view, public_url),
        "components": components_json(view),
        "incidents": [incident_json(view, i, public_url) for i in view.active],
        "scheduled_maintenances": [maintenance_json(view, m, public_url) for m in view.maintenance],
        "status": status_json(view),
    }


def document(view: PageView, public_url: str | None, name: str) -> Json:
    """The body of `/api/v2/<name>` (name without `.json`)."""
    page = {"page": page_json(view, public_url)}
    if name == "summary":
        return summary_json(view, public_url)
    if name == "status":
        return page | {"status": status_json(view)}
    if name == "components":
        return page | {"components": components_json(view)}
    if name == "incidents":
        return page | {
            "incidents": [incident_json(view, i, public_url) for i in view.all_incidents]
        }
    if name == "incidents/unresolved":
        return page | {"incidents": [incident_json(view, i, public_url) for i in view.active]}
    if name.startswith("scheduled-maintenances"):
        wanted = {
            "scheduled-maintenances": ("scheduled", "in_progress"),
            "scheduled-maintenances/upcoming": ("scheduled",),
            "scheduled-maintenances/active": ("in_progress",),
        }[name]
        return page | {
            "scheduled_maintenances": [
                maintenance_json(view, m, public_url)
                for m in view.maintenance
                if m.status in wanted
            ]
        }
    raise KeyError(name)


DOCUMENTS = (
    "summary",
    "status",
    "components",
    "incidents",
    "incidents/unresolved",
    "scheduled-maintenances",
    "scheduled-maintenances/upcoming",
    "scheduled-maintenances/active",
)
