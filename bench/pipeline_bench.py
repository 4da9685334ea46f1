"""The distributed pipeline under open-loop load: time from ingest's 2xx to the page.

The four services run as separate processes (`tocsin serve ...`) on the Kafka and MongoDB named
by TOCSIN_KAFKA_BOOTSTRAP / TOCSIN_MONGO_URL, first one process each, then two replicas of
triage and escalation. New alert groups (one alert each, a new incident each, one page each)
are posted at fixed rates, open loop (a request leaves on schedule whether or not the earlier
ones were answered), for `--seconds` per rate; a webhook sink records when each page arrives.

Per rate: accepted groups, p50/p99/max from the 2xx to the page, pages missing after the drain,
the backlog (consumer lag) per topic when the load stops, and each process's CPU (% of one
core, over the step) and peak RSS, Kafka and FerretDB (and PostgreSQL behind it) included;
then the same processes' CPU while nothing arrives (`--idle` seconds: what polling costs).
Rates go up until a step misses p99 < 1 s; the best rate that held is reported.

Usage: bench/pipeline_bench.py [--rates 5,10,20,40] [--seconds 60] [--quick] [--layouts 1,2]
       [--code-root DIR] (run another checkout's code, e.g. a `git worktree` of an older commit)
       [--infra-dir DIR] (where scripts/infra.sh keeps pid files: .cache by default)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "pipeline-bench-token-0123456789abcdef"  # noqa: S105 (a local test token)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Sink:
    """The responder's phone: when the first page of each incident title arrived."""

    first: dict[str, float] = field(default_factory=dict)
    ids: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                now = time.monotonic()
                try:
                    page = json.loads(body)
                    title = page["incident"]["title"]
                    with sink.lock:
                        sink.first.setdefault(title, now)
                        sink.ids.setdefault(title, set()).add(page["notification_id"])
                except (ValueError, KeyError, TypeError):
                    pass
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()


def config_text(sink_port: int) -> str:
    config = {
        "services": [{"id": "bench", "name": "Bench", "tier": 2, "escalation_policy": "oncall"}],
        "integrations": [
            {"id": "prom", "type": "alertmanager", "token": TOKEN, "service": "bench"}
        ],
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [
                    {
                        "id": "alice-hook",
                        "type": "webhook",
                        "address": f"http://127.0.0.1:{sink_port}/alice",
                    }
                ],
                "notification_rules": [{"contact": "alice-hook", "after": "0s"}],
            }
        ],
        # A second level an hour later: every incident arms a timer, as in production.
        "escalation_policies": [
            {
                "id": "oncall",
                "levels": [
                    {"delay": "0s", "targets": [{"user": "alice"}]},
                    {"delay": "1h", "targets": [{"user": "alice"}]},
                ],
            }
        ],
    }
    return str(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Proc:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_service(
    service: str, name: str, config: Path, env: dict[str, str], workdir: Path
) -> Proc:
    port = free_port()
    log = workdir / f"{name}.log"
    code = "import sys; from tocsin.composition.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", code, "serve", service, "--config", str(config)]
    with log.open("wb") as out:
        popen = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [*command, "--port", str(port)],
            env={**os.environ, **env, "TOCSIN_INSTANCE_ID": f"{name}-{uuid.uuid4().hex[:6]}"},
            stdout=out,
            stderr=subprocess.STDOUT,
            # `python -c` puts the working directory first on sys.path: it picks the code.
            cwd=env.get("PYTHONPATH", ROOT),
        )
    return Proc(name, port, popen, log)


def wait_ready(procs: list[Proc], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(procs)
    while pending:
        for proc in list(pending):
            if proc.popen.poll() is not None:
                raise SystemExit(f"{proc.name} exited:\n{proc.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{proc.url}/readyz", timeout=2).status_code == 200:
                    pending.remove(proc)
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise SystemExit(f"not ready: {[p.name for p in pending]}")
        time.sleep(0.3)


def infra_processes(infra_dir: Path) -> dict[str, list[psutil.Process]]:
    """Kafka, FerretDB and (when FerretDB runs on it) PostgreSQL with its backends."""
    found: dict[str, list[psutil.Process]] = {}
    for name, pidfile in (
        ("kafka", infra_dir / "kafka" / "kafka.pid"),
        ("ferretdb", infra_dir / "ferretdb" / "ferretdb.pid"),
        ("postgresql", infra_dir / "postgresql" / "data" / "postmaster.pid"),
    ):
        try:
            pid = int(pidfile.read_text().split()[0])
            root = psutil.Process(pid)
            found[name] = [root, *root.children(recursive=True)]
        except (OSError, ValueError, IndexError, psutil.Error):
            continue
    return found


class Usage:
    """CPU seconds and peak RSS per named group of processes, sampled every half second."""

    def __init__(self, groups: dict[str, list[psutil.Process]]) -> None:
        self._groups = groups
        self._start = {name: self._cpu(ps) for name, ps in groups.items()}
        self._peak = dict.fromkeys(groups, 0)
        self._began = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _cpu(processes: list[psutil.Process]) -> float:
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for name, processes in self._groups.items():
                rss = 0
                for process in processes:
                    try:
                        rss += process.memory_info().rss
                    except psutil.Error:
                        pass
                self._peak[name] = max(self._peak[name], rss)

    def finish(self) -> dict[str, dict[str, float]]:
        self._stop.set()
        self._thread.join()
        wall = time.monotonic() - self._began
        return {
            name: {
                "cpu_pct": round(100 * (self._cpu(ps) - self._start[name]) / wall, 1),
                "rss_mb": round(self._peak[name] / 2**20, 1),
            }
            for name, ps in self._groups.items()
        }


async def backlog(bootstrap: str, namespace: str) -> dict[str, int]:
    """Consumer lag per topic, summed over this deployment's consumer groups."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    lag: dict[str, int] = {}
    try:
        for group, _ in await admin.list_consumer_groups():
            if not group.startswith(namespace):
                continue
            committed = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(list(committed))
            for tp, meta in committed.items():
                topic = tp.topic.removeprefix(namespace)
                lag[topic] = lag.get(topic, 0) + max(ends[TopicPartition(*tp)] - meta.offset, 0)
    finally:
        await consumer.stop()
        await admin.close()
    return lag


async def post_load(
    ingest: str, rate: float, seconds: float, step: str
) -> tuple[dict[str, float], int]:
    """Open loop: request n leaves at start + n / rate. Returns title -> 2xx time, refusals."""
    accepted: dict[str, float] = {}
    refused = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def post(n: int) -> None:
            nonlocal refused
            title = f"bench {step} {n:06d}"
            alert = {
                "status": "firing",
                "labels": {"alertname": f"Bench{step}x{n:06d}", "severity": "critical"},
                "annotations": {"summary": title},
            }
            body = {
                "version": "4",
                "status": "firing",
                "receiver": "tocsin",
                "groupLabels": {},
                "commonLabels": {},
                "commonAnnotations": {},
                "externalURL": "http://alertmanager.example:9093",
                "alerts": [alert],
            }
            try:
                response = await client.post(f"{ingest}/v1/ingest/{TOKEN}", json=body)
            except httpx.HTTPError:
                refused += 1
                return
            if 200 <= response.status_code < 300:
                accepted[title] = time.monotonic()
            else:
                refused += 1

        start = time.monotonic()
        tasks = []
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(n)))
        await asyncio.gather(*tasks)
    return accepted, refused


async def wait_paged(sink: Sink, titles: dict[str, float], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with sink.lock:
            if all(title in sink.first for title in titles):
                return
        await asyncio.sleep(0.2)


def millis(seconds: float) -> int | None:
    return None if math.isnan(seconds) else round(1000 * seconds)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_step(
    procs: list[Proc],
    sink: Sink,
    infra: dict[str, list[psutil.Process]],
    bootstrap: str,
    namespace: str,
    rate: float,
    seconds: float,
    drain: float,
    step: str,
) -> dict[str, Any]:
    groups = {p.name: [psutil.Process(p.popen.pid)] for p in procs} | infra
    usage = Usage(groups)
    ingest = next(p for p in procs if p.name.startswith("ingest"))
    accepted, refused = await post_load(ingest.url, rate, seconds, step)
    lag = await backlog(bootstrap, namespace)
    await wait_paged(sink, accepted, drain)
    with sink.lock:
        latencies = [sink.first[t] - at for t, at in accepted.items() if t in sink.first]
        duplicates = sum(len(sink.ids.get(t, ())) - 1 for t in accepted if t in sink.ids)
    return {
        "rate": rate,
        "accepted": len(accepted),
        "refused": refused,
        "paged": len(latencies),
        "missing": len(accepted) - len(latencies),
        "duplicates": duplicates,
        "p50_ms": millis(percentile(latencies, 0.50)),
        "p99_ms": millis(percentile(latencies, 0.99)),
        "max_ms": millis(max(latencies, default=float("nan"))),
        "mean_ms": millis(statistics.fmean(latencies)) if latencies else None,
        "backlog_at_end_of_load": lag,
        "processes": usage.finish(),
    }


async def run_layout(args: argparse.Namespace, replicas: int, sink: Sink) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    namespace = f"bench-{run_id}."
    bootstrap = os.environ["TOCSIN_KAFKA_BOOTSTRAP"]
    env = {
        "TOCSIN_KAFKA_NAMESPACE": namespace,
        "TOCSIN_MONGO_DATABASE": f"bench_{run_id}",
        "TOCSIN_LOG_LEVEL": "WARNING",
    }
    if args.code_root:
        env["PYTHONPATH"] = args.code_root
    workdir = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    config = workdir / "tocsin.yaml"
    config.write_text(config_text(sink.port))
    counts = {"ingest": 1, "triage": replicas, "escalation": replicas, "notifier": 1}
    procs = [
        start_service(service, f"{service}{i + 1}", config, env, workdir)
        for service, count in counts.items()
        for i in range(count)
    ]
    steps: list[dict[str, Any]] = []
    idle: dict[str, dict[str, float]] = {}
    try:
        wait_ready(procs)
        # Warm up (consumer groups settle, first connections, imports): a few groups paged.
        warm, _ = await post_load(procs[0].url, 5, 2, f"r{replicas}-warmup")
        await wait_paged(sink, warm, 60)
        infra = infra_processes(Path(args.infra_dir))
        for rate in args.rates:
            step = await run_step(
                procs,
                sink,
                infra,
                bootstrap,
                namespace,
                rate,
                args.seconds,
                args.drain,
                f"r{replicas}-{rate:g}",
            )
            steps.append(step)
            print(summary_line(replicas, step), flush=True)
            if step["missing"] or (step["p99_ms"] or 0) >= 1000:
                break
        # Idle cost: nothing arrives, every process only keeps polling what it polls.
        idle_usage = Usage({p.name: [psutil.Process(p.popen.pid)] for p in procs} | infra)
        await asyncio.sleep(args.idle)
        idle = idle_usage.finish()
        print(f"x{replicas} idle {args.idle:g} s: " + cpu_text(idle), flush=True)
    finally:
        for proc in procs:
            proc.popen.terminate()
        for proc in procs:
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
    held = [s["rate"] for s in steps if not s["missing"] and (s["p99_ms"] or 0) < 1000]
    return {
        "layout": f"triage x{replicas}, escalation x{replicas}",
        "best_rate_p99_under_1s": max(held, default=None),
        "steps": steps,
        "idle": idle,
        "logs": str(workdir),
    }


def cpu_text(usage: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {u['cpu_pct']}%/{u['rss_mb']:.0f}MB" for name, u in usage.items())


def summary_line(replicas: int, step: dict[str, Any]) -> str:
    cpu = cpu_text(step["processes"])
    lag = step["backlog_at_end_of_load"]
    return (
        f"x{replicas} {step['rate']:>5g}/s: accepted {step['accepted']}, paged {step['paged']}, "
        f"missing {step['missing']}, dup {step['duplicates']}, p50 {step['p50_ms']} ms, "
        f"p99 {step['p99_ms']} ms, max {step['max_ms']} ms; backlog {lag}; {cpu}"
    )


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "python": platform.python_version(),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="5,10,20,40,80")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="15 s per rate, 30 s drain")
    parser.add_argument("--layouts", default="1,2", help="replicas of triage and escalation")
    parser.add_argument("--idle", type=float, default=20.0, help="then measure idle CPU this long")
    parser.add_argument("--code-root", default=None)
    parser.add_argument("--infra-dir", default=os.environ.get("TOCSIN_INFRA_DIR", ROOT / ".cache"))
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    if args.quick:
        args.seconds, args.drain = 15.0, 30.0
    sink = Sink()
    sink.start()
    about = machine() | {"code_root": args.code_root or str(ROOT)}
    print(f"pipeline bench: {about}", flush=True)
    results = {
        "machine": about,
        "seconds_per_rate": args.seconds,
        "layouts": [await run_layout(args, int(n), sink) for n in args.layouts.split(",")],
    }
    for layout in results["layouts"]:
        print(f"{layout['layout']}: best rate with p99 < 1 s: {layout['best_rate_p99_under_1s']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))  # noqa: ASYNC240


if __name__ == "__main__":
    asyncio.run(main())
