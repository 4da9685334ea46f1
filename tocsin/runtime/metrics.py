"""Prometheus metrics of the shared runtime (bus, timers, HTTP). Never label with secrets."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter(
    "tocsin_messages_consumed_total",
    "Messages taken from a topic, by outcome.",
    ["topic", "outcome"],
)
HANDLER_RETRIES = Counter(
    "tocsin_handler_retries_total", "Handler attempts that failed and were retried.", ["topic"]
)
DEAD_LETTERED = Counter(
    "tocsin_messages_dead_lettered_total", "Messages sent to <topic>.dlq.", ["topic"]
)
HTTP_REQUESTS = Histogram(
    "tocsin_http_request_duration_seconds",
    "HTTP request latency by route template and status.",
    ["method", "route", "status"],
)
CONSUMER_LAG = Gauge(
    "tocsin_consumer_lag_messages",
    "Messages on the topic not yet handled by this consumer group, over the partitions this "
    "process holds (the sum over processes is the group's lag).",
    ["topic", "group"],
)
