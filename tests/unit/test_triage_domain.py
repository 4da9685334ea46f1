"""Triage's pure rules: grouping, severity, dedup classification and deterministic ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import AlertReceived, AlertStatus, Label, LifecycleStatus, Severity
from schemas.incidents import MAX_DETAIL_LABELS
from services.triage.domain import (
    AlertContent,
    AlertState,
    LifecycleEffect,
    Occurrence,
    alert_details,
    assess_severity,
    candidate_incident_id,
    classify,
    group_key,
    incident_event_id,
    keep_trigger_content,
    on_lifecycle,
    raised_severity,
    severity_event_id,
)


def _alert(status: AlertStatus) -> AlertReceived:
    return AlertReceived(
        occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
        correlation_id="c-1",
        fingerprint="1a2b3c4d5e6f7a8b",
        status=status,
        integration_id="prom-prod",
        source="alertmanager",
        service_id="checkout",
        alertname="HighLatency",
        summary="slow",
    )


FIRING = _alert(AlertStatus.FIRING)
RESOLVED = _alert(AlertStatus.RESOLVED)


# -- group_key -------------------------------------------------------------------------------


def test_group_key_joins_service_and_alertname() -> None:
    assert group_key("checkout", "HighLatency") == "checkout/HighLatency"


def test_group_key_differs_by_service_and_by_alertname() -> None:
    assert group_key("checkout", "A") != group_key("login", "A")
    assert group_key("checkout", "A") != group_key("checkout", "B")


def test_group_key_with_empty_alertname_is_still_per_service() -> None:
    assert group_key("checkout", "") == "checkout/"


# -- assess_severity -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "tier", "expected"),
    [
        ("critical", 0, Severity.SEV0),
        ("critical", 1, Severity.SEV1),
        ("critical", 3, Severity.SEV1),
        ("page", 1, Severity.SEV1),
        ("high", 2, Severity.SEV1),
        ("error", 0, Severity.SEV2),
        ("warning", 0, Severity.SEV2),
        ("warning", 2, Severity.SEV2),
        ("medium", 1, Severity.SEV2),
        ("info", 0, Severity.SEV3),
        ("low", 2, Severity.SEV3),
        ("none", 1, Severity.SEV3),
        ("CRITICAL", 0, Severity.SEV0),
        ("  Warning  ", 1, Severity.SEV2),
        (None, 0, Severity.SEV2),
        ("", 1, Severity.SEV2),
        ("bogus", 0, Severity.SEV2),
        ("disaster", 2, Severity.SEV2),
    ],
)
def test_assess_severity_table(label: str | None, tier: int, expected: Severity) -> None:
    severity, reasons = assess_severity(label, tier)
    assert severity is expected
    assert reasons  # every decision explains itself


def test_tier0_critical_gives_both_reasons() -> None:
    severity, reasons = assess_severity("critical", 0)
    assert severity is Severity.SEV0
    assert reasons == (
        "sender severity 'critical' maps to SEV1",
        "tier-0 service (critical path): raised to SEV0",
    )


def test_known_severity_reason_names_label_and_result() -> None:
    assert assess_severity("warning", 2) == (
        Severity.SEV2,
        ("sender severity 'warning' maps to SEV2",),
    )


def test_unknown_severity_reason_names_the_sender_value() -> None:
    severity, reasons = assess_severity("Bogus", 1)
    assert severity is Severity.SEV2
    assert reasons == ("sender severity 'Bogus' unknown: default SEV2",)


@pytest.mark.parametrize("label", [None, "", "   "])
def test_missing_severity_reason_says_no_label(label: str | None) -> None:
    severity, reasons = assess_severity(label, 2)
    assert severity is Severity.SEV2
    assert reasons == ("no severity label: default SEV2",)


def test_unknown_severity_on_tier0_is_not_raised_to_sev0() -> None:
    severity, reasons = assess_severity("bogus", 0)
    assert severity is Severity.SEV2
    assert len(reasons) == 1


def test_warning_on_tier0_is_not_raised() -> None:
    severity, reasons = assess_severity("warning", 0)
    assert severity is Severity.SEV2
    assert not any("tier-0" in r for r in reasons)


# -- classify (dedup) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "alert", "expected"),
    [
        (None, FIRING, Occurrence.NEW),
        (AlertState(AlertStatus.FIRING, "inc-1"), FIRING, Occurrence.REPEAT),
        (AlertState(AlertStatus.FIRING, None), FIRING, Occurrence.NEW),
        (AlertState(AlertStatus.RESOLVED, "inc-1"), FIRING, Occurrence.NEW),
        (AlertState(AlertStatus.RESOLVED, None), FIRING, Occurrence.NEW),
        (AlertState(AlertStatus.FIRING, "inc-1"), RESOLVED, Occurrence.RESOLVED),
        (AlertState(AlertStatus.FIRING, None), RESOLVED, Occurrence.RESOLVED),
        (AlertState(AlertStatus.RESOLVED, "inc-1"), RESOLVED, Occurrence.RESOLVED_REPEAT),
        (AlertState(AlertStatus.RESOLVED, None), RESOLVED, Occurrence.RESOLVED_REPEAT),
        (None, RESOLVED, Occurrence.RESOLVED_REPEAT),
    ],
    ids=[
        "first-firing",
        "firing-again-attached",
        "firing-again-unattached",
        "refire-after-resolve",
        "refire-after-resolve-unattached",
        "resolve-after-firing",
        "resolve-after-unattached-firing",
        "resolved-again",
        "resolved-again-unattached",
        "resolved-never-seen",
    ],
)
def test_classify(previous: AlertState | None, alert: AlertReceived, expected: Occurrence) -> None:
    assert classify(previous, alert) is expected


def test_alertmanager_resend_sequence_is_new_then_repeats_then_resolved() -> None:
    state: AlertState | None = None
    seen = []
    for alert in [FIRING, FIRING, FIRING, RESOLVED, RESOLVED, FIRING]:
        occurrence = classify(state, alert)
        seen.append(occurrence)
        state = AlertState(alert.status, "inc-1")
    assert seen == [
        Occurrence.NEW,
        Occurrence.REPEAT,
        Occurrence.REPEAT,
        Occurrence.RESOLVED,
        Occurrence.RESOLVED_REPEAT,
        Occurrence.NEW,
    ]


# -- the re-fire rule (incidents.lifecycle) --------------------------------------------------


def test_a_resolved_incident_is_released() -> None:
    assert on_lifecycle(LifecycleStatus.RESOLVED) is LifecycleEffect.RELEASE


@pytest.mark.parametrize("status", [LifecycleStatus.ACKNOWLEDGED, LifecycleStatus.TRIGGERED])
def test_an_acknowledged_or_triggered_incident_keeps_its_alerts(status: LifecycleStatus) -> None:
    assert on_lifecycle(status) is LifecycleEffect.NONE


def test_a_still_firing_alert_pages_again_after_its_incident_is_released() -> None:
    attached = AlertState(AlertStatus.FIRING, "inc-1")
    assert classify(attached, FIRING) is Occurrence.REPEAT
    # Releasing detaches the firing alert from the resolved incident (store.release).
    detached = AlertState(AlertStatus.FIRING, None)
    assert classify(detached, FIRING) is Occurrence.NEW
    # Its source resolving it later touches no incident.
    assert classify(detached, RESOLVED) is Occurrence.RESOLVED


# -- deterministic ids -----------------------------------------------------------------------

EVENT = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_EVENT = uuid.UUID("00000000-0000-4000-8000-000000000002")


def test_candidate_incident_id_is_stable() -> None:
    assert candidate_incident_id(EVENT) == candidate_incident_id(uuid.UUID(str(EVENT)))


def test_candidate_incident_id_is_a_uuid_string() -> None:
    value = candidate_incident_id(EVENT)
    assert str(uuid.UUID(value)) == value
    assert uuid.UUID(value).version == 5


def test_candidate_incident_id_differs_per_event() -> None:
    assert candidate_incident_id(EVENT) != candidate_incident_id(OTHER_EVENT)


def test_incident_event_id_is_stable_and_differs_per_cause() -> None:
    assert incident_event_id(EVENT) == incident_event_id(uuid.UUID(str(EVENT)))
    assert incident_event_id(EVENT) != incident_event_id(OTHER_EVENT)
    assert incident_event_id(EVENT).version == 5


def test_incident_id_and_event_id_of_one_cause_differ() -> None:
    assert candidate_incident_id(EVENT) != str(incident_event_id(EVENT))


def test_derived_ids_are_not_the_input() -> None:
    assert candidate_incident_id(EVENT) != str(EVENT)
    assert incident_event_id(EVENT) != EVENT


@given(st.uuids(), st.uuids())
def test_derived_ids_are_injective_in_practice(first: uuid.UUID, second: uuid.UUID) -> None:
    if first != second:
        assert candidate_incident_id(first) != candidate_incident_id(second)
        assert incident_event_id(first) != incident_event_id(second)
    else:
        assert candidate_incident_id(first) == candidate_incident_id(second)


def test_derived_ids_do_not_change_between_releases() -> None:
    # Ids are persisted and compared with redeliveries: changing the namespace or the
    # derivation would make a redelivered alert open a second incident after an upgrade.
    assert candidate_incident_id(EVENT) == "680a2ab3-1915-5b11-b1c6-da84bfbfe582"
    assert incident_event_id(EVENT) == uuid.UUID("ba8e0538-c178-5dea-8749-23de52b6ea11")


# -- a resolve keeps what the trigger said ---------------------------------------------------

TRIGGER_CONTENT = AlertContent(
    alertname="DiskFull",
    summary="Disk 95% full on db-1",
    severity="critical",
    labels=(Label(name="alertname", value="DiskFull"), Label(name="host", value="db-1")),
    annotations=(Label(name="runbook_url", value="https://rb"),),
    generator_url="https://prometheus/graph",
)


def _resolve(**carried: Any) -> AlertReceived:
    return RESOLVED.model_copy(
        update={"alertname": "", "summary": "", "severity": None, "labels": (), **carried}
    )


def test_a_bare_resolve_keeps_everything_the_trigger_said() -> None:
    kept = keep_trigger_content(TRIGGER_CONTENT, _resolve())
    assert kept.status is AlertStatus.RESOLVED
    assert (kept.alertname, kept.summary, kept.severity) == (
        "DiskFull",
        "Disk 95% full on db-1",
        "critical",
    )
    assert kept.labels == TRIGGER_CONTENT.labels
    assert kept.annotations == TRIGGER_CONTENT.annotations
    assert kept.generator_url == "https://prometheus/graph"


def test_a_resolve_updates_what_it_carries_and_merges_pairs_by_name() -> None:
    resolve = _resolve(
        summary="Disk back to 60%",
        severity="warning",
        labels=(Label(name="host", value="db-1"), Label(name="zone", value="a")),
        annotations=(Label(name="description", value="recovered"),),
    )
    kept = keep_trigger_content(TRIGGER_CONTENT, resolve)
    assert (kept.summary, kept.severity) == ("Disk back to 60%", "warning")
    assert [(label.name, label.value) for label in kept.labels] == [
        ("alertname", "DiskFull"),
        ("host", "db-1"),
        ("zone", "a"),
    ]
    assert [label.name for label in kept.annotations] == ["description", "runbook_url"]
    assert (kept.event_id, kept.fingerprint) == (resolve.event_id, resolve.fingerprint)


def test_a_blank_summary_is_not_carried() -> None:
    assert keep_trigger_content(TRIGGER_CONTENT, _resolve(summary="  ")).summary == (
        "Disk 95% full on db-1"
    )


# -- alert details on incident events --------------------------------------------------------


def _with(**fields: Any) -> AlertReceived:
    return FIRING.model_copy(update=fields)


def _pairs(names_values: dict[str, str]) -> tuple[Label, ...]:
    return tuple(Label(name=n, value=v) for n, v in sorted(names_values.items()))


def test_details_carry_the_occurrence() -> None:
    alert = _with(
        labels=_pairs({"alertname": "HighLatency", "instance": "web-1"}),
        annotations=_pairs({"summary": "p99 above 2s", "runbook_url": "https://rb/latency"}),
        generator_url="https://prometheus/graph?g0.expr=x",
    )
    details = alert_details(alert)
    assert (details.fingerprint, details.summary) == ("1a2b3c4d5e6f7a8b", "slow")
    assert details.labels == alert.labels
    assert details.annotations == alert.annotations
    assert details.generator_url == "https://prometheus/graph?g0.expr=x"
    assert details.runbook_url == "https://rb/latency"


def test_details_keep_at_most_the_bound_and_the_labels_that_matter_first() -> None:
    many = {f"l{n:02}": "v" for n in range(MAX_DETAIL_LABELS + 10)}
    alert = _with(
        labels=_pairs({**many, "alertname": "A", "severity": "critical", "zone": "z"}),
        annotations=_pairs({**many, "summary": "s", "runbook_url": "https://rb"}),
    )
    details = alert_details(alert)
    assert len(details.labels) == MAX_DETAIL_LABELS
    assert len(details.annotations) == MAX_DETAIL_LABELS
    names = [label.name for label in details.labels]
    assert names == sorted(names)
    assert {"alertname", "severity"} <= set(names)
    assert "zone" not in names  # past the bound, in name order
    assert {"summary", "runbook_url"} <= {label.name for label in details.annotations}
    assert details.runbook_url == "https://rb"


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({"runbook_url": "https://rb/a"}, "https://rb/a"),
        ({"runbook": "https://rb/b"}, "https://rb/b"),
        ({"runbookURL": "http://rb/c"}, "http://rb/c"),
        ({"link:Runbook": "https://rb/d"}, "https://rb/d"),  # generic/PagerDuty `links`
        ({"runbook": "https://rb/b", "runbook_url": "https://rb/a"}, "https://rb/a"),
        ({"runbook": "restart the pod"}, None),  # text, not a link
        ({"runbook_url": "javascript:alert(1)"}, None),
        ({"link:dashboard": "https://grafana/d"}, None),
        ({}, None),
    ],
)
def test_runbook_url_from_the_senders_annotations(
    annotations: dict[str, str], expected: str | None
) -> None:
    assert alert_details(_with(annotations=_pairs(annotations))).runbook_url == expected


# -- raising an incident's severity ----------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "proposed", "raised"),
    [
        (Severity.SEV2, Severity.SEV1, True),
        (Severity.SEV3, Severity.SEV0, True),
        (Severity.SEV1, Severity.SEV0, True),
        (Severity.SEV1, Severity.SEV1, False),
        (Severity.SEV1, Severity.SEV2, False),
        (Severity.SEV0, Severity.SEV3, False),
    ],
)
def test_only_a_more_severe_alert_raises_the_incident(
    current: Severity, proposed: Severity, raised: bool
) -> None:
    outcome = raised_severity(current, proposed, ("why",))
    assert (outcome is not None) is raised
    if outcome is not None:
        assert outcome[0] is proposed


def test_raised_severity_carries_the_new_alerts_reasons_and_says_it_was_raised() -> None:
    severity, reasons = assess_severity("critical", 0)
    assert raised_severity(Severity.SEV2, severity, reasons) == (
        Severity.SEV0,
        (
            "sender severity 'critical' maps to SEV1",
            "tier-0 service (critical path): raised to SEV0",
            "raised from SEV2 by a later alert",
        ),
    )


def test_severity_event_id_is_stable_and_distinct_from_the_occurrences_own_event() -> None:
    assert severity_event_id(EVENT) == severity_event_id(uuid.UUID(str(EVENT)))
    assert severity_event_id(EVENT) != incident_event_id(EVENT)
    assert severity_event_id(EVENT) != severity_event_id(OTHER_EVENT)
    # Escalation dedupes redeliveries on it: the derivation must not change between releases.
    assert severity_event_id(EVENT) == uuid.UUID("a5872a1e-f047-5c08-94b6-5b2b8368f6c9")
