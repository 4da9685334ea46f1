"""E-mail, Slack and Teams pages end to end, on `tocsin up` and on the four services over Kafka
and FerretDB, with a real SMTP server (aiosmtpd), the fake Slack Web API and an HTTP receiver
standing in for a Teams Workflows webhook:

1. an alert pages alice by e-mail, bob on Slack and carol on Teams at once;
2. GET on alice's acknowledge link changes nothing; a forged link gets 403; POST acknowledges
   the incident as alice, and bob's Slack message is updated (Resolve only);
3. a second incident: a forged Slack click gets 403 and changes nothing; bob's signed
   Acknowledge click acknowledges it as bob and his message is updated.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.notifier.domain.cards import ACKNOWLEDGE_ACTION, RESOLVE_ACTION
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
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.integration.notifier_harness import Mailbox, smtp_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.mongo,
    # The test SMTP server takes AUTH without TLS (TLS is tested in test_email_channel.py).
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

TOKEN = "e2e-chat-integration-token-0123456"
ADMIN = "e2e-admin-token"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/v1/email/ack/[A-Za-z0-9_.-]+)")


def write_config(
    path: Path, public_url: str, smtp_port: int, slack: FakeSlack, teams: WebhookReceiver
) -> None:
    def user(user_id: str, contact: dict[str, str]) -> dict[str, Any]:
        return {
            "id": user_id,
            "name": user_id.title(),
            "contacts": [contact],
            "notification_rules": [{"contact": contact["id"], "after": "0s"}],
        }

    config = {
        "public_url": public_url,
        "providers": {
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "tls": "none",
                "username": "tocsin",
                "password": "smtp-password-0123",
                "from_address": "tocsin@example.com",
            },
            "slack": {
                "bot_token": slack.bot_token,
                "signing_secret": slack.signing_secret,
                "base_url": slack.base_url,
            },
        },
        "services": [
            {"id": "checkout", "name": "Checkout API", "tier": 1, "escalation_policy": "oncall"}
        ],
        "integrations": [
            {"id": "prom", "type": "alertmanager", "token": TOKEN, "service": "checkout"}
        ],
        "users": [
            user("alice", {"id": "alice-mail", "type": "email", "address": "alice@example.com"}),
            user("bob", {"id": "bob-slack", "type": "slack", "address": "U0BOB"}),
            user("carol", {"id": "carol-teams", "type": "teams", "address": teams.url("/t")}),
        ],
        "escalation_policies": [
            {
                "id": "oncall",
                "levels": [
                    {"delay": "0s", "targets": [{"user": "alice"}, {"user": "bob"}]},
                    {"delay": "0s", "targets": [{"user": "carol"}]},
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Stack:
    ingest_url: str
    api_url: str
    mailbox: Mailbox
    slack: FakeSlack
    teams: WebhookReceiver
    processes: list[TocsinProcess]

    def incident(self, incident_id: str) -> dict[str, Any]:
        shown = httpx.get(
            f"{self.api_url}/api/v1/incidents/{incident_id}",
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert shown.status_code == 200, shown.text
        body: dict[str, Any] = shown.json()
        return body

    def wait_for_status(self, incident_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            incident = self.incident(incident_id)
            if incident["status"] == status or time.monotonic() > deadline:
                assert incident["status"] == status, incident
                return incident
            time.sleep(0.1)


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    mongo_url: str,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(request.param)
    mailbox = Mailbox()
    smtp = smtp_server(mailbox)
    smtp.start()
    slack = FakeSlack().start()
    teams = WebhookReceiver()
    teams.start()
    config = workdir / "tocsin.yaml"
    processes: list[TocsinProcess] = []
    env = {"TOCSIN_ADMIN_TOKEN": ADMIN, "TOCSIN_TIMER_POLL_SECONDS": "0.1"}
    if request.param == "embedded":
        port = free_port()
        write_config(config, f"http://127.0.0.1:{port}", mailbox.port, slack, teams)
        args = ["up", "--config", str(config), "--data-dir", str(workdir / "data")]
        processes.append(start_process(args, "tocsin-up", port, env, workdir))
        ingest = api = processes[0]
    else:
        # Providers call the notifier back: public_url is the notifier's address here (in
        # production, a proxy in front of the services routes /v1/email and /v1/slack to it).
        run_id = uuid.uuid4().hex[:10]
        env |= {
            "TOCSIN_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "TOCSIN_MONGO_URL": mongo_url,
            "TOCSIN_KAFKA_NAMESPACE": f"e2e-{run_id}.",
            "TOCSIN_MONGO_DATABASE": f"e2e_{run_id}",
        }
        ports = {name: free_port() for name in ("ingest", "triage", "escalation", "notifier")}
        write_config(config, f"http://127.0.0.1:{ports['notifier']}", mailbox.port, slack, teams)
        for name, port in ports.items():
            args = ["serve", name, "--config", str(config)]
            processes.append(start_process(args, name, port, env, workdir))
        ingest, api = processes[0], processes[2]
    try:
        wait_ready(processes)
        yield Stack(ingest.base_url, api.base_url, mailbox, slack, teams, processes)
    finally:
        stop_processes(processes)
        smtp.stop()
        slack.stop()
        teams.stop()
        print_logs(processes)


def fire(stack: Stack, alertname: str) -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": alertname, "severity": "critical"},
        "annotations": {"summary": f"{alertname} on checkout"},
        "startsAt": "2026-11-25T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
    }
    payload = alertmanager_payload("firing", [alert])
    payload["groupLabels"] = payload["commonLabels"] = {"alertname": alertname}
    sent = httpx.post(f"{stack.ingest_url}/v1/ingest/{TOKEN}", json=payload)
    assert sent.status_code == 202, sent.text


def wait_until(condition: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def mails(stack: Stack, subject_part: str) -> list[EmailMessage]:
    return [m for m in list(stack.mailbox.messages) if subject_part in str(m["Subject"])]


def slack_message(stack: Stack, incident_short: str) -> SlackMessage | None:
    return next((m for m in stack.slack.messages() if f"#{incident_short}" in m.text), None)


def buttons(message: SlackMessage) -> list[str]:
    return [
        str(e.get("action_id"))
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def test_email_link_and_slack_button_acknowledge_and_the_slack_message_follows(
    stack: Stack,
) -> None:
    # 1. One alert pages alice by e-mail, bob on Slack, carol on Teams.
    fire(stack, "CheckoutErrors")
    (page,) = wait_until(lambda: mails(stack, "Triggered: checkout"))
    plain = page.get_body(("plain",)).get_content()
    (link,) = set(LINK.findall(plain))
    incident_id = str(page["X-Tocsin-Incident"])
    short = re.sub(r"[^a-z0-9]", "", incident_id.lower())[:8]
    bob_message = wait_until(lambda: slack_message(stack, short))
    assert bob_message.channel == "D0BOB"
    assert buttons(bob_message)[:2] == [ACKNOWLEDGE_ACTION, RESOLVE_ACTION]
    card = wait_until(lambda: [p for p in stack.teams.snapshot() if p.path == "/t"])[0].body
    assert card["attachments"][0]["content"]["type"] == "AdaptiveCard"

    # 2. The link: GET and a forged token change nothing; POST acknowledges as alice.
    with httpx.Client() as client:
        assert client.get(link).status_code == 200
        base, token = link.rsplit("/", 1)
        assert client.post(f"{base}/{token[:-2]}xx").status_code == 403
        time.sleep(1.0)
        assert stack.incident(incident_id)["status"] == "triggered"
        assert client.post(link).status_code == 200
    acked = stack.wait_for_status(incident_id, "acknowledged")
    assert acked["acknowledged_by"] == "alice"
    # Bob's message follows the incident: updated in place, Resolve left.
    updated = wait_until(lambda: (m := slack_message(stack, short)) and m.updates and m)
    assert updated.ts == bob_message.ts
    assert ACKNOWLEDGE_ACTION not in buttons(updated)
    assert RESOLVE_ACTION in buttons(updated)
    wait_until(lambda: mails(stack, "Acknowledged: checkout"))  # alice's notice, no link

    # 3. A second incident, acknowledged from Slack.
    fire(stack, "CheckoutLatency")
    (second_page,) = wait_until(lambda: mails(stack, "CheckoutLatency"))
    second_id = str(second_page["X-Tocsin-Incident"])
    second_short = re.sub(r"[^a-z0-9]", "", second_id.lower())[:8]
    message = wait_until(lambda: slack_message(stack, second_short))
    url = f"{stack.processes[-1].base_url}/v1/slack/actions"
    forged = stack.slack.click(url, message, action_id=ACKNOWLEDGE_ACTION, signing_secret="nope")
    assert forged.status_code == 403
    time.sleep(1.0)
    assert stack.incident(second_id)["status"] == "triggered"
    clicked = stack.slack.click(url, message, action_id=ACKNOWLEDGE_ACTION, user_id="U0BOB")
    assert clicked.status_code == 200
    second = stack.wait_for_status(second_id, "acknowledged")
    assert second["acknowledged_by"] == "bob"
    updated = wait_until(lambda: (m := slack_message(stack, second_short)) and m.updates and m)
    assert updated.ts == message.ts
    assert ACKNOWLEDGE_ACTION not in buttons(updated)

    # Every page and notice was delivered; the timeline says so.
    timeline = stack.incident(second_id)["timeline"]
    delivered = {(e["contact_id"], e["event"]) for e in timeline if e["action"] == "delivered"}
    assert ("bob-slack", "incident.triggered") in delivered
    assert ("alice-mail", "incident.triggered") in delivered
