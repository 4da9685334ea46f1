"""The walking skeleton's user story, end to end: on real Kafka and FerretDB with the four
services as separate processes, and on `tocsin up` (one process, embedded bus and store):

1. Alertmanager's webhook → the first level is paged (webhook contact);
2. nobody acknowledges → the next level is paged after its delay;
3. acknowledge (through `incidents.commands`) stops escalation, the notices carry each
   responder's level, and the timeline shows every page and its delivery; Alertmanager
   re-sending the group pages nobody; a `resolved` payload resolves the incident.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import (
    TocsinProcess,
    WebhookReceiver,
    alertmanager_payload,
    free_port,
    one_service_config,
    print_logs,
    start_distributed,
    start_process,
    stop_processes,
    wait_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]

TOKEN = "e2e-integration-token-0123456789"
ADMIN = "e2e-admin-token"
ESCALATION_DELAY_S = 3
THIRD_LEVEL_DELAY_S = 8


def write_config(path: Path, receiver: WebhookReceiver) -> None:
    path.write_text(
        one_service_config(
            TOKEN,
            {user: receiver.url(f"/{user}") for user in ("alice", "bob", "carol")},
            [
                ("0s", ["alice"]),
                (f"{ESCALATION_DELAY_S}s", ["bob"]),
                (f"{THIRD_LEVEL_DELAY_S}s", ["carol"]),
            ],
            tier=1,
        )
    )


@dataclass
class Stack:
    ingest_url: str
    api_url: str
    receiver: WebhookReceiver
    processes: list[TocsinProcess]


@pytest.fixture(scope="module", params=["distributed", "embedded"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    mongo_url: str,
) -> Iterator[Stack]:
    """The four services as separate processes on Kafka + FerretDB, or `tocsin up` alone."""
    workdir = tmp_path_factory.mktemp(request.param)
    receiver = WebhookReceiver()
    receiver.start()
    config = workdir / "tocsin.yaml"
    write_config(config, receiver)
    if request.param == "distributed":
        processes = start_distributed(config, workdir, kafka_bootstrap, mongo_url, ADMIN)
        ingest, api = processes[0], processes[2]
    else:
        args = ["up", "--config", str(config), "--data-dir", str(workdir / "data")]
        env = {"TOCSIN_ADMIN_TOKEN": ADMIN, "TOCSIN_TIMER_POLL_SECONDS": "0.1"}
        processes = [start_process(args, "tocsin-up", free_port(), env, workdir)]
        ingest = api = processes[0]
    try:
        wait_ready(processes)
        yield Stack(
            ingest_url=ingest.base_url, api_url=api.base_url, receiver=receiver, processes=processes
        )
    finally:
        stop_processes(processes)
        receiver.stop()
        print_logs(processes)


def _alerts(status: str) -> list[dict[str, object]]:
    ends = "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T10:05:00Z"
    return [
        {
            "status": status,
            "labels": {"alertname": "CheckoutErrors", "severity": "critical", "pod": pod},
            "annotations": {"summary": "Checkout 5xx above 5%"},
            "startsAt": "2026-11-25T10:00:00Z",
            "endsAt": ends,
            "generatorURL": "http://prometheus.example/graph",
            "fingerprint": fingerprint,
        }
        for pod, fingerprint in (
            ("checkout-1", "a1b2c3d4e5f60001"),
            ("checkout-2", "a1b2c3d4e5f60002"),
        )
    ]


def test_alert_pages_escalates_ack_stops_resend_is_quiet_resolve_resolves(stack: Stack) -> None:
    receiver = stack.receiver
    auth = {"Authorization": f"Bearer {ADMIN}"}

    # Bad token and no API key are refused.
    assert httpx.post(f"{stack.ingest_url}/v1/ingest/wrong-token", json={}).status_code == 401
    assert httpx.get(f"{stack.api_url}/api/v1/incidents").status_code == 401

    # 1. The first level is paged.
    sent = time.monotonic()
    response = httpx.post(
        f"{stack.ingest_url}/v1/ingest/{TOKEN}",
        json=alertmanager_payload("firing", _alerts("firing")),
    )
    assert response.status_code == 202, response.text
    (alice_page,) = receiver.wait_for(lambda p: p.path == "/alice", timeout=20)
    print(f"time to page: {alice_page.received_at - sent:.3f}s")
    assert alice_page.body["event"] == "incident.triggered"
    incident = alice_page.body["incident"]
    assert incident["service"] == "checkout"
    assert incident["status"] == "triggered"
    assert alice_page.body["recipient"] == {"user_id": "alice", "contact_id": "alice-hook"}
    incident_id = incident["id"]

    # Both alerts of the group joined one incident (the page may go out before the second).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = httpx.get(f"{stack.api_url}/api/v1/incidents", headers=auth).json()["incidents"]
        if listed and listed[0]["alert_count"] == 2:
            break
        time.sleep(0.1)
    assert [(i["id"], i["alert_count"]) for i in listed] == [(incident_id, 2)]

    # 2. Nobody acknowledges: the second level is paged after its delay, not before.
    (bob_page,) = receiver.wait_for(lambda p: p.path == "/bob", timeout=ESCALATION_DELAY_S + 15)
    # The delay runs from the incident's opening, which follows the alert's 2xx (alice's page
    # may itself arrive late on a loaded machine, so it is not the reference).
    waited = bob_page.received_at - sent
    assert waited >= ESCALATION_DELAY_S - 0.5, f"escalated after {waited:.2f}s"
    assert bob_page.body["event"] == "incident.escalated"
    assert bob_page.body["escalation_level"] == 1

    # 3. Acknowledge stops escalation: carol (third level) is never paged.
    acked = httpx.post(f"{stack.api_url}/api/v1/incidents/{incident_id}/acknowledge", headers=auth)
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "api:admin"
    notices = receiver.wait_for(lambda p: p.body["event"] == "incident.acknowledged", count=2)
    # Each notice names the level its recipient was paged at.
    assert sorted((p.path, p.body["escalation_level"]) for p in notices) == [
        ("/alice", 0),
        ("/bob", 1),
    ]

    # The timeline shows each page (who, contact, level) and its delivery outcome.
    deadline = time.monotonic() + 20
    timeline: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        shown = httpx.get(f"{stack.api_url}/api/v1/incidents/{incident_id}", headers=auth)
        timeline = shown.json()["timeline"]
        if sum(1 for e in timeline if e["action"] == "delivered") >= 4:
            break
        time.sleep(0.1)
    pages = [
        (e["action"], e["user_id"], e["contact_id"], e["escalation_level"])
        for e in timeline
        if e["event"] in ("incident.triggered", "incident.escalated")
    ]
    assert sorted(pages) == [
        ("delivered", "alice", "alice-hook", 0),
        ("delivered", "bob", "bob-hook", 1),
        ("paged", "alice", "alice-hook", 0),
        ("paged", "bob", "bob-hook", 1),
    ]

    # Alertmanager re-sends the whole group every group_interval: that pages nobody.
    pages_before_resend = len(receiver.snapshot())
    for _ in range(3):
        again = httpx.post(
            f"{stack.ingest_url}/v1/ingest/{TOKEN}",
            json=alertmanager_payload("firing", _alerts("firing")),
        )
        assert again.status_code == 202

    # Wait past the third level's delay: neither the resend nor a stale timer pages anyone.
    time.sleep(THIRD_LEVEL_DELAY_S + 1)
    assert len(receiver.snapshot()) == pages_before_resend
    assert not [p for p in receiver.snapshot() if p.path == "/carol"]

    # A resolved payload resolves the incident.
    resolved = httpx.post(
        f"{stack.ingest_url}/v1/ingest/{TOKEN}",
        json=alertmanager_payload("resolved", _alerts("resolved")),
    )
    assert resolved.status_code == 202
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline:
        status = httpx.get(f"{stack.api_url}/api/v1/incidents/{incident_id}", headers=auth).json()[
            "status"
        ]
        if status == "resolved":
            break
        time.sleep(0.1)
    assert status == "resolved"
    receiver.wait_for(lambda p: p.body["event"] == "incident.resolved", count=2)

    # Nobody was paged twice for one notification.
    ids = Counter(p.body["notification_id"] for p in receiver.snapshot())
    assert all(n == 1 for n in ids.values()), ids
    assert sorted(
        p.path for p in receiver.snapshot() if p.body["event"] != "incident.resolved"
    ) == [
        "/alice",
        "/alice",
        "/bob",
        "/bob",
    ]
