"""The Alertmanager and Grafana hot paths (`alertmanager_fast`) against the reference paths
(`alertmanager.parse` / `grafana.parse` + `limits.check`): whatever a hot path accepts, the
reference path accepts too, with the same messages (every field but the fresh `event_id`);
whatever the reference path refuses, the hot path leaves to it (None)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import AlertReceived
from services.ingest.config import IngestLimitsConfig
from services.ingest.domain import limits
from services.ingest.domain.formats import alertmanager, alertmanager_fast, grafana
from services.ingest.domain.formats.common import ParseContext

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LIMITS = IngestLimitsConfig()
SMALL = IngestLimitsConfig(
    max_alerts=3, max_labels=4, max_name_length=8, max_value_length=12, max_body_bytes=1024
)


REFERENCE = {"alertmanager": alertmanager.parse, "grafana": grafana.parse}
HOT = {"alertmanager": alertmanager_fast.parse, "grafana": alertmanager_fast.parse_grafana}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def _reference(
    document: object, limit: IngestLimitsConfig, kind: str = "alertmanager"
) -> list[AlertReceived] | None:
    """The reference path's messages, or None when it answers 4xx."""
    try:
        messages = REFERENCE[kind](document, ParseContext("prom", "checkout", NOW, "c-1"))
    except ValidationError:
        return None
    many = isinstance(document, dict) and "alerts" in document
    return None if limits.check(messages, limit, many=many) else messages


def _agree(
    document: object, limit: IngestLimitsConfig = LIMITS, kind: str = "alertmanager"
) -> bool:
    """Assert both paths agree; True when the hot path took the body."""
    fast = HOT[kind](document, ParseContext("prom", "checkout", NOW, "c-1"), limit)
    reference = _reference(document, limit, kind)
    if fast is None:
        return False
    assert reference is not None, "the hot path accepted what the reference path refuses"
    assert len(fast) == len(reference)
    for (key, value), expected in zip(fast, reference, strict=True):
        message = AlertReceived.model_validate_json(value)
        assert key == expected.fingerprint
        assert message.model_copy(update={"event_id": expected.event_id}) == expected
    return True


def _alert(**fields: Any) -> dict[str, Any]:
    return {"status": "firing", **fields}


FULL = {
    "version": "4",
    "groupKey": '{}:{alertname="DiskFull"}',
    "status": "firing",
    "receiver": "tocsin",
    "truncatedAlerts": 0,
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        _alert(
            labels={"alertname": "DiskFull", "severity": "critical", "app.kubernetes.io/x": "ü"},
            annotations={"summary": "disk full", "runbook_url": "https://r.example/d"},
            startsAt="2026-11-25T10:00:00.123456+02:00",
            endsAt="0001-01-01T00:00:00Z",
            generatorURL="http://prometheus:9090/graph?g0.expr=x&g0.tab=1",
            fingerprint="a1b2c3d4e5f60718",
        ),
        {
            "status": "resolved",
            "labels": {"alertname": "DiskFull", "instance": "db-2"},
            "endsAt": "2026-11-25T11:00:00Z",
        },
        _alert(labels={}, annotations={"description": "  "}),
        _alert(labels={"alertname": ""}, annotations={"description": "only a description"}),
        _alert(labels={"severity": "x" * 100, "alertname": "A" * 2000}),
        _alert(annotations={"summary": "s" * 5000}, fingerprint=""),
    ],
}


def test_bodies_the_hot_path_takes_give_the_reference_messages() -> None:
    assert _agree(FULL)


@pytest.mark.parametrize(
    ("document", "limit"),
    [
        ([], LIMITS),
        ({}, LIMITS),
        ({"alerts": {}}, LIMITS),
        ({"alerts": [1]}, LIMITS),
        ({"alerts": [{"status": "on"}]}, LIMITS),
        ({"alerts": [_alert(labels={"a": 1})]}, LIMITS),
        ({"alerts": [_alert(startsAt="yesterday")]}, LIMITS),
        ({"alerts": [_alert(startsAt="2026-11-25T10:00:00")]}, LIMITS),  # naive: refused
        ({"alerts": [_alert(endsAt="2026-11-25T10:00:00")]}, LIMITS),
        ({"alerts": [_alert(generatorURL="x" * 4097)]}, LIMITS),
        ({"alerts": [_alert(fingerprint="f" * 257)]}, LIMITS),
        ({"alerts": [_alert(labels={"": "empty name"})]}, LIMITS),
        ({"alerts": [_alert(labels={"a\ud800": "x"})]}, LIMITS),
        ({"alerts": [_alert(annotations={"summary": "\udfff"})]}, LIMITS),
        ({"alerts": [_alert(fingerprint="\ud800")]}, LIMITS),
        ({"receiver": "\ud800", "alerts": [_alert()]}, LIMITS),
        ({"version": 4, "alerts": [_alert()]}, LIMITS),
        ({"status": "maybe", "alerts": [_alert()]}, LIMITS),
        ({"alerts": [_alert() for _ in range(4)]}, SMALL),
        ({"alerts": [_alert(labels={str(n): "v" for n in range(5)})]}, SMALL),
        ({"alerts": [_alert(annotations={str(n): "v" for n in range(5)})]}, SMALL),
        ({"alerts": [_alert(labels={"n" * 9: "v"})]}, SMALL),
        ({"alerts": [_alert(labels={"n": "v" * 13})]}, SMALL),
        ({"alerts": [_alert(labels={"n" * 1025: "v"})]}, IngestLimitsConfig(max_name_length=1024)),
    ],
)
def test_what_the_reference_path_refuses_is_left_to_it(
    document: object, limit: IngestLimitsConfig
) -> None:
    assert _reference(document, limit) is None
    assert alertmanager_fast.parse(document, ParseContext("p", "s", NOW), limit) is None


def test_at_the_limits_the_hot_path_still_takes_the_body() -> None:
    document = {
        "alerts": [_alert(labels={"n" * 8: "v" * 12, "b": "", "c": "", "d": ""}) for _ in range(3)]
    }
    assert _agree(document, SMALL)


def test_the_json_is_the_contracts_with_utc_times() -> None:
    ((key, value),) = alertmanager_fast.parse(
        {"alerts": [_alert(startsAt="2026-11-25T12:00:00+02:00")]},
        ParseContext("prom", "checkout", NOW, "c-1"),
        LIMITS,
    ) or [("", b"")]
    body = json.loads(value)
    assert body["starts_at"] == "2026-11-25T10:00:00Z"
    assert body["occurred_at"] == "2026-11-25T10:00:00Z"
    assert body["kind"] == "alert.received"
    assert key == body["fingerprint"]


TEXT = st.text(max_size=20)  # lone surrogates included: the hot path must leave them alone
times = st.one_of(
    st.none(),
    st.just("0001-01-01T00:00:00Z"),
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC))).map(lambda t: t.isoformat()),
    TEXT,
)
alerts = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved", "pending"])},
    optional={
        "labels": st.dictionaries(TEXT, TEXT, max_size=6),
        "annotations": st.dictionaries(
            st.sampled_from(["summary", "description", "x"]) | TEXT, TEXT, max_size=4
        ),
        "startsAt": times,
        "endsAt": times,
        "generatorURL": st.none() | TEXT,
        "fingerprint": st.none() | TEXT,
    },
)


@settings(max_examples=300)
@given(st.fixed_dictionaries({"alerts": st.lists(alerts, max_size=4)}))
def test_any_body_both_paths_agree(document: dict[str, Any]) -> None:
    _agree(document)
    _agree(document, SMALL)


# --- Grafana ---------------------------------------------------------------------------------


def test_grafanas_documented_body_takes_the_hot_path_with_the_same_messages() -> None:
    document = json.loads((FIXTURES / "grafana.json").read_text())
    assert _agree(document, kind="grafana")
    for alert in document["alerts"]:
        alert["values"] = {"B": 12, "C": None, "A": 0.5}
        alert["annotations"] = {}
    assert _agree(document, kind="grafana")


@pytest.mark.parametrize(
    "document",
    [
        {"alerts": [_alert(values={"a\ud800": 1.0})]},
        {"alerts": [_alert(values={"a": "many"})]},
        {"alerts": [_alert(silenceURL="x" * 4097)]},
        {"alerts": [_alert(valueString="\udfff")]},
        {"title": "\ud800", "alerts": [_alert()]},
        {"message": "\ud800", "alerts": [_alert()]},
        {"state": "\ud800", "alerts": [_alert()]},
        {"orgId": "one", "alerts": [_alert()]},
        {"alerts": [_alert(labels={"": "x"})]},
    ],
)
def test_what_grafanas_reference_path_refuses_is_left_to_it(document: object) -> None:
    assert _reference(document, LIMITS, "grafana") is None
    assert alertmanager_fast.parse_grafana(document, ParseContext("p", "s", NOW), LIMITS) is None


grafana_alerts = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved"])},
    optional={
        "labels": st.dictionaries(TEXT, TEXT, max_size=4),
        "annotations": st.dictionaries(
            st.sampled_from(["summary", "description", "panelURL", "values"]) | TEXT,
            TEXT,
            max_size=3,
        ),
        "values": st.none()
        | st.dictionaries(TEXT, st.none() | st.floats(allow_nan=False), max_size=3),
        "valueString": st.none() | TEXT,
        "silenceURL": st.none() | TEXT,
        "dashboardURL": st.none() | st.just("  "),
        "panelURL": st.none() | TEXT,
        "imageURL": st.none() | TEXT,
        "fingerprint": st.none() | TEXT,
    },
)


@settings(max_examples=300)
@given(
    st.fixed_dictionaries(
        {"alerts": st.lists(grafana_alerts, max_size=3)},
        optional={"title": st.none() | TEXT, "version": st.none() | TEXT, "state": TEXT},
    )
)
def test_any_grafana_body_both_paths_agree(document: dict[str, Any]) -> None:
    _agree(document, kind="grafana")
    _agree(document, SMALL, kind="grafana")
