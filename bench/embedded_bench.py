"""Embedded-mode benchmark (not a test): what `tocsin up` sustains with 100-alert Alertmanager
bodies, and the time from webhook received to page delivered for a new incident under that load.

`tocsin up` runs as its own process; this process is the load generator and the responder's
webhook. For each target rate it sends 100-alert bodies (fresh fingerprints, one alert group)
open-loop at that rate for a bounded duration, and every 0.5 s a probe: a one-alert body of a
new group, which opens a new incident and pages. It reports the accepted alerts/s, whether the
pipeline kept up (alerts triaged by the end, and how long the backlog took to drain), and the
p50/p99 time from posting a probe to its page arriving.

    .venv/bin/python bench/embedded_bench.py                     # rates 1000 2000 3000, 20 s each
    .venv/bin/python bench/embedded_bench.py --rates 2000 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingest_bench import (
    RawClient,
    alertmanager_body,
    free_port,
    machine,
    percentile,
    raw_request,
)

from tests.e2e.harness import one_service_config

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-integration-token-0123456789"  # noqa: S105 (a throwaway test token)
TRIAGED = re.compile(r"^tocsin_triage_alerts_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


def config(webhook_port: int) -> str:
    url = f"http://127.0.0.1:{webhook_port}/alice"
    return one_service_config(TOKEN, {"alice": url}, [("0s", ["alice"])])


@dataclass
class Pages:
    """The responder's webhook: when each probe's page arrived."""

    arrived: dict[str, float] = field(default_factory=dict)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                body = json.loads(await reader.readexactly(length))
                self.arrived.setdefault(body["incident"]["title"], time.perf_counter())
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
        except asyncio.CancelledError:
            writer.close()  # the benchmark is over; end quietly


async def triaged(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    return sum(float(value) for value in TRIAGED.findall(text))


@dataclass
class Outcome:
    rate: int
    accepted_alerts_per_s: float
    refused: int
    lag_at_end: float  # alerts accepted but not yet triaged when the load stopped
    drain_s: float
    probe_p50: float
    probe_p99: float
    probes: int


async def run_rate(port: int, pages: Pages, rate: int, duration: float, seed: int) -> Outcome:
    path = f"/v1/ingest/{TOKEN}"
    bodies_per_s = rate / 100
    accepted = 0
    refused = 0
    sent_probes: dict[str, float] = {}
    pool = [RawClient(port) for _ in range(8)]
    free: asyncio.Queue[RawClient] = asyncio.Queue()
    for connection in pool:
        free.put_nowait(connection)

    async def send(body: bytes, alerts: int) -> None:
        nonlocal accepted, refused
        connection = await free.get()
        try:
            status = await connection.post(raw_request(port, path, body))
        finally:
            free.put_nowait(connection)
        if status == 202:
            accepted += alerts
        else:
            refused += 1

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        before = await triaged(http)
        started = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        n = 0
        next_probe = started
        probe_n = 0
        while (now := time.perf_counter()) < started + duration:
            due = started + n / bodies_per_s
            if now >= next_probe:
                title = f"probe {seed}-{probe_n}"
                sent_probes[title] = time.perf_counter()
                tasks.append(asyncio.create_task(send(probe_body_titled(seed, probe_n), 1)))
                probe_n += 1
                next_probe += 0.5
            if now >= due:
                body = alertmanager_body(100, seed * 1_000_000 + n)
                tasks.append(asyncio.create_task(send(body, 100)))
                n += 1
            else:
                await asyncio.sleep(min(due, next_probe) - now)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        lag = before + accepted - await triaged(http)
        drain_started = time.perf_counter()
        while True:  # poll the metric until the backlog is gone
            done = await triaged(http)
            if done >= before + accepted:
                break
            if time.perf_counter() - drain_started > 120:
                print(
                    f"  giving up: {before + accepted - done:.0f} alerts never triaged",
                    file=sys.stderr,
                )
                break
            await asyncio.sleep(0.1)
        drain = time.perf_counter() - drain_started
        await asyncio.sleep(1)
    for connection in pool:
        await connection.close()
    latencies = sorted(
        pages.arrived[title] - sent for title, sent in sent_probes.items() if title in pages.arrived
    )
    missing = len(sent_probes) - len(latencies)
    if missing:
        print(f"  warning: {missing} probe(s) not paged", file=sys.stderr)
    return Outcome(
        rate=rate,
        accepted_alerts_per_s=accepted / elapsed,
        refused=refused,
        lag_at_end=lag,
        drain_s=drain,
        probe_p50=statistics.median(latencies) if latencies else float("nan"),
        probe_p99=percentile(latencies, 0.99),
        probes=len(latencies),
    )


def probe_body_titled(seed: int, n: int) -> bytes:
    alert = {
        "status": "firing",
        "labels": {"alertname": f"Probe{seed}x{n}", "severity": "critical"},
        "annotations": {"summary": f"probe {seed}-{n}"},
    }
    return json.dumps({"version": "4", "status": "firing", "alerts": [alert]}).encode()


def start_tocsin(config_path: Path, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    with (workdir / "tocsin.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 (our own binary, fixed arguments)
            [
                str(ROOT / ".venv/bin/tocsin"),
                "up",
                "--config",
                str(config_path),
                "--data-dir",
                str(workdir / "data"),
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def main_async(args: argparse.Namespace) -> int:
    pages = Pages()
    server = await asyncio.start_server(pages.handle, "127.0.0.1", 0)
    webhook_port = server.sockets[0].getsockname()[1]
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="tocsin-bench-")
    try:
        config_path = Path(workdir) / "tocsin.yaml"
        config_path.write_text(config(webhook_port))
        process = start_tocsin(config_path, Path(workdir), port)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for _ in range(100):
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
            print(f"machine: {machine()}")
            print(
                f"tocsin up, 100-alert bodies, {args.duration:.0f} s per rate, probes every 0.5 s"
            )
            print("target/s  accepted/s  refused  backlog-at-end  drain-s  probes  p50-ms  p99-ms")
            for seed, rate in enumerate(args.rates, start=1):
                outcome = await run_rate(port, pages, rate, args.duration, seed)
                print(
                    f"{outcome.rate:8d}  {outcome.accepted_alerts_per_s:10.0f}"
                    f"  {outcome.refused:7d}"
                    f"  {outcome.lag_at_end:14.0f}  {outcome.drain_s:7.1f}  {outcome.probes:6d}"
                    f"  {outcome.probe_p50 * 1000:6.0f}  {outcome.probe_p99 * 1000:6.0f}",
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
            server.close()
    finally:
        if args.keep:
            print(f"data and log kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 2000, 3000])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true", help="keep the data dir and log")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
