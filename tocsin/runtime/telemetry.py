"""Logging and OpenTelemetry set-up, and W3C trace context carried in Kafka headers.

Traces are exported with OTLP over HTTP when the standard variables say where
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; the other `OTEL_*`
variables of the SDK apply: headers, timeout, `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER`,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`). Without them nothing is recorded: spans are
non-recording but still carry real trace ids, across Kafka headers and into every log line
(`trace_id`), so logs of one alert can be joined without a tracing backend.

Logs are text (`time level logger message trace_id=...`) or one JSON object per line
(`--log-format json`, or `TOCSIN_LOG_FORMAT=json`).

Secrets never reach logs or spans: tokens live in URL paths, so access logs print the route
template (`/v1/ingest/{token}`), never the concrete path.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

KafkaHeaders = Sequence[tuple[str, bytes]]
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_configured = False
_logging_configured = False
_recording = False


def otlp_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard OTel variables ask for OTLP export (and do not switch it off)."""
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in OTLP_ENDPOINT_VARIABLES)


def _trace_ids() -> tuple[str, str] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class TraceTextFormatter(logging.Formatter):
    """`time level logger message`, then ` trace_id=... span_id=...` inside a span."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = _trace_ids()
        if ids is None:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} trace_id={ids[0]} span_id={ids[1]}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace_id and span_id (inside a
    span), exception (when there is one)."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service is not None:
            entry["service"] = self.service
        ids = _trace_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_format_from_env(environ: Mapping[str, str] = os.environ) -> LogFormat:
    value = environ.get("TOCSIN_LOG_FORMAT", "text").strip().lower()
    return "json" if value == "json" else "text"


def configure_logging(log_format: LogFormat | None = None) -> None:
    """Set up the root logger once per process (the CLI calls it first, with `--log-format`;
    otherwise `setup` does, from `TOCSIN_LOG_FORMAT`)."""
    global _logging_configured
    if _logging_configured:
        return
    _logging_configured = True
    handler = logging.StreamHandler(sys.stderr)
    chosen = log_format or log_format_from_env()
    handler.setFormatter(JsonFormatter() if chosen == "json" else TraceTextFormatter())
    root = logging.getLogger()
    if not root.handlers:  # as basicConfig: a host that set up logging (pytest) keeps its own
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    # aiokafka logs every reconnect attempt at ERROR with a traceback; keep it to warnings.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # httpx logs every request URL at INFO; webhook URLs can carry secrets (Slack-style tokens).
    logging.getLogger("httpx").setLevel(logging.WARNING)


def setup(service_name: str, *, console_spans: bool = False) -> None:
    """Configure logging and the tracer provider once per process."""
    global _configured, _recording
    if _configured:
        return
    _configured = True
    configure_logging()
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter) and handler.formatter.service is None:
            handler.formatter.service = service_name
    export = otlp_configured()
    # Spans are recorded only when something exports them (or OTEL_TRACES_SAMPLER says so);
    # otherwise they are non-recording but still carry real trace ids across Kafka headers.
    # Recording spans nobody reads costs a quarter of the embedded pipeline's time.
    sampler = None
    _recording = console_spans or export or "OTEL_TRACES_SAMPLER" in os.environ
    if not _recording:
        sampler = ParentBased(ALWAYS_OFF)
    attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name}
    provider = TracerProvider(resource=Resource.create(attributes), sampler=sampler)
    if console_spans:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    if export:
        # Imported only when used: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        logging.getLogger(__name__).info("exporting traces with OTLP/HTTP")
    trace.set_tracer_provider(provider)


def spans_recorded() -> bool:
    """Whether `setup` made spans recorded (exported, printed, or sampled as the standard
    variables say). When not, a hot path may skip spans that would only carry ids: the bus's
    publish span still starts a trace, so log lines of one alert still join."""
    return _recording


def inject_headers() -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


def extract_context(headers: KafkaHeaders | None) -> Context:
    carrier: Mapping[str, str] = {
        name: value.decode("latin-1") for name, value in (headers or ()) if value is not None
    }
    return propagate.extract(carrier)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to keep with work queued in a store and picked
    up later by a loop outside this context (None outside any trace)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> Context | None:
    """The context a stored traceparent names (None: start a new trace)."""
    if not traceparent:
        return None
    return propagate.extract({"traceparent": traceparent})


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)
