"""Ingest's pure safety pieces: limits, signatures, the rate limit, strict JSON, and that
arbitrary label sets survive parse → AlertReceived → JSON → model exactly, for every format."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import AlertReceived
from services.ingest.config import IngestLimitsConfig
from services.ingest.domain import limits, signatures
from services.ingest.domain.formats import FORMATS, ParseContext
from services.ingest.domain.formats.common import json_path
from services.ingest.domain.formats.pagerduty import InvalidEvent, validate
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.intake import BadJson, decode_json, schema_errors

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SECRET = "grafana-shared-secret-0123"


def _parse(kind: str, document: object) -> list[AlertReceived]:
    return FORMATS[kind].parse(document, ParseContext("src", "checkout", NOW))


# --- schema errors in the sender's terms ------------------------------------------------------

SCHEMA_ERRORS: list[tuple[str, object, list[tuple[str, str]]]] = [
    ("alertmanager", [], [("$", "expected a JSON object")]),
    ("alertmanager", {}, [("$.alerts", "field required")]),
    ("alertmanager", {"alerts": {}}, [("$.alerts", "expected a JSON array")]),
    ("alertmanager", {"alerts": [1]}, [("$.alerts[0]", "expected a JSON object")]),
    (
        "alertmanager",
        {"alerts": [{"status": "on", "labels": {"a": 1}}]},
        [
            ("$.alerts[0].status", "expected 'firing' or 'resolved'"),
            ("$.alerts[0].labels.a", "expected a string"),
        ],
    ),
    (
        "alertmanager",
        {"alerts": [{"status": "firing", "startsAt": "yesterday"}]},
        [("$.alerts[0].startsAt", "expected an RFC 3339 date-time, e.g. 2026-05-01T12:00:00Z")],
    ),
    (
        "alertmanager",
        {"alerts": [{"status": "firing", "generatorURL": "x" * 4097}]},
        [("$.alerts[0].generatorURL", "at most 4096 characters, not 4097")],
    ),
    ("grafana", "x", [("$", "expected a JSON object")]),
    (
        "grafana",
        {"alerts": [{"status": "firing", "values": {"B": "high"}}]},
        [("$.alerts[0].values.B", "expected a number")],
    ),
    ("generic", {"summary": ""}, [("$.summary", "must not be empty")]),
    ("generic", {"status": "resolved"}, [("$.summary", "field required")]),
    ("generic", {"alerts": [{}]}, [("$.alerts[0].summary", "field required")]),
    ("datadog", 5, [("$", "expected a JSON object")]),
    ("datadog", {"title": ["x"]}, [("$.title", "expected a string or a number")]),
    ("datadog", {"title": "x", "org": "acme"}, [("$.org", "expected a JSON object")]),
    (
        "datadog",
        {"body": "x"},
        [("$", "a Datadog alert needs a title, alert_title or aggregation_key")],
    ),
    (
        "datadog",
        {"title": "\ud800"},
        [("$.title", "not Unicode text (a lone surrogate such as \\ud800)")],
    ),
]


@pytest.mark.parametrize(("kind", "document", "expected"), SCHEMA_ERRORS)
def test_schema_errors_name_the_json_path_and_speak_json(
    kind: str, document: object, expected: list[tuple[str, str]]
) -> None:
    with pytest.raises(ValidationError) as refused:
        _parse(kind, document)
    detail = schema_errors(refused.value)
    assert [(item["path"], item["msg"]) for item in detail] == expected


@pytest.mark.parametrize(("kind", "document"), [(k, d) for k, d, _ in SCHEMA_ERRORS])
def test_schema_errors_never_name_python_types_nor_echo_the_input(
    kind: str, document: object
) -> None:
    with pytest.raises(ValidationError) as refused:
        _parse(kind, document)
    text = json.dumps(schema_errors(refused.value))
    for python_word in ("instance of", "Input should", "dictionary", "Value error", "function-"):
        assert python_word not in text
    assert "input" not in {key for item in schema_errors(refused.value) for key in item}


def test_pagerduty_errors_speak_json_too() -> None:
    with pytest.raises(InvalidEvent) as refused:
        validate(
            {"event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": 1}}
        )
    assert refused.value.errors == [
        "'payload.severity' expected 'critical', 'error', 'warning' or 'info'"
    ]
    with pytest.raises(InvalidEvent) as refused:
        validate({"event_action": "trigger", "payload": []})
    assert refused.value.errors == ["'payload' expected a JSON object"]


# --- limits ----------------------------------------------------------------------------------


def _generic(labels: dict[str, str], count: int = 1) -> list[AlertReceived]:
    return _parse("generic", {"alerts": [{"summary": "s", "labels": labels}] * count})


def test_within_limits_passes() -> None:
    assert limits.check(_generic({"a": "b"}), IngestLimitsConfig()) is None


def test_too_many_alerts_is_413_naming_alerts() -> None:
    problem = limits.check(_generic({}, count=3), IngestLimitsConfig(max_alerts=2))
    assert problem is not None
    assert (problem.status, problem.field) == (413, "$.alerts")


def test_too_many_labels_is_413_naming_the_alert() -> None:
    labels = {f"l{n}": "v" for n in range(5)}
    problem = limits.check(_generic(labels), IngestLimitsConfig(max_labels=4))
    assert problem is not None
    assert (problem.status, problem.field) == (413, "$.alerts[0].labels")


def test_long_label_name_is_422_naming_the_label() -> None:
    problem = limits.check(_generic({"n" * 30: "v"}), IngestLimitsConfig(max_name_length=20))
    assert problem is not None
    assert problem.status == 422
    assert problem.field == f"$.alerts[0].labels.{'n' * 30}"


def test_long_value_is_422_naming_the_label() -> None:
    problem = limits.check(_generic({"big": "v" * 50}), IngestLimitsConfig(max_value_length=10))
    assert problem is not None
    assert (problem.status, problem.field) == (422, "$.alerts[0].labels.big")
    assert "50 characters" in problem.message


def test_single_alert_formats_name_the_alert_not_an_index() -> None:
    messages = _parse("generic", {"summary": "s", "annotations": {"a": "x" * 20}})
    problem = limits.check(messages, IngestLimitsConfig(max_value_length=10), many=False)
    assert problem is not None
    assert problem.field == "$.annotations.a"


# --- signatures ------------------------------------------------------------------------------


def _hex(message: bytes) -> str:
    return hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


def _grafana(headers: dict[str, str], timestamp_header: str | None = None) -> str | None:
    return signatures.verify_grafana(
        SECRET,
        b'{"alerts":[]}',
        headers,
        timestamp_header=timestamp_header,
        max_skew=timedelta(minutes=5),
        now=NOW,
    )


@pytest.mark.parametrize("header", ["x-grafana-alerting-signature", "x-grafana-alert-signature"])
def test_grafana_body_signature_in_either_header(header: str) -> None:
    assert _grafana({header: _hex(b'{"alerts":[]}')}) is None


def test_grafana_signature_is_case_insensitive_hex() -> None:
    assert _grafana({"x-grafana-alerting-signature": _hex(b'{"alerts":[]}').upper()}) is None


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-grafana-alerting-signature": "00" * 32}, {"x-grafana-alerting-signature": ""}],
)
def test_grafana_missing_or_wrong_signature(headers: dict[str, str]) -> None:
    assert _grafana(headers) is not None


def test_grafana_timestamped_signature_covers_timestamp_and_body() -> None:
    stamp = str(int(NOW.timestamp()))
    good = _hex(stamp.encode() + b":" + b'{"alerts":[]}')
    headers = {"x-grafana-alerting-signature": good, "x-grafana-alerting-timestamp": stamp}
    assert _grafana(headers, "X-Grafana-Alerting-Timestamp") is None
    body_only = {**headers, "x-grafana-alerting-signature": _hex(b'{"alerts":[]}')}
    assert _grafana(body_only, "X-Grafana-Alerting-Timestamp") is not None


@pytest.mark.parametrize("stamp", ["", "soon", str(int(NOW.timestamp()) - 301)])
def test_grafana_missing_bad_or_stale_timestamp_is_refused(stamp: str) -> None:
    good = _hex(stamp.encode() + b":" + b'{"alerts":[]}')
    headers = {"x-grafana-alerting-signature": good}
    if stamp:
        headers["ts"] = stamp
    assert _grafana(headers, "ts") is not None


def test_tocsin_signature() -> None:
    body = b'{"summary":"x"}'
    good = {"x-tocsin-signature": "sha256=" + _hex(body)}
    assert signatures.verify_tocsin(SECRET, body, good) is None
    assert signatures.verify_tocsin(SECRET, body + b" ", good) is not None
    assert signatures.verify_tocsin(SECRET, body, {"x-tocsin-signature": _hex(body)}) is not None
    assert signatures.verify_tocsin(SECRET, body, {}) is not None


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_allows_a_burst_then_refills() -> None:
    limiter = RateLimiter()
    assert all(limiter.allow("pd", 60, 0.0) is None for _ in range(60))
    wait = limiter.allow("pd", 60, 0.0)
    assert wait == pytest.approx(1.0)
    assert limiter.allow("pd", 60, 1.0) is None
    assert limiter.allow("other", 60, 1.0) is None  # per integration


def test_rate_limit_zero_means_none() -> None:
    limiter = RateLimiter()
    assert all(limiter.allow("pd", 0, 0.0) is None for _ in range(10_000))


# --- JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",
        b"[" * 100_000,
        b"NaN",
        b'{"a": Infinity}',
        b"1" * 5000,
        '{"a": 1}'.encode("utf-16"),
    ],
)
def test_bad_json_is_refused(raw: bytes) -> None:
    with pytest.raises(BadJson):
        decode_json(raw)


def _reference_json(raw: bytes) -> object:
    def no_constants(name: str) -> object:
        raise ValueError(name)

    try:
        return ("ok", json.loads(raw.decode("utf-8"), parse_constant=no_constants))
    except (ValueError, RecursionError):
        return ("refused",)


def _decoded(raw: bytes) -> object:
    try:
        return ("ok", decode_json(raw))
    except BadJson:
        return ("refused",)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(JSON_VALUES)
@settings(max_examples=300, deadline=None)
def test_json_is_read_as_the_reference_reads_it(value: object) -> None:
    raw = json.dumps(value).encode()
    assert _decoded(raw) == _reference_json(raw)
    assert repr(_decoded(raw)) == repr(_reference_json(raw))  # 1 and 1.0 are not the same


@given(st.binary(max_size=40) | st.text(max_size=40).map(lambda t: t.encode("utf-8", "replace")))
@settings(max_examples=300, deadline=None)
def test_json_takes_and_refuses_what_the_reference_does(raw: bytes) -> None:
    assert repr(_decoded(raw)) == repr(_reference_json(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b"12345678901234567890",
        b"18446744073709551616",
        b"-9223372036854775809",
        b'{"a": -123456789012345678901234}',
        b"[1e400]",
        b'"\\ud800"',
    ],
)
def test_json_the_fast_decoder_reads_otherwise_goes_to_the_reference(raw: bytes) -> None:
    assert repr(_decoded(raw)) == repr(_reference_json(raw))


def test_json_path_brackets_names_that_are_not_identifiers() -> None:
    assert json_path(("alerts", 0, "labels", "app.kubernetes.io/name")) == (
        '$.alerts[0].labels["app.kubernetes.io/name"]'
    )
    assert json_path(()) == "$"


# --- round trips -----------------------------------------------------------------------------

TEXT = st.characters(exclude_categories=["Cs"])  # any character but lone surrogates
label_sets = st.dictionaries(
    st.text(TEXT, min_size=1, max_size=40),
    st.text(TEXT, max_size=80),
    max_size=12,
)


def _round_trip(message: AlertReceived) -> AlertReceived:
    return AlertReceived.model_validate_json(message.model_dump_json())


def _pairs(message: AlertReceived) -> list[tuple[str, str]]:
    return [(label.name, label.value) for label in message.labels]


@settings(max_examples=150)
@given(label_sets)
def test_alertmanager_and_grafana_labels_round_trip_exactly(labels: dict[str, str]) -> None:
    for kind in ("alertmanager", "grafana"):
        (message,) = _parse(kind, {"alerts": [{"status": "firing", "labels": labels}]})
        again = _round_trip(message)
        assert again == message
        assert _pairs(again) == sorted(labels.items())


@settings(max_examples=150)
@given(label_sets)
def test_generic_labels_round_trip_exactly(labels: dict[str, str]) -> None:
    (message,) = _parse("generic", {"summary": "s", "labels": labels, "annotations": labels})
    again = _round_trip(message)
    assert again == message
    assert dict(_pairs(again)) == labels
    assert {(a.name, a.value) for a in again.annotations} == set(labels.items())


@settings(max_examples=100)
@given(
    st.dictionaries(
        st.text(TEXT, min_size=1, max_size=40),
        st.text(TEXT, max_size=80),
        max_size=8,
    )
)
def test_pagerduty_custom_details_round_trip(details: dict[str, str]) -> None:
    document = {
        "event_action": "trigger",
        "dedup_key": "k",
        "payload": {"summary": "s", "source": "h", "severity": "info", "custom_details": details},
    }
    (message,) = _parse("pagerduty", document)
    assert _round_trip(message) == message


@settings(max_examples=100)
@given(st.text(max_size=60), st.text(max_size=60))
def test_datadog_never_crashes_on_arbitrary_titles_and_tags(title: str, tags: str) -> None:
    try:
        messages = _parse("datadog", {"title": title, "tags": tags})
    except ValueError:  # ValidationError: not an alert, or not Unicode text
        return
    assert _round_trip(messages[0]) == messages[0]
