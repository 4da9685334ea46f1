"""Prometheus metrics of the notifier. Labels name channels and outcomes, never addresses."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "tocsin_notifications_total", "Final notification outcomes by channel.", ["channel", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "tocsin_notifier_delivery_seconds", "Time spent delivering one notification.", ["channel"]
)
QUARANTINED = Counter(
    "tocsin_notifier_quarantined_total",
    "Stored notifications set aside because their request or result no longer validates.",
    ["part"],
)
