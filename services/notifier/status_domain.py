"""What the public status pages say (pure): the notifier's own record of each incident as the
public may see it, kept from `incidents.events`, `incidents.lifecycle` and `incidents.updates`,
and the page computed from those records and the page's configuration.

Nothing internal reaches a page: a record keeps the incident's service, severity, times and the
public updates, never the alert's title, labels or text. Its public name comes from the page's
template ("Checkout: investigating an issue"); the first update of an automatically published
incident from the page's message template; anything else only from what an operator published.

Time is a parameter; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from schemas import (
    ComponentStatus,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    IncidentUpdatePosted,
    LifecycleStatus,
    Severity,
    UpdateStatus,
)
from services.notifier.status_config import ComponentConfig, StatusPageConfig

MAX_EVENT_IDS = 50
HISTORY = timedelta(days=14)
PROACTIVE_WITHIN = timedelta(minutes=10)

AUTOMATIC: Mapping[Severity, ComponentStatus | None] = {
    Severity.SEV0: ComponentStatus.MAJOR_OUTAGE,
    Severity.SEV1: ComponentStatus.PARTIAL_OUTAGE,
    Severity.SEV2: ComponentStatus.DEGRADED_PERFORMANCE,
    Severity.SEV3: None,
}
IMPACT: Mapping[Severity, str] = {
    Severity.SEV0: "critical",
    Severity.SEV1: "major",
    Severity.SEV2: "minor",
    Severity.SEV3: "none",
}
_RANK: Mapping[ComponentStatus, int] = {
    ComponentStatus.OPERATIONAL: 0,
    ComponentStatus.UNDER_MAINTENANCE: 1,
    ComponentStatus.DEGRADED_PERFORMANCE: 2,
    ComponentStatus.PARTIAL_OUTAGE: 3,
    ComponentStatus.MAJOR_OUTAGE: 4,
}
_INDICATOR_OF_COMPONENT: Mapping[ComponentStatus, str] = {
    ComponentStatus.OPERATIONAL: "none",
    ComponentStatus.UNDER_MAINTENANCE: "maintenance",
    ComponentStatus.DEGRADED_PERFORMANCE: "minor",
    ComponentStatus.PARTIAL_OUTAGE: "major",
    ComponentStatus.MAJOR_OUTAGE: "critical",
}
_INDICATORS = ("none", "maintenance", "minor", "major", "critical")
DESCRIPTION: Mapping[str, str] = {
    "none": "All Systems Operational",
    "maintenance": "Service Under Maintenance",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major System Outage",
}
COMPONENT_LABEL: Mapping[ComponentStatus, str] = {
    ComponentStatus.OPERATIONAL: "Operational",
    ComponentStatus.UNDER_MAINTENANCE: "Under maintenance",
    ComponentStatus.DEGRADED_PERFORMANCE: "Degraded performance",
    ComponentStatus.PARTIAL_OUTAGE: "Partial outage",
    ComponentStatus.MAJOR_OUTAGE: "Major outage",
}


@dataclass(frozen=True)
class PublicUpdate:
    """An update an operator published."""

    id: str
    status: UpdateStatus
    body: str
    at: datetime


@dataclass(frozen=True)
class StatusIncident:
    """The notifier's record of one incident (collection `status_incidents`)."""

    id: str
    service_id: str
    opened_at: datetime
    updated_at: datetime
    severity: Severity | None = None  # None until triage's event arrives
    severity_at: Mapping[Severity, datetime] = field(default_factory=dict)  # first time seen
    resolved_at: datetime | None = None
    updates: tuple[PublicUpdate, ...] = ()  # oldest first
    manual: Mapping[str, ComponentStatus] = field(default_factory=dict)  # by component id
    event_ids: tuple[str, ...] = ()
    version: int = 0

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def seen(self, event_id: str) -> bool:
        return event_id in self.event_ids


def _new(incident_id: str, service_id: str, at: datetime) -> StatusIncident:
    return StatusIncident(id=incident_id, service_id=service_id, opened_at=at, updated_at=at)


def _remember(incident: StatusIncident, event_id: str) -> tuple[str, ...]:
    return (*incident.event_ids, event_id)[-MAX_EVENT_IDS:]


def on_incident_event(current: StatusIncident | None, event: IncidentEvent) -> StatusIncident:
    """Triage opened the incident or changed its severity (alerts themselves stay private).
    Another alert in it, or its alerts resolving, changes nothing public: the record is
    returned as it is (no write; escalation's resolve comes on `incidents.lifecycle`)."""
    if current is not None and (
        event.kind in (IncidentEventKind.ALERTS_RESOLVED, IncidentEventKind.ALERT_HELD)
        or (event.kind == IncidentEventKind.ALERT_ADDED and event.severity == current.severity)
    ):
        return current
    at = event.occurred_at
    incident = current or _new(event.incident_id, event.service_id, at)
    if event.kind == IncidentEventKind.OPENED:
        incident = replace(incident, opened_at=min(incident.opened_at, at))
    severity_at = dict(incident.severity_at)
    severity_at.setdefault(event.severity, at)
    return replace(
        incident,
        severity=event.severity,
        severity_at=severity_at,
        updated_at=max(incident.updated_at, at),
        event_ids=_remember(incident, str(event.event_id)),
    )


def on_lifecycle(
    current: StatusIncident | None, change: IncidentLifecycleChanged
) -> StatusIncident | None:
    """Resolved closes the public incident (components back to operational); a re-trigger after
    a resolve opens it again. Acknowledgements say nothing publicly."""
    if current is None and change.status != LifecycleStatus.RESOLVED:
        return None
    at = change.occurred_at
    incident = current or _new(change.incident_id, change.service_id, at)
    resolved_at = incident.resolved_at
    if change.status == LifecycleStatus.RESOLVED:
        resolved_at = resolved_at or at
    elif change.status == LifecycleStatus.TRIGGERED:
        resolved_at = None
    return replace(
        incident,
        resolved_at=resolved_at,
        updated_at=max(incident.updated_at, at),
        event_ids=_remember(incident, str(change.event_id)),
    )


def on_update(current: StatusIncident | None, posted: IncidentUpdatePosted) -> StatusIncident:
    """An operator's update: public ones go on the page; component statuses set by hand hold
    for this incident until it resolves."""
    at = posted.occurred_at
    incident = current or _new(posted.incident_id, posted.service_id, at)
    manual = dict(incident.manual)
    manual.update({c.component_id: c.status for c in posted.components})
    updates = incident.updates
    if posted.public:
        update = PublicUpdate(str(posted.event_id), posted.status, posted.message, at)
        updates = tuple(sorted((*updates, update), key=lambda u: u.at))
    resolved_at = incident.resolved_at
    if posted.public and posted.status == UpdateStatus.RESOLVED:
        resolved_at = resolved_at or at
    return replace(
        incident,
        manual=manual,
        updates=updates,
        resolved_at=resolved_at,
        updated_at=max(incident.updated_at, at),
        event_ids=_remember(incident, str(posted.event_id)),
    )


@dataclass(frozen=True)
class Maintenance:
    """One occurrence of a maintenance window (the composition root reads them from the
    `maintenance_windows:` section; the notifier does not import triage)."""

    window_id: str
    services: tuple[str, ...]
    start: datetime
    end: datetime

    @property
    def id(self) -> str:
        return f"{self.window_id}-{self.start.astimezone(UTC):%Y%m%dT%H%M}"


MaintenanceSchedule = Callable[[datetime, datetime], Sequence[Maintenance]]
"""Occurrences overlapping [start, end)."""

MAINTENANCE_AHEAD = timedelta(days=30)


def no_maintenance(start: datetime, end: datetime) -> Sequence[Maintenance]:
    return ()


@dataclass(frozen=True)
class WindowCopy:
    """The notifier's copy of a maintenance window created through triage's API (from
    `maintenance.windows`; no comment: it stays private)."""

    window_id: str
    services: tuple[str, ...]
    starts_at: datetime
    duration: timedelta
    rrule: str | None
    timezone: str


Expand = Callable[[WindowCopy, datetime, datetime], Sequence[Maintenance]]
"""A window's occurrences overlapping [start, end) (the composition root hands triage's
expansion in; the notifier does not import triage)."""


def no_expansion(window: WindowCopy, start: datetime, end: datetime) -> Sequence[Maintenance]:
    return ()


# -- one page ----------------------------------------------------------------------------------


def components_of(page: StatusPageConfig, service_id: str) -> tuple[ComponentConfig, ...]:
    return tuple(c for c in page.components if service_id in c.services)


def on_page(page: StatusPageConfig, incident: StatusIncident) -> bool:
    return bool(components_of(page, incident.service_id))


def auto_published_at(page: StatusPageConfig, incident: StatusIncident) -> datetime | None:
    """When the page published the incident by itself (its severity reached one the page
    publishes automatically), or None."""
    times = [incident.severity_at[s] for s in page.auto_publish if s in incident.severity_at]
    return min(times) if times else None


def published_at(page: StatusPageConfig, incident: StatusIncident) -> datetime | None:
    """When the incident became public on `page`, or None while it is not."""
    if not on_page(page, incident):
        return None
    times = [u.at for u in incident.updates]
    auto = auto_published_at(page, incident)
    if auto is not None:
        times.append(auto)
    return min(times) if times else None


def _fill(template: str, page: StatusPageConfig, incident: StatusIncident) -> str:
    names = ", ".join(c.name for c in components_of(page, incident.service_id)) or page.title
    return template.format(components=names, page=page.title)


def public_name(page: StatusPageConfig, incident: StatusIncident) -> str:
    return _fill(page.name_template, page, incident)


def auto_update(page: StatusPageConfig, incident: StatusIncident) -> PublicUpdate | None:
    """The "Investigating" update the page posted by itself, if it published automatically."""
    at = auto_published_at(page, incident)
    if at is None:
        return None
    body = _fill(page.message_template, page, incident)
    return PublicUpdate(f"{incident.id}-investigating", UpdateStatus.INVESTIGATING, body, at)


RESOLVED_BODY = "This incident has been resolved."


def page_updates(page: StatusPageConfig, incident: StatusIncident) -> tuple[PublicUpdate, ...]:
    """The incident's updates on `page`, oldest first; a resolve nobody wrote about gets one."""
    updates = list(incident.updates)
    auto = auto_update(page, incident)
    if auto is not None:
        updates.append(auto)
    updates.sort(key=lambda u: u.at)
    if incident.resolved_at is not None and updates and updates[-1].status != UpdateStatus.RESOLVED:
        updates.append(
            PublicUpdate(
                f"{incident.id}-resolved",
                UpdateStatus.RESOLVED,
                RESOLVED_BODY,
                incident.resolved_at,
            )
        )
    return tuple(updates)


def public_status(page: StatusPageConfig, incident: StatusIncident) -> UpdateStatus:
    if incident.resolved_at is not None:
        return UpdateStatus.RESOLVED
    updates = page_updates(page, incident)
    return updates[-1].status if updates else UpdateStatus.INVESTIGATING


def worst(statuses: Iterable[ComponentStatus]) -> ComponentStatus:
    return max(statuses, key=lambda s: _RANK[s], default=ComponentStatus.OPERATIONAL)


def component_status(
    component: ComponentConfig,
    incidents: Iterable[StatusIncident],
    maintenance: Iterable[Maintenance] = (),
    now: datetime | None = None,
) -> ComponentStatus:
    """The worst status the open incidents on the component's services give it: set by hand
    for that incident if an operator did, else from the incident's severity; under maintenance
    while a maintenance window on one of its services is in force and nothing is worse."""
    statuses: list[ComponentStatus] = [
        ComponentStatus.UNDER_MAINTENANCE
        for m in maintenance
        if now is not None and m.start <= now < m.end and set(m.services) & set(component.services)
    ]
    for incident in incidents:
        if not incident.open:
            continue
        if component.id in incident.manual:
            statuses.append(incident.manual[component.id])
        elif incident.service_id in component.services and incident.severity is not None:
            automatic = AUTOMATIC[incident.severity]
            if automatic is not None:
                statuses.append(automatic)
    return worst(statuses)


@dataclass(frozen=True)
class ComponentView:
    config: ComponentConfig
    status: ComponentStatus
    position: int
    updated_at: datetime


@dataclass(frozen=True)
class IncidentView:
    id: str
    name: str
    status: UpdateStatus
    impact: str
    created_at: datetime
    updated_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    updates: tuple[PublicUpdate, ...]  # newest first
    components: tuple[ComponentView, ...]


@dataclass(frozen=True)
class MaintenanceView:
    id: str
    name: str
    status: str  # Statuspage's: scheduled, in_progress
    body: str
    start: datetime
    end: datetime
    components: tuple[ComponentView, ...]


@dataclass(frozen=True)
class PageView:
    page: StatusPageConfig
    updated_at: datetime
    indicator: str
    description: str
    components: tuple[ComponentView, ...]
    groups: tuple[tuple[str | None, tuple[ComponentView, ...]], ...]
    active: tuple[IncidentView, ...]  # published and unresolved, newest first
    history: tuple[IncidentView, ...]  # published in the last 14 days, newest first
    generated_at: datetime
    maintenance: tuple[MaintenanceView, ...] = ()  # in force or upcoming, by start

    @property
    def all_incidents(self) -> tuple[IncidentView, ...]:
        return self.active + tuple(i for i in self.history if i.resolved_at is not None)


def _incident_view(
    page: StatusPageConfig,
    incident: StatusIncident,
    components: Mapping[str, ComponentView],
) -> IncidentView:
    updates = page_updates(page, incident)
    monitoring = [u.at for u in updates if u.status == UpdateStatus.MONITORING]
    severity = incident.severity or Severity.SEV3
    return IncidentView(
        id=incident.id,
        name=public_name(page, incident),
        status=public_status(page, incident),
        impact=IMPACT[severity],
        created_at=published_at(page, incident) or incident.opened_at,
        updated_at=max([incident.updated_at, *(u.at for u in updates)]),
        monitoring_at=monitoring[0] if monitoring else None,
        resolved_at=incident.resolved_at,
        updates=tuple(reversed(updates)),
        components=tuple(
            components[c.id] for c in components_of(page, incident.service_id) if c.id in components
        ),
    )


def page_view(
    page: StatusPageConfig,
    incidents: Sequence[StatusIncident],
    now: datetime,
    maintenance: Sequence[Maintenance] = (),
) -> PageView:
    """The page at `now` from every incident record the notifier keeps (open ones and those
    resolved within the history window) and the maintenance occurrences in force or ahead."""
    mine = [
        i for i in incidents if on_page(page, i) or any(c.id in i.manual for c in page.components)
    ]
    started = min((i.opened_at for i in mine), default=now)
    components = []
    for position, component in enumerate(page.components, start=1):
        touching = [
            i for i in mine if component.id in i.manual or i.service_id in component.services
        ]
        changed = max((i.updated_at for i in touching), default=started)
        status = component_status(component, mine, maintenance, now)
        components.append(ComponentView(component, status, position, changed))
    by_id = {c.config.id: c for c in components}
    published = [i for i in mine if published_at(page, i) is not None]
    views = sorted(
        (_incident_view(page, i, by_id) for i in published),
        key=lambda v: v.created_at,
        reverse=True,
    )
    active = tuple(v for v in views if v.resolved_at is None)
    history = tuple(v for v in views if v.created_at >= now - HISTORY)
    indicators = [_INDICATOR_OF_COMPONENT[c.status] for c in components]
    indicators += [v.impact for v in active if v.impact != "none"]
    indicator = max(indicators, key=_INDICATORS.index, default="none")
    groups: dict[str | None, list[ComponentView]] = {}
    for view in components:
        groups.setdefault(view.config.group, []).append(view)
    updated = max(
        [*(c.updated_at for c in components), *(v.updated_at for v in views)], default=started
    )
    return PageView(
        maintenance=_maintenance_views(page, maintenance, by_id, now),
        page=page,
        updated_at=updated,
        indicator=indicator,
        description=DESCRIPTION[indicator],
        components=tuple(components),
        groups=tuple((name, tuple(members)) for name, members in groups.items()),
        active=active,
        history=history,
        generated_at=now,
    )


def _maintenance_views(
    page: StatusPageConfig,
    maintenance: Sequence[Maintenance],
    components: Mapping[str, ComponentView],
    now: datetime,
) -> tuple[MaintenanceView, ...]:
    views = []
    windows: set[str] = set()
    for occurrence in sorted(maintenance, key=lambda m: (m.start, m.window_id)):
        if occurrence.end <= now or occurrence.window_id in windows:
            continue  # over, or a later occurrence of a window already listed
        windows.add(occurrence.window_id)
        touched = [
            components[c.id]
            for c in page.components
            if set(c.services) & set(occurrence.services) and c.id in components
        ]
        if not touched:
            continue
        names = ", ".join(c.config.name for c in touched)
        start, end = occurrence.start.astimezone(UTC), occurrence.end.astimezone(UTC)
        views.append(
            MaintenanceView(
                id=occurrence.id,
                name=f"Scheduled maintenance: {names}",
                status="in_progress" if occurrence.start <= now else "scheduled",
                body=f"{names} will be under maintenance from {start:%Y-%m-%d %H:%M} to "
                f"{end:%Y-%m-%d %H:%M} UTC.",
                start=occurrence.start,
                end=occurrence.end,
                components=tuple(touched),
            )
        )
    return tuple(views)


def proactive(
    incidents: Iterable[StatusIncident], pages: Sequence[StatusPageConfig]
) -> tuple[int, int]:
    """(SEV0/SEV1 incidents, those told publicly within 10 minutes of opening on some page)."""
    total = told = 0
    for incident in incidents:
        if not any(s in incident.severity_at for s in (Severity.SEV0, Severity.SEV1)):
            continue
        total += 1
        first = [t for p in pages if (t := published_at(p, incident)) is not None]
        if first and min(first) - incident.opened_at <= PROACTIVE_WITHIN:
            told += 1
    return total, told
