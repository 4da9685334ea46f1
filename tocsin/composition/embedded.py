"""Embedded wiring (`tocsin up`): all four services in one process on one port, on the
embedded bus and document store (SQLite files under the data directory).

The services and their handlers are exactly those of the distributed mode; only the adapters
behind the bus and store ports differ. Bus and store share one SQLite file (`tocsin.sqlite`,
see sqlite.py for when it commits). A lock file keeps a second process off the same data.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.escalation.console.triage_client import TriageLink
from tocsin.composition.config import TocsinConfig
from tocsin.composition.reload import ConfigReloader, reload_service
from tocsin.composition.wiring import SERVICE_NAMES, access_control, build_service
from tocsin.runtime import telemetry
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.live_config import LiveConfig
from tocsin.runtime.parts import Parts
from tocsin.runtime.service import ProcessState, Service, create_app
from tocsin.runtime.settings import Settings

log = logging.getLogger(__name__)


class CommitBeforeAnswering:
    """What a request changed is on disk before its answer starts (see sqlite.py)."""

    def __init__(self, app: ASGIApp, commit: Callable[[], None]) -> None:
        self._app = app
        self._commit = commit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def commit_then_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._commit()
            await send(message)

        await self._app(scope, receive, commit_then_send)


class ThisApp:
    """The process's own app, set once it exists: the console calls triage's API through it
    in-process (an ASGI transport), as it would call triage's URL in the distributed mode."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            raise RuntimeError("the app is not built yet")
        await self.app(scope, receive, send)


class DataDirInUse(Exception):
    pass


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on the data directory for the life of the process.

    The file is opened without truncating and rewritten only once the lock is held, so a
    refused second start leaves the running process's PID in it (and can name it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "tocsin.lock"
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+", encoding="ascii")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = handle.read(32).strip()
        handle.close()
        by = f"tocsin process {holder}" if holder.isdigit() else "another tocsin process"
        raise DataDirInUse(f"{data_dir} is in use by {by} (lock file {path})") from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def create_embedded_app(
    settings: Settings,
    config: TocsinConfig,
    data_dir: Path,
    state: ProcessState,
    config_path: Path | None = None,
) -> FastAPI:
    """`config_path`: the file `config` came from, reloaded on SIGHUP or through the API."""
    telemetry.setup("tocsin", console_spans=settings.otel_console)
    lock = lock_data_dir(data_dir)
    file = SqliteFile(data_dir / "tocsin.sqlite", synchronous=settings.embedded_synchronous)
    bus = EmbeddedBus(
        file,
        handler_attempts=settings.handler_attempts,
        handler_backoff_seconds=settings.handler_backoff_seconds,
    )
    store = EmbeddedDatabase(file)
    database = store  # satisfies the store port (tocsin.runtime.store), as MongoDatabase does
    http_client = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    instance_id = settings.instance_id or f"embedded-{os.getpid()}"
    live = LiveConfig(config)
    clock = SystemClock()
    access, audit, require_api_key = access_control(settings, database, live, clock)
    parts = Parts(
        bus, database, settings, clock, http_client, instance_id, require_api_key, access, audit
    )
    itself = ThisApp()
    # No timeout of its own beyond the usual: the call never leaves the process.
    loopback = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=itself, raise_app_exceptions=False),
        timeout=httpx.Timeout(5.0),
    )
    triage = TriageLink(loopback, "http://tocsin.internal")
    services = [build_service(name, parts, live, triage) for name in SERVICE_NAMES]
    services.append(
        reload_service(ConfigReloader(config_path, live, SERVICE_NAMES), require_api_key)
    )

    async def store_ready() -> bool:
        try:
            await store.command("ping")
        except Exception:  # any failure of the file means not ready
            return False
        return True

    async def close() -> None:
        await http_client.aclose()
        await loopback.aclose()
        file.close()
        lock.close()

    # Writes of the timer and heartbeat loops are committed by this loop (see sqlite.py).
    services.append(Service(name="embedded", loops=[file.run_committer]))
    app = create_app(
        "Tocsin",
        services,
        bus,
        {"bus": bus.ready, "store": store_ready},
        on_close=[close],
        state=state,
    )

    app.add_middleware(CommitBeforeAnswering, commit=file.commit)
    itself.app = app
    return app
