"""Every operator route, read from the OpenAPI documents of `tocsin up` and of each service,
called with no key (401), a revoked key (401), an expired key (401) and a viewer's key (403 on
every change, and on admin reads): a route nobody thought about cannot slip through. The policy
table names exactly the changes the API offers. Keys and the audit log through the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from tocsin.composition.config import TocsinConfig, parse_config
from tocsin.composition.distributed import create_service_app
from tocsin.composition.embedded import create_embedded_app
from tocsin.composition.wiring import SERVICE_NAMES, ServiceName
from tocsin.runtime.access import POLICY, READS, SELF_SERVICE, KeyStore, Role, required
from tocsin.runtime.clock import utc_now
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import MongoDatabase
from tocsin.runtime.service import ProcessState
from tocsin.runtime.settings import Settings
from tocsin.runtime.store import Document, DocumentDatabase

BOOTSTRAP = "walk-bootstrap-token"
CONFIG: TocsinConfig = parse_config(
    {
        "users": [
            {"id": "alice", "name": "Alice Admin", "role": "admin"},
            {"id": "bob", "name": "Bob Responder"},
            {"id": "vic", "name": "Vic Viewer", "role": "viewer"},
        ]
    }
)


@dataclass(frozen=True)
class Keys:
    admin: str
    admin_key_id: str
    viewer: str
    revoked: str
    expired: str


async def seed_keys(database: DocumentDatabase) -> Keys:
    store = KeyStore(database)
    now = utc_now()
    admin_key, admin = await store.create("alice", "walk", "test", now)
    _, viewer = await store.create("vic", "walk", "test", now)
    revoked_key, revoked = await store.create("vic", "walk", "test", now)
    await store.revoke(revoked_key.id, now)
    past = now - timedelta(days=2)
    _, expired = await store.create("vic", "walk", "test", past, past + timedelta(days=1))
    return Keys(admin, admin_key.id, viewer, revoked, expired)


def operator_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, template) of every route the OpenAPI document says needs a bearer key."""
    routes = []
    for template, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if operation.get("security"):
                routes.append((method.upper(), template))
    return sorted(routes)


def concrete(template: str, admin_key_id: str) -> str:
    # Someone else's things: the viewer is vic, alice is an admin.
    values = {"user_id": "alice", "key_id": admin_key_id}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "walk-x"), template)


async def call(client: httpx.AsyncClient, method: str, url: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    body: dict[str, Any] | None = None
    if method in ("POST", "PUT", "PATCH"):
        body = {"user_id": "alice"} if url == "/api/v1/keys" else {}
    answer = await client.request(method, url, headers=headers, json=body)
    return answer.status_code


async def walk(app: FastAPI, keys: Keys) -> list[tuple[str, str]]:
    routes = operator_routes(app)
    assert routes, "no operator route found: the walk would prove nothing"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
        for method, template in routes:
            url = concrete(template, keys.admin_key_id)
            where = f"{method} {template}"
            assert await call(client, method, url, None) == 401, where
            assert await call(client, method, url, keys.revoked) == 401, where
            assert await call(client, method, url, keys.expired) == 401, where
            viewer = await call(client, method, url, keys.viewer)
            if method in READS and required(method, template).role == Role.VIEWER:
                assert viewer not in (401, 403), where
            else:
                assert viewer == 403, where
    return routes


async def embedded_keys(tmp_path: Path) -> Keys:
    # The same SQLite file `tocsin up` opens (the lock guards only a second process).
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    try:
        keys = await seed_keys(EmbeddedDatabase(file))
        file.commit()
    finally:
        file.close()
    return keys


async def test_tocsin_up_guards_every_operator_route(tmp_path: Path) -> None:
    keys = await embedded_keys(tmp_path)
    app = create_embedded_app(Settings(admin_token=BOOTSTRAP), CONFIG, tmp_path, ProcessState())
    routes = await walk(app, keys)
    changes = {route for route in routes if route[0] not in READS}
    # Every change the API offers has its own row; every row is a route that exists.
    assert changes <= set(POLICY), changes - set(POLICY)
    assert set(POLICY) <= set(routes), set(POLICY) - set(routes)
    assert changes >= SELF_SERVICE


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_each_service_guards_its_operator_routes(
    service: ServiceName, mongo_url: str, database: AsyncDatabase[Document]
) -> None:
    keys = await seed_keys(MongoDatabase(database))
    settings = Settings(admin_token=BOOTSTRAP, mongo_url=mongo_url, mongo_database=database.name)
    app = create_service_app(service, settings, CONFIG, ProcessState())
    # Building the app opens no Kafka connection; a refused request never reaches the bus.
    await walk(app, keys)
    # The console is escalation's, in the distributed mode too.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
        login = await client.get("/ui/login")
    assert login.status_code == (200 if service == "escalation" else 404)


async def test_keys_and_the_audit_log_through_the_api(tmp_path: Path) -> None:
    app = create_embedded_app(Settings(admin_token=BOOTSTRAP), CONFIG, tmp_path, ProcessState())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:

        def bearer(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        made = await client.post(
            "/api/v1/keys",
            json={"user_id": "vic", "label": "phone", "expires_in_days": 30},
            headers=bearer(BOOTSTRAP),
        )
        assert made.status_code == 201, made.text
        vic_key = made.json()
        secret = vic_key["secret"]
        assert vic_key["expires_at"] is not None
        # The viewer sees their own key, without its secret; not the bootstrap's view.
        mine = await client.get("/api/v1/keys", headers=bearer(secret))
        assert [k["id"] for k in mine.json()] == [vic_key["id"]]
        assert secret not in mine.text
        # An unknown user gets no key; a viewer no key for someone else.
        assert (
            await client.post("/api/v1/keys", json={"user_id": "nobody"}, headers=bearer(BOOTSTRAP))
        ).status_code == 422
        refused = await client.post("/api/v1/keys", json={"user_id": "bob"}, headers=bearer(secret))
        assert refused.status_code == 403
        # The viewer revokes their own key: it stops working at once.
        revoked = await client.delete(f"/api/v1/keys/{vic_key['id']}", headers=bearer(secret))
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        assert (await client.get("/api/v1/keys", headers=bearer(secret))).status_code == 401

        audit = await client.get("/api/v1/audit", headers=bearer(BOOTSTRAP))
        assert audit.status_code == 200
        entries = audit.json()
        assert secret not in audit.text
        by_outcome = {(e["user_id"], e["method"], e["route"], e["status"]) for e in entries}
        assert ("admin", "POST", "/api/v1/keys", 201) in by_outcome
        assert ("vic", "POST", "/api/v1/keys", 403) in by_outcome
        assert ("vic", "DELETE", "/api/v1/keys/{key_id}", 200) in by_outcome
        revoke = next(e for e in entries if e["method"] == "DELETE")
        assert revoke["key_id"] == vic_key["id"]
        assert revoke["params"] == [{"name": "key_id", "value": vic_key["id"]}]
        assert revoke["user_name"] == "Vic Viewer"
        # Filters: by user, by action, by time.
        only_vic = await client.get("/api/v1/audit?user=vic", headers=bearer(BOOTSTRAP))
        assert {e["user_id"] for e in only_vic.json()} == {"vic"}
        keys_made = await client.get(
            "/api/v1/audit", params={"action": "POST /api/v1/keys"}, headers=bearer(BOOTSTRAP)
        )
        assert {e["status"] for e in keys_made.json()} == {201, 403, 422}
        later = await client.get(
            "/api/v1/audit", params={"from": "2999-01-01T00:00:00Z"}, headers=bearer(BOOTSTRAP)
        )
        assert later.json() == []
