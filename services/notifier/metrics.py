"""Prometheus metrics of the notifier. Labels name channels and outcomes, never addresses."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from schemas import NotificationEvent, NotificationRequested

DELIVERIES = Counter(
    "tocsin_notifications_total", "Final notification outcomes by channel.", ["channel", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "tocsin_notifier_delivery_seconds", "Time spent delivering one notification.", ["channel"]
)
DELIVERY_LATENCY = Histogram(
    "tocsin_notification_delivery_latency_seconds",
    "From the page's request to its delivery (a provider's receipt included), by channel.",
    ["channel"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
PROVIDER_STATUSES = Counter(
    "tocsin_notifier_provider_statuses_total",
    "Delivery statuses providers reported (Twilio status callbacks), by channel and status.",
    ["channel", "status"],
)
INBOUND = Counter(
    "tocsin_notifier_inbound_total",
    "Inbound provider requests (replies, key presses, callbacks) by route and outcome.",
    ["route", "outcome"],
)
QUARANTINED = Counter(
    "tocsin_notifier_quarantined_total",
    "Stored notifications set aside because their request or result no longer validates.",
    ["part"],
)
PROACTIVE_RATIO = Gauge(
    "tocsin_incidents_proactive_ratio",
    "Share of the SEV0/SEV1 incidents of the last 14 days whose first public status page update "
    "came within 10 minutes of opening (1 when there were none).",
)
SUBSCRIBER_NOTICES = Counter(
    "tocsin_status_notices_total",
    "Status updates sent to subscribers, by kind (stakeholder, public) and channel.",
    ["kind", "channel"],
)

TIME_TO_PAGE = Histogram(
    "tocsin_time_to_page_seconds",
    "From the alert's arrival at ingest to the delivery of a first page of its incident (the "
    "first level's incident.triggered page), by channel.",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
)


def time_to_page(request: NotificationRequested, delivered_at: datetime) -> float | None:
    """Seconds from the arrival at ingest of the incident's earliest alert on the page to this
    page's delivery, for a first page (the first level's `incident.triggered`); None for any
    other page, or when the page carries no arrival time (sent before triage recorded it)."""
    if request.event is not NotificationEvent.TRIGGERED or request.escalation_level != 0:
        return None
    arrivals = [alert.received_at for alert in request.incident.alerts if alert.received_at]
    if not arrivals:
        return None
    return max((delivered_at - min(arrivals)).total_seconds(), 0.0)
