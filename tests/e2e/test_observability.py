"""Measuring the response, end to end: the four services as separate processes on real Kafka
and FerretDB, scraped every second by a real Prometheus (built by scripts/prometheus.sh) and
exporting spans with OTLP/HTTP to a local receiver, through a scenario of alerts, pages, an
escalation, acknowledgements, resolves, refused requests and a dead letter.

- Every PromQL expression of every panel of deploy/grafana/dashboards/ parses and returns data
  on that Prometheus (a panel whose query returns nothing fails).
- One alert's trace covers ingest → triage → escalation → notifier → the channel's delivery,
  as one connected tree.

With TOCSIN_DASHBOARD_CAPTURE=<file>, the range query results of every panel are written there
(deploy/grafana/render_svg.py draws the README's pictures from them).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.harness import (
    ROOT,
    Page,
    TocsinProcess,
    WebhookReceiver,
    alertmanager_payload,
    free_port,
    print_logs,
    start_distributed,
    stop_processes,
    wait_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]

TOKEN = "observability-e2e-token-0123456789"
ADMIN = "observability-e2e-admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
ESCALATION_DELAY_S = 4
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
GENERATED = ("incident-response.json", "oncall-health.json", "pipeline.json")

# What Grafana puts in place of its variables when it sends a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "15s",
    "$__range": "5m",
    "$service": ".*",
    "$severity": ".*",
}


@dataclass
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


@dataclass
class OtlpReceiver:
    """A local OTLP/HTTP endpoint: POST /v1/traces with a protobuf ExportTraceServiceRequest."""

    spans: list[Span] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received = []
                for resource_spans in request.resource_spans:
                    attributes = {
                        a.key: a.value.string_value for a in resource_spans.resource.attributes
                    }
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            received.append(
                                Span(
                                    attributes.get("service.name", "?"),
                                    span.name,
                                    span.trace_id.hex(),
                                    span.span_id.hex(),
                                    span.parent_span_id.hex(),
                                )
                            )
                with receiver.lock:
                    receiver.spans.extend(received)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def snapshot(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> Any:
        response = httpx.get(
            f"{self.url}/api/v1/query_range",
            params={"query": expr, "start": start, "end": end, "step": step},
            timeout=30,
        )
        body = response.json()
        assert response.status_code == 200, (expr, body)
        assert body["status"] == "success", (expr, body)
        return body["data"]


def start_prometheus(workdir: Path, targets: list[TocsinProcess]) -> Prometheus:
    binary = subprocess.run(
        [str(ROOT / "scripts" / "prometheus.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "tocsin",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{proc.port}"],
                        "labels": {"component": proc.name},
                    }
                    for proc in targets
                ],
            }
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200:
                return prometheus
        except httpx.HTTPError:
            pass
        assert process.poll() is None, log_path.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"Prometheus not ready:\n{log_path.read_text()[-3000:]}")


def tocsin_config(receiver: WebhookReceiver) -> str:
    """Service checkout (policy `oncall`: alice, then bob after 4 s), support hours that never
    cover the test's time (a window two days from now), so every page is after hours."""
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%a").lower()
    users = [
        {
            "id": user,
            "name": user.title(),
            "contacts": [
                {"id": f"{user}-hook", "type": "webhook", "address": receiver.url(f"/{user}")}
            ],
            "notification_rules": [{"contact": f"{user}-hook", "after": "0s"}],
        }
        for user in ("alice", "bob")
    ]
    config = {
        "services": [
            {
                "id": "checkout",
                "name": "Checkout API",
                "tier": 1,
                "escalation_policy": "oncall",
                "urgency": {
                    "support_hours": {
                        "time_zone": "UTC",
                        "days": [later],
                        "from": "09:00",
                        "to": "10:00",
                    }
                },
            }
        ],
        "integrations": [
            {"id": "prom", "type": "alertmanager", "token": TOKEN, "service": "checkout"}
        ],
        "users": users,
        "escalation_policies": [
            {
                "id": "oncall",
                "levels": [
                    {"delay": "0s", "targets": [{"user": "alice"}]},
                    {"delay": f"{ESCALATION_DELAY_S}s", "targets": [{"user": "bob"}]},
                ],
            }
        ],
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def alerts(name: str, status: str = "firing") -> list[dict[str, Any]]:
    return [
        {
            "status": status,
            "labels": {"alertname": name, "severity": "critical", "pod": "checkout-1"},
            "annotations": {"summary": f"{name} on checkout"},
            "startsAt": "2026-11-25T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T10:05:00Z",
            "generatorURL": "http://prometheus.example/graph",
        }
    ]


@dataclass
class Run:
    processes: list[TocsinProcess]
    prometheus: Prometheus
    otlp: OtlpReceiver
    receiver: WebhookReceiver
    started: float
    ended: float
    kafka_namespace: str


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, mongo_url: str
) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("observability")
    receiver = WebhookReceiver()
    receiver.start()
    otlp = OtlpReceiver()
    otlp.start()
    config = workdir / "tocsin.yaml"
    config.write_text(tocsin_config(receiver))
    saved = {
        k: os.environ.get(k) for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_BSP_SCHEDULE_DELAY")
    }
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{otlp.port}"
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    try:
        processes = start_distributed(config, workdir, kafka_bootstrap, mongo_url, ADMIN)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    prometheus: Prometheus | None = None
    try:
        wait_ready(processes)
        prometheus = start_prometheus(workdir, processes)
        namespace = _namespace_of(processes[0])
        started = time.time()
        scenario(processes, receiver, kafka_bootstrap, namespace)
        time.sleep(3)  # a few more scrapes after the last change
        yield Run(processes, prometheus, otlp, receiver, started, time.time(), namespace)
    finally:
        if prometheus is not None:
            prometheus.process.terminate()
            prometheus.process.wait(timeout=15)
        stop_processes(processes)
        receiver.stop()
        otlp.stop()
        print_logs(processes)


def _namespace_of(process: TocsinProcess) -> str:
    environ = Path(f"/proc/{process.process.pid}/environ").read_bytes().split(b"\0")
    for entry in environ:
        if entry.startswith(b"TOCSIN_KAFKA_NAMESPACE="):
            return entry.split(b"=", 1)[1].decode()
    raise AssertionError("no TOCSIN_KAFKA_NAMESPACE in the service's environment")


def wait_status(api: str, incident_id: str, status: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = httpx.get(f"{api}/api/v1/incidents/{incident_id}", headers=AUTH).json()
        if shown["status"] == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"{incident_id} not {status}")


def paged(path: str, incident_id: str) -> Callable[[Page], bool]:
    return lambda page: page.path == path and page.body["incident"]["id"] == incident_id


def scenario(
    processes: list[TocsinProcess], receiver: WebhookReceiver, bootstrap: str, namespace: str
) -> None:
    ingest, api = processes[0].base_url, processes[2].base_url

    def fire(name: str, status: str = "firing") -> None:
        response = httpx.post(
            f"{ingest}/v1/ingest/{TOKEN}", json=alertmanager_payload(status, alerts(name, status))
        )
        assert response.status_code == 202, response.text

    def first_page(name: str) -> str:
        (page,) = receiver.wait_for(
            lambda p: p.path == "/alice" and p.body["incident"]["title"].startswith(name),
            timeout=30,
        )
        return str(page.body["incident"]["id"])

    # Refused requests: a wrong token (401) and a body that is not JSON (400).
    assert httpx.post(f"{ingest}/v1/ingest/wrong-token", json={}).status_code == 401
    bad = httpx.post(f"{ingest}/v1/ingest/{TOKEN}", content=b"{not json")
    assert bad.status_code == 400

    # Three incidents, one after another, so that each histogram grows while it is scraped.
    for n, name in enumerate(("CheckoutErrors", "CheckoutLatency", "CheckoutSaturation")):
        fire(name)
        incident_id = first_page(name)
        time.sleep(1.2)
        fire(name)  # Alertmanager's resend: a repeat, no page
        if n == 1:
            # Nobody answers: bob (level 1) is paged, then acknowledges; the alert resolves.
            receiver.wait_for(paged("/bob", incident_id), timeout=ESCALATION_DELAY_S + 20)
            time.sleep(1)
            acked = httpx.post(f"{api}/api/v1/incidents/{incident_id}/acknowledge", headers=AUTH)
            assert acked.status_code == 200, acked.text
            time.sleep(1.5)
            fire(name, "resolved")
            wait_status(api, incident_id, "resolved")
        else:
            acked = httpx.post(f"{api}/api/v1/incidents/{incident_id}/acknowledge", headers=AUTH)
            assert acked.status_code == 200, acked.text
            time.sleep(1.5)
            resolved = httpx.post(f"{api}/api/v1/incidents/{incident_id}/resolve", headers=AUTH)
            assert resolved.status_code == 200, resolved.text
        time.sleep(1.5)

    # A message triage cannot read goes to alerts.raw.dlq.
    async def publish_garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(f"{namespace}alerts.raw", b'{"not": "an alert"}', key=b"x")
        finally:
            await producer.stop()

    asyncio.run(publish_garbage())
    time.sleep(2)


def panel_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard, panel, PromQL, legend format) of every target, in the dashboards' order."""
    found = []
    for name in GENERATED:
        document = json.loads((DASHBOARDS / name).read_text())
        for panel in document["panels"]:
            for target in panel["targets"]:
                found.append(
                    (
                        document["title"],
                        panel["title"],
                        target["expr"],
                        target.get("legendFormat", ""),
                    )
                )
    return found


def legend(template: str, metric: dict[str, str]) -> str:
    """Grafana's `{{label}}` legend format filled in."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), template)


def grafana_substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_every_panel_query_returns_data_from_a_real_prometheus(run: Run) -> None:
    queries = panel_queries()
    assert len(queries) >= 20
    empty = []
    capture: dict[str, Any] = {"start": run.started - 5, "end": run.ended, "dashboards": {}}
    for board, panel, expr, legend_format in queries:
        data = run.prometheus.query_range(grafana_substituted(expr), run.started - 5, run.ended)
        finite = [
            series
            for series in data["result"]
            if any(math.isfinite(float(value)) for _, value in series["values"])
        ]
        if not finite:
            empty.append(f"{board} / {panel}: {expr}")
        capture["dashboards"].setdefault(board, {}).setdefault(panel, []).extend(
            {"legend": legend(legend_format, s["metric"]) or "value", "values": s["values"]}
            for s in data["result"]
        )
    assert not empty, "panels without data:\n" + "\n".join(empty)
    target = os.environ.get("TOCSIN_DASHBOARD_CAPTURE")
    if target:
        Path(target).write_text(json.dumps(capture, indent=1))


def test_figures_add_up(run: Run) -> None:
    """Counters the processes emit once per change: three incidents, three acknowledgements,
    three resolves, one escalation to level 1, after-hours pages for the policy's team."""
    end = run.ended

    def instant(expr: str) -> float:
        response = httpx.get(
            f"{run.prometheus.url}/api/v1/query", params={"query": expr, "time": end}
        )
        result = response.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    assert instant("sum(tocsin_incidents_opened_total)") == 3
    assert instant("sum(tocsin_incidents_acknowledged_total)") == 3
    assert instant("sum(tocsin_incidents_resolved_total)") == 3
    assert instant('sum(tocsin_incidents_escalated_total{level="1"})') == 1
    assert instant("sum(tocsin_incident_time_to_acknowledge_seconds_count)") == 3
    assert instant("sum(tocsin_time_to_page_seconds_count)") == 3
    assert instant('sum(tocsin_after_hours_pages_total{team="oncall"})') == 4  # 3 + bob
    assert instant('sum(tocsin_ingest_responses_total{code="4xx"})') == 2
    assert instant('sum(tocsin_messages_dead_lettered_total{topic="alerts.raw"})') == 1


def test_one_alerts_trace_runs_from_ingest_to_the_delivered_page(run: Run) -> None:
    deadline = time.monotonic() + 20
    services = {"tocsin-ingest", "tocsin-triage", "tocsin-escalation", "tocsin-notifier"}
    while True:
        spans = run.otlp.snapshot()
        deliveries = [s for s in spans if s.name == "deliver webhook"]
        complete = [
            d
            for d in deliveries
            if {s.service for s in spans if s.trace_id == d.trace_id} >= services
        ]
        if complete or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert complete, sorted({(s.service, s.name) for s in spans})
    trace = [s for s in spans if s.trace_id == complete[0].trace_id]
    by_id = {s.span_id: s for s in trace}

    # Walk up from the delivery to the root: every hop is a parent the receiver got.
    chain = [complete[0]]
    while chain[-1].parent_id and chain[-1].parent_id != "0" * 16:
        parent = by_id.get(chain[-1].parent_id)
        assert parent is not None, f"missing parent of {chain[-1]}"
        chain.append(parent)
    path = [(s.service, s.name) for s in reversed(chain)]
    assert path == [
        ("tocsin-ingest", "POST /v1/ingest/{token}"),
        ("tocsin-ingest", "alerts.raw publish"),
        ("tocsin-triage", "alerts.raw process"),
        ("tocsin-triage", "incidents.events publish"),
        ("tocsin-escalation", "incidents.events process"),
        ("tocsin-escalation", "notifications.requested publish"),
        ("tocsin-notifier", "notifications.requested process"),
        ("tocsin-notifier", "deliver webhook"),
    ], path
