"""End to end, four services as processes on real Kafka and FerretDB: one alert of each kind
(Alertmanager, Grafana, Datadog, PagerDuty Events v2, generic, a missed heartbeat) becomes an
incident and pages the first level of its service's policy; PagerDuty `resolve` and Datadog
`[Recovered]` resolve theirs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import (
    Page,
    TocsinProcess,
    WebhookReceiver,
    alertmanager_payload,
    print_logs,
    start_distributed,
    stop_processes,
    wait_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
KINDS = ("alertmanager", "grafana", "datadog", "pagerduty", "generic")
TOKENS = {kind: f"e2e-{kind}-token-0123456789" for kind in KINDS}
BEAT_TOKEN = "e2e-heartbeat-token-0123456789"
ADMIN = "e2e-formats-admin-token"
RESPONDERS = (*KINDS, "heartbeat")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def write_config(path: Path, receiver: WebhookReceiver) -> None:
    # One service, policy and responder per kind: each kind's page is told apart by its path.
    services = "".join(
        f"  - {{id: svc-{kind}, name: {kind}, escalation_policy: pol-{kind}}}\n"
        for kind in RESPONDERS
    )
    integrations = "".join(
        f"  - {{id: {kind}, type: {kind}, token: {TOKENS[kind]}, service: svc-{kind}}}\n"
        for kind in KINDS
    )
    users = "".join(
        f"""  - id: {kind}-oncall
    name: {kind} on call
    contacts: [{{id: hook, type: webhook, address: "{receiver.url("/" + kind)}"}}]
    notification_rules: [{{contact: hook, after: 0s}}]
"""
        for kind in RESPONDERS
    )
    policies = "".join(
        f"  - {{id: pol-{kind}, levels: [{{delay: 0s, targets: [{{user: {kind}-oncall}}]}}]}}\n"
        for kind in RESPONDERS
    )
    path.write_text(
        f"services:\n{services}integrations:\n{integrations}"
        f"heartbeats:\n  - {{id: nightly, token: {BEAT_TOKEN}, service: svc-heartbeat, "
        f"interval: 2s}}\n"
        f"users:\n{users}escalation_policies:\n{policies}"
    )


@dataclass
class Stack:
    ingest_url: str
    api_url: str
    receiver: WebhookReceiver
    processes: list[TocsinProcess]


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, mongo_url: str
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("formats")
    receiver = WebhookReceiver()
    receiver.start()
    config = workdir / "tocsin.yaml"
    write_config(config, receiver)
    processes = start_distributed(config, workdir, kafka_bootstrap, mongo_url, ADMIN)
    try:
        wait_ready(processes)
        yield Stack(processes[0].base_url, processes[2].base_url, receiver, processes)
    finally:
        stop_processes(processes)
        receiver.stop()
        print_logs(processes)


def _incident_status(stack: Stack, incident_id: str, wanted: str) -> str:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    deadline = time.monotonic() + 20
    status = ""
    while time.monotonic() < deadline:
        response = httpx.get(f"{stack.api_url}/api/v1/incidents/{incident_id}", headers=auth)
        status = response.json()["status"]
        if status == wanted:
            break
        time.sleep(0.1)
    return status


def _triggered_page_of(kind: str) -> Callable[[Page], bool]:
    def matches(page: Page) -> bool:
        return page.path == f"/{kind}" and page.body["event"] == "incident.triggered"

    return matches


def test_an_alert_of_each_kind_becomes_an_incident_and_pages(stack: Stack) -> None:
    ingest = stack.ingest_url
    posts = {
        "alertmanager": (
            f"/v1/ingest/{TOKENS['alertmanager']}",
            alertmanager_payload(
                "firing",
                [{"status": "firing", "labels": {"alertname": "DiskFull", "severity": "critical"}}],
            ),
        ),
        "grafana": (f"/v1/ingest/{TOKENS['grafana']}", fixture("grafana.json")),
        "datadog": (f"/v1/ingest/{TOKENS['datadog']}", fixture("datadog_default_triggered.json")),
        "pagerduty": (
            "/v2/enqueue",
            {**fixture("pagerduty_trigger.json"), "routing_key": TOKENS["pagerduty"]},
        ),
        "generic": (f"/v1/ingest/{TOKENS['generic']}", fixture("generic.json")),
    }
    for kind, (path, body) in posts.items():
        response = httpx.post(f"{ingest}{path}", json=body)
        assert response.status_code == 202, (kind, response.text)

    incidents = {}
    for kind in RESPONDERS:  # the heartbeat was never pinged: it is missed after 2s
        (page,) = stack.receiver.wait_for(_triggered_page_of(kind), timeout=30)
        assert page.body["incident"]["service"] == f"svc-{kind}"
        incidents[kind] = page.body["incident"]["id"]
    assert len(set(incidents.values())) == len(RESPONDERS)

    # Resolve transitions from PagerDuty and Datadog resolve their incidents.
    resolve = {**fixture("pagerduty_resolve.json"), "routing_key": TOKENS["pagerduty"]}
    assert httpx.post(f"{ingest}/v2/enqueue", json=resolve).status_code == 202
    recovered = fixture("datadog_default_recovered.json")
    assert httpx.post(f"{ingest}/v1/ingest/{TOKENS['datadog']}", json=recovered).status_code == 202
    # A ping brings the heartbeat back, which resolves its incident.
    assert httpx.post(f"{ingest}/v1/heartbeats/{BEAT_TOKEN}").status_code == 202
    for kind in ("pagerduty", "datadog", "heartbeat"):
        assert _incident_status(stack, incidents[kind], "resolved") == "resolved", kind
