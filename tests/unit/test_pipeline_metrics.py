"""Small pure parts of the pipeline metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import REGISTRY

from schemas import (
    ALERTS_RAW,
    AlertDetails,
    AlertReceived,
    AlertStatus,
    IncidentSnapshot,
    NotificationEvent,
    NotificationRequested,
    Recipient,
    Severity,
)
from services.ingest.metrics import observe_response, response_class
from services.notifier.metrics import time_to_page
from tocsin.runtime.bus import Subscription
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.sqlite import SqliteFile

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


async def test_embedded_bus_reports_the_groups_lag(tmp_path: Path) -> None:
    file = SqliteFile(tmp_path / "bus.sqlite")
    bus = EmbeddedBus(file)
    await bus.start()
    group = "lag-embedded"
    labels = {"topic": ALERTS_RAW, "group": group}
    seen: list[float | None] = []
    done = asyncio.Event()

    async def handler(message: AlertReceived) -> None:
        seen.append(REGISTRY.get_sample_value("tocsin_consumer_lag_messages", labels))
        if len(seen) == 3:
            done.set()

    try:
        await bus.publish_many(
            ALERTS_RAW,
            [
                (
                    "fp",
                    AlertReceived(
                        occurred_at=T0,
                        correlation_id=f"c-{n}",
                        fingerprint="fp",
                        status=AlertStatus.FIRING,
                        integration_id="am",
                        source="alertmanager",
                        service_id="checkout",
                        alertname="Lag",
                        summary="lag",
                    ),
                )
                for n in range(3)
            ],
        )
        task = asyncio.create_task(
            bus.consume(Subscription(ALERTS_RAW, group, AlertReceived, handler))
        )
        await asyncio.wait_for(done.wait(), timeout=10)
        async with asyncio.timeout(10):
            while REGISTRY.get_sample_value("tocsin_consumer_lag_messages", labels) != 0:
                await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await bus.stop()
        file.close()
    assert seen == [3.0, 3.0, 3.0]  # the batch's lag as fetched; 0 once it is handled
