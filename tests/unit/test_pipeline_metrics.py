"""Small pure parts of the pipeline metrics."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.ingest.metrics import observe_response, response_class


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
