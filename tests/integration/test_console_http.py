"""The console's login, session cookie and CSRF rules over HTTP (no browser), on `tocsin up`'s
app: the cookie's flags (Secure behind TLS), the login form's double-submit token, the
bootstrap token refused for people, logout only with the session's token."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tocsin.composition.config import parse_config
from tocsin.composition.embedded import create_embedded_app
from tocsin.runtime.access import KeyStore, hash_password
from tocsin.runtime.clock import utc_now
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.service import ProcessState
from tocsin.runtime.settings import Settings

BOOTSTRAP = "console-http-bootstrap"
PASSWORD = "correct horse battery staple"


def app_with_users(tmp_path: Path) -> httpx.AsyncClient:
    config = parse_config(
        {
            "users": [
                {"id": "bob", "name": "Bob", "password_hash": hash_password(PASSWORD)},
                {"id": "vic", "name": "Vic", "role": "viewer"},
            ]
        }
    )
    app = create_embedded_app(Settings(admin_token=BOOTSTRAP), config, tmp_path, ProcessState())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tocsin")


async def login_form(client: httpx.AsyncClient) -> str:
    page = await client.get("/ui/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_password_login_sets_a_strict_cookie_secure_behind_tls(tmp_path: Path) -> None:
    async with app_with_users(tmp_path) as client:
        csrf = await login_form(client)
        answer = await client.post(
            "/ui/login",
            data={"csrf": csrf, "user": "bob", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/incidents"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("tocsin_session=")
        )
        flags = cookie.lower()
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "secure" in flags
        assert "path=/ui" in flags


async def test_login_refuses_a_stale_form_a_wrong_password_and_the_bootstrap_token(
    tmp_path: Path,
) -> None:
    async with app_with_users(tmp_path) as client:
        await login_form(client)
        stale = await client.post(
            "/ui/login", data={"csrf": "forged", "user": "bob", "password": PASSWORD}
        )
        assert stale.status_code == 403
        csrf = await login_form(client)
        wrong = await client.post("/ui/login", data={"csrf": csrf, "user": "bob", "password": "x"})
        assert wrong.status_code == 401
        csrf = await login_form(client)
        bootstrap = await client.post("/ui/login", data={"csrf": csrf, "api_key": BOOTSTRAP})
        assert bootstrap.status_code == 401
        assert "tocsin_session" not in client.cookies


async def test_a_key_login_ends_when_the_key_is_revoked_and_logout_needs_the_token(
    tmp_path: Path,
) -> None:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    keys = KeyStore(EmbeddedDatabase(file))
    key, secret = await keys.create("vic", "", "test", utc_now())
    file.commit()
    file.close()  # the app opens the file itself (as `tocsin up` would)
    async with app_with_users(tmp_path) as client:
        csrf = await login_form(client)
        assert (
            await client.post("/ui/login", data={"csrf": csrf, "api_key": secret})
        ).status_code == 303
        listing = await client.get("/ui/incidents")
        assert listing.status_code == 200
        assert "Vic" in listing.text
        # Logout without the session's CSRF token is refused: still logged in.
        assert (await client.post("/ui/logout", data={})).status_code == 403
        assert (await client.get("/ui/incidents")).status_code == 200
        revoked = await client.delete(
            f"/api/v1/keys/{key.id}", headers={"Authorization": f"Bearer {BOOTSTRAP}"}
        )
        assert revoked.status_code == 200
        assert (await client.get("/ui/incidents")).status_code == 303


async def test_people_make_and_revoke_their_own_keys_in_the_console(tmp_path: Path) -> None:
    async with app_with_users(tmp_path) as client:
        csrf = await login_form(client)
        login = {"csrf": csrf, "user": "bob", "password": PASSWORD}
        assert (await client.post("/ui/login", data=login)).status_code == 303
        keys_page = await client.get("/ui/keys")
        session_csrf = re.search(r'name="csrf" value="([^"]+)"', keys_page.text)
        assert session_csrf is not None
        token = session_csrf.group(1)
        assert (await client.post("/ui/keys", data={"label": "x"})).status_code == 403
        made = await client.post(
            "/ui/keys", data={"csrf": token, "label": "laptop", "expires_in_days": "30"}
        )
        assert made.status_code == 201
        secret = re.search(r'<code id="new-secret">([^<]+)</code>', made.text)
        assert secret is not None
        bearer = {"Authorization": f"Bearer {secret.group(1)}"}
        mine = await client.get("/api/v1/keys", headers=bearer)
        assert mine.status_code == 200
        (key,) = mine.json()
        assert key["user_id"] == "bob"
        assert key["label"] == "laptop"
        assert (await client.get("/ui/keys")).text.count(secret.group(1)) == 0  # shown once
        revoke = await client.post(f"/ui/keys/{key['id']}/revoke", data={"csrf": token})
        assert revoke.status_code == 303
        assert (await client.get("/api/v1/keys", headers=bearer)).status_code == 401
