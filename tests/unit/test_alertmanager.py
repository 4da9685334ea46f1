"""Alertmanager webhook v4 → `AlertReceived` normalization."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import AlertReceived, AlertStatus
from services.ingest.domain.fingerprint import fingerprint_hex
from services.ingest.domain.formats.alertmanager import AlertmanagerWebhook, normalize

RECEIVED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _webhook(*alerts: dict[str, Any], **extra: Any) -> AlertmanagerWebhook:
    return AlertmanagerWebhook.model_validate({"version": "4", "alerts": list(alerts), **extra})


def _normalize(webhook: AlertmanagerWebhook) -> list[AlertReceived]:
    return normalize(
        webhook, integration_id="prom-prod", service_id="checkout", received_at=RECEIVED_AT
    )


def _one(alert: dict[str, Any]) -> AlertReceived:
    messages = _normalize(_webhook(alert))
    assert len(messages) == 1
    return messages[0]


# A realistic Alertmanager v4 payload (fields as Alertmanager sends them).
REAL_PAYLOAD: dict[str, Any] = {
    "receiver": "tocsin",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighLatency", "instance": "web-1", "severity": "critical"},
            "annotations": {"summary": "p99 latency above 2s", "description": "long text"},
            "startsAt": "2024-05-01T11:58:00.123Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph?g0.expr=x",
            "fingerprint": "1a2b3c4d5e6f7a8b",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "HighLatency", "instance": "web-2", "severity": "critical"},
            "annotations": {"summary": "p99 latency above 2s"},
            "startsAt": "2024-05-01T11:00:00Z",
            "endsAt": "2024-05-01T11:30:00Z",
            "generatorURL": "http://prometheus/graph?g0.expr=x",
            "fingerprint": "0000000000000001",
        },
    ],
    "groupLabels": {"alertname": "HighLatency"},
    "commonLabels": {"alertname": "HighLatency", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}:{alertname="HighLatency"}',
    "truncatedAlerts": 0,
}


def test_real_payload_gives_one_message_per_alert_in_order() -> None:
    messages = _normalize(AlertmanagerWebhook.model_validate(REAL_PAYLOAD))
    assert [m.fingerprint for m in messages] == ["1a2b3c4d5e6f7a8b", "0000000000000001"]
    assert [m.status for m in messages] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


def test_real_payload_fields_are_mapped() -> None:
    first = _normalize(AlertmanagerWebhook.model_validate(REAL_PAYLOAD))[0]
    assert first.alertname == "HighLatency"
    assert first.summary == "p99 latency above 2s"
    assert first.severity == "critical"
    assert first.integration_id == "prom-prod"
    assert first.service_id == "checkout"
    assert first.source == "alertmanager"
    assert first.occurred_at == RECEIVED_AT
    assert first.starts_at == datetime(2024, 5, 1, 11, 58, 0, 123000, tzinfo=UTC)
    assert first.ends_at is None
    assert first.generator_url == "http://prometheus/graph?g0.expr=x"
    assert [(a.name, a.value) for a in first.annotations] == [
        ("description", "long text"),
        ("summary", "p99 latency above 2s"),
    ]


def test_resolved_alert_keeps_its_real_end_time() -> None:
    second = _normalize(AlertmanagerWebhook.model_validate(REAL_PAYLOAD))[1]
    assert second.ends_at == datetime(2024, 5, 1, 11, 30, tzinfo=UTC)


def test_alerts_of_one_webhook_share_a_correlation_id() -> None:
    messages = _normalize(AlertmanagerWebhook.model_validate(REAL_PAYLOAD))
    assert messages[0].correlation_id == messages[1].correlation_id
    assert messages[0].event_id != messages[1].event_id


def test_two_webhooks_get_different_correlation_ids() -> None:
    first = _normalize(AlertmanagerWebhook.model_validate(REAL_PAYLOAD))[0]
    second = _normalize(AlertmanagerWebhook.model_validate(REAL_PAYLOAD))[0]
    assert first.correlation_id != second.correlation_id


def test_sender_fingerprint_is_kept_even_if_it_differs_from_computed() -> None:
    labels = {"alertname": "Disk"}
    message = _one({"status": "firing", "labels": labels, "fingerprint": "deadbeefdeadbeef"})
    assert message.fingerprint == "deadbeefdeadbeef"
    assert fingerprint_hex(labels.items()) != "deadbeefdeadbeef"


def test_missing_fingerprint_is_computed_from_labels() -> None:
    labels = {"alertname": "Disk", "instance": "db-1"}
    message = _one({"status": "firing", "labels": labels})
    assert message.fingerprint == fingerprint_hex(labels.items())


def test_empty_fingerprint_is_treated_as_missing() -> None:
    labels = {"alertname": "Disk"}
    message = _one({"status": "firing", "labels": labels, "fingerprint": ""})
    assert message.fingerprint == fingerprint_hex(labels.items())


def test_computed_fingerprint_matches_prometheus_reference() -> None:
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    message = _one({"status": "firing", "labels": labels})
    assert message.fingerprint == f"{5799056148416392346:016x}"


def test_alert_without_labels_gets_the_empty_set_fingerprint_as_summary() -> None:
    message = _one({"status": "firing"})
    assert message.fingerprint == "cbf29ce484222325"
    assert message.alertname == ""
    assert message.summary == "cbf29ce484222325"
    assert message.labels == ()


@pytest.mark.parametrize("field", ["startsAt", "endsAt"])
def test_zero_time_becomes_none(field: str) -> None:
    message = _one({"status": "firing", "labels": {"a": "b"}, field: "0001-01-01T00:00:00Z"})
    assert getattr(message, field.replace("At", "_at").lower()) is None


def test_absent_times_are_none() -> None:
    message = _one({"status": "firing", "labels": {"a": "b"}})
    assert message.starts_at is None
    assert message.ends_at is None


def test_non_utc_start_time_is_converted_to_utc() -> None:
    message = _one({"status": "firing", "startsAt": "2024-05-01T14:00:00+02:00"})
    assert message.starts_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert message.starts_at is not None
    assert message.starts_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("labels", "annotations", "expected"),
    [
        ({"alertname": "A"}, {"summary": "S", "description": "D"}, "S"),
        ({"alertname": "A"}, {"description": "D"}, "D"),
        ({"alertname": "A"}, {"summary": "", "description": "D"}, "D"),
        ({"alertname": "A"}, {}, "A"),
        ({"alertname": "A"}, {"summary": "", "description": ""}, "A"),
    ],
    ids=["summary", "description", "empty-summary", "alertname", "all-empty"],
)
def test_summary_fallback_order(
    labels: dict[str, str], annotations: dict[str, str], expected: str
) -> None:
    message = _one({"status": "firing", "labels": labels, "annotations": annotations})
    assert message.summary == expected


def test_a_resolve_without_summary_annotations_carries_no_summary() -> None:
    # No fallback to the alert name: triage keeps the trigger's summary instead.
    message = _one({"status": "resolved", "labels": {"alertname": "A"}, "annotations": {}})
    assert message.summary == ""
    described = _one({"status": "resolved", "annotations": {"description": "D"}})
    assert described.summary == "D"


def test_summary_falls_back_to_fingerprint_without_alertname() -> None:
    message = _one({"status": "firing", "labels": {"job": "x"}, "fingerprint": "abcd"})
    assert message.summary == "abcd"


def test_long_summary_is_truncated_to_4096_characters() -> None:
    message = _one({"status": "firing", "annotations": {"summary": "x" * 5000}})
    assert message.summary == "x" * 4096


def test_severity_is_none_without_severity_label() -> None:
    assert _one({"status": "firing", "labels": {"alertname": "A"}}).severity is None


def test_unknown_extra_fields_are_ignored() -> None:
    webhook = _webhook(
        {"status": "firing", "labels": {"alertname": "A"}, "silencedBy": [], "newField": {"x": 1}},
        truncatedAlerts=3,
        someFutureField="y",
    )
    message = _normalize(webhook)[0]
    assert message.alertname == "A"


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(ValidationError):
        _webhook({"status": "pending"})


def test_more_than_10000_alerts_is_rejected_by_the_model() -> None:
    # The configurable per-request limit (default 1000) is checked after parsing, in limits.py.
    with pytest.raises(ValidationError):
        _webhook(*[{"status": "firing"} for _ in range(10_001)])


def test_webhook_with_no_alerts_gives_no_messages() -> None:
    assert _normalize(_webhook()) == []


def test_messages_carry_valid_envelopes() -> None:
    message = _one({"status": "firing", "labels": {"alertname": "A"}})
    assert isinstance(message.event_id, uuid.UUID)
    assert message.schema_version == 1
    # Round-trips through JSON as the bus would carry it.
    assert AlertReceived.model_validate_json(message.model_dump_json()) == message


def test_received_at_in_other_zone_is_stored_as_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    webhook = _webhook({"status": "firing"})
    message = normalize(
        webhook,
        integration_id="i",
        service_id="s",
        received_at=datetime(2024, 5, 1, 14, 0, tzinfo=plus_two),
    )[0]
    assert message.occurred_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert message.occurred_at.tzinfo == UTC


# Label names Alertmanager can send: non-empty; values anything (within the contract's limits).
arbitrary_labels = st.dictionaries(
    st.text(min_size=1, max_size=50), st.text(max_size=100), max_size=10
).filter(lambda d: "severity" not in d and "alertname" not in d)


@given(arbitrary_labels)
def test_labels_round_trip_as_sorted_pairs(labels: dict[str, str]) -> None:
    message = _one({"status": "firing", "labels": labels})
    assert [(label.name, label.value) for label in message.labels] == sorted(labels.items())
    assert message.fingerprint == fingerprint_hex(labels.items())


@given(arbitrary_labels)
def test_annotations_round_trip_as_sorted_pairs(annotations: dict[str, str]) -> None:
    message = _one({"status": "firing", "annotations": annotations})
    assert [(a.name, a.value) for a in message.annotations] == sorted(annotations.items())


def test_lone_surrogate_in_label_without_fingerprint_is_a_validation_error() -> None:
    # Regression: json.loads('"x\\ud800"') yields this string; fingerprint_hex used to raise
    # UnicodeEncodeError on it, which the API answered with a 500. Now the body is refused.
    with pytest.raises(ValidationError) as refused:
        _webhook({"status": "firing", "labels": {"alertname": "x\ud800"}})
    assert refused.value.errors()[0]["loc"][:3] == ("alerts", 0, "labels")


def test_lone_surrogate_in_label_with_fingerprint_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        _webhook({"status": "firing", "labels": {"alertname": "x\ud800"}, "fingerprint": "abc"})


def test_lone_surrogate_in_a_label_name_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        _webhook({"status": "firing", "labels": {"x\udfff": "v"}})
