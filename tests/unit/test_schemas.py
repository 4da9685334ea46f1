"""Message contracts: committed JSON Schemas match the models; models are strict."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import (
    TOPICS,
    AlertReceived,
    ChangeReceived,
    ChangeSummary,
    CommandKind,
    DeadLetter,
    Envelope,
    IncidentCommand,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    IncidentUpdatePosted,
    Label,
    MaintenanceWindowChanged,
    NotificationEvent,
    NotificationRequested,
    NotificationResult,
    Severity,
    dlq_topic,
)
from schemas.export import SCHEMA_DIR, rendered_schemas

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# One valid instance of every message model.
VALID: dict[type[Envelope], dict[str, Any]] = {
    AlertReceived: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "fingerprint": "1a2b3c4d5e6f7a8b",
        "status": "firing",
        "integration_id": "prom-prod",
        "source": "alertmanager",
        "service_id": "checkout",
        "alertname": "HighLatency",
        "summary": "slow",
    },
    ChangeReceived: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "integration_id": "deploys",
        "integration_type": "pagerduty",
        "service_id": "checkout",
        "summary": "deployed checkout v2.3.1",
        "at": NOW,
    },
    IncidentEvent: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "kind": IncidentEventKind.OPENED,
        "incident_id": "inc-1",
        "service_id": "checkout",
        "group_key": "checkout/HighLatency",
        "title": "slow",
        "severity": Severity.SEV1,
        "alert_count": 1,
        "firing_count": 1,
    },
    IncidentCommand: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "command": CommandKind.ACKNOWLEDGE,
        "incident_id": "inc-1",
        "actor": "alice",
    },
    NotificationRequested: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "notification_id": "inc-1/c0/s0/alice/hook",
        "event": NotificationEvent.TRIGGERED,
        "incident": {
            "id": "inc-1",
            "title": "slow",
            "severity": "SEV1",
            "status": "triggered",
            "service": "checkout",
            "alert_count": 1,
        },
        "recipient": {"user_id": "alice", "contact_id": "hook"},
        "escalation_level": 0,
    },
    NotificationResult: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "notification_id": "inc-1/c0/s0/alice/hook",
        "incident_id": "inc-1",
        "outcome": "delivered",
        "attempt": 1,
        "event": "incident.triggered",
        "recipient": {"user_id": "alice", "contact_id": "hook"},
        "escalation_level": 0,
    },
    IncidentLifecycleChanged: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "incident_id": "inc-1",
        "service_id": "checkout",
        "status": "resolved",
        "actor": "alice",
    },
    IncidentUpdatePosted: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "incident_id": "inc-1",
        "service_id": "checkout",
        "status": "identified",
        "message": "A bad deploy; rolling back.",
        "public": True,
        "components": [{"component_id": "checkout", "status": "partial_outage"}],
    },
    MaintenanceWindowChanged: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "window_id": "mw-1",
        "services": ["checkout"],
        "starts_at": NOW,
        "duration_seconds": 7200.0,
        "rrule": "FREQ=WEEKLY",
        "timezone": "Europe/Paris",
    },
    DeadLetter: {
        "occurred_at": NOW,
        "correlation_id": "c",
        "topic": "alerts.raw",
        "error": "bad",
        "attempts": 3,
        "payload": "{}",
    },
}

MODELS = list(VALID)


# -- committed JSON Schemas ------------------------------------------------------------------


def test_committed_json_schemas_match_the_models() -> None:
    for file_name, text in rendered_schemas().items():
        path = SCHEMA_DIR / file_name
        assert path.exists(), f"schemas/json/{file_name} is missing: run `make schemas`"
        committed = path.read_text(encoding="utf-8")
        assert committed == text, (
            f"schemas/json/{file_name} differs from its model: run `make schemas` and commit"
        )


def test_every_committed_schema_file_belongs_to_a_model() -> None:
    committed = {p.name for p in SCHEMA_DIR.iterdir() if p.is_file()}
    expected = set(rendered_schemas())
    assert committed - expected == set(), (
        f"schemas/json has files no model renders: {sorted(committed - expected)}; "
        "delete them or run `make schemas`"
    )


def test_a_schema_file_per_topic_and_one_for_dead_letters() -> None:
    assert set(rendered_schemas()) == {f"{t}.schema.json" for t in TOPICS} | {"dlq.schema.json"}


def test_topics_map_to_the_expected_models() -> None:
    assert dict(TOPICS) == {
        "alerts.raw": AlertReceived,
        "changes.raw": ChangeReceived,
        "incidents.events": IncidentEvent,
        "incidents.commands": IncidentCommand,
        "incidents.lifecycle": IncidentLifecycleChanged,
        "incidents.updates": IncidentUpdatePosted,
        "maintenance.windows": MaintenanceWindowChanged,
        "notifications.requested": NotificationRequested,
        "notifications.results": NotificationResult,
    }
    assert dlq_topic("alerts.raw") == "alerts.raw.dlq"


def test_every_topic_model_has_a_valid_example_here() -> None:
    assert set(TOPICS.values()) | {DeadLetter} == set(MODELS)


# -- strictness ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_valid_example_validates(model: type[Envelope]) -> None:
    instance = model.model_validate(VALID[model])
    assert model.model_validate_json(instance.model_dump_json()) == instance


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_models_are_frozen(model: type[Envelope]) -> None:
    instance = model.model_validate(VALID[model])
    with pytest.raises(ValidationError, match="frozen"):
        instance.correlation_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_models_reject_unknown_fields(model: type[Envelope]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({**VALID[model], "surprise": 1})


def test_nested_values_reject_unknown_fields() -> None:
    document = {**VALID[NotificationRequested]}
    document["recipient"] = {"user_id": "alice", "contact_id": "hook", "phone": "123"}
    with pytest.raises(ValidationError, match=r"recipient\.phone"):
        NotificationRequested.model_validate(document)


def test_labels_are_frozen_and_strict() -> None:
    label = Label(name="a", value="b")
    with pytest.raises(ValidationError):
        label.value = "c"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Label.model_validate({"name": "a", "value": "b", "extra": 1})
    with pytest.raises(ValidationError):
        Label(name="", value="b")


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_occurred_at_without_time_zone_is_rejected(model: type[Envelope]) -> None:
    with pytest.raises(ValidationError, match="time zone"):
        model.model_validate({**VALID[model], "occurred_at": datetime(2024, 5, 1, 12, 0)})


def test_occurred_at_naive_string_is_rejected() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        AlertReceived.model_validate({**VALID[AlertReceived], "occurred_at": "2024-05-01T12:00:00"})


def test_occurred_at_is_normalized_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    message = AlertReceived.model_validate(
        {**VALID[AlertReceived], "occurred_at": datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)}
    )
    assert message.occurred_at == NOW
    assert message.occurred_at.tzinfo is UTC


def test_alert_start_time_without_time_zone_is_rejected() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        AlertReceived.model_validate({**VALID[AlertReceived], "starts_at": datetime(2024, 5, 1)})


def test_envelope_defaults() -> None:
    first = AlertReceived.model_validate(VALID[AlertReceived])
    second = AlertReceived.model_validate(VALID[AlertReceived])
    assert isinstance(first.event_id, uuid.UUID)
    assert first.event_id != second.event_id
    assert first.schema_version == 1
    assert first.kind == "alert.received"


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (AlertReceived, "status", "pending"),
        (AlertReceived, "fingerprint", ""),
        (AlertReceived, "correlation_id", ""),
        (AlertReceived, "kind", "alert.other"),
        (AlertReceived, "schema_version", 0),
        (IncidentEvent, "alert_count", -1),
        (IncidentEvent, "severity", "SEV9"),
        (IncidentCommand, "snooze_seconds", 0),
        (IncidentCommand, "snooze_seconds", 7 * 24 * 3600 + 1),
        (NotificationResult, "attempt", 0),
        (NotificationRequested, "escalation_level", -1),
        (DeadLetter, "attempts", -1),
    ],
)
def test_field_constraints(model: type[Envelope], field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        model.model_validate({**VALID[model], field: value})


def test_incident_events_carry_changes_and_older_ones_default_to_none() -> None:
    event = IncidentEvent.model_validate(VALID[IncidentEvent])
    assert event.changes == ()
    change = ChangeSummary(summary="deployed", at=NOW, version="v2.3.1", links=())
    with_changes = IncidentEvent.model_validate({**VALID[IncidentEvent], "changes": [change]})
    assert with_changes.changes == (change,)
    with pytest.raises(ValidationError):
        IncidentEvent.model_validate({**VALID[IncidentEvent], "changes": [change] * 11})


def test_change_time_needs_a_time_zone() -> None:
    with pytest.raises(ValidationError):
        ChangeReceived.model_validate({**VALID[ChangeReceived], "at": datetime(2024, 5, 1)})
