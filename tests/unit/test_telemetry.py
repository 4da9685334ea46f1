"""Log formats carry the trace id; OTLP export follows the standard variables; a stored
traceparent brings work picked up later back into its trace."""

from __future__ import annotations

import json
import logging
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from tocsin.composition.cli import _parser
from tocsin.runtime import telemetry

TRACER = TracerProvider().get_tracer("test")


def record(message: str = "paged %s", *args: object) -> logging.LogRecord:
    return logging.LogRecord("tocsin.test", logging.INFO, __file__, 1, message, args, None)


def test_json_log_lines_carry_the_trace_id_inside_a_span() -> None:
    formatter = telemetry.JsonFormatter("tocsin-notifier")
    outside = json.loads(formatter.format(record("paged %s", "alice")))
    assert outside["message"] == "paged alice"
    assert outside["level"] == "INFO"
    assert outside["service"] == "tocsin-notifier"
    assert "trace_id" not in outside
    with TRACER.start_as_current_span("deliver") as span:
        inside = json.loads(formatter.format(record()))
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")


def test_json_log_lines_keep_the_exception_in_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = telemetry.JsonFormatter().format(failed)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_text_log_lines_end_with_the_trace_id_inside_a_span() -> None:
    formatter = telemetry.TraceTextFormatter()
    assert "trace_id=" not in formatter.format(record())
    with TRACER.start_as_current_span("triage") as span:
        line = formatter.format(record())
    assert line.endswith(
        f"trace_id={span.get_span_context().trace_id:032x} "
        f"span_id={span.get_span_context().span_id:016x}"
    )


def test_otlp_export_only_when_an_endpoint_is_set_and_not_switched_off() -> None:
    assert not telemetry.otlp_configured({})
    assert telemetry.otlp_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert telemetry.otlp_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"})
    assert not telemetry.otlp_configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
    )
    assert not telemetry.otlp_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})


def test_a_stored_traceparent_continues_the_trace() -> None:
    with TRACER.start_as_current_span("queue") as queued:
        traceparent = telemetry.current_traceparent()
    assert traceparent is not None
    assert telemetry.context_of(None) is None
    with TRACER.start_as_current_span(
        "deliver", context=telemetry.context_of(traceparent)
    ) as later:
        assert later.get_span_context().trace_id == queued.get_span_context().trace_id
        parent = getattr(later, "parent", None)  # the SDK's span knows its parent
        assert parent is not None
        assert parent.span_id == queued.get_span_context().span_id
    assert trace.get_current_span().get_span_context().is_valid is False


def test_log_format_option_on_up_and_serve() -> None:
    assert _parser().parse_args(["up", "--log-format", "json"]).log_format == "json"
    assert _parser().parse_args(["serve", "triage"]).log_format == "text"
    assert telemetry.log_format_from_env({"TOCSIN_LOG_FORMAT": "JSON"}) == "json"
    assert telemetry.log_format_from_env({}) == "text"
