"""Issue 11's storm end to end, on `tocsin up` (one process, embedded bus and store) and on the
four services over Kafka and FerretDB: 500 alerts from 3 root causes, through Alertmanager's
webhook, with a silence (API), an inhibition and a maintenance window (file) in force, become
the expected incidents with their severities and reasons, and pages go only to those.

Root causes: (1) datacenter east down: `DatacenterDown` and its 200 `InstanceDown` (inhibited);
(2) latency on 150 checkout instances (one incident, raised by its blast radius); (3) a search
reindex: 100 `SearchErrors` under a silence, and 49 alerts of the `search-db` service, which
is in a maintenance window. The compression it prints (alerts : incidents : pages) is the one
the README reports."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.harness import (
    TocsinProcess,
    WebhookReceiver,
    alertmanager_payload,
    free_port,
    print_logs,
    start_distributed,
    start_process,
    stop_processes,
    wait_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]

TOKEN = "e2e-storm-token-0123456789abcdef"
ADMIN = "e2e-storm-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
TOTAL = 500


def write_config(path: Path, receiver: WebhookReceiver) -> None:
    now = datetime.now(UTC)
    services = [
        {"id": sid, "name": sid, "tier": 1, "escalation_policy": "oncall", **extra}
        for sid, extra in (
            ("checkout", {"group_by": ["alertname", "dc"], "blast_radius": 100}),
            ("search", {}),
            ("search-db", {}),
        )
    ]
    config: dict[str, Any] = {
        "services": services,
        "integrations": [
            {
                "id": "prom",
                "type": "alertmanager",
                "token": TOKEN,
                "service": "checkout",
                "routes": [
                    {"matchers": ['team="search"'], "service": "search"},
                    {"matchers": ['team="search-db"'], "service": "search-db"},
                ],
            }
        ],
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [{"id": "hook", "type": "webhook", "address": receiver.url("/alice")}],
                "notification_rules": [{"contact": "hook", "after": "0s"}],
            }
        ],
        "escalation_policies": [{"id": "oncall", "levels": [{"targets": [{"user": "alice"}]}]}],
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="DatacenterDown"'],
                "target_matchers": ['alertname="InstanceDown"'],
                "equal": ["dc"],
            }
        ],
        "severity_rules": [{"matchers": ['alertname="DatacenterDown"'], "severity": "SEV0"}],
        "maintenance_windows": [
            {
                "id": "reindex",
                "services": ["search-db"],
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "duration": "6h",
                "comment": "search reindex",
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Stack:
    ingest_url: str
    triage_url: str
    api_url: str
    receiver: WebhookReceiver
    processes: list[TocsinProcess]


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    mongo_url: str,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"storm-{request.param}")
    receiver = WebhookReceiver()
    receiver.start()
    config = workdir / "tocsin.yaml"
    write_config(config, receiver)
    if request.param == "distributed":
        processes = start_distributed(config, workdir, kafka_bootstrap, mongo_url, ADMIN)
        ingest, triage, api = processes[0], processes[1], processes[2]
    else:
        args = ["up", "--config", str(config), "--data-dir", str(workdir / "data")]
        env = {"TOCSIN_ADMIN_TOKEN": ADMIN, "TOCSIN_TIMER_POLL_SECONDS": "0.1"}
        processes = [start_process(args, "tocsin-up", free_port(), env, workdir)]
        ingest = triage = api = processes[0]
    try:
        wait_ready(processes)
        yield Stack(ingest.base_url, triage.base_url, api.base_url, receiver, processes)
    finally:
        stop_processes(processes)
        receiver.stop()
        print_logs(processes)


def _alert(n: int, alertname: str, severity: str, **labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {**labels, "alertname": alertname, "severity": severity, "instance": f"i-{n}"},
        "annotations": {"summary": f"{alertname} on i-{n}"},
        "startsAt": "2026-11-25T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"{n:016x}",
    }


def storm() -> list[dict[str, Any]]:
    alerts = [_alert(0, "DatacenterDown", "critical", dc="east")]
    alerts += [_alert(n, "InstanceDown", "critical", dc="east") for n in range(1, 201)]
    alerts += [_alert(n, "HighLatency", "critical", dc="west") for n in range(201, 351)]
    alerts += [_alert(n, "SearchErrors", "critical", team="search") for n in range(351, 451)]
    alerts += [_alert(n, "IndexLag", "critical", team="search-db") for n in range(451, 500)]
    assert len(alerts) == TOTAL
    return alerts


def _all_alerts(stack: Stack) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{stack.triage_url}/api/v1/alerts", params=params, headers=AUTH)
        assert page.status_code == 200, page.text
        body = page.json()
        found += body["alerts"]
        cursor = body.get("next_cursor")
        if not cursor:
            return found


def test_storm_pages_only_for_the_unsuppressed_incidents(stack: Stack) -> None:
    silence = {
        "matchers": [{"name": "team", "value": "search", "isRegex": False}],
        "startsAt": datetime.now(UTC).isoformat(),
        "endsAt": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        "createdBy": "alice",
        "comment": "search reindex",
    }
    made = httpx.post(f"{stack.triage_url}/api/v1/silences", json=silence, headers=AUTH)
    assert made.status_code == 200, made.text
    silence_id = made.json()["silenceID"]

    alerts = storm()
    # The datacenter first, as Alertmanager's group_wait would have it; then the rest in
    # requests of 50 (Alertmanager sends each group's alerts together).
    batches = [alerts[:1]] + [alerts[i : i + 50] for i in range(1, TOTAL, 50)]
    for batch in batches:
        sent = httpx.post(
            f"{stack.ingest_url}/v1/ingest/{TOKEN}",
            json=alertmanager_payload("firing", batch),
            timeout=30,
        )
        assert sent.status_code == 202, sent.text
        if batch is batches[0]:
            time.sleep(1)  # the source is recorded before its targets

    deadline = time.monotonic() + 120
    recorded: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        recorded = _all_alerts(stack)
        if len(recorded) == TOTAL and all(a["decision"] for a in recorded):
            break
        time.sleep(1)
    assert len(recorded) == TOTAL
    outcome = Counter(a["decision"].split(" ")[0] for a in recorded)
    assert outcome == {"grouped": 151, "inhibited": 200, "silenced": 100, "in": 49}, outcome
    held = {a["decision"] for a in recorded if a["service"] == "search-db"}
    assert held == {
        "in maintenance window reindex; routed to service search-db by routes[1] "
        "of integration prom"
    }
    assert {a["decision"].split(";")[0] for a in recorded if a["service"] == "search"} == {
        f"silenced by {silence_id}"
    }

    # The latency incident opens as SEV1 and is raised to SEV0 by its blast radius.
    expected = {"DatacenterDown": "SEV0", "HighLatency": "SEV0"}
    incidents = _incidents(stack, lambda found: _severities(found) == expected)
    by_title = {i["title"].split(" on ")[0]: i for i in incidents}
    datacenter, latency = by_title["DatacenterDown"], by_title["HighLatency"]

    # Pages: for these two incidents only, and nothing else arrives.
    stack.receiver.wait_for(lambda p: p.body.get("event") == "incident.triggered", 60, 2)
    time.sleep(3)  # anything else would have come by now
    pages = [p for p in stack.receiver.snapshot() if p.path == "/alice"]
    paged = {p.body["incident"]["id"] for p in pages}
    assert paged == {datacenter["id"], latency["id"]}
    triggered = [p for p in pages if p.body.get("event") == "incident.triggered"]
    print(
        f"storm compression: {TOTAL} alerts : {len(incidents)} incidents : "
        f"{len(triggered)} pages ({len(pages)} notifications in all)"
    )
    assert len(triggered) == 2


def _severities(incidents: list[dict[str, Any]]) -> dict[str, str]:
    return {i["title"].split(" on ")[0]: i["severity"] for i in incidents}


def _incidents(stack: Stack, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        answer = httpx.get(f"{stack.api_url}/api/v1/incidents", headers=AUTH)
        assert answer.status_code == 200, answer.text
        found = answer.json()["incidents"]
        if done(found):
            return found
        time.sleep(0.5)
    raise AssertionError(f"incidents: {_severities(found)}")


def test_a_deploy_shows_on_the_incident_it_preceded_and_on_its_page(stack: Stack) -> None:
    """Runs after the storm (same stack): a new checkout incident, two changes before it."""
    now = datetime.now(UTC)
    deploy = {
        "summary": "deployed checkout",
        "version": "v2.3.1",
        "source": "argo",
        "timestamp": (now - timedelta(minutes=4, seconds=10)).isoformat(),
    }
    sent = httpx.post(f"{stack.ingest_url}/v1/changes/{TOKEN}", json=deploy)
    assert sent.status_code == 202, sent.text
    flag = {
        "routing_key": TOKEN,
        "payload": {
            "summary": "flag new-cart on",
            "timestamp": (now - timedelta(minutes=12)).isoformat(),
            "source": "flags",
        },
        "links": [{"href": "https://flags.example/new-cart", "text": "new-cart"}],
    }
    sent = httpx.post(f"{stack.ingest_url}/v2/change/enqueue", json=flag)
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"status": "success", "message": "Change event processed"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = httpx.get(
            f"{stack.triage_url}/api/v1/changes", params={"service": "checkout"}, headers=AUTH
        ).json()
        if len(listed) == 2:
            break
        time.sleep(0.2)
    assert [c["summary"] for c in listed] == ["deployed checkout", "flag new-cart on"]

    alert = _alert(900, "CheckoutErrors", "critical", dc="west")
    sent = httpx.post(
        f"{stack.ingest_url}/v1/ingest/{TOKEN}", json=alertmanager_payload("firing", [alert])
    )
    assert sent.status_code == 202, sent.text
    (page,) = stack.receiver.wait_for(
        lambda p: p.body["incident"]["title"].startswith("CheckoutErrors"), timeout=30
    )
    changes = page.body["incident"]["changes"]
    assert [c["text"] for c in changes] == [
        "deployed checkout v2.3.1 4 min before",
        "flag new-cart on 12 min before",
    ]
    assert changes[1]["links"] == [{"href": "https://flags.example/new-cart", "text": "new-cart"}]
    shown = httpx.get(
        f"{stack.api_url}/api/v1/incidents/{page.body['incident']['id']}", headers=AUTH
    ).json()
    assert [(c["summary"], c["version"]) for c in shown["changes"]] == [
        ("deployed checkout", "v2.3.1"),
        ("flag new-cart on", None),
    ]
