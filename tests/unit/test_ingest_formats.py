"""Grafana, Datadog, PagerDuty and generic bodies → `AlertReceived`, from fixtures written after
each vendor's documented fields (tests/fixtures/ingest/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import AlertReceived, AlertStatus
from services.ingest.domain.formats import FORMATS, ParseContext
from services.ingest.domain.formats.common import dedup_fingerprint, label_fingerprint
from services.ingest.domain.formats.pagerduty import InvalidEvent, interpret, validate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def context(integration: str = "src") -> ParseContext:
    return ParseContext(integration, "checkout", NOW)


def parse(kind: str, document: object, integration: str = "src") -> list[AlertReceived]:
    return FORMATS[kind].parse(document, context(integration))


def labels(message: AlertReceived) -> dict[str, str]:
    return {label.name: label.value for label in message.labels}


def annotations_of(message: AlertReceived) -> dict[str, str]:
    return {label.name: label.value for label in message.annotations}


# --- Grafana ---------------------------------------------------------------------------------


def test_grafana_keeps_its_fingerprints_and_statuses() -> None:
    firing, resolved = parse("grafana", fixture("grafana.json"))
    assert (firing.fingerprint, firing.status) == ("c6eadffa33fcdf37", AlertStatus.FIRING)
    assert (resolved.fingerprint, resolved.status) == ("bc97ff14869b13e3", AlertStatus.RESOLVED)
    assert firing.source == "grafana"
    assert firing.alertname == "MemoryHigh"
    assert firing.summary == "Memory above 90% in eu-west-1"
    assert resolved.summary == "CPU back to normal"
    assert resolved.ends_at == datetime(2026, 11, 25, 7, 55, tzinfo=UTC)


def test_grafana_links_and_values_become_annotations_and_blanks_are_dropped() -> None:
    firing, resolved = parse("grafana", fixture("grafana.json"))
    extra = annotations_of(firing)
    assert extra["dashboardURL"] == "https://grafana.example/d/mem"
    assert extra["panelURL"] == "https://grafana.example/d/mem?viewPanel=2"
    assert extra["silenceURL"].startswith("https://grafana.example/alerting/silence/new")
    assert json.loads(extra["values"]) == {"B": 93.5, "C": 1}
    assert extra["valueString"].startswith("[ var='B'")
    assert "imageURL" not in extra
    assert extra["runbook_url"] == "https://runbooks.example/memory"
    assert set(annotations_of(resolved)) == {"description", "silenceURL"}
    assert firing.generator_url == "https://grafana.example/alerting/grafana/abc123/view"


def test_grafana_sender_annotation_wins_over_a_grafana_field_of_the_same_name() -> None:
    document = fixture("grafana.json")
    document["alerts"][0]["annotations"]["dashboardURL"] = "mine"
    assert annotations_of(parse("grafana", document)[0])["dashboardURL"] == "mine"


def test_grafana_without_fingerprint_gets_the_label_fingerprint() -> None:
    document = fixture("grafana.json")
    del document["alerts"][0]["fingerprint"]
    message = parse("grafana", document)[0]
    assert message.fingerprint == label_fingerprint(document["alerts"][0]["labels"])


# --- Datadog ---------------------------------------------------------------------------------


def test_datadog_default_payload_reads_transition_scope_and_name_from_the_title() -> None:
    (message,) = parse("datadog", fixture("datadog_default_triggered.json"))
    assert message.status is AlertStatus.FIRING
    assert message.source == "datadog"
    assert message.alertname == "CPU high on web tier"
    assert message.summary == "CPU high on web tier"
    assert labels(message) == {"alertname": "CPU high on web tier", "host": "web-1"}
    assert message.starts_at == datetime(2025, 11, 25, 9, 20, tzinfo=UTC)
    assert annotations_of(message)["transition"] == "Triggered"
    assert annotations_of(message)["org"] == "Example Org"


def test_datadog_recovered_resolves_the_alert_its_trigger_opened() -> None:
    (triggered,) = parse("datadog", fixture("datadog_default_triggered.json"))
    (recovered,) = parse("datadog", fixture("datadog_default_recovered.json"))
    assert recovered.status is AlertStatus.RESOLVED
    assert recovered.fingerprint == triggered.fingerprint


def test_datadog_rich_template_uses_aggregation_key_priority_tags_and_link() -> None:
    (message,) = parse("datadog", fixture("datadog_rich.json"))
    assert message.dedup_key == "9bd4ac313a4d1e8fae2482df7b77628"
    assert message.fingerprint == dedup_fingerprint("src", "9bd4ac313a4d1e8fae2482df7b77628")
    assert message.severity == "critical"
    assert message.alertname == "Checkout error rate"
    assert labels(message) == {
        "alertname": "Checkout error rate",
        "env": "prod",
        "service": "checkout",
        "team": "payments",
        "canary": "",
        "monitor_id": "98765",
        "severity": "critical",
    }
    assert message.generator_url == "https://app.datadoghq.com/monitors/98765"
    assert annotations_of(message)["alert_cycle_key"] == "7473029812736120000"


def test_datadog_unsubstituted_variables_and_empty_strings_count_as_absent() -> None:
    (message,) = parse("datadog", fixture("datadog_unsubstituted.json"))
    assert message.status is AlertStatus.FIRING
    assert message.severity == "warning"  # from the [Warn] prefix
    assert labels(message) == {"alertname": "Disk usage on db-1", "severity": "warning"}
    assert message.starts_at is None
    assert message.generator_url is None
    assert annotations_of(message) == {"transition": "Warn"}


@pytest.mark.parametrize(
    ("prefix", "status"),
    [
        ("[Triggered]", AlertStatus.FIRING),
        ("[Re-Triggered]", AlertStatus.FIRING),
        ("[Warn]", AlertStatus.FIRING),
        ("[Re-Warn]", AlertStatus.FIRING),
        ("[No Data]", AlertStatus.FIRING),
        ("[Renotify]", AlertStatus.FIRING),
        ("[Recovered]", AlertStatus.RESOLVED),
        ("[Recovered on {host:a}]", AlertStatus.RESOLVED),
        ("[P2] [Recovered]", AlertStatus.RESOLVED),
    ],
)
def test_datadog_transition_prefixes(prefix: str, status: AlertStatus) -> None:
    (message,) = parse("datadog", {"title": f"{prefix} Queue depth"})
    assert message.status is status
    assert message.alertname == "Queue depth"


def test_datadog_transition_field_wins_over_the_title() -> None:
    document = {"title": "[Triggered] Queue depth", "alert_transition": "Recovered"}
    assert parse("datadog", document)[0].status is AlertStatus.RESOLVED


def test_datadog_body_naming_no_alert_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse("datadog", {"title": "", "alert_title": "$ALERT_TITLE", "body": "x"})


def test_datadog_numbers_where_strings_are_documented_are_tolerated() -> None:
    (message,) = parse("datadog", {"title": "[Triggered] X", "date": 1764062400000, "id": 7})
    assert message.starts_at == datetime(2025, 11, 25, 9, 20, tzinfo=UTC)


# --- PagerDuty -------------------------------------------------------------------------------


def test_pagerduty_trigger_maps_payload_to_labels_and_keeps_the_dedup_key() -> None:
    outcome = interpret(validate(fixture("pagerduty_trigger.json")), context("pd"))
    (message,) = outcome.messages
    assert outcome.dedup_key == "db-1/replication-lag"
    assert message.dedup_key == "db-1/replication-lag"
    assert message.fingerprint == dedup_fingerprint("pd", "db-1/replication-lag")
    assert message.status is AlertStatus.FIRING
    assert message.summary == "Replication lag above 30s on db-1.example.com"
    assert message.alertname == "replication lag"
    assert message.severity == "critical"
    assert labels(message) == {
        "source": "db-1.example.com",
        "severity": "critical",
        "component": "postgres",
        "group": "prod-datastore",
        "class": "replication lag",
    }
    extra = annotations_of(message)
    assert json.loads(extra["custom_details"]) == {"lag seconds": 42, "replica": "db-2"}
    assert extra["link:runbook"] == "https://runbooks.example/replication"
    assert extra["image:lag graph"] == "https://graphs.example/lag.png"
    assert message.starts_at == datetime(2026, 11, 25, 8, 42, 58, 315000, tzinfo=UTC)


def test_pagerduty_trigger_without_dedup_key_gets_a_fresh_one_each_time() -> None:
    event = validate(fixture("pagerduty_trigger_no_dedup_key.json"))
    first, second = interpret(event, context()), interpret(event, context())
    assert first.dedup_key != second.dedup_key
    assert first.messages[0].dedup_key == first.dedup_key


def test_pagerduty_resolve_resolves_the_triggered_fingerprint() -> None:
    trigger = interpret(validate(fixture("pagerduty_trigger.json")), context("pd"))
    resolve = interpret(validate(fixture("pagerduty_resolve.json")), context("pd"))
    assert resolve.messages[0].status is AlertStatus.RESOLVED
    assert resolve.messages[0].fingerprint == trigger.messages[0].fingerprint


def test_pagerduty_resolve_carries_nothing_but_its_identity() -> None:
    # Triage keeps the trigger's summary, severity and labels (it used to get
    # "resolved: <key>", null and {} instead, and stored them over the trigger's).
    (message,) = interpret(validate(fixture("pagerduty_resolve.json")), context("pd")).messages
    assert (message.summary, message.alertname, message.severity) == ("", "", None)
    assert message.labels == ()


def test_pagerduty_same_dedup_key_on_two_integrations_are_two_alerts() -> None:
    one = interpret(validate(fixture("pagerduty_trigger.json")), context("pd-a"))
    two = interpret(validate(fixture("pagerduty_trigger.json")), context("pd-b"))
    assert one.messages[0].fingerprint != two.messages[0].fingerprint


def test_pagerduty_acknowledge_is_accepted_and_publishes_nothing() -> None:
    outcome = interpret(validate(fixture("pagerduty_acknowledge.json")), context())
    assert (outcome.action, outcome.dedup_key, outcome.messages) == (
        "acknowledge",
        "db-1/replication-lag",
        [],
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"event_action": "acknowledge", "dedup_key": None}, "'dedup_key' is required"),
        ({"event_action": "resolve", "dedup_key": None}, "'dedup_key' is required"),
        ({"event_action": "snooze"}, "'event_action'"),
        ({"payload": None}, "'payload' is missing"),
        ({"payload": {"summary": "s", "source": "h", "severity": "fatal"}}, "severity"),
        ({"payload": {"summary": "s" * 1025, "source": "h", "severity": "info"}}, "summary"),
        ({"payload": {"summary": "s", "severity": "info"}}, "'payload.source'"),
        ({"dedup_key": "k" * 256}, "'dedup_key'"),
    ],
)
def test_pagerduty_invalid_events_name_the_problem(change: dict[str, Any], error: str) -> None:
    document = {**fixture("pagerduty_trigger.json"), **change}
    document = {key: value for key, value in document.items() if value is not None}
    with pytest.raises(InvalidEvent) as refused:
        validate(document)
    assert any(error in message for message in refused.value.errors), refused.value.errors


def test_pagerduty_details_that_are_not_text_are_an_invalid_event() -> None:
    document = fixture("pagerduty_trigger.json")
    document["payload"]["custom_details"] = {"x": "\ud800"}
    with pytest.raises(InvalidEvent):
        interpret(validate(document), context())


# --- generic ---------------------------------------------------------------------------------


def test_generic_alert_with_dedup_key_links_and_dotted_label_names() -> None:
    (message,) = parse("generic", fixture("generic.json"))
    assert message.fingerprint == dedup_fingerprint("src", "db-1/disk")
    assert message.alertname == "DiskFull"
    assert message.severity == "warning"
    assert labels(message)["app.kubernetes.io/name"] == "postgres"
    assert annotations_of(message)["link:dashboard"] == "https://grafana.example/d/disk"
    assert message.generator_url == "https://grafana.example/d/disk"


def test_generic_batch_without_dedup_keys_uses_label_fingerprints() -> None:
    first, second = parse("generic", fixture("generic_batch.json"))
    assert first.fingerprint == label_fingerprint({"alertname": "BackupFailed", "host": "db-1"})
    assert second.status is AlertStatus.RESOLVED
    assert first.correlation_id == second.correlation_id


@pytest.mark.parametrize(
    "identity", [{"dedup_key": "db-1/disk"}, {"labels": {"alertname": "DiskFull"}}]
)
def test_generic_resolve_by_identity_needs_no_summary(identity: dict[str, Any]) -> None:
    (message,) = parse("generic", {"status": "resolved", **identity})
    assert message.status is AlertStatus.RESOLVED
    assert message.summary == ""
    (fired,) = parse("generic", {"summary": "Disk full", **identity})
    assert message.fingerprint == fired.fingerprint


@pytest.mark.parametrize(
    "document",
    [{"dedup_key": "db-1/disk"}, {"status": "resolved"}, {"alerts": [{"status": "resolved"}]}],
    ids=["firing-by-key", "resolve-without-identity", "batch-resolve-without-identity"],
)
def test_generic_summary_is_required_unless_resolving_by_identity(document: object) -> None:
    with pytest.raises(ValidationError) as refused:
        parse("generic", document)
    (error,) = refused.value.errors()
    assert (error["loc"][-1], error["type"]) == ("summary", "missing")


def test_generic_summary_alone_is_its_identity() -> None:
    (fired,) = parse("generic", {"summary": "Nightly job failed"})
    (resolved,) = parse("generic", {"summary": "Nightly job failed", "status": "resolved"})
    assert fired.fingerprint == resolved.fingerprint
    assert fired.alertname == "Nightly job failed"


@pytest.mark.parametrize(
    "document",
    [{}, {"summary": ""}, {"summary": "x", "status": "burning"}, {"alerts": [{}]}, [], "x"],
)
def test_generic_invalid_bodies_are_refused(document: object) -> None:
    with pytest.raises(ValidationError):
        parse("generic", document)


def test_every_registered_format_documents_its_body() -> None:
    for name, fmt in FORMATS.items():
        assert fmt.name == name
        assert fmt.body_schema()
