"""Status pages, pure: the notifier's record of an incident, component statuses, what becomes
public (and what never does), the Statuspage-compatible JSON field by field, the cadence."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import (
    AlertDetails,
    ComponentStatus,
    ComponentStatusChange,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    IncidentUpdatePosted,
    Label,
    LifecycleStatus,
    Severity,
    UpdateStatus,
)
from services.escalation.domain import cadence
from services.escalation.domain.cadence import UpdatesConfig
from services.notifier import status_views
from services.notifier.status_config import StatusPageConfig, update_cadence
from services.notifier.status_domain import (
    Maintenance,
    StatusIncident,
    on_incident_event,
    on_lifecycle,
    on_update,
    page_view,
    proactive,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SECRET_TITLE = "Postgres primary db-7.internal down"
SECRET_LABEL = "db-7.internal"

PAGE = StatusPageConfig.model_validate(
    {
        "id": "public",
        "title": "Example Inc. status",
        "components": [
            {"id": "checkout", "name": "Checkout", "services": ["checkout"], "group": "Shopping"},
            {"id": "search", "name": "Search", "services": ["search"], "group": "Shopping"},
            {"id": "api", "name": "Public API", "services": ["api"]},
        ],
    }
)


def event(
    kind: IncidentEventKind,
    severity: Severity,
    *,
    at: datetime = T0,
    incident_id: str = "inc-1",
    service_id: str = "checkout",
) -> IncidentEvent:
    return IncidentEvent(
        occurred_at=at,
        correlation_id=incident_id,
        kind=kind,
        incident_id=incident_id,
        service_id=service_id,
        group_key=f"{service_id}/CheckoutDown",
        title=SECRET_TITLE,
        severity=severity,
        alert_count=1,
        firing_count=1,
        alert=AlertDetails(
            fingerprint="f1",
            summary=SECRET_TITLE,
            labels=(Label(name="instance", value=SECRET_LABEL),),
        ),
    )


def lifecycle(
    status: LifecycleStatus, at: datetime, incident_id: str = "inc-1"
) -> IncidentLifecycleChanged:
    return IncidentLifecycleChanged(
        occurred_at=at,
        correlation_id=incident_id,
        incident_id=incident_id,
        service_id="checkout",
        status=status,
    )


def posted(
    status: UpdateStatus,
    message: str,
    at: datetime,
    *,
    public: bool = True,
    components: tuple[ComponentStatusChange, ...] = (),
) -> IncidentUpdatePosted:
    return IncidentUpdatePosted(
        occurred_at=at,
        correlation_id="inc-1",
        incident_id="inc-1",
        service_id="checkout",
        status=status,
        message=message,
        public=public,
        components=components,
    )


def opened(severity: Severity = Severity.SEV0) -> StatusIncident:
    return on_incident_event(None, event(IncidentEventKind.OPENED, severity))


def statuses(incidents: list[StatusIncident], now: datetime = T0) -> dict[str, str]:
    return {c.config.id: c.status.value for c in page_view(PAGE, incidents, now).components}


# -- components follow open incidents ----------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.SEV0, "major_outage"),
        (Severity.SEV1, "partial_outage"),
        (Severity.SEV2, "degraded_performance"),
        (Severity.SEV3, "operational"),
    ],
)
def test_a_component_follows_the_severity_of_an_open_incident(
    severity: Severity, expected: str
) -> None:
    assert statuses([opened(severity)]) == {
        "checkout": expected,
        "search": "operational",
        "api": "operational",
    }


def test_the_worst_open_incident_wins_and_a_resolved_one_counts_for_nothing() -> None:
    sev2 = opened(Severity.SEV2)
    sev0 = on_incident_event(
        None, event(IncidentEventKind.OPENED, Severity.SEV0, incident_id="inc-2")
    )
    assert statuses([sev2, sev0])["checkout"] == "major_outage"
    resolved = on_lifecycle(sev0, lifecycle(LifecycleStatus.RESOLVED, T0 + timedelta(minutes=5)))
    assert resolved is not None
    assert statuses([sev2, resolved])["checkout"] == "degraded_performance"


def test_a_status_set_by_hand_wins_over_the_severity_until_the_incident_resolves() -> None:
    incident = on_update(
        opened(Severity.SEV0),
        posted(
            UpdateStatus.MONITORING,
            "A fix is deployed.",
            T0 + timedelta(minutes=20),
            components=(
                ComponentStatusChange(component_id="checkout", status="degraded_performance"),
            ),
        ),
    )
    assert statuses([incident])["checkout"] == "degraded_performance"
    resolved = on_lifecycle(incident, lifecycle(LifecycleStatus.RESOLVED, T0 + timedelta(hours=1)))
    assert resolved is not None
    assert statuses([resolved])["checkout"] == "operational"


def test_severity_change_moves_the_component() -> None:
    incident = on_incident_event(
        opened(Severity.SEV2),
        event(IncidentEventKind.SEVERITY_CHANGED, Severity.SEV1, at=T0 + timedelta(minutes=3)),
    )
    assert statuses([incident])["checkout"] == "partial_outage"


# -- what becomes public -----------------------------------------------------------------------


def test_sev0_is_published_at_once_with_a_templated_investigating_update() -> None:
    view = page_view(PAGE, [opened(Severity.SEV0)], T0 + timedelta(seconds=5))
    assert [i.name for i in view.active] == ["Checkout: investigating an issue"]
    (update,) = view.active[0].updates
    assert update.status == UpdateStatus.INVESTIGATING
    assert update.body.startswith("We are investigating an issue affecting Checkout.")
    assert update.at == T0
    assert view.indicator == "critical"
    assert view.description == "Major System Outage"


def test_sev2_stays_off_the_page_until_an_operator_publishes_an_update() -> None:
    incident = opened(Severity.SEV2)
    view = page_view(PAGE, [incident], T0)
    assert view.active == ()
    assert view.indicator == "minor"  # the component is degraded all the same
    private = on_update(
        incident, posted(UpdateStatus.IDENTIFIED, "internal only", T0, public=False)
    )
    assert page_view(PAGE, [private], T0).active == ()
    public = on_update(
        private, posted(UpdateStatus.IDENTIFIED, "Search is slow; a fix is on the way.", T0)
    )
    (shown,) = page_view(PAGE, [public], T0).active
    assert [u.body for u in shown.updates] == ["Search is slow; a fix is on the way."]
    assert shown.status == UpdateStatus.IDENTIFIED


def test_a_page_configured_not_to_auto_publish_waits_for_the_operator() -> None:
    quiet = PAGE.model_copy(update={"auto_publish": ()})
    assert page_view(quiet, [opened(Severity.SEV0)], T0).active == ()


def test_updates_show_newest_first_and_a_resolve_adds_a_resolved_update() -> None:
    incident = on_update(
        opened(Severity.SEV0),
        posted(UpdateStatus.IDENTIFIED, "Found it.", T0 + timedelta(minutes=7)),
    )
    resolved = on_lifecycle(
        incident, lifecycle(LifecycleStatus.RESOLVED, T0 + timedelta(minutes=30))
    )
    assert resolved is not None
    view = page_view(PAGE, [resolved], T0 + timedelta(hours=1))
    assert view.active == ()
    (past,) = view.history
    assert [u.status.value for u in past.updates] == ["resolved", "identified", "investigating"]
    assert past.resolved_at == T0 + timedelta(minutes=30)
    assert view.indicator == "none"
    assert view.description == "All Systems Operational"


def test_history_keeps_fourteen_days() -> None:
    incident = on_lifecycle(opened(), lifecycle(LifecycleStatus.RESOLVED, T0 + timedelta(hours=1)))
    assert incident is not None
    assert len(page_view(PAGE, [incident], T0 + timedelta(days=13)).history) == 1
    assert page_view(PAGE, [incident], T0 + timedelta(days=15)).history == ()


def test_alerts_added_or_resolved_change_nothing_public() -> None:
    incident = opened(Severity.SEV1)
    added = event(IncidentEventKind.ALERT_ADDED, Severity.SEV1, at=T0 + timedelta(minutes=1))
    assert on_incident_event(incident, added) is incident
    gone = event(IncidentEventKind.ALERTS_RESOLVED, Severity.SEV1, at=T0 + timedelta(minutes=2))
    assert on_incident_event(incident, gone) is incident
    worse = event(IncidentEventKind.ALERT_ADDED, Severity.SEV0, at=T0 + timedelta(minutes=3))
    assert on_incident_event(incident, worse).severity == Severity.SEV0


def test_a_redelivered_message_is_recognised() -> None:
    message = event(IncidentEventKind.OPENED, Severity.SEV0)
    incident = on_incident_event(None, message)
    assert incident.seen(str(message.event_id))


def test_a_retrigger_after_resolve_reopens() -> None:
    incident = on_lifecycle(
        opened(), lifecycle(LifecycleStatus.RESOLVED, T0 + timedelta(minutes=5))
    )
    incident = on_lifecycle(
        incident, lifecycle(LifecycleStatus.TRIGGERED, T0 + timedelta(minutes=9))
    )
    assert incident is not None
    assert incident.open


def test_nothing_internal_reaches_the_json() -> None:
    incident = on_update(
        opened(Severity.SEV0),
        posted(
            UpdateStatus.IDENTIFIED, "private detail db-7", T0 + timedelta(minutes=1), public=False
        ),
    )
    view = page_view(PAGE, [incident], T0 + timedelta(minutes=2))
    everything = json.dumps(
        [status_views.document(view, None, name) for name in status_views.DOCUMENTS]
    )
    for secret in (SECRET_TITLE, SECRET_LABEL, "CheckoutDown", "instance", "private detail"):
        assert secret not in everything


def test_proactive_ratio_counts_sev0_and_sev1_told_within_ten_minutes() -> None:
    fast = opened(Severity.SEV1)
    late_page = PAGE.model_copy(update={"auto_publish": ()})
    slow = on_update(
        on_incident_event(
            None, event(IncidentEventKind.OPENED, Severity.SEV0, incident_id="inc-2")
        ),
        posted(UpdateStatus.INVESTIGATING, "Looking.", T0 + timedelta(minutes=11)),
    )
    minor = on_incident_event(
        None, event(IncidentEventKind.OPENED, Severity.SEV2, incident_id="inc-3")
    )
    assert proactive([fast, slow, minor], [PAGE]) == (2, 2)
    assert proactive([fast, slow, minor], [late_page]) == (2, 0)


# -- the Statuspage shapes, field by field ------------------------------------------------------

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PAGE_FIELDS = {"id": str, "name": str, "url": str, "time_zone": str, "updated_at": "time"}
STATUS_FIELDS = {
    "indicator": {"none", "minor", "major", "critical", "maintenance"},
    "description": str,
}
COMPONENT_FIELDS: dict[str, Any] = {
    "id": str,
    "name": str,
    "status": {s.value for s in ComponentStatus},
    "created_at": "time",
    "updated_at": "time",
    "position": int,
    "description": (str, type(None)),
    "showcase": bool,
    "start_date": (str, type(None)),
    "group_id": (str, type(None)),
    "page_id": str,
    "group": bool,
    "only_show_if_degraded": bool,
}
UPDATE_FIELDS: dict[str, Any] = {
    "id": str,
    "status": {s.value for s in UpdateStatus},
    "body": str,
    "incident_id": str,
    "created_at": "time",
    "updated_at": "time",
    "display_at": "time",
    "affected_components": list,
    "deliver_notifications": bool,
    "custom_tweet": (str, type(None)),
    "tweet_id": (str, type(None)),
}
INCIDENT_FIELDS: dict[str, Any] = {
    "id": str,
    "name": str,
    "status": {s.value for s in UpdateStatus},
    "created_at": "time",
    "updated_at": "time",
    "monitoring_at": "time?",
    "resolved_at": "time?",
    "impact": {"none", "minor", "major", "critical"},
    "shortlink": str,
    "started_at": "time",
    "page_id": str,
    "incident_updates": list,
    "components": list,
}


def check(value: dict[str, Any], fields: dict[str, Any], where: str) -> None:
    extra = set(value) - set(fields) - {"components"}
    assert not extra, f"{where}: fields Statuspage does not have: {extra}"
    for name, kind in fields.items():
        assert name in value, f"{where}.{name} missing"
        got = value[name]
        if kind == "time":
            assert isinstance(got, str), f"{where}.{name}={got!r}"
            assert ISO.match(got), f"{where}.{name}={got!r}"
        elif kind == "time?":
            assert got is None or (isinstance(got, str) and ISO.match(got)), f"{where}.{name}"
        elif isinstance(kind, set):
            assert got in kind, f"{where}.{name}={got!r} not in {sorted(kind)}"
        else:
            assert isinstance(got, kind), f"{where}.{name}={got!r}"


def test_summary_json_has_statuspage_shapes_field_by_field() -> None:
    incident = on_update(
        opened(Severity.SEV0),
        posted(UpdateStatus.MONITORING, "Fixed; watching.", T0 + timedelta(minutes=9)),
    )
    view = page_view(PAGE, [incident], T0 + timedelta(minutes=10))
    summary = status_views.document(view, "https://status.example.com", "summary")
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    check(summary["page"], PAGE_FIELDS, "page")
    assert summary["page"]["url"] == "https://status.example.com/status/public"
    check(summary["status"], STATUS_FIELDS, "status")
    for n, component in enumerate(summary["components"]):
        check(component, COMPONENT_FIELDS, f"components[{n}]")
    groups = [c for c in summary["components"] if c["group"]]
    assert [(g["name"], g["components"], g["status"]) for g in groups] == [
        ("Shopping", ["checkout", "search"], "major_outage")
    ]
    members = {c["id"]: c["group_id"] for c in summary["components"] if not c["group"]}
    assert members == {"checkout": groups[0]["id"], "search": groups[0]["id"], "api": None}
    (shown,) = summary["incidents"]
    check(shown, INCIDENT_FIELDS, "incidents[0]")
    assert shown["status"] == "monitoring"
    assert shown["monitoring_at"] == "2026-11-25T10:09:00.000Z"
    assert shown["impact"] == "critical"
    for n, update in enumerate(shown["incident_updates"]):
        check(update, UPDATE_FIELDS, f"incident_updates[{n}]")
    for n, component in enumerate(shown["components"]):
        check(component, COMPONENT_FIELDS, f"incidents[0].components[{n}]")


def test_every_document_has_the_page_and_its_own_key() -> None:
    view = page_view(PAGE, [opened()], T0)
    keys = {
        "status": "status",
        "components": "components",
        "incidents": "incidents",
        "incidents/unresolved": "incidents",
        "scheduled-maintenances": "scheduled_maintenances",
    }
    for name, key in keys.items():
        document = status_views.document(view, None, name)
        assert set(document) == {"page", key}, name
        check(document["page"], PAGE_FIELDS, f"{name}.page")
    assert len(status_views.document(view, None, "incidents/unresolved")["incidents"]) == 1


# -- configuration and cadence -----------------------------------------------------------------


def test_cadence_per_service_is_the_shortest_of_its_pages() -> None:
    fast = PAGE.model_copy(update={"id": "vip", "cadence": {Severity.SEV0: timedelta(minutes=15)}})
    per_service, default = update_cadence((PAGE, fast))
    config = UpdatesConfig(per_service, default)
    assert config.cadence("checkout", Severity.SEV0) == timedelta(minutes=15)
    assert config.cadence("checkout", Severity.SEV1) == timedelta(minutes=60)
    assert config.cadence("elsewhere", Severity.SEV0) == timedelta(minutes=30)
    assert config.cadence("checkout", Severity.SEV2) is None


def test_an_update_is_overdue_a_cadence_after_the_last_one() -> None:
    every = timedelta(minutes=30)
    before = cadence.check(
        now=T0 + timedelta(minutes=29),
        resolved=False,
        opened_at=T0,
        last_update_at=None,
        cadence=every,
    )
    assert before == cadence.Due(overdue=False, next_check=T0 + every)
    late = cadence.check(
        now=T0 + timedelta(minutes=31),
        resolved=False,
        opened_at=T0,
        last_update_at=None,
        cadence=every,
    )
    assert late == cadence.Due(overdue=True, next_check=T0 + timedelta(minutes=61))
    updated = cadence.check(
        now=T0 + timedelta(minutes=31),
        resolved=False,
        opened_at=T0,
        last_update_at=T0 + timedelta(minutes=20),
        cadence=every,
    )
    assert updated == cadence.Due(overdue=False, next_check=T0 + timedelta(minutes=50))
    done = cadence.check(
        now=T0 + timedelta(hours=5), resolved=True, opened_at=T0, last_update_at=None, cadence=every
    )
    assert done == cadence.Due(overdue=False, next_check=None)


# -- scheduled maintenance ---------------------------------------------------------------------


def test_maintenance_in_force_puts_components_under_maintenance_and_lists_what_is_ahead() -> None:
    running = Maintenance("search-upgrade", ("search",), T0 - HOUR, T0 + HOUR)
    ahead = Maintenance(
        "weekly", ("checkout",), T0 + timedelta(days=2), T0 + timedelta(days=2, hours=1)
    )
    over = Maintenance("old", ("checkout",), T0 - 3 * HOUR, T0 - 2 * HOUR)
    elsewhere = Maintenance("billing", ("billing",), T0, T0 + HOUR)
    next_week = Maintenance(
        "weekly", ("checkout",), T0 + timedelta(days=9), T0 + timedelta(days=9, hours=1)
    )
    view = page_view(PAGE, [], T0, [running, ahead, next_week, over, elsewhere])
    assert {c.config.id: c.status.value for c in view.components} == {
        "checkout": "operational",
        "search": "under_maintenance",
        "api": "operational",
    }
    assert view.indicator == "maintenance"
    assert [(m.name, m.status) for m in view.maintenance] == [
        ("Scheduled maintenance: Search", "in_progress"),
        ("Scheduled maintenance: Checkout", "scheduled"),
    ]
    # An incident is worse than maintenance.
    incident = on_incident_event(
        None, event(IncidentEventKind.OPENED, Severity.SEV1, service_id="search")
    )
    assert statuses_at([incident], [running])["search"] == "partial_outage"
    documents = {
        name: status_views.document(view, None, name)["scheduled_maintenances"]
        for name in (
            "scheduled-maintenances",
            "scheduled-maintenances/upcoming",
            "scheduled-maintenances/active",
        )
    }
    assert [m["status"] for m in documents["scheduled-maintenances"]] == [
        "in_progress",
        "scheduled",
    ]
    assert [m["status"] for m in documents["scheduled-maintenances/upcoming"]] == ["scheduled"]
    assert [m["status"] for m in documents["scheduled-maintenances/active"]] == ["in_progress"]
    first = documents["scheduled-maintenances"][0]
    check(first, INCIDENT_FIELDS | MAINTENANCE_FIELDS, "scheduled_maintenances[0]")
    assert first["scheduled_for"] == "2026-11-25T09:00:00.000Z"
    assert first["scheduled_until"] == "2026-11-25T11:00:00.000Z"
    summary = status_views.document(view, None, "summary")
    assert len(summary["scheduled_maintenances"]) == 2


MAINTENANCE_FIELDS: dict[str, Any] = {
    "status": {"scheduled", "in_progress", "verifying", "completed"},
    "impact": {"maintenance", "none", "minor", "major", "critical"},
    "scheduled_for": "time",
    "scheduled_until": "time",
}
HOUR = timedelta(hours=1)


def statuses_at(incidents: list[StatusIncident], maintenance: list[Maintenance]) -> dict[str, str]:
    view = page_view(PAGE, incidents, T0, maintenance)
    return {c.config.id: c.status.value for c in view.components}
