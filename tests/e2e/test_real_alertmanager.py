"""A real Prometheus Alertmanager (built by scripts/alertmanager.sh from the Go module proxy)
notifies Tocsin's ingest through a `webhook_configs` receiver, with the four services as
processes on real Kafka and FerretDB:

- alerts pushed to Alertmanager's `/api/v2/alerts` arrive with Alertmanager's fingerprints;
- the incident opens and its first level is paged, once, although Alertmanager re-sends the
  group every `repeat_interval` and again when the group grows;
- pushing the alerts with `endsAt` in the past makes Alertmanager send `resolved`: the alerts
  and the incident resolve.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.harness import (
    ROOT,
    WebhookReceiver,
    free_port,
    one_service_config,
    print_logs,
    start_distributed,
    stop_processes,
    wait_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]

TOKEN = "alertmanager-e2e-token-0123456789"
ADMIN = "alertmanager-e2e-admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
REPEAT_INTERVAL_S = 2

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll until `probe` returns something other than None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def tocsin_config(receiver: WebhookReceiver) -> str:
    # A second level far away: a re-send must never look like a reason to page again.
    return one_service_config(
        TOKEN,
        {"alice": receiver.url("/alice")},
        [("0s", ["alice"]), ("30m", ["alice"])],
        tier=1,
    )


def alertmanager_config(ingest_url: str) -> str:
    # Short intervals so the test sees first notification, re-sends and resolution in seconds.
    # resolve_timeout only ends alerts pushed without `endsAt`; it must outlast the test.
    return f"""global:
  resolve_timeout: 2m
route:
  receiver: tocsin
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: {REPEAT_INTERVAL_S}s
receivers:
  - name: tocsin
    webhook_configs:
      - url: {ingest_url}/v1/ingest/{TOKEN}
        send_resolved: true
"""


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def push(self, alerts: list[dict[str, Any]]) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        assert response.status_code == 200, response.text

    def active_fingerprints(self) -> dict[str, str]:
        """instance label -> fingerprint, as Alertmanager itself computed it."""
        alerts = httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json()
        return {a["labels"]["instance"]: a["fingerprint"] for a in alerts}


def start_alertmanager(workdir: Path, ingest_url: str) -> Alertmanager:
    # Idempotent: builds the binary once into .cache/bin (`make test` has already done so).
    binary = subprocess.run(
        [str(ROOT / "scripts" / "alertmanager.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    config = workdir / "alertmanager.yml"
    config.write_text(alertmanager_config(ingest_url))
    port = free_port()
    log_path = workdir / "alertmanager.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no gossip: a single, private instance
                "--log.level=debug",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    manager = Alertmanager(f"http://127.0.0.1:{port}", process, log_path)

    def ready() -> bool | None:
        if process.poll() is not None:
            raise AssertionError(f"alertmanager exited:\n{log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{manager.url}/-/ready", timeout=2).status_code == 200 or None
        except httpx.HTTPError:
            return None

    eventually(ready, 30, "Alertmanager ready")
    return manager


@dataclass
class Stack:
    triage_url: str
    escalation_url: str
    receiver: WebhookReceiver
    alertmanager: Alertmanager


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, mongo_url: str
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("alertmanager")
    receiver = WebhookReceiver()
    receiver.start()
    config = workdir / "tocsin.yaml"
    config.write_text(tocsin_config(receiver))
    processes = start_distributed(config, workdir, kafka_bootstrap, mongo_url, ADMIN)
    manager: Alertmanager | None = None
    try:
        wait_ready(processes)
        manager = start_alertmanager(workdir, processes[0].base_url)
        yield Stack(processes[1].base_url, processes[2].base_url, receiver, manager)
    finally:
        if manager is not None:
            manager.process.terminate()
            manager.process.wait(timeout=15)
            print(f"----- alertmanager log -----\n{manager.log_path.read_text()[-4000:]}")
        stop_processes(processes)
        receiver.stop()
        print_logs(processes)


def prometheus_alert(instance: str, ends_at: datetime | None = None) -> dict[str, Any]:
    """An alert as Prometheus posts it to Alertmanager's API v2."""
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "CheckoutLatency",
            "service": "checkout",
            "severity": "critical",
            "instance": instance,
            "app.kubernetes.io/name": "checkout",
        },
        "annotations": {"summary": "Checkout p99 latency above 2s"},
        "startsAt": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "generatorURL": "http://prometheus.example/graph?g0.expr=latency",
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


def tocsin_alerts(stack: Stack) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{stack.triage_url}/api/v1/alerts", headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return {a["fingerprint"]: a for a in response.json()["alerts"]}


def test_alertmanager_notifies_pages_once_despite_resends_and_resolves(stack: Stack) -> None:
    manager, receiver = stack.alertmanager, stack.receiver

    # 1. The first alert: Alertmanager notifies after group_wait; the first level is paged.
    manager.push([prometheus_alert("checkout-1:9100")])
    (page,) = receiver.wait_for(lambda p: p.path == "/alice", timeout=30)
    assert page.body["event"] == "incident.triggered"
    assert page.body["incident"]["service"] == "checkout"
    incident_id = page.body["incident"]["id"]

    # 2. The group grows: Alertmanager sends the whole group again (old alert included).
    manager.push([prometheus_alert("checkout-2:9100")])

    def both_active() -> dict[str, str] | None:
        active = manager.active_fingerprints()
        return active if len(active) == 2 else None

    fingerprints = eventually(both_active, 10, "both alerts active in Alertmanager")

    def both_arrived() -> dict[str, dict[str, Any]] | None:
        alerts = tocsin_alerts(stack)
        return alerts if set(alerts) == set(fingerprints.values()) else None

    # Tocsin keeps Alertmanager's own fingerprints, and both alerts joined the one incident.
    alerts = eventually(both_arrived, 20, f"Tocsin has exactly {fingerprints}")
    for instance, fingerprint in fingerprints.items():
        alert = alerts[fingerprint]
        assert alert["labels"]["instance"] == instance
        assert alert["labels"]["app.kubernetes.io/name"] == "checkout"
        assert alert["source"] == "alertmanager"
        assert alert["status"] == "firing"
    eventually(
        lambda: (
            True
            if {a["incident_id"] for a in tocsin_alerts(stack).values()} == {incident_id}
            else None
        ),
        10,
        "both alerts attached to the incident",
    )

    # 3. Alertmanager re-sends the unchanged group every repeat_interval: let it do so a few
    # times (each re-send counts on the alert), and nobody is paged again.
    first = tocsin_alerts(stack)[fingerprints["checkout-1:9100"]]["count"]
    eventually(
        lambda: (
            True
            if tocsin_alerts(stack)[fingerprints["checkout-1:9100"]]["count"] >= first + 3
            else None
        ),
        REPEAT_INTERVAL_S * 3 + 15,
        "three re-sends from Alertmanager",
    )
    assert [p.body["event"] for p in receiver.snapshot()] == ["incident.triggered"]

    # 4. The alerts end: Alertmanager sends `resolved`; the alerts and the incident resolve.
    ended = datetime.now(UTC) - timedelta(seconds=1)
    manager.push([prometheus_alert(i, ends_at=ended) for i in fingerprints])

    def all_resolved() -> dict[str, dict[str, Any]] | None:
        alerts = tocsin_alerts(stack)
        return alerts if all(a["status"] == "resolved" for a in alerts.values()) else None

    resolved = eventually(all_resolved, 20, "Alertmanager's resolved notification reached Tocsin")
    assert set(resolved) == set(fingerprints.values())
    assert all(a["resolved_at"] for a in resolved.values())

    def incident_status() -> str | None:
        response = httpx.get(
            f"{stack.escalation_url}/api/v1/incidents/{incident_id}", headers=AUTH, timeout=5
        )
        status: str = response.json()["status"]
        return status if status == "resolved" else None

    eventually(incident_status, 20, "incident resolved")
    receiver.wait_for(lambda p: p.body["event"] == "incident.resolved", timeout=20)

    # Alertmanager keeps its resolved alerts for a while; give it time to re-send: still one
    # page per notification, and exactly one page that the incident triggered.
    time.sleep(REPEAT_INTERVAL_S * 2)
    pages = receiver.snapshot()
    assert Counter(p.body["event"] for p in pages) == {
        "incident.triggered": 1,
        "incident.resolved": 1,
    }
    ids = Counter(p.body["notification_id"] for p in pages)
    assert all(n == 1 for n in ids.values()), ids
