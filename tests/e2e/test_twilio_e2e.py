"""SMS and voice pages end to end, on `tocsin up` and on the four services over Kafka and
FerretDB, with the fake Twilio as the provider (its callbacks and webhooks signed as Twilio
signs them, sent to Tocsin's public_url):

1. an alert -> an SMS to alice (queued, sent, delivered on the incident's timeline) -> she
   replies `1a` -> acknowledged by alice, the next level is never paged;
2. an alert -> a call to bob; forged requests on /v1/twilio/sms, /voice and /status get 403 and
   change nothing; bob presses 4 -> acknowledged by bob;
3. erin's SMS is undelivered -> her voice contact is called at once (not after its rule's 10
   minutes), the timeline says why;
4. 20 incidents at once to carol's number -> a few bundled SMS, every page delivered once.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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
    start_process,
    stop_processes,
    wait_ready,
)
from tests.fakes.twilio import FakeCall, FakeMessage, FakeTwilio

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]

ADMIN = "e2e-admin-token"
FROM = "+15550001111"
NUMBERS = {
    "alice-sms": "+15551230001",
    "bob-voice": "+15551230002",
    "erin-sms": "+15551230003",
    "erin-voice": "+15551230004",
    "carol-sms": "+15551230005",
}
SERVICES = {"checkout": "alice", "payments": "bob", "search": "erin", "batch": "carol"}
SECOND_LEVEL_DELAY_S = 4
BURST = 20
CODE = re.compile(r"Reply (\d+)a ack")


def token(service: str) -> str:
    return f"e2e-twilio-{service}-token-0123456789"


def write_config(path: Path, public_url: str, twilio: FakeTwilio, dave: WebhookReceiver) -> None:
    def user(user_id: str, contacts: list[str], rules: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "id": user_id,
            "name": user_id.title(),
            "contacts": [
                {"id": c, "type": c.split("-")[1], "address": NUMBERS[c]} for c in contacts
            ],
            "notification_rules": [{"contact": c, "after": after} for c, after in rules],
        }

    config = {
        "public_url": public_url,
        "providers": {
            "twilio": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": FROM,
                "base_url": twilio.base_url,
                "sms_interval": "5s",
                "voice_interval": "5s",
            }
        },
        "services": [
            {"id": s, "name": s.title(), "tier": 1, "escalation_policy": f"p-{s}"} for s in SERVICES
        ],
        "integrations": [
            {"id": f"am-{s}", "type": "alertmanager", "token": token(s), "service": s}
            for s in SERVICES
        ],
        "users": [
            user("alice", ["alice-sms"], [("alice-sms", "0s")]),
            user("bob", ["bob-voice"], [("bob-voice", "0s")]),
            user("erin", ["erin-sms", "erin-voice"], [("erin-sms", "0s"), ("erin-voice", "10m")]),
            user("carol", ["carol-sms"], [("carol-sms", "0s")]),
            {
                "id": "dave",
                "name": "Dave",
                "contacts": [{"id": "dave-hook", "type": "webhook", "address": dave.url("/d")}],
                "notification_rules": [{"contact": "dave-hook", "after": "0s"}],
            },
        ],
        "escalation_policies": [
            {
                "id": f"p-{s}",
                "levels": [
                    {"delay": "0s", "targets": [{"user": u}]},
                    {"delay": f"{SECOND_LEVEL_DELAY_S}s", "targets": [{"user": "dave"}]},
                ],
            }
            for s, u in SERVICES.items()
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Stack:
    ingest_url: str
    api_url: str
    notifier_url: str
    twilio: FakeTwilio
    dave: WebhookReceiver
    processes: list[TocsinProcess]

    def get(self, path: str) -> Any:
        response = httpx.get(
            f"{self.api_url}{path}", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def incident(self, incident_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.get(f"/api/v1/incidents/{incident_id}")
        return body

    def incidents(self, service: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get(f"/api/v1/incidents?service={service}")["incidents"]
        return found

    def wait_for_status(self, incident_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        found: dict[str, Any] = wait_until(
            lambda: (i := self.incident(incident_id))["status"] == status and i, timeout
        )
        return found


def wait_until(condition: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    mongo_url: str,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"twilio-{request.param}")
    twilio = FakeTwilio().start()
    dave = WebhookReceiver()
    dave.start()
    config = workdir / "tocsin.yaml"
    processes: list[TocsinProcess] = []
    env = {"TOCSIN_ADMIN_TOKEN": ADMIN, "TOCSIN_TIMER_POLL_SECONDS": "0.1"}
    if request.param == "embedded":
        port = free_port()
        write_config(config, f"http://127.0.0.1:{port}", twilio, dave)
        args = ["up", "--config", str(config), "--data-dir", str(workdir / "data")]
        processes.append(start_process(args, "tocsin-up", port, env, workdir))
        ingest = api = notifier = processes[0]
    else:
        # Twilio calls the notifier back: public_url is its address here (in production a
        # proxy in front of the services routes /v1/twilio to the notifier).
        run_id = uuid.uuid4().hex[:10]
        env |= {
            "TOCSIN_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "TOCSIN_MONGO_URL": mongo_url,
            "TOCSIN_KAFKA_NAMESPACE": f"e2e-{run_id}.",
            "TOCSIN_MONGO_DATABASE": f"e2e_{run_id}",
        }
        ports = {name: free_port() for name in ("ingest", "triage", "escalation", "notifier")}
        write_config(config, f"http://127.0.0.1:{ports['notifier']}", twilio, dave)
        for name, port in ports.items():
            args = ["serve", name, "--config", str(config)]
            processes.append(start_process(args, name, port, env, workdir))
        ingest, api, notifier = processes[0], processes[2], processes[3]
    try:
        wait_ready(processes)
        yield Stack(ingest.base_url, api.base_url, notifier.base_url, twilio, dave, processes)
    finally:
        stop_processes(processes)
        twilio.stop()
        dave.stop()
        print_logs(processes)


def fire(stack: Stack, service: str, alertnames: list[str]) -> None:
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": name, "severity": "critical"},
            "annotations": {"summary": f"{name} on {service}"},
            "startsAt": "2026-11-25T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph",
        }
        for name in alertnames
    ]
    payload = alertmanager_payload("firing", alerts)
    sent = httpx.post(f"{stack.ingest_url}/v1/ingest/{token(service)}", json=payload, timeout=10)
    assert sent.status_code == 202, sent.text


def sms_to(stack: Stack, contact: str, count: int = 1, timeout: float = 30) -> list[FakeMessage]:
    return stack.twilio.wait_for_messages(count, to=NUMBERS[contact], timeout=timeout)


def answered(stack: Stack, contact: str, timeout: float = 30) -> FakeCall:
    (call,) = stack.twilio.wait_for_calls(1, to=NUMBERS[contact], timeout=timeout)
    stack.twilio.wait_until(lambda: call.waiting_gather, timeout)
    return call


def only_incident(stack: Stack, service: str) -> dict[str, Any]:
    incidents: list[dict[str, Any]] = wait_until(lambda: stack.incidents(service))
    assert len(incidents) == 1, incidents
    return incidents[0]


def test_an_sms_reply_acknowledges_and_escalation_stops(stack: Stack) -> None:
    fire(stack, "checkout", ["CheckoutErrors"])
    (page,) = sms_to(stack, "alice-sms")
    assert page.num_segments == 1
    code = CODE.search(page.body)
    assert code is not None, page.body
    incident = only_incident(stack, "checkout")
    assert f"#{re.sub('[^a-z0-9]', '', incident['id'].lower())[:8]}" in page.body

    answer = stack.twilio.reply_sms(
        f"{stack.notifier_url}/v1/twilio/sms", from_=NUMBERS["alice-sms"], body=f"{code[1]}a"
    )
    assert answer.status_code == 200
    assert answer.messages[0].startswith("Acknowledged: #")
    acked = stack.wait_for_status(incident["id"], "acknowledged")
    assert acked["acknowledged_by"] == "alice"
    # The same reply again changes nothing more.
    stack.twilio.reply_sms(
        f"{stack.notifier_url}/v1/twilio/sms", from_=NUMBERS["alice-sms"], body=f"{code[1]}a"
    )
    time.sleep(SECOND_LEVEL_DELAY_S + 2)
    assert stack.dave.snapshot() == []  # escalation stopped
    timeline = stack.incident(incident["id"])["timeline"]
    assert [e["actor"] for e in timeline if e["action"] == "acknowledge"] == ["alice"]
    delivered = [
        e for e in timeline if e["action"] == "delivered" and e["contact_id"] == "alice-sms"
    ]
    assert delivered, timeline

    # The page's statuses reached the timeline, each once, in order: paged, queued (Twilio took
    # it), sent, delivered; and so do those of the acknowledgement notice (held by the number's
    # 5 s window) after it.
    def statuses(event: str) -> list[str]:
        entries = stack.incident(incident["id"])["timeline"]
        (notification,) = {
            e["notification_id"]
            for e in entries
            if e["event"] == event and e["contact_id"] == "alice-sms"
        }
        return [e["action"] for e in entries if e["notification_id"] == notification]

    assert statuses("incident.triggered") == ["paged", "queued", "sent", "delivered"]
    notice = wait_until(
        lambda: (s := statuses("incident.acknowledged"))[-1:] == ["delivered"] and s
    )
    assert notice == ["notified", "queued", "sent", "delivered"]


def test_forged_requests_get_403_and_a_key_press_acknowledges(stack: Stack) -> None:
    fire(stack, "payments", ["PaymentsDown"])
    call = answered(stack, "bob-voice")
    incident = only_incident(stack, "payments")
    assert "severity" in call.said[0]
    assert "PaymentsDown on payments" in call.said[0]

    gather = call.waiting_gather
    assert gather is not None
    twilio, forger = stack.twilio, "not-the-auth-token"
    base = stack.notifier_url
    forged = [
        twilio.reply_sms(
            f"{base}/v1/twilio/sms", from_=NUMBERS["alice-sms"], body="1a", to=FROM, **how
        )
        for how in ({"auth_token": forger}, {"signed": False})
    ] + [
        twilio.gather(
            url,
            call_sid=call.sid,
            from_=FROM,
            to=NUMBERS["bob-voice"],
            digits=digits,
            **how,
        )
        for url, digits in ((gather.action, "4"), (call.status_callback or "", ""))
        for how in ({"auth_token": forger}, {"signed": False})
    ]
    assert [answer.status_code for answer in forged] == [403] * 6
    time.sleep(1.0)
    assert stack.incident(incident["id"])["status"] == "triggered"

    pressed = twilio.press(call.sid, "4")
    assert pressed.said == ("Acknowledged. Goodbye.",)
    acked = stack.wait_for_status(incident["id"], "acknowledged")
    assert acked["acknowledged_by"] == "bob"

    # The call's delivery outcome travels on its own (status callback, notifier, results topic)
    # and may reach the timeline after the acknowledgement.
    def call_delivered() -> bool:
        timeline = stack.incident(incident["id"])["timeline"]
        return any(e["action"] == "delivered" and e["contact_id"] == "bob-voice" for e in timeline)

    assert wait_until(call_delivered, timeout=20)


def test_an_undelivered_sms_calls_the_next_contact_at_once(stack: Stack) -> None:
    stack.twilio.make_undeliverable(NUMBERS["erin-sms"], message_status="undelivered")
    started = time.monotonic()
    fire(stack, "search", ["SearchSlow"])
    sms_to(stack, "erin-sms")
    call = answered(stack, "erin-voice")
    assert time.monotonic() - started < 60  # her rule says 10 minutes
    incident = only_incident(stack, "search")
    timeline = stack.incident(incident["id"])["timeline"]
    failed = [e for e in timeline if e["action"] == "delivery_failed"]
    assert failed[0]["contact_id"] == "erin-sms"
    assert "Twilio reported undelivered (error 30003)" in failed[0]["detail"]
    (fallback,) = [e for e in timeline if e["action"] == "next_contact"]
    assert fallback["contact_id"] == "erin-voice"
    stack.twilio.press(call.sid, "4")
    assert stack.wait_for_status(incident["id"], "acknowledged")["acknowledged_by"] == "erin"


def test_a_burst_to_one_number_is_bundled_and_none_is_lost(stack: Stack) -> None:
    fire(stack, "batch", [f"BatchJob{n:02d}" for n in range(BURST)])
    incidents = wait_until(lambda: len(i := stack.incidents("batch")) == BURST and i)

    def delivered(incident_id: str) -> list[dict[str, Any]]:
        timeline = stack.incident(incident_id)["timeline"]
        return [
            e for e in timeline if e["action"] == "delivered" and e["contact_id"] == "carol-sms"
        ]

    for incident in incidents:
        assert len(wait_until(lambda i=incident: delivered(i["id"]), timeout=60)) == 1
    messages = stack.twilio.messages(to=NUMBERS["carol-sms"])
    assert 2 <= len(messages) <= 6, [m.body for m in messages]
    assert any(re.match(r"\d+ incidents triggered: ", m.body) for m in messages)
    assert {m.num_segments for m in messages} == {1}
