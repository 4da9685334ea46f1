"""Logging and OpenTelemetry set-up, and W3C trace context carried in Kafka headers.

Secrets never reach logs or spans: tokens live in URL paths, so access logs print the route
template (`/v1/ingest/{token}`), never the concrete path.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

KafkaHeaders = Sequence[tuple[str, bytes]]

_configured = False


def setup(service_name: str, *, console_spans: bool = False) -> None:
    """Configure logging and the tracer provider once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # aiokafka logs every reconnect attempt at ERROR with a traceback; keep it to warnings.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # httpx logs every request URL at INFO; webhook URLs can carry secrets (Slack-style tokens).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Spans are recorded only when something exports them (or OTEL_TRACES_SAMPLER says so);
    # otherwise they are non-recording but still carry real trace ids across Kafka headers.
    # Recording spans nobody reads costs a quarter of the embedded pipeline's time.
    sampler = None
    if not console_spans and "OTEL_TRACES_SAMPLER" not in os.environ:
        sampler = ParentBased(ALWAYS_OFF)
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}), sampler=sampler
    )
    if console_spans:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


def inject_headers() -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


def extract_context(headers: KafkaHeaders | None) -> Context:
    carrier: Mapping[str, str] = {
        name: value.decode("latin-1") for name, value in (headers or ()) if value is not None
    }
    return propagate.extract(carrier)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)
