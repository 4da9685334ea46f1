"""On-call end to end (issue 9), on `tocsin up` and on the four services as separate processes
(real Kafka and FerretDB):

1. a schedule handoff between the trigger and the escalation pages the new on-call person: the
   first level pages whoever is on call for `primary` (bob, from its layer); an override that
   starts after the trigger hands the schedule to carol; the second level, resolved when it
   pages, pages carol;
2. a snooze re-pages: acknowledge with `{"snooze": "3s"}`, and three seconds later the incident
   is triggered again and the first level is paged again;
3. (`tocsin up`) the configuration is reloaded through the API; a bad file is refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
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

CHECKOUT_TOKEN = "e2e-oncall-checkout-token-0123456789"
SEARCH_TOKEN = "e2e-oncall-search-token-0123456789"
ADMIN = "e2e-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
HANDOFF_AFTER = timedelta(seconds=6)  # the override starts this long after the trigger
SECOND_LEVEL_DELAY_S = 10


def config_document(receiver: WebhookReceiver) -> dict[str, Any]:
    users = [
        {
            "id": user,
            "name": user.title(),
            "contacts": [
                {"id": f"{user}-hook", "type": "webhook", "address": receiver.url(f"/{user}")}
            ],
            "notification_rules": [{"contact": f"{user}-hook", "after": "0s"}],
        }
        for user in ("alice", "bob", "carol")
    ]
    return {
        "services": [
            {"id": "checkout", "name": "Checkout", "tier": 1, "escalation_policy": "checkout"},
            {"id": "search", "name": "Search", "tier": 2, "escalation_policy": "search"},
        ],
        "integrations": [
            {
                "id": "prom-checkout",
                "type": "alertmanager",
                "token": CHECKOUT_TOKEN,
                "service": "checkout",
            },
            {
                "id": "prom-search",
                "type": "alertmanager",
                "token": SEARCH_TOKEN,
                "service": "search",
            },
        ],
        "users": users,
        "schedules": [
            {
                "id": "primary",
                "name": "Checkout primary",
                "time_zone": "Europe/Berlin",
                "layers": [
                    {
                        "name": "weekly",
                        "users": ["bob"],
                        "rotation": "weekly",
                        "start": "2026-01-05T09:00",
                    }
                ],
            }
        ],
        "escalation_policies": [
            {
                "id": "checkout",
                "levels": [
                    {"targets": [{"schedule": "primary"}]},
                    {"delay": f"{SECOND_LEVEL_DELAY_S}s", "targets": [{"schedule": "primary"}]},
                ],
            },
            {"id": "search", "levels": [{"targets": [{"user": "alice"}]}]},
        ],
    }


@dataclass
class Stack:
    mode: str
    ingest_url: str
    api_url: str
    receiver: WebhookReceiver
    config: Path
    processes: list[TocsinProcess]


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    mongo_url: str,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"oncall-{request.param}")
    receiver = WebhookReceiver()
    receiver.start()
    config = workdir / "tocsin.yaml"
    config.write_text(yaml.safe_dump(config_document(receiver), sort_keys=False))
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
        yield Stack(request.param, ingest.base_url, api.base_url, receiver, config, processes)
    finally:
        stop_processes(processes)
        receiver.stop()
        print_logs(processes)


def fire(stack: Stack, token: str, alertname: str) -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": alertname, "severity": "critical"},
        "annotations": {"summary": f"{alertname} fires"},
        "startsAt": "2026-11-25T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
    }
    body = alertmanager_payload("firing", [alert])
    body["groupLabels"] = body["commonLabels"] = {"alertname": alertname}
    response = httpx.post(f"{stack.ingest_url}/v1/ingest/{token}", json=body)
    assert response.status_code == 202, response.text


def test_a_handoff_between_trigger_and_escalation_pages_the_new_on_call_person(
    stack: Stack,
) -> None:
    receiver = stack.receiver
    on_call = httpx.get(f"{stack.api_url}/api/v1/schedules/primary/oncall", headers=AUTH)
    assert on_call.status_code == 200, on_call.text
    assert on_call.json()["user"] == "bob"

    # Carol takes over the schedule a few seconds from now: after the trigger, before level 1.
    handoff = datetime.now(UTC) + HANDOFF_AFTER
    override = httpx.post(
        f"{stack.api_url}/api/v1/schedules/primary/overrides",
        json={
            "user": "carol",
            "start": handoff.isoformat(),
            "end": (handoff + timedelta(hours=1)).isoformat(),
        },
        headers=AUTH,
    )
    assert override.status_code == 201, override.text

    fire(stack, CHECKOUT_TOKEN, "CheckoutLatency")
    (bob,) = receiver.wait_for(lambda p: p.path == "/bob", timeout=20)
    assert bob.body["event"] == "incident.triggered"
    assert datetime.now(UTC) < handoff, "the first page came after the handoff; machine too slow"
    incident_id = bob.body["incident"]["id"]

    (carol,) = receiver.wait_for(lambda p: p.path == "/carol", timeout=SECOND_LEVEL_DELAY_S + 15)
    assert carol.body["event"] == "incident.escalated"
    assert carol.body["escalation_level"] == 1
    assert carol.body["incident"]["id"] == incident_id
    assert carol.received_at - bob.received_at >= SECOND_LEVEL_DELAY_S - 0.5
    assert [p.path for p in receiver.snapshot() if p.body["incident"]["id"] == incident_id] == [
        "/bob",
        "/carol",
    ]

    shown = httpx.get(f"{stack.api_url}/api/v1/incidents/{incident_id}", headers=AUTH).json()
    reached = [
        (e["user_id"], e["escalation_level"]) for e in shown["timeline"] if e["action"] == "on_call"
    ]
    assert reached == [("bob", 0), ("carol", 1)]
    who = httpx.get(f"{stack.api_url}/api/v1/oncall", headers=AUTH).json()
    checkout = next(s for s in who["services"] if s["service"] == "checkout")
    assert checkout["levels"][0]["targets"][0]["user"] == "carol"
    assert checkout["levels"][0]["targets"][0]["source"]["type"] == "override"


def test_a_snooze_re_pages_when_it_ends(stack: Stack) -> None:
    receiver = stack.receiver
    fire(stack, SEARCH_TOKEN, "SearchErrors")
    (first,) = receiver.wait_for(
        lambda p: p.path == "/alice" and p.body["event"] == "incident.triggered", timeout=20
    )
    incident_id = first.body["incident"]["id"]

    snoozed = httpx.post(
        f"{stack.api_url}/api/v1/incidents/{incident_id}/acknowledge",
        json={"snooze": "3s"},
        headers=AUTH,
    )
    assert snoozed.status_code == 200, snoozed.text
    assert snoozed.json()["status"] == "acknowledged"
    assert snoozed.json()["snoozed_until"] is not None
    receiver.wait_for(lambda p: p.path == "/alice" and p.body["event"] == "incident.acknowledged")

    again = receiver.wait_for(
        lambda p: p.path == "/alice" and p.body["event"] == "incident.triggered",
        count=2,
        timeout=20,
    )
    assert again[1].body["incident"]["id"] == incident_id
    assert again[1].received_at - first.received_at >= 2.5
    assert again[1].body["notification_id"] != first.body["notification_id"]

    deadline = time.monotonic() + 10
    shown: dict[str, Any] = {}
    while time.monotonic() < deadline:
        shown = httpx.get(f"{stack.api_url}/api/v1/incidents/{incident_id}", headers=AUTH).json()
        if shown["status"] == "triggered":
            break
        time.sleep(0.1)
    assert shown["status"] == "triggered"
    actions = [(e["action"], e["actor"]) for e in shown["timeline"]]
    assert ("snooze", "api:admin") in actions
    assert ("ack_timeout", "timer") in actions


def test_the_configuration_reloads_through_the_api(stack: Stack) -> None:
    if stack.mode != "embedded":
        pytest.skip("one process is enough: each process reloads its own file the same way")
    original = stack.config.read_text()
    try:
        document = yaml.safe_load(original)
        document["schedules"][0]["name"] = "Checkout primary (renamed)"
        stack.config.write_text(yaml.safe_dump(document, sort_keys=False))
        reloaded = httpx.post(f"{stack.api_url}/api/v1/config/reload", headers=AUTH)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["sections"]["escalation"] == "reloaded"
        schedules = httpx.get(f"{stack.api_url}/api/v1/schedules", headers=AUTH).json()
        assert schedules["schedules"][0]["name"] == "Checkout primary (renamed)"

        document["escalation_policies"][0]["levels"][0]["targets"] = [{"schedule": "nope"}]
        stack.config.write_text(yaml.safe_dump(document, sort_keys=False))
        refused = httpx.post(f"{stack.api_url}/api/v1/config/reload", headers=AUTH)
        assert refused.status_code == 422
        assert refused.json()["detail"]["problems"] == [
            "escalation_policies[0].levels[0].targets[0].schedule: unknown schedule 'nope' "
            "(defined: primary)"
        ]
        schedules = httpx.get(f"{stack.api_url}/api/v1/schedules", headers=AUTH).json()
        assert schedules["schedules"][0]["name"] == "Checkout primary (renamed)"
    finally:
        stack.config.write_text(original)
