"""The console in the distributed mode: escalation and triage, each its own app served by
uvicorn on loopback, on the real Kafka and FerretDB; the console reaches triage over HTTP at
`TOCSIN_TRIAGE_URL` with the session's own key, so triage sees (and the shared audit log
records) the person. With triage gone, the silences page says so (503), it does not fail."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from tocsin.composition.config import parse_config
from tocsin.composition.distributed import create_service_app
from tocsin.runtime.access import hash_password
from tocsin.runtime.mongo import Document
from tocsin.runtime.service import ProcessState
from tocsin.runtime.settings import Settings

BOOTSTRAP = "console-distributed-bootstrap"
PASSWORD = "correct horse battery staple"
ADMIN = {"Authorization": f"Bearer {BOOTSTRAP}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def served(app: FastAPI, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(400):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_the_console_calls_triage_over_http_as_the_person(
    kafka_bootstrap: str,
    mongo_url: str,
    namespace: str,
    database: AsyncDatabase[Document],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = parse_config(
        {"users": [{"id": "bob", "name": "Bob", "password_hash": hash_password(PASSWORD)}]}
    )
    settings = Settings(
        admin_token=BOOTSTRAP,
        kafka_bootstrap=kafka_bootstrap,
        kafka_namespace=namespace,
        mongo_url=mongo_url,
        mongo_database=database.name,
    )
    triage_port = free_port()
    monkeypatch.setenv("TOCSIN_TRIAGE_URL", f"http://127.0.0.1:{triage_port}")
    escalation = create_service_app("escalation", settings, config, ProcessState())
    triage = create_service_app("triage", settings, config, ProcessState())
    async with (
        served(escalation, free_port()) as console_url,
        httpx.AsyncClient(base_url=console_url, timeout=10) as browser,
    ):
        async with served(triage, triage_port) as triage_url:
            login = await browser.get("/ui/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert csrf is not None
            answer = await browser.post(
                "/ui/login", data={"csrf": csrf.group(1), "user": "bob", "password": PASSWORD}
            )
            assert answer.status_code == 303, answer.text
            keys_page = await browser.get("/ui/keys")
            token = re.search(r'name="csrf" value="([^"]+)"', keys_page.text)
            assert token is not None
            session_csrf = token.group(1)
            made = await browser.post(
                "/ui/silences",
                data={
                    "csrf": session_csrf,
                    "matchers": 'alertname="DiskFull"',
                    "duration": "1h",
                    "comment": "resizing the volume",
                },
            )
            assert made.status_code == 303, made.text
            silence_id = made.headers["location"].rsplit("+", 1)[1]
            listed = await browser.get("/ui/silences")
            assert f'data-silence="{silence_id}"' in listed.text
            # Triage holds it, as Bob's; the shared audit log names Bob, by his session's key.
            async with httpx.AsyncClient(base_url=triage_url, headers=ADMIN) as api:
                stored = (await api.get(f"/api/v1/silences/{silence_id}")).json()
                assert (stored["createdBy"], stored["status"]["state"]) == ("Bob", "active")
            audit = await browser.get("/api/v1/audit", headers=ADMIN, params={"user": "bob"})
            (entry,) = audit.json()
            assert (entry["route"], entry["status"]) == ("/api/v1/silences", 200)
            session_key = await browser.get(
                "/api/v1/keys", headers=ADMIN, params={"user_id": "bob"}
            )
            assert entry["key_id"] not in {k["id"] for k in session_key.json()}
        # Triage is gone: the page says so, nothing breaks.
        gone = await browser.get("/ui/silences")
        assert gone.status_code == 503
        assert "Silences cannot be shown right now" in gone.text
        assert f"127.0.0.1:{triage_port}" in gone.text
        tried = await browser.post(f"/ui/silences/{silence_id}/expire", data={"csrf": session_csrf})
        assert tried.status_code == 503
        assert tried.headers["retry-after"] == "10"
        assert "Triage cannot be reached" in tried.text
