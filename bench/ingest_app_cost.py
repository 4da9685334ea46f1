"""Ingest's own CPU cost per webhook (not a test): the service app as `tocsin serve ingest`
composes it (FastAPI app, middleware, routes, telemetry set up as the process does: no OTLP
endpoint, access log at INFO through the process's formatter, written to /dev/null), called
in-process with ready-made ASGI messages, on a bus that only serializes what it is given. No
HTTP server, no broker, no other process: the figure moves with the code, not with whatever
else the machine is doing, so it shows what a change to the hot path is worth even on a busy
machine (`bench/ingest_bench.py` measures the real thing, side by side with Alertmanager).

    .venv/bin/python bench/ingest_app_cost.py                  # 1- and 100-alert bodies
    .venv/bin/python bench/ingest_app_cost.py --requests 5000 --only 1
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingest_bench import CONFIG, TOKEN, alertmanager_body, commit, machine

from schemas import Envelope
from services.ingest import app as ingest
from services.ingest.domain.heartbeats import Heartbeat
from services.ingest.store import HeartbeatDeclaration, Integration, Outbox
from tocsin.composition.config import parse_config
from tocsin.runtime import telemetry
from tocsin.runtime.bus import Subscription
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.service import create_app


class SerializingBus:
    """Takes messages as a bus does (serialized to their JSON) and keeps nothing."""

    published = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def ready(self) -> bool:
        return True

    async def publish(self, topic: str, key: str, message: Envelope) -> None:
        await self.publish_many(topic, [(key, message)])

    async def publish_many(self, topic: str, messages: Sequence[tuple[str, Envelope]]) -> None:
        for _, message in messages:
            message.model_dump_json().encode()
        self.published += len(messages)

    async def publish_serialized(self, topic: str, messages: Sequence[tuple[str, bytes]]) -> None:
        self.published += len(messages)

    async def consume(self, subscription: Subscription[Any]) -> None:
        await asyncio.Event().wait()


class IntegrationsOnly:
    """The ingest store with integrations only (no heartbeats are declared)."""

    def __init__(self) -> None:
        self._integrations: dict[str, Integration] = {}

    async def ensure_indexes(self) -> None:
        pass

    async def upsert_integration(self, integration: Integration) -> None:
        self._integrations[integration.id] = integration

    async def integrations(self) -> list[Integration]:
        return list(self._integrations.values())

    async def declare_heartbeat(self, declaration: HeartbeatDeclaration, now: Any) -> None:
        pass

    async def heartbeats(self, ids: list[str]) -> list[tuple[Heartbeat, Outbox | None]]:
        return []

    async def record_ping(self, heartbeat_id: str, now: Any) -> bool:
        return False

    async def claim_transition(self, *args: Any) -> bool:
        return False

    async def clear_outbox(self, *args: Any) -> None:
        pass


def _scope(body: bytes) -> dict[str, Any]:
    path = f"/v1/ingest/{TOKEN}"
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"ingest"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8081),
        "state": {},
    }


async def measure(alerts: int, requests: int, concurrency: int = 1) -> float:
    """CPU seconds per request through the whole app, `concurrency` requests at a time."""
    import yaml

    config = parse_config(yaml.safe_load(CONFIG))
    bus = SerializingBus()
    service = ingest.build(bus, IntegrationsOnly(), config.ingest(), SystemClock())
    app = create_app("Tocsin ingest", [service], bus, {})
    for step in service.on_start:
        await step()
    bodies = [alertmanager_body(alerts, seed) for seed in range(50)]
    scopes = [_scope(body) for body in bodies]

    async def post(n: int) -> int:
        body = bodies[n % len(bodies)]
        messages = iter([{"type": "http.request", "body": body, "more_body": False}])
        answer: list[int] = []

        async def receive() -> dict[str, Any]:
            return next(messages, {"type": "http.disconnect"})

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer.append(int(message["status"]))

        await app(dict(scopes[n % len(scopes)]), receive, send)
        return answer[0]

    for n in range(min(200, requests)):  # warm-up, and a check that bodies are accepted
        status = await post(n)
        if status != 202:
            raise SystemExit(f"the app answered {status}")

    async def worker(first: int) -> None:
        for n in range(first, requests, concurrency):
            await post(n)

    started = time.process_time()
    await asyncio.gather(*(worker(first) for first in range(concurrency)))
    return (time.process_time() - started) / requests


def process_telemetry() -> None:
    """Logging and tracing as `tocsin serve ingest` sets them up, the log going nowhere."""
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 (until exit)
    handler.setFormatter(telemetry.TraceTextFormatter())
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    telemetry.setup("tocsin-ingest")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="1-alert requests timed")
    parser.add_argument("--only", type=int, choices=(1, 100))
    parser.add_argument(
        "--concurrency", type=int, default=1, help="requests in flight (1: one after another)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per body size; the least disturbed (lowest) is reported, then the most",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}; commit {commit()}; load average {os.getloadavg()[0]:.1f}")
    process_telemetry()
    for alerts in [args.only] if args.only else [1, 100]:
        requests = max(100, args.requests // alerts * 3) if alerts > 1 else args.requests
        runs = [uvloop.run(measure(alerts, requests, args.concurrency)) for _ in range(args.repeat)]
        seconds = min(runs)
        print(
            f"{alerts:>3} alert(s)/body: {seconds * 1e6:7.0f} us CPU per request "
            f"(highest {max(runs) * 1e6:.0f}), {seconds * 1e6 / alerts:6.1f} us per alert, "
            f"{alerts / seconds:8.0f} alerts/CPU-s ({requests} requests, {args.concurrency} at a "
            f"time, {args.repeat} runs)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
