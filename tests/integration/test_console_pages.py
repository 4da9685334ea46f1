"""The console's silences and services pages and its login limit over HTTP (no browser), on
`tocsin up`'s app, where the console calls triage's API in-process as the person logged in:
triage records the person in the audit log and refuses a viewer; a session's own key is not
listed among the person's keys and is revoked at logout; tokens are masked except for an
admin's audited reveal; the sixth failed login in a row is refused with 429 and Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

import httpx
from fastapi import FastAPI

from tocsin.composition.config import parse_config
from tocsin.composition.embedded import create_embedded_app
from tocsin.runtime.access import hash_password
from tocsin.runtime.service import ProcessState
from tocsin.runtime.settings import Settings

BOOTSTRAP = "console-pages-bootstrap"
PASSWORD = "correct horse battery staple"
TOKEN = "prom-token-0123456789abcdef3f9a"
PD_TOKEN = "pd-routing-key-0123456789ab77c1"
ADMIN = {"Authorization": f"Bearer {BOOTSTRAP}"}


def app(tmp_path: Path, public_url: str | None = None) -> httpx.AsyncClient:
    return client_of(tocsin_app(tmp_path, public_url))


def client_of(asgi: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://tocsin")


def tocsin_app(tmp_path: Path, public_url: str | None = None) -> FastAPI:
    hashed = hash_password(PASSWORD)
    config = parse_config(
        {
            "public_url": public_url,
            "services": [
                {"id": "checkout", "name": "Checkout API", "tier": 0, "escalation_policy": "p"}
            ],
            "integrations": [
                {"id": "prom", "type": "alertmanager", "token": TOKEN, "service": "checkout"},
                {"id": "legacy", "type": "pagerduty", "token": PD_TOKEN, "service": "checkout"},
            ],
            "users": [
                {"id": "ann", "name": "Ann Admin", "role": "admin", "password_hash": hashed},
                {"id": "bob", "name": "Bob", "password_hash": hashed},
                {"id": "vic", "name": "Vic", "role": "viewer", "password_hash": hashed},
            ],
            "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "bob"}]}]}],
        }
    )
    return create_embedded_app(Settings(admin_token=BOOTSTRAP), config, tmp_path, ProcessState())


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def log_in(client: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    csrf = csrf_in((await client.get("/ui/login")).text)
    return await client.post("/ui/login", data={"csrf": csrf, "user": user, "password": password})


async def session_csrf(client: httpx.AsyncClient) -> str:
    return csrf_in((await client.get("/ui/keys")).text)


async def test_a_responder_creates_and_expires_a_silence_through_triage(tmp_path: Path) -> None:
    async with app(tmp_path) as client:
        assert (await log_in(client, "bob")).status_code == 303
        csrf = await session_csrf(client)
        form = {
            "csrf": csrf,
            "matchers": 'alertname="CheckoutDown"\ninstance=~"db-.*"',
            "duration": "2h",
            "comment": "failing over",
        }
        made = await client.post("/ui/silences", data=form)
        assert made.status_code == 303, made.text
        silence_id = made.headers["location"].rsplit("+", 1)[1]
        page = await client.get("/ui/silences")
        assert page.status_code == 200
        row = re.search(rf'<tr data-silence="{silence_id}">(.*?)</tr>', page.text, re.S)
        assert row is not None
        assert "active" in row.group(1)
        assert "instance=~&#34;db-.*&#34;" in row.group(1)
        # Triage has it as Bob's, and recorded Bob (with the session's key) in the audit log.
        (stored,) = (await client.get("/api/v1/silences", headers=ADMIN)).json()
        assert stored["createdBy"] == "Bob"
        assert stored["matchers"][1] == {
            "name": "instance",
            "value": "db-.*",
            "isRegex": True,
            "isEqual": True,
        }
        audit = (await client.get("/api/v1/audit", headers=ADMIN, params={"user": "bob"})).json()
        assert [(e["route"], e["status"], e["via"]) for e in audit] == [
            ("/api/v1/silences", 200, "console")
        ]
        session_key = audit[0]["key_id"]
        # The session's key is not among Bob's keys.
        mine = await client.get("/api/v1/keys", headers=ADMIN, params={"user_id": "bob"})
        assert session_key not in {k["id"] for k in mine.json()}

        expired = await client.post(f"/ui/silences/{silence_id}/expire", data={"csrf": csrf})
        assert expired.status_code == 303
        after = (await client.get(f"/api/v1/silences/{silence_id}", headers=ADMIN)).json()
        assert after["status"]["state"] == "expired"
        listed = (await client.get("/ui/silences")).text
        assert f'data-silence="{silence_id}"' in listed  # recently expired: still shown
        assert f"/ui/silences/{silence_id}/expire" not in listed
        # Revoking the session's own key (an admin, by its id) ends the console session too.
        revoked = await client.delete(f"/api/v1/keys/{session_key}", headers=ADMIN)
        assert revoked.status_code == 200
        gone = await client.get("/ui/incidents")
        assert (gone.status_code, gone.headers["location"]) == (303, "/ui/login")


async def test_the_silence_form_refuses_bad_input_and_keeps_what_was_typed(
    tmp_path: Path,
) -> None:
    async with app(tmp_path) as client:
        await log_in(client, "bob")
        csrf = await session_csrf(client)
        no_csrf = await client.post("/ui/silences", data={"matchers": 'a="b"', "comment": "x"})
        assert no_csrf.status_code == 403
        bad = await client.post(
            "/ui/silences",
            data={"csrf": csrf, "matchers": "just words", "duration": "2h", "comment": "why"},
        )
        assert bad.status_code == 422
        assert "matcher line 1" in bad.text
        assert "just words" in bad.text
        # Triage's own check: a regex that does not compile.
        refused = await client.post(
            "/ui/silences",
            data={"csrf": csrf, "matchers": 'job=~"("', "duration": "2h", "comment": "why"},
        )
        assert refused.status_code == 400
        assert "triage refused" in refused.text
        assert (await client.get("/api/v1/silences", headers=ADMIN)).json() == []


async def test_a_viewer_sees_silences_and_triage_refuses_their_change(tmp_path: Path) -> None:
    async with app(tmp_path) as client:
        await log_in(client, "vic")
        csrf = await session_csrf(client)
        page = await client.get("/ui/silences")
        assert page.status_code == 200
        assert 'action="/ui/silences"' not in page.text
        attempt = await client.post(
            "/ui/silences",
            data={"csrf": csrf, "matchers": 'a="b"', "duration": "1h", "comment": "x"},
        )
        assert attempt.status_code == 403
        assert "viewer" in attempt.text
        audit = (await client.get("/api/v1/audit", headers=ADMIN, params={"user": "vic"})).json()
        assert [(e["route"], e["status"]) for e in audit] == [("/api/v1/silences", 403)]


async def test_services_page_masks_tokens_and_only_an_admin_reveals_one(tmp_path: Path) -> None:
    async with app(tmp_path, "https://tocsin.example.com") as client:
        await log_in(client, "vic")
        csrf = await session_csrf(client)
        page = await client.get("/ui/services")
        assert page.status_code == 200
        assert "Checkout API" in page.text
        assert "https://tocsin.example.com/v1/ingest/••••••3f9a" in page.text
        assert "https://tocsin.example.com/v2/enqueue" in page.text
        assert "••••••77c1" in page.text
        assert TOKEN not in page.text
        assert PD_TOKEN not in page.text
        assert "Reveal" not in page.text
        refused = await client.post(
            "/ui/services/reveal", data={"csrf": csrf, "integration": "integration:prom"}
        )
        assert refused.status_code == 403
        assert TOKEN not in refused.text
        await client.post("/ui/logout", data={"csrf": csrf})

        await log_in(client, "ann")
        csrf = await session_csrf(client)
        assert "Reveal" in (await client.get("/ui/services")).text
        no_csrf = await client.post("/ui/services/reveal", data={"integration": "integration:prom"})
        assert no_csrf.status_code == 403
        shown = await client.post(
            "/ui/services/reveal", data={"csrf": csrf, "integration": "integration:prom"}
        )
        assert shown.status_code == 200
        assert f"https://tocsin.example.com/v1/ingest/{TOKEN}" in shown.text
        assert PD_TOKEN not in shown.text  # only the one asked for
        assert shown.headers["cache-control"] == "no-store"
        audit = (await client.get("/api/v1/audit", headers=ADMIN)).json()
        reveals = [
            (e["user_id"], e["status"], e["params"]) for e in audit if e["action"] == "reveal"
        ]
        assert sorted(reveals) == [
            ("ann", 200, [{"name": "integration", "value": "integration:prom"}]),
            ("vic", 403, [{"name": "integration", "value": "integration:prom"}]),
        ]


async def test_services_page_uses_the_request_address_without_a_public_url(
    tmp_path: Path,
) -> None:
    async with app(tmp_path) as client:
        await log_in(client, "bob")
        page = await client.get("/ui/services")
        assert "http://tocsin/v1/ingest/••••••3f9a" in page.text


async def test_the_sixth_failed_login_is_refused_even_with_the_right_password(
    tmp_path: Path,
) -> None:
    async with app(tmp_path) as client:
        for _ in range(5):
            assert (await log_in(client, "bob", "wrong")).status_code == 401
        blocked = await log_in(client, "bob")
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 300
        assert "Too many failed logins" in blocked.text
        assert "tocsin_session" not in client.cookies


async def test_a_session_key_opens_no_console_session_and_logout_revokes_it(
    tmp_path: Path,
) -> None:
    asgi = tocsin_app(tmp_path)
    async with client_of(asgi) as client:
        await log_in(client, "bob")
        secret = client.cookies["tocsin_session"]
        bearer = {"Authorization": f"Bearer {secret}"}
        # The cookie's value is the session's key: triage's API takes it as Bob, for silences
        # only: it may not make a key that would outlive the session, nor act on incidents.
        assert (await client.get("/api/v1/silences", headers=bearer)).status_code == 200
        made = await client.post("/api/v1/keys", headers=bearer, json={"name": "forever"})
        assert made.status_code == 403
        assert "console session" in made.json()["detail"]
        assert (await client.get("/api/v1/incidents", headers=bearer)).status_code == 403
        csrf = await session_csrf(client)
        async with client_of(asgi) as other:
            login_csrf = csrf_in((await other.get("/ui/login")).text)
            again = await other.post("/ui/login", data={"csrf": login_csrf, "api_key": secret})
            assert again.status_code == 401
        await client.post("/ui/logout", data={"csrf": csrf})
        assert (await client.get("/api/v1/silences", headers=bearer)).status_code == 401


async def test_revoking_the_login_key_revokes_the_sessions_own_key(tmp_path: Path) -> None:
    async with app(tmp_path) as client:
        made = await client.post(
            "/api/v1/keys", json={"user_id": "bob", "label": "laptop"}, headers=ADMIN
        )
        key = made.json()
        login_csrf = csrf_in((await client.get("/ui/login")).text)
        login = await client.post("/ui/login", data={"csrf": login_csrf, "api_key": key["secret"]})
        assert login.status_code == 303
        bearer = {"Authorization": f"Bearer {client.cookies['tocsin_session']}"}
        assert (await client.get("/api/v1/silences", headers=bearer)).status_code == 200
        revoked = await client.delete(f"/api/v1/keys/{key['id']}", headers=ADMIN)
        assert revoked.status_code == 200
        # Without the console being visited again, the cookie's value is no API key any more.
        assert (await client.get("/api/v1/silences", headers=bearer)).status_code == 401
        assert (await client.get("/ui/silences")).status_code == 303


async def test_concurrent_failed_logins_cannot_slip_past_the_limit(tmp_path: Path) -> None:
    asgi = tocsin_app(tmp_path)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(client_of(asgi)) for _ in range(12)]
        forms = [csrf_in((await c.get("/ui/login")).text) for c in clients]
        answers = await asyncio.gather(
            *(
                c.post("/ui/login", data={"csrf": csrf, "user": "bob", "password": "wrong"})
                for c, csrf in zip(clients, forms, strict=True)
            )
        )
        codes = sorted(a.status_code for a in answers)
        # Each try is counted before its (slow, threaded) check: only five get checked.
        assert codes == [401] * 5 + [429] * 7
