"""Ingest's Prometheus metrics. Labels are integration ids, source types and reasons: never a
token, a signature or a body."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Histogram

ALERTS_ACCEPTED = Counter(
    "tocsin_ingest_alerts_accepted_total",
    "Alerts durably accepted (on the bus).",
    ["integration", "source"],
)
REQUESTS_REJECTED = Counter(
    "tocsin_ingest_requests_rejected_total",
    "Requests refused (nothing published), by reason.",
    ["integration", "source", "reason"],
)
EVENTS_IGNORED = Counter(
    "tocsin_ingest_events_ignored_total",
    "Events accepted that change nothing (PagerDuty acknowledge).",
    ["integration", "source", "reason"],
)
BACKPRESSURE = Counter(
    "tocsin_ingest_backpressure_total",
    "Requests answered 503 (bus cannot accept durably) or 429 (rate limit).",
    ["integration", "source", "status"],
)
REQUEST_SECONDS = Histogram(
    "tocsin_ingest_request_duration_seconds",
    "Time to answer a webhook, by source and answer status.",
    ["source", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PAYLOAD_BYTES = Histogram(
    "tocsin_ingest_payload_bytes",
    "Size of webhook bodies read, by source.",
    ["source"],
    buckets=(256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216),
)

UNKNOWN = "unknown"

HEARTBEAT_TRANSITIONS = Counter(
    "tocsin_ingest_heartbeat_transitions_total",
    "Heartbeats that went down (missed) or came back up.",
    ["heartbeat", "status"],
)

RESPONSES = Counter(
    "tocsin_ingest_responses_total",
    "Webhook answers by source and class: 2xx (accepted), 4xx (refused: nothing published), "
    "503 (cannot accept durably now; the sender retries), 5xx (any other server error).",
    ["source", "code"],
)


def response_class(status: int) -> str:
    if status == 503:
        return "503"
    return f"{status // 100}xx"


def observe_response(source: str, status: int, seconds: float) -> None:
    """One webhook answered (call once per request)."""
    seconds_child, responses_child = _response_children(source, status)
    seconds_child.observe(seconds)
    responses_child.inc()


# The hot path's metric children, looked up once per label set instead of per request
# (`labels()` takes a lock and builds a tuple each time). Label values are bounded: sources,
# statuses and the configured integrations.


@cache
def _response_children(source: str, status: int) -> tuple[Histogram, Counter]:
    return (
        REQUEST_SECONDS.labels(source=source, status=str(status)),
        RESPONSES.labels(source=source, code=response_class(status)),
    )


@cache
def alerts_accepted(integration: str, source: str) -> Counter:
    return ALERTS_ACCEPTED.labels(integration=integration, source=source)


@cache
def payload_bytes(source: str) -> Histogram:
    return PAYLOAD_BYTES.labels(source=source)
