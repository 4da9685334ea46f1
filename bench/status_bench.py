"""Status page under load: how many requests/s the public page takes from one `tocsin up`, and
what that does to the private operator API's latency meanwhile.

Starts `tocsin up` with one status page and a SEV0 incident on it, then for each phase runs for
`--seconds`: `--clients` closed-loop clients GET `/status/public` (or its summary.json), while a
probe GETs `/api/v1/incidents` 20 times a second and records its latency. The baseline phase has
no page load. A measurement, not a test:

    .venv/bin/python bench/status_bench.py [--seconds 10] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
TOCSIN = ROOT / ".venv" / "bin" / "tocsin"
ADMIN = "bench-admin-token-0123456789"
TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 (a local benchmark token)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config(port: int) -> dict[str, object]:
    return {
        "public_url": f"http://127.0.0.1:{port}",
        "services": [{"id": "checkout", "name": "Checkout", "tier": 0, "escalation_policy": "p"}],
        "integrations": [
            {"id": "prom", "type": "alertmanager", "token": TOKEN, "service": "checkout"}
        ],
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [{"id": "log", "type": "log"}],
                "notification_rules": [{"contact": "log", "after": "0s"}],
            }
        ],
        "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "alice"}]}]}],
        "status_pages": [
            {
                "id": "public",
                "title": "Example status",
                "components": [
                    {"id": f"c{n}", "name": f"Component {n}", "services": ["checkout"]}
                    for n in range(10)
                ],
            }
        ],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def probe(base: str, stop: asyncio.Event, latencies: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            answer = await client.get(
                "/api/v1/incidents", headers={"Authorization": f"Bearer {ADMIN}"}
            )
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
            await asyncio.sleep(0.05)


async def reader(base: str, path: str, stop: asyncio.Event, counts: list[int]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while not stop.is_set():
            answer = await client.get(path)
            assert answer.status_code == 200
            counts[0] += 1


async def phase(
    base: str, path: str | None, clients: int, seconds: float
) -> tuple[float, list[float]]:
    stop = asyncio.Event()
    latencies: list[float] = []
    counts = [0]
    tasks = [asyncio.create_task(probe(base, stop, latencies))]
    if path is not None:
        tasks += [asyncio.create_task(reader(base, path, stop, counts)) for _ in range(clients)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return counts[0] / seconds, latencies


async def run(base: str, clients: int, seconds: float) -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": "Down", "severity": "critical"},
        "annotations": {},
        "startsAt": "2026-12-03T14:00:00Z",
    }
    body = {
        "version": "4",
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "receiver": "r",
        "groupKey": "g",
        "externalURL": "http://am",
    }
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        assert (await client.post(f"/v1/ingest/{TOKEN}", json=body)).status_code == 202
        await asyncio.sleep(2)
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; {clients} clients, {seconds:.0f} s per phase"
    )
    print("| load | page requests/s | private API p50 | p99 |")
    print("|---|---|---|---|")
    for label, path in (
        ("none (baseline)", None),
        ("GET /status/public", "/status/public"),
        ("GET /status/public/api/v2/summary.json", "/status/public/api/v2/summary.json"),
    ):
        rate, latencies = await phase(base, path, clients, seconds)
        print(
            f"| {label} | {rate:,.0f} | {statistics.median(latencies) * 1000:.1f} ms | "
            f"{percentile(latencies, 0.99) * 1000:.1f} ms |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "tocsin.yaml"
        path.write_text(yaml.safe_dump(config(port)))
        env = {**os.environ, "TOCSIN_ADMIN_TOKEN": ADMIN}
        process = subprocess.Popen(  # noqa: S603 (our own binary)
            [
                str(TOCSIN),
                "up",
                "--config",
                str(path),
                "--data-dir",
                f"{workdir}/data",
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    sys.exit("tocsin up did not start")
                time.sleep(0.2)
            asyncio.run(run(base, args.clients, args.seconds))
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
