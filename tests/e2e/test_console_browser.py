"""The responders' web console (`/ui`) in a real headless Chromium (Debian's `chromium`, driven
by Playwright), against `tocsin up`:

a responder logs in with a password → an alert opens an incident, which appears in the list
without a reload → they open it and click Acknowledge → the timeline names them; a viewer logs
in with a personal API key, sees no action buttons and is refused when posting the action
anyway; a form posted without the CSRF token is refused; the audit log has the console's
actions. Screenshots are saved under the test's tmp directory."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.harness import (
    TocsinProcess,
    alertmanager_payload,
    free_port,
    start_process,
    stop_processes,
    wait_ready,
)
from tocsin.runtime.access import hash_password

pytestmark = pytest.mark.e2e

ADMIN = "console-e2e-admin-token"
TOKEN = "console-e2e-token-0123456789abcdef"
PASSWORD = "correct horse battery staple"


def write_config(path: Path, public_url: str) -> None:
    config: dict[str, Any] = {
        "public_url": public_url,
        "services": [
            {"id": "checkout", "name": "Checkout API", "tier": 0, "escalation_policy": "p"}
        ],
        "integrations": [
            {"id": "prom", "type": "alertmanager", "token": TOKEN, "service": "checkout"}
        ],
        "users": [
            {
                "id": "alice",
                "name": "Alice Responder",
                "role": "responder",
                "password_hash": hash_password(PASSWORD),
                "contacts": [{"id": "alice-log", "type": "log"}],
                "notification_rules": [{"contact": "alice-log", "after": "0s"}],
            },
            {"id": "vic", "name": "Vic Viewer", "role": "viewer"},
        ],
        "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "alice"}]}]}],
    }
    path.write_text(yaml.safe_dump(config))


class Stack:
    def __init__(self, up: TocsinProcess) -> None:
        self.url = up.base_url

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("console")
    port = free_port()
    config = workdir / "tocsin.yaml"
    write_config(config, f"http://127.0.0.1:{port}")
    env = {"TOCSIN_ADMIN_TOKEN": ADMIN, "TOCSIN_TIMER_POLL_SECONDS": "0.1"}
    args = ["up", "--config", str(config), "--data-dir", str(workdir / "data")]
    up = start_process(args, "tocsin-up", port, env, workdir)
    try:
        wait_ready([up])
        yield Stack(up)
    finally:
        stop_processes([up])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "scripts/browser.sh installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


def fire(stack: Stack) -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": "CheckoutDown", "severity": "critical", "instance": "db-7"},
        "annotations": {"summary": "Postgres primary db-7 is down"},
        "startsAt": "2026-12-03T14:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "7e0c7d0f1a2b3c4d",
    }
    answer = httpx.post(
        f"{stack.url}/v1/ingest/{TOKEN}", json=alertmanager_payload("firing", [alert]), timeout=10
    )
    assert answer.status_code == 202, answer.text


def csrf_of(page: Page) -> str:
    value = page.locator("form[action='/ui/logout'] input[name=csrf]").get_attribute("value")
    assert value
    return value


def test_console_login_live_list_acknowledge_and_refusals(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    responder = browser.new_context(viewport={"width": 1000, "height": 800})
    page = responder.new_page()
    page.goto(f"{stack.url}/ui/incidents")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    # A wrong password is refused, the right one logs in.
    page.get_by_label("User id").fill("alice")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Unknown key or password")
    page.get_by_label("User id").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/ui/incidents$"))
    expect(page.get_by_text("Alice Responder")).to_be_visible()
    cookie = next(c for c in responder.cookies() if c["name"] == "tocsin_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"

    # A new incident appears without a reload (the marker survives: same document).
    page.evaluate("window.stillTheSamePage = true")
    fire(stack)
    row = page.locator("#rows tr[data-incident]")
    expect(row).to_have_count(1, timeout=20_000)
    assert page.evaluate("window.stillTheSamePage === true")
    expect(row).to_contain_text("triggered")
    page.screenshot(path=str(tmp_path / "console-incidents.png"), full_page=True)

    # Open it and acknowledge by clicking; the timeline names the person.
    row.get_by_role("link").click()
    expect(page.locator("#status")).to_have_text("triggered")
    incident_url = page.url
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#status")).to_have_text("acknowledged", timeout=15_000)
    expect(page.locator("#timeline")).to_contain_text("acknowledge by Alice Responder")
    page.screenshot(path=str(tmp_path / "console-incident.png"), full_page=True)

    # Without the CSRF token the same form is refused and nothing changes.
    incident_id = incident_url.rsplit("/", 1)[1]
    forged = page.request.post(f"{stack.url}/ui/incidents/{incident_id}/resolve", form={})
    assert forged.status == 403
    page.reload()
    expect(page.locator("#status")).to_have_text("acknowledged")

    # A viewer logs in with a personal API key: no buttons, and a post is refused.
    made = stack.api("POST", "/api/v1/keys", json={"user_id": "vic", "label": "console"})
    assert made.status_code == 201, made.text
    viewer = browser.new_context()
    vpage = viewer.new_page()
    vpage.goto(f"{stack.url}/ui/login")
    vpage.get_by_label("API key").fill(made.json()["secret"])
    vpage.get_by_role("button", name="Log in").click()
    expect(vpage.get_by_text("Vic Viewer")).to_be_visible()
    vpage.goto(incident_url)
    expect(vpage.locator("#status")).to_have_text("acknowledged")
    expect(vpage.get_by_role("button", name="Resolve")).to_have_count(0)
    expect(vpage.get_by_role("button", name="Add note")).to_have_count(0)
    refused = vpage.request.post(
        f"{stack.url}/ui/incidents/{incident_id}/resolve", form={"csrf": csrf_of(vpage)}
    )
    assert refused.status == 403
    assert "viewer may not resolve" in refused.text()
    vpage.screenshot(path=str(tmp_path / "console-viewer.png"), full_page=True)

    # On call now: the checkout policy pages Alice.
    vpage.get_by_role("link", name="On call now").click()
    expect(vpage.locator("#oncall")).to_contain_text("Checkout API")
    expect(vpage.locator("#oncall")).to_contain_text("Alice Responder")

    # The responder adds a note, then logs out: the session is gone.
    page.get_by_label("Add a note").fill("Failing over to the replica")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline")).to_contain_text("note by Alice Responder")
    page.get_by_label("Make commander", exact=True).select_option("alice")
    page.get_by_role("button", name="Make commander").click()
    expect(page.locator("#timeline")).to_contain_text("set_commander by Alice Responder")
    page.get_by_label("Status", exact=True).select_option("identified")
    page.get_by_label("Message").fill("The primary's disk is full")
    page.get_by_role("button", name="Post update").click()
    expect(page.locator("#timeline")).to_contain_text("The primary's disk is full")
    expect(page.locator("#timeline")).to_contain_text("by Alice Responder · identified")
    page.get_by_label("Snooze for").select_option("1h")
    page.get_by_role("button", name="Snooze").click()
    expect(page.locator("#timeline")).to_contain_text("snooze by Alice Responder")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.goto(incident_url)
    expect(page).to_have_url(re.compile(r"/ui/login$"))

    # The audit log has the console's actions and the viewer's refusal.
    audit = stack.api("GET", "/api/v1/audit", params={"user": "alice"}).json()
    done = {(e["via"], e["action"], e["status"]) for e in audit}
    assert ("console", "acknowledge", 200) in done
    assert ("console", "notes", 201) in done
    refusals = stack.api("GET", "/api/v1/audit", params={"user": "vic"}).json()
    assert [(e["action"], e["status"]) for e in refusals] == [("resolve", 403)]
    responder.close()
    viewer.close()


def fire_payments(stack: Stack, instance: str, fingerprint: str) -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": "PaymentsSlow", "severity": "warning", "instance": instance},
        "annotations": {"summary": f"Payments latency high on {instance}"},
        "startsAt": "2026-12-03T15:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }
    answer = httpx.post(
        f"{stack.url}/v1/ingest/{TOKEN}", json=alertmanager_payload("firing", [alert]), timeout=10
    )
    assert answer.status_code == 202, answer.text


def decision_of(stack: Stack, fingerprint: str) -> str | None:
    found = stack.api("GET", "/api/v1/alerts", params={"fingerprint": fingerprint}).json()
    return found["alerts"][0]["decision"] if found["alerts"] else None


def test_console_silences_from_an_alert_and_services_page(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    """Silence an alert's labels from its incident (matchers edited), see it listed and the
    next matching alert recorded as silenced, expire it; the services page masks the token; a
    viewer and a form without the CSRF token are refused."""
    responder = browser.new_context(viewport={"width": 1000, "height": 800})
    page = responder.new_page()
    page.goto(f"{stack.url}/ui/login")
    page.get_by_label("User id").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/ui/incidents$"))

    fire_payments(stack, "pay-1", "5a5a000000000001")
    row = page.locator("#rows tr[data-incident]", has_text="Payments latency")
    expect(row).to_have_count(1, timeout=20_000)
    row.get_by_role("link").click()
    page.get_by_role("button", name=re.compile(r"^Silence alert")).click()
    expect(page).to_have_url(re.compile(r"/ui/silences\?incident="))
    matchers = page.get_by_label(re.compile(r"^Matchers"))
    expect(matchers).to_have_value(re.compile(r'alertname="PaymentsSlow"'))
    expect(matchers).to_have_value(re.compile(r'instance="pay-1"'))
    # Widen it to every instance: drop the instance line.
    kept = [ln for ln in matchers.input_value().splitlines() if not ln.startswith("instance")]
    matchers.fill("\n".join(kept))
    page.get_by_label(re.compile("^Duration")).fill("1h")
    page.get_by_label("Comment").fill("Payments provider incident, tracked upstream")
    page.get_by_role("button", name="Create silence").click()
    expect(page.get_by_role("status")).to_contain_text("created")
    listed = page.locator("#silences tr[data-silence]")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("active")
    expect(listed).to_contain_text('alertname="PaymentsSlow"')
    silence_id = listed.get_attribute("data-silence")
    assert silence_id

    # The next alert it matches is held back, recorded as silenced by it.
    fire_payments(stack, "pay-2", "5a5a000000000002")
    deadline = time.monotonic() + 20
    while decision_of(stack, "5a5a000000000002") is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert decision_of(stack, "5a5a000000000002") == f"silenced by {silence_id}"
    page.reload()
    page.screenshot(path=str(tmp_path / "console-silences.png"), full_page=True)

    # Without the CSRF token, creating one is refused.
    forged = page.request.post(
        f"{stack.url}/ui/silences",
        form={"matchers": 'alertname="X"', "duration": "1h", "comment": "x"},
    )
    assert forged.status == 403

    # The services page: the integration's URL with its token masked.
    page.get_by_role("link", name="Services").click()
    services = page.locator("#services")
    expect(services).to_contain_text("Checkout API")
    url_field = services.locator("tr[data-integration='integration:prom'] input.url")
    expect(url_field).to_have_value(f"{stack.url}/v1/ingest/••••••cdef")
    assert TOKEN not in page.content()
    page.screenshot(path=str(tmp_path / "console-services.png"), full_page=True)

    # A viewer sees the silence, no form, and is refused when posting anyway.
    made = stack.api("POST", "/api/v1/keys", json={"user_id": "vic", "label": "silences"})
    assert made.status_code == 201, made.text
    viewer = browser.new_context()
    vpage = viewer.new_page()
    vpage.goto(f"{stack.url}/ui/login")
    vpage.get_by_label("API key").fill(made.json()["secret"])
    vpage.get_by_role("button", name="Log in").click()
    vpage.get_by_role("link", name="Silences").click()
    expect(vpage.locator("#silences tr[data-silence]")).to_have_count(1)
    expect(vpage.get_by_role("button", name="Create silence")).to_have_count(0)
    expect(vpage.get_by_role("button", name=re.compile("^Expire"))).to_have_count(0)
    refused = vpage.request.post(
        f"{stack.url}/ui/silences",
        form={
            "csrf": csrf_of(vpage),
            "matchers": 'alertname="X"',
            "duration": "1h",
            "comment": "x",
        },
    )
    assert refused.status == 403
    assert "viewer" in refused.text()

    # Expire it: it stays listed as expired, without the button.
    page.goto(f"{stack.url}/ui/silences")
    page.get_by_role("button", name=f"Expire silence {silence_id}").click()
    expect(page.locator(f"#silences tr[data-silence='{silence_id}']")).to_contain_text("expired")
    expect(page.get_by_role("button", name=f"Expire silence {silence_id}")).to_have_count(0)
    state = stack.api("GET", f"/api/v1/silences/{silence_id}").json()["status"]["state"]
    assert state == "expired"
    responder.close()
    viewer.close()
