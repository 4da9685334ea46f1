"""Retention benchmark (not a test): does a year of alerts keep `tocsin up` flat?

Two runs side by side, each on a fresh data directory: `keep` (retention off: nothing is ever
deleted, as before retention existed) and `sweep` (resolved things kept 1 s, swept every
second). Each run posts N distinct alerts in groups (firing, then resolved: every incident
resolves), waits until triage has seen every occurrence and, for `sweep`, until the sweeper
is done. Then it reports the process's RSS, the rows in the SQLite file, stops it (SIGTERM),
starts it again on the same directory and reports the time until `/readyz` answers 200 and the
RSS after the start.

    .venv/bin/python bench/retention_bench.py                  # 100,000 alerts
    .venv/bin/python bench/retention_bench.py --alerts 20000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingest_bench import free_port, machine

from tests.e2e.harness import one_service_config

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-retention-token-0123456789"  # noqa: S105 (a throwaway test token)
PER_BODY = 100
GROUP_SIZE = 1000  # alerts per incident
TRIAGED = re.compile(r"^tocsin_triage_alerts_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)
DELETED = re.compile(r"^tocsin_retention_deleted_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


def body(first: int, status: str) -> bytes:
    alerts = [
        {
            "status": status,
            "labels": {
                "alertname": f"Group{n // GROUP_SIZE:04d}",
                "service": "checkout",
                "severity": "warning",
                "instance": f"host-{n}:9100",
            },
            "annotations": {"summary": f"alert {n}"},
            "startsAt": "2026-11-25T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T11:00:00Z",
        }
        for n in range(first, first + PER_BODY)
    ]
    return json.dumps({"version": "4", "status": status, "alerts": alerts}).encode()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "tocsin.sqlite") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)  # noqa: S608


@dataclass
class Run:
    name: str
    env: dict[str, str]
    rss_loaded: float = 0.0
    rows_loaded: int = 0
    start_seconds: float = 0.0
    rss_restarted: float = 0.0


def start(data_dir: Path, config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603
        [
            str(ROOT / ".venv/bin/tocsin"),
            "up",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env={**os.environ, "TOCSIN_ADMIN_TOKEN": "bench-admin-token-0123456789", **env},
        stdout=subprocess.DEVNULL,
        stderr=(data_dir.parent / f"{data_dir.name}.log").open("ab"),
    )


async def wait_ready(
    base: str, process: subprocess.Popen[bytes], limit_seconds: float = 600
) -> float:
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while time.perf_counter() - began < limit_seconds:
            if process.poll() is not None:
                raise RuntimeError(f"tocsin up exited with {process.returncode}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return time.perf_counter() - began
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.02)
    raise TimeoutError("not ready")


async def metric(client: httpx.AsyncClient, pattern: re.Pattern[str]) -> float:
    return sum(float(v) for v in pattern.findall((await client.get("/metrics")).text))


async def load(base: str, alerts: int) -> None:
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def post(first: int, status: str) -> None:
            async with limit:
                response = await client.post(
                    f"/v1/ingest/{TOKEN}",
                    content=body(first, status),
                    headers={"Content-Type": "application/json"},
                )
                response.raise_for_status()

        for status in ("firing", "resolved"):
            await asyncio.gather(*(post(f, status) for f in range(0, alerts, PER_BODY)))
        while await metric(client, TRIAGED) < 2 * alerts:  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.5)


async def settle(base: str) -> None:
    """Until the sweeper deleted nothing for 3 s (a `keep` run returns at once)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        last, quiet = -1.0, 0
        while quiet < 6:
            now = await metric(client, DELETED)
            quiet = quiet + 1 if now == last else 0
            last = now
            await asyncio.sleep(0.5)


def measure(run: Run, alerts: int, config: Path, workdir: Path) -> None:
    data_dir = workdir / run.name
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(data_dir, config, port, run.env)
    try:
        asyncio.run(wait_ready(base, process))
        asyncio.run(load(base, alerts))
        asyncio.run(settle(base))
        run.rss_loaded = rss_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    run.rows_loaded = rows(data_dir)
    process = start(data_dir, config, port, run.env)
    try:
        run.start_seconds = asyncio.run(wait_ready(base, process))
        run.rss_restarted = rss_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    args = parser.parse_args()
    alerts = args.alerts - args.alerts % PER_BODY
    print(f"machine: {machine()}")
    print(f"{alerts} alerts in {alerts // GROUP_SIZE or 1} incidents, all resolved, per run")
    runs = [
        Run("keep", {"TOCSIN_RETENTION_RESOLVED": "0", "TOCSIN_RETENTION_NOTIFICATIONS": "0"}),
        Run(
            "sweep",
            {
                "TOCSIN_RETENTION_RESOLVED": "1",
                "TOCSIN_RETENTION_NOTIFICATIONS": "1",
                "TOCSIN_RETENTION_INTERNAL": "1",
                "TOCSIN_RETENTION_SWEEP_SECONDS": "1",
            },
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="tocsin-retention-") as tmp:
        workdir = Path(tmp)
        config = workdir / "tocsin.yaml"
        config.write_text(one_service_config(TOKEN, {"alice": None}, [("0s", ["alice"])]))
        for run in runs:
            measure(run, alerts, config, workdir)
            print(
                f"{run.name:>5}: after load RSS {run.rss_loaded:6.0f} MiB, "
                f"{run.rows_loaded:7d} rows in the file; restart ready in "
                f"{run.start_seconds:5.2f} s, RSS {run.rss_restarted:5.0f} MiB",
                flush=True,
            )
    keep, sweep = runs
    print(
        f"sweep/keep: restart time {sweep.start_seconds / keep.start_seconds:.2f}x, "
        f"RSS after restart {sweep.rss_restarted / keep.rss_restarted:.2f}x, "
        f"rows {sweep.rows_loaded / max(keep.rows_loaded, 1):.3f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
