"""The public status page in a real headless Chromium (Debian's `chromium`, driven by
Playwright), against `tocsin up`, with a real SMTP server (aiosmtpd) for subscribers:

a visitor subscribes by e-mail (double opt-in: the confirm link, then the button) → an alert
opens a SEV0 incident → within seconds the page shows the component in major outage and an
investigating update → an operator's public update appears (newest first) → resolve →
operational, the incident in the history. The stakeholder and the public subscriber get the
updates by e-mail; the public one can unsubscribe by its link. Nothing of the alert (labels,
title, text) is in the HTML, the JSON or the feed. Checks read the DOM, not pixels; a
screenshot is saved under the test's tmp directory."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.harness import (
    TocsinProcess,
    alertmanager_payload,
    free_port,
    start_distributed,
    start_process,
    stop_processes,
    wait_ready,
)
from tests.integration.notifier_harness import SMTP_PASSWORD, SMTP_USER, Mailbox, smtp_server

pytestmark = pytest.mark.e2e

ADMIN = "status-e2e-admin-token"
TOKEN = "status-e2e-token-0123456789abcdef"
STAKEHOLDER = "cto@example.com"
VISITOR = "visitor@example.org"
SECRETS = (
    "db-secret-host-7",
    "CheckoutDown",
    "Postgres primary",
    "instance",
    "team-payments",
    "search-secret-host-3",  # a maintenance window's comment
)
T = TypeVar("T")


def wait_until(what: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def write_config(path: Path, public_url: str, smtp_port: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config: dict[str, Any] = {
        "public_url": public_url,
        "providers": {
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "tls": "none",
                "username": SMTP_USER,
                "password": SMTP_PASSWORD,
                "from_address": "status@example.com",
            }
        },
        "services": [
            {"id": "checkout", "name": "Checkout API", "tier": 0, "escalation_policy": "p"},
            {"id": "search", "name": "Search", "tier": 2, "escalation_policy": "p"},
        ],
        "integrations": [
            {"id": "prom", "type": "alertmanager", "token": TOKEN, "service": "checkout"}
        ],
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [{"id": "alice-log", "type": "log"}],
                "notification_rules": [{"contact": "alice-log", "after": "0s"}],
            }
        ],
        "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "alice"}]}]}],
        "maintenance_windows": [
            {  # in force now: Search is under maintenance
                "id": "search-reindex",
                "services": ["search"],
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "duration": "3h",
                "comment": "reindex on search-secret-host-3",
            },
            {  # weekly, next one in two days
                "id": "checkout-patching",
                "services": ["checkout"],
                "starts_at": (now + timedelta(days=2)).isoformat(),
                "duration": "1h",
                "rrule": "FREQ=WEEKLY",
            },
        ],
        "status_pages": [
            {
                "id": "public",
                "title": "Example Inc. status",
                "components": [
                    {
                        "id": "checkout",
                        "name": "Checkout",
                        "services": ["checkout"],
                        "group": "Shopping",
                    },
                    {"id": "search", "name": "Search", "services": ["search"], "group": "Shopping"},
                    {"id": "website", "name": "Website"},
                ],
                "subscribers": [{"type": "email", "address": STAKEHOLDER}],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config))


class Stack:
    def __init__(self, up: TocsinProcess, mailbox: Mailbox) -> None:
        self.url = up.base_url
        self.up = up
        self.mailbox = mailbox

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def mails_to(self, address: str) -> list[Any]:
        return [
            m
            for m, to in zip(self.mailbox.messages, self.mailbox.recipients, strict=True)
            if address in to
        ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("status")
    mailbox = Mailbox()
    smtp = smtp_server(mailbox)
    smtp.start()
    port = free_port()
    config = workdir / "tocsin.yaml"
    write_config(config, f"http://127.0.0.1:{port}", mailbox.port)
    env = {"TOCSIN_ADMIN_TOKEN": ADMIN, "TOCSIN_TIMER_POLL_SECONDS": "0.1"}
    args = ["up", "--config", str(config), "--data-dir", str(workdir / "data")]
    up = start_process(args, "tocsin-up", port, env, workdir)
    try:
        wait_ready([up])
        yield Stack(up, mailbox)
    finally:
        stop_processes([up])
        smtp.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "scripts/browser.sh installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


def fire(stack: Stack, status: str = "firing") -> None:
    alert = {
        "status": status,
        "labels": {
            "alertname": "CheckoutDown",
            "severity": "critical",
            "instance": "db-secret-host-7.internal",
            "team": "team-payments",
        },
        "annotations": {"summary": "Postgres primary db-secret-host-7 is down"},
        "startsAt": "2026-12-03T14:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "5e0c7d0f1a2b3c4d",
    }
    answer = httpx.post(
        f"{stack.url}/v1/ingest/{TOKEN}", json=alertmanager_payload(status, [alert]), timeout=10
    )
    assert answer.status_code == 202, answer.text


def reload_until(page: Page, selector: str, timeout: float = 20.0) -> None:
    """The page has no JavaScript: a visitor reloads to see news."""

    def present() -> bool:
        page.reload()
        return page.locator(selector).count() > 0

    wait_until(present, timeout)


def everything_public(stack: Stack) -> str:
    paths = [
        "/status/public",
        "/status/public/history.atom",
        *(
            f"/status/public/api/v2/{name}.json"
            for name in (
                "summary",
                "status",
                "components",
                "incidents",
                "incidents/unresolved",
                "scheduled-maintenances",
            )
        ),
    ]
    return "\n".join(httpx.get(f"{stack.url}{p}", timeout=10).text for p in paths)


def test_a_sev0_incident_on_the_public_page_from_alert_to_resolve(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(f"{stack.url}/status/public")

    # Accessible, readable without JavaScript: landmarks, one h1, labelled form, viewport meta.
    assert page.locator("header").count() == 1
    assert page.locator("main").count() == 1
    assert page.locator("footer").count() == 1
    assert page.locator("h1").inner_text() == "Example Inc. status"
    assert page.locator('meta[name="viewport"]').count() == 1
    assert page.locator("script").count() == 0
    expect(page.locator("#overall-status")).to_have_text("Service Under Maintenance")
    expect(page.get_by_label("E-mail address")).to_be_visible()

    # Scheduled maintenance from the maintenance windows: one in force, the next weekly one.
    expect(page.locator('#component-search[data-status="under_maintenance"]')).to_have_count(1)
    maintenance = page.locator("#scheduled-maintenance article.maintenance")
    expect(maintenance).to_have_count(2)
    expect(maintenance.first).to_have_attribute("data-status", "in_progress")
    expect(maintenance.first.locator("h3")).to_have_text("Scheduled maintenance: Search")
    expect(maintenance.nth(1)).to_have_attribute("data-status", "scheduled")

    # A visitor subscribes: nothing until they confirm through the link.
    page.get_by_label("E-mail address").fill(VISITOR)
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator("h1")).to_have_text("Check your inbox")
    confirm = wait_until(lambda: stack.mails_to(VISITOR))[0]
    link = re.search(r"(http://\S+/subscribe/confirm/\S+)", confirm.get_content())
    assert link is not None
    page.goto(link.group(1))
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("h1")).to_have_text("Subscribed")

    # An alert opens a SEV0 incident: major outage and an investigating update within seconds.
    page.goto(f"{stack.url}/status/public")
    fire(stack)
    reload_until(page, '#component-checkout[data-status="major_outage"]')
    incident = page.locator("#active-incidents article.incident")
    expect(incident).to_have_count(1)
    expect(incident.locator("h3")).to_have_text("Checkout: investigating an issue")
    expect(incident.locator("li.update").first).to_have_attribute("data-status", "investigating")
    expect(page.locator("#overall-status")).to_have_attribute("data-indicator", "critical")
    expect(page.locator('#component-search[data-status="under_maintenance"]')).to_have_count(1)

    # An operator's public update appears, newest first.
    listing = stack.api("GET", "/api/v1/incidents").json()["incidents"]
    incident_id = listing[0]["id"]
    posted = stack.api(
        "POST",
        f"/api/v1/incidents/{incident_id}/updates",
        json={
            "status": "identified",
            "message": "A faulty release of the payment form; rolling back.",
            "public": True,
        },
    )
    assert posted.status_code == 201, posted.text
    reload_until(page, '#active-incidents li.update[data-status="identified"]')
    updates = page.locator("#active-incidents li.update")
    expect(updates).to_have_count(2)
    expect(updates.first).to_contain_text("rolling back")
    expect(updates.nth(1)).to_have_attribute("data-status", "investigating")
    page.screenshot(path=str(tmp_path / "status-major-outage.png"), full_page=True)

    # Nothing of the alert reaches the public: not in the HTML, the JSON or the feed.
    public = everything_public(stack)
    for secret in SECRETS:
        assert secret not in public, secret

    # The alert resolves, and with it the incident (a manual resolve of an alert still firing
    # would open a new incident): operational again, in the history with a resolved update.
    fire(stack, "resolved")
    reload_until(page, '#component-checkout[data-status="operational"]')
    expect(page.locator("#overall-status")).to_have_text("Service Under Maintenance")
    expect(page.locator("#active-incidents")).to_have_count(0)
    past = page.locator("#history article.incident")
    expect(past).to_have_count(1)
    expect(past.locator("li.update").first).to_have_attribute("data-status", "resolved")
    page.screenshot(path=str(tmp_path / "status-resolved.png"), full_page=True)
    assert (tmp_path / "status-resolved.png").stat().st_size > 0

    # The stakeholder got every update; the visitor the public ones, with an unsubscribe link.
    def subjects(address: str, count: int) -> list[str] | None:
        mails = stack.mails_to(address)
        return [m["Subject"] for m in mails] if len(mails) >= count else None

    stakeholder = wait_until(lambda: subjects(STAKEHOLDER, 3))
    assert [s.rsplit(": ", 1)[-1] for s in stakeholder] == [
        "investigating",
        "identified",
        "resolved",
    ]
    visitor = wait_until(lambda: subjects(VISITOR, 4))  # the confirmation and three updates
    assert visitor[0].startswith("Confirm your subscription")
    last = stack.mails_to(VISITOR)[-1]
    body = last.get_content()
    for secret in SECRETS:
        assert secret not in body
    assert last["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = last["List-Unsubscribe"].strip("<>")
    assert httpx.post(unsubscribe, timeout=10).status_code == 200
    # The SEV0 incident was public at once: proactive.
    metrics = httpx.get(f"{stack.url}/metrics", timeout=10).text
    assert "tocsin_incidents_proactive_ratio 1.0" in metrics
    summary = httpx.get(f"{stack.url}/status/public/api/v2/summary.json", timeout=10).json()
    assert summary["status"]["indicator"] == "maintenance"
    assert [m["status"] for m in summary["scheduled_maintenances"]] == ["in_progress", "scheduled"]


def test_the_public_json_is_cacheable_and_answers_304(stack: Stack) -> None:
    first = httpx.get(f"{stack.url}/status/public/api/v2/summary.json", timeout=10)
    assert first.status_code == 200
    assert first.headers["cache-control"].startswith("public, max-age=")
    assert first.headers["access-control-allow-origin"] == "*"
    etag = first.headers["etag"]
    again = httpx.get(
        f"{stack.url}/status/public/api/v2/summary.json",
        headers={"If-None-Match": etag},
        timeout=10,
    )
    assert again.status_code == 304
    assert again.content == b""
    assert json.loads(first.text)["page"]["id"] == "public"
    assert httpx.get(f"{stack.url}/status/nope", timeout=10).status_code == 404


def test_distributed_the_notifier_serves_the_page_the_escalation_api_takes_updates(
    tmp_path: Path, kafka_bootstrap: str, mongo_url: str
) -> None:
    """The four services as processes on Kafka and FerretDB: the page is on the notifier, the
    updates API on escalation, and the incident reaches the page through the topics."""
    mailbox = Mailbox()
    smtp = smtp_server(mailbox)
    smtp.start()
    config = tmp_path / "tocsin.yaml"
    # Links on the page would name public_url; nothing here follows one.
    write_config(config, "http://status.example.com", mailbox.port)
    processes = start_distributed(config, tmp_path, kafka_bootstrap, mongo_url, ADMIN)
    notifier_url = processes[3].base_url
    try:
        wait_ready(processes)
        ingest, escalation = processes[0].base_url, processes[2].base_url
        summary_url = f"{notifier_url}/status/public/api/v2/summary.json"
        alert = {
            "status": "firing",
            "labels": {"alertname": "CheckoutDown", "severity": "critical"},
            "annotations": {"summary": "Postgres primary db-secret-host-7 is down"},
            "startsAt": "2026-12-03T14:00:00Z",
            "fingerprint": "6e0c7d0f1a2b3c4d",
        }
        answer = httpx.post(
            f"{ingest}/v1/ingest/{TOKEN}",
            json=alertmanager_payload("firing", [alert]),
            timeout=10,
        )
        assert answer.status_code == 202, answer.text

        def checkout_status() -> str:
            summary = httpx.get(summary_url, timeout=10).json()
            return str(next(c["status"] for c in summary["components"] if c["id"] == "checkout"))

        wait_until(lambda: checkout_status() == "major_outage", timeout=60)
        headers = {"Authorization": f"Bearer {ADMIN}"}

        def listed() -> list[dict[str, object]]:
            answer = httpx.get(f"{escalation}/api/v1/incidents", headers=headers, timeout=10)
            return list(answer.json()["incidents"])

        # The notifier's status group reads incidents.events on its own and may be ahead of
        # escalation's: the page can show the outage before the incident is listed.
        wait_until(lambda: bool(listed()), timeout=60)
        incident_id = listed()[0]["id"]
        posted = httpx.post(
            f"{escalation}/api/v1/incidents/{incident_id}/updates",
            headers=headers,
            json={
                "status": "monitoring",
                "message": "A fix is out; watching.",
                "public": True,
                "components": {"checkout": "degraded_performance"},
            },
            timeout=10,
        )
        assert posted.status_code == 201, posted.text
        wait_until(lambda: checkout_status() == "degraded_performance", timeout=60)
        summary = httpx.get(summary_url, timeout=10).json()
        (shown,) = summary["incidents"]
        assert shown["status"] == "monitoring"
        assert shown["incident_updates"][0]["body"] == "A fix is out; watching."
        assert "db-secret-host-7" not in httpx.get(f"{notifier_url}/status/public", timeout=10).text
    finally:
        stop_processes(processes)
        smtp.stop()
