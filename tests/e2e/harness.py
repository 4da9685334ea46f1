"""End-to-end harness: Tocsin processes, and a webhook receiver standing in for a responder's
phone (a real HTTP server recording every page it gets)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOCSIN = ROOT / ".venv" / "bin" / "tocsin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Page:
    path: str
    body: dict[str, Any]
    received_at: float
    status: int = 200  # what the receiver answered


@dataclass
class WebhookReceiver:
    """Records every POST; answers 200, or 503 to the next `fail_next` requests."""

    pages: list[Page] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    # A sender killed mid-request (the crash tests) leaves a partial body.
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver.lock:
                    status = 503 if receiver.fail_next > 0 else 200
                    receiver.fail_next = max(0, receiver.fail_next - 1)
                    receiver.pages.append(Page(self.path, body, time.monotonic(), status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def snapshot(self) -> list[Page]:
        with self.lock:
            return list(self.pages)

    def wait_for(
        self, predicate: Callable[[Page], bool], timeout: float = 20.0, count: int = 1
    ) -> list[Page]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matching = [p for p in self.snapshot() if predicate(p)]
            if len(matching) >= count:
                return matching
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} matching page(s) within {timeout}s; got: "
            f"{[(p.path, p.body.get('event')) for p in self.snapshot()]}"
        )


@dataclass
class TocsinProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_process(
    args: list[str], name: str, port: int, env: dict[str, str], log_dir: Path
) -> TocsinProcess:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(TOCSIN), *args, "--port", str(port)],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    return TocsinProcess(name, port, process, log_path)


def wait_ready(processes: list[TocsinProcess], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(processes)
    while pending and time.monotonic() < deadline:
        for proc in list(pending):
            if proc.process.poll() is not None:
                raise AssertionError(f"{proc.name} exited early:\n{proc.log()[-4000:]}")
            try:
                if httpx.get(f"{proc.base_url}/readyz", timeout=2).status_code == 200:
                    pending.remove(proc)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    if pending:
        raise AssertionError(
            "not ready: " + ", ".join(f"{p.name}:\n{p.log()[-2000:]}" for p in pending)
        )


def start_distributed(
    config: Path, workdir: Path, kafka_bootstrap: str, mongo_url: str, admin_token: str
) -> list[TocsinProcess]:
    """The four services as separate processes (ingest, triage, escalation, notifier), on a
    topic namespace and a database of their own."""
    run_id = uuid.uuid4().hex[:10]
    env = {
        "TOCSIN_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TOCSIN_MONGO_URL": mongo_url,
        "TOCSIN_KAFKA_NAMESPACE": f"e2e-{run_id}.",
        "TOCSIN_MONGO_DATABASE": f"e2e_{run_id}",
        "TOCSIN_ADMIN_TOKEN": admin_token,
        "TOCSIN_TIMER_POLL_SECONDS": "0.1",
    }
    return [
        start_process(["serve", name, "--config", str(config)], name, free_port(), env, workdir)
        for name in ("ingest", "triage", "escalation", "notifier")
    ]


def print_logs(processes: list[TocsinProcess]) -> None:
    """Shown by pytest when a test fails."""
    for proc in processes:
        print(f"----- {proc.name} log -----\n{proc.log()[-3000:]}")


def stop_processes(processes: list[TocsinProcess]) -> None:
    for proc in processes:
        if proc.process.poll() is None:
            proc.process.terminate()
    for proc in processes:
        try:
            proc.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.process.kill()


def one_service_config(
    token: str,
    responders: dict[str, str | None],
    levels: list[tuple[str, list[str]]],
    *,
    tier: int = 2,
) -> str:
    """A Tocsin config: service `checkout`, one Alertmanager integration with `token`, users
    named in `responders` (each with a webhook contact at the given URL, or no contact), and a
    policy with `levels` as (delay, [user ids])."""
    users = []
    for user, url in responders.items():
        entry: dict[str, Any] = {"id": user, "name": user.title()}
        if url is not None:
            entry["contacts"] = [{"id": f"{user}-hook", "type": "webhook", "address": url}]
            entry["notification_rules"] = [{"contact": f"{user}-hook", "after": "0s"}]
        users.append(entry)
    config = {
        "services": [
            {"id": "checkout", "name": "Checkout API", "tier": tier, "escalation_policy": "oncall"}
        ],
        "integrations": [
            {"id": "prom", "type": "alertmanager", "token": token, "service": "checkout"}
        ],
        "users": users,
        "escalation_policies": [
            {
                "id": "oncall",
                "levels": [
                    {"delay": delay, "targets": [{"user": u} for u in targets]}
                    for delay, targets in levels
                ],
            }
        ],
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def alertmanager_payload(status: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """A webhook body as Alertmanager v4 sends it (fields from its notify/webhook package)."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="CheckoutErrors"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "tocsin",
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {"alertname": "CheckoutErrors"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    }


def python() -> str:
    return sys.executable


def iter_events(pages: list[Page], event: str) -> Iterator[Page]:
    return (p for p in pages if p.body.get("event") == event)
