"""After the incident, end to end: on `tocsin up` (embedded bus and store) and on the four
services over real Kafka and FerretDB.

A SEV1 alert pages alice; an operator acknowledges, writes notes, names a commander and
resolves → the timeline holds every step in order with its actor; a post-incident review is
written, published and exported to Markdown with every section; action items are added (bad
input is refused naming the field); the same alert firing again after the resolve opens a new
incident, and when triage links it as a recurrence its API shows the previous review's root
cause and open action items. (The overdue reminder needs a clock the test moves: see
tests/unit/test_after_incident_api.py.)
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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

TOKEN = "e2e-after-incident-token-0123456789"
ADMIN = "e2e-after-incident-admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@dataclass
class Stack:
    ingest_url: str
    api_url: str
    receiver: WebhookReceiver
    processes: list[TocsinProcess]

    def api(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.api_url}{path}", json=body, headers=AUTH, timeout=15)


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    mongo_url: str,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(request.param)
    receiver = WebhookReceiver()
    receiver.start()
    config = workdir / "tocsin.yaml"
    config.write_text(
        one_service_config(
            TOKEN,
            {user: receiver.url(f"/{user}") for user in ("alice", "bob")},
            [("0s", ["alice"]), ("10m", ["bob"])],
        )
    )
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
        yield Stack(ingest.base_url, api.base_url, receiver, processes)
    finally:
        stop_processes(processes)
        receiver.stop()
        print_logs(processes)


def _alerts(status: str) -> list[dict[str, object]]:
    ends = "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T10:05:00Z"
    return [
        {
            "status": status,
            "labels": {"alertname": "CheckoutErrors", "severity": "critical", "pod": "c-1"},
            "annotations": {"summary": "Checkout 5xx above 5%"},
            "startsAt": "2026-11-25T10:00:00Z",
            "endsAt": ends,
            "generatorURL": "http://prometheus.example/graph",
            "fingerprint": "af7e0000e2e00001",
        }
    ]


def _until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_timeline_review_action_items_and_bad_input(stack: Stack) -> None:
    fired = httpx.post(
        f"{stack.ingest_url}/v1/ingest/{TOKEN}",
        json=alertmanager_payload("firing", _alerts("firing")),
    )
    assert fired.status_code == 202, fired.text
    (page,) = stack.receiver.wait_for(lambda p: p.path == "/alice", timeout=30)
    incident_id = page.body["incident"]["id"]
    assert page.body["incident"]["severity"] == "SEV1"

    # Acknowledge, notes, a commander, resolve: each through the operator API.
    assert stack.api("POST", f"/api/v1/incidents/{incident_id}/acknowledge").status_code == 200
    note = stack.api("POST", f"/api/v1/incidents/{incident_id}/notes", {"text": "rolled back"})
    assert note.status_code == 201, note.text
    commander = stack.api("POST", f"/api/v1/incidents/{incident_id}/commander", {"user": "bob"})
    assert commander.status_code == 200, commander.text
    stack.api("POST", f"/api/v1/incidents/{incident_id}/notes", {"text": "error rate normal"})
    assert stack.api("POST", f"/api/v1/incidents/{incident_id}/resolve").status_code == 200

    def timeline() -> list[dict[str, Any]]:
        body = stack.api("GET", f"/api/v1/incidents/{incident_id}/timeline").json()
        entries: list[dict[str, Any]] = body["timeline"]
        delivered = sum(1 for e in entries if e["action"] == "delivered")
        return entries if delivered >= 3 else []  # the page and the two notices

    entries = _until(timeline, timeout=60)
    assert entries, stack.api("GET", f"/api/v1/incidents/{incident_id}/timeline").text
    # People's steps in the order they took them; Tocsin's notices after their cause (a
    # notice is written when the outbox is carried out, which may be after the next request).
    steps = [
        (e["action"], e["actor"], e["user_id"])
        for e in entries
        if e["action"] not in ("delivered", "queued", "sent", "on_call", "notified")
    ]
    assert steps == [
        ("triggered", "triage", None),
        ("paged", None, "alice"),
        ("acknowledge", "api:admin", None),
        ("note", "api:admin", None),
        ("set_commander", "api:admin", None),
        ("note", "api:admin", None),
        ("resolve", "api:admin", None),
    ]
    actions = [e["action"] for e in entries]
    notices = [(n, e["event"]) for n, e in enumerate(entries) if e["action"] == "notified"]
    assert [event for _, event in notices] == ["incident.acknowledged", "incident.resolved"]
    assert notices[0][0] > actions.index("acknowledge")
    assert notices[1][0] > actions.index("resolve")
    times = [e["at"] for e in entries]
    assert times == sorted(times)

    # The review: written, moved through its statuses, exported with every section.
    review_path = f"/api/v1/incidents/{incident_id}/review"
    created = stack.api("POST", review_path, {"symptoms": "checkout answers 5xx"})
    assert created.status_code == 201, created.text
    assert [item["text"].split(":")[0] for item in created.json()["timeline"]][:2] == [
        "triggered",
        "paged alice via alice-hook",
    ]
    edit = {
        "version": 1,
        "status": "in_review",
        "root_causes": ["the DB pool was too small"],
        "five_whys": [{"question": "Why 5xx?", "answer": "no DB connection"}],
        "symptom_fix": "rolled back",
        "root_cause_fix": "pool size from config",
        "prevention": "load test",
        "lessons": "alert on pool saturation",
    }
    assert stack.api("PATCH", review_path, edit).status_code == 200
    published = stack.api("PATCH", review_path, {"version": 2, "status": "published"})
    assert published.status_code == 200, published.text
    stale = stack.api("PATCH", review_path, {"version": 2, "lessons": "x"})
    assert stale.status_code == 409
    markdown = stack.api("GET", f"{review_path}.md")
    assert markdown.status_code == 200
    for section in (
        "Original report",
        "Symptoms",
        "Impact",
        "Timeline",
        "Root causes",
        "Five whys",
        "Symptom fix",
        "Root cause fix",
        "Prevention",
        "Lessons learned",
    ):
        assert f"## {section}" in markdown.text
    assert "the DB pool was too small" in markdown.text

    # Action items, and bad input naming the field.
    due = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    items_path = f"/api/v1/incidents/{incident_id}/action-items"
    for title in ("Pool size from config", "Alert on pool saturation"):
        added = stack.api("POST", items_path, {"title": title, "owner": "bob", "due": due})
        assert added.status_code == 201, added.text
    past = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    bad = [
        ("/api/v1/incidents/no-such-incident/action-items", {"owner": "bob", "due": due}, 404),
        (items_path, {"owner": "mallory", "due": due}, 422),
        (items_path, {"owner": "bob", "due": past}, 422),
    ]
    for path, body, status in bad:
        refused = stack.api("POST", path, {"title": "t", **body})
        assert refused.status_code == status, refused.text
    assert "owner" in stack.api("POST", items_path, {"title": "t", "owner": "x", "due": due}).text
    assert "due" in stack.api("POST", items_path, {"title": "t", "owner": "bob", "due": past}).text
    listed = stack.api("GET", "/api/v1/action-items?owner=bob&status=open").json()
    assert len([i for i in listed["action_items"] if i["incident_id"] == incident_id]) == 2
    assert stack.api("POST", "/api/v1/incidents/no-such-incident/review").status_code == 404

    # The same alert again after the resolve: a new incident; when triage links it as a
    # recurrence, its API shows the previous review's root cause and the open action items.
    resolved = httpx.post(
        f"{stack.ingest_url}/v1/ingest/{TOKEN}",
        json=alertmanager_payload("resolved", _alerts("resolved")),
    )
    assert resolved.status_code == 202
    time.sleep(1)
    again = httpx.post(
        f"{stack.ingest_url}/v1/ingest/{TOKEN}",
        json=alertmanager_payload("firing", _alerts("firing")),
    )
    assert again.status_code == 202

    def new_incident() -> str | None:
        listed = stack.api("GET", "/api/v1/incidents").json()["incidents"]
        others = [i["id"] for i in listed if i["id"] != incident_id]
        return others[0] if others else None

    second = _until(new_incident)
    assert second is not None
    shown = _until(lambda: stack.api("GET", f"/api/v1/incidents/{second}").json()["recurrence"])
    assert shown is not None, "triage linked no recurrence"
    assert shown["previous_incident"] == incident_id
    assert shown["root_causes"] == ["the DB pool was too small"]
    assert shown["summary"].endswith("2 action items still open")

    # The console's incident page shows it too (logged in with alice's personal key).
    made = stack.api("POST", "/api/v1/keys", {"user_id": "alice", "label": "console"})
    assert made.status_code in (200, 201), made.text
    with httpx.Client(base_url=stack.api_url, timeout=15) as browser:
        form = browser.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        login = browser.post(
            "/ui/login", data={"csrf": token.group(1), "api_key": made.json()["secret"]}
        )
        assert login.status_code == 303, login.text
        console = browser.get(f"/ui/incidents/{second}")
    assert console.status_code == 200
    assert "Recurred" in console.text
    assert "the DB pool was too small" in console.text
    assert "2 action items still open" in console.text
