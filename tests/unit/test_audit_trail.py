"""The audit trail records each change with its final status, refusals and crashes included,
and never a read; through the real guard (tocsin.runtime.http.access_dependency)."""

# No `from __future__ import annotations`: FastAPI must see the local `Caller` alias.

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException

from tocsin.runtime.access import Access, KeyStore, Person, Role
from tocsin.runtime.audit import AuditLog
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.http import access_dependency, install_ops

T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return T0


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedDatabase]:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    yield EmbeddedDatabase(file)
    file.close()


def app_over(database: EmbeddedDatabase) -> tuple[FastAPI, AuditLog]:
    people = {"bob": Person("bob", "Bob", Role.RESPONDER), "vic": Person("vic", "Vic", Role.VIEWER)}
    access = Access(KeyStore(database), lambda: people, FixedClock(), "boot")
    audit = AuditLog(database, FixedClock())
    guard = access_dependency(access, audit)
    app = FastAPI()
    install_ops(app, {})
    Caller = Annotated[str, Depends(guard)]

    @app.post("/api/v1/silences")
    async def create(caller: Caller) -> dict[str, str]:
        return {"by": caller}

    @app.delete("/api/v1/silences/{silence_id}")
    async def expire(silence_id: str, caller: Caller) -> None:
        if silence_id == "boom":
            raise RuntimeError("a bug")
        raise HTTPException(404, "no such silence")

    @app.get("/api/v1/silences")
    async def listing(caller: Caller) -> list[str]:
        return []

    return app, audit


async def test_changes_are_recorded_with_their_status_and_reads_are_not(
    database: EmbeddedDatabase,
) -> None:
    app, audit = app_over(database)
    keys = KeyStore(database)
    bob_key, bob = await keys.create("bob", "", "test", T0)
    _, vic = await keys.create("vic", "", "test", T0)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (
            await client.post("/api/v1/silences", headers={"Authorization": f"Bearer {bob}"})
        ).status_code == 200
        assert (
            await client.post("/api/v1/silences", headers={"Authorization": f"Bearer {vic}"})
        ).status_code == 403
        assert (
            await client.delete("/api/v1/silences/s1", headers={"Authorization": f"Bearer {bob}"})
        ).status_code == 404
        assert (
            await client.delete("/api/v1/silences/boom", headers={"Authorization": f"Bearer {bob}"})
        ).status_code == 500
        assert (
            await client.get("/api/v1/silences", headers={"Authorization": f"Bearer {bob}"})
        ).status_code == 200
        # No key: nobody to record.
        assert (await client.post("/api/v1/silences")).status_code == 401
    entries = await audit.search(limit=10)
    seen = sorted((e["user_id"], e["method"], e["status"], e["outcome"]) for e in entries)
    assert seen == [
        ("bob", "DELETE", 404, "refused"),
        ("bob", "DELETE", 500, "failed"),
        ("bob", "POST", 200, "done"),
        ("vic", "POST", 403, "refused"),
    ]
    boom = next(e for e in entries if e["status"] == 500)
    assert boom["route"] == "/api/v1/silences/{silence_id}"
    assert boom["params"] == [{"name": "silence_id", "value": "boom"}]
    assert boom["key_id"] == bob_key.id
    assert bob not in str(entries)
