"""Small pure parts of the pipeline metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from schemas import (
    AlertDetails,
    IncidentSnapshot,
    NotificationEvent,
    NotificationRequested,
    Recipient,
    Severity,
)
from services.ingest.metrics import observe_response, response_class
from services.notifier.metrics import time_to_page

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_ingest_answers_are_counted_as_2xx_4xx_503_or_5xx() -> None:
    assert [response_class(s) for s in (200, 202, 400, 401, 413, 429, 503, 500)] == [
        "2xx",
        "2xx",
        "4xx",
        "4xx",
        "4xx",
        "4xx",
        "503",
        "5xx",
    ]


def test_observe_response_counts_once_and_times_once() -> None:
    labels = {"source": "test-source", "code": "503"}
    before = REGISTRY.get_sample_value("tocsin_ingest_responses_total", labels) or 0
    observe_response("test-source", 503, 0.01)
    assert REGISTRY.get_sample_value("tocsin_ingest_responses_total", labels) == before + 1
    count = REGISTRY.get_sample_value(
        "tocsin_ingest_request_duration_seconds_count", {"source": "test-source", "status": "503"}
    )
    assert count == 1


def _page(event: NotificationEvent, level: int, *arrivals: datetime) -> NotificationRequested:
    return NotificationRequested(
        occurred_at=T0,
        correlation_id="c",
        notification_id="n-1",
        event=event,
        incident=IncidentSnapshot(
            id="inc-1",
            title="Checkout down",
            severity=Severity.SEV1,
            status="triggered",
            service="checkout",
            alert_count=len(arrivals),
            alerts=tuple(
                AlertDetails(fingerprint=f"fp-{n}", summary="s", received_at=at)
                for n, at in enumerate(arrivals)
            ),
        ),
        recipient=Recipient(user_id="alice", contact_id="alice-sms"),
        escalation_level=level,
    )


def test_time_to_page_runs_from_the_earliest_arrival_for_first_pages_only() -> None:
    delivered = T0 + timedelta(seconds=2)
    first = _page(NotificationEvent.TRIGGERED, 0, T0 + timedelta(seconds=1), T0)
    assert time_to_page(first, delivered) == 2.0
    assert time_to_page(_page(NotificationEvent.ESCALATED, 1, T0), delivered) is None
    assert time_to_page(_page(NotificationEvent.TRIGGERED, 1, T0), delivered) is None
    assert time_to_page(_page(NotificationEvent.ACKNOWLEDGED, 0, T0), delivered) is None
    assert time_to_page(_page(NotificationEvent.TRIGGERED, 0), delivered) is None  # no arrival
