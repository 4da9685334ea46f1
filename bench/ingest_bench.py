"""Ingest benchmark (not a test): accepted alerts/s, latency and alerts per CPU-second of one
Tocsin ingest process with durable acceptance, side by side with Prometheus Alertmanager in the
same run, for bodies of 1 and of 100 alerts.

Systems, each its own process on loopback, measured in turn within each round:
- `alertmanager`: Alertmanager v0.31.1 (`scripts/alertmanager.sh`), `POST /api/v2/alerts`,
  alerts in memory only;
- `ingest`: `tocsin serve ingest` on Kafka (`acks=all`, idempotent producer; 202 only after
  Kafka acknowledged every alert of the body);
- `up`: `tocsin up` (everything in one process; 202 only once the alerts are in the SQLite
  file), which also triages what it accepts.

This process is the load generator: a fixed number of keep-alive connections, each sending its
next request as soon as the previous answer arrived (closed loop), for a bounded duration after
a warm-up; a minimal HTTP/1.1 client on asyncio streams (uvloop), so that it costs as little CPU
as possible. CPU is each server's own process tree (psutil), so "alerts per CPU-second" is what
the server spent, whatever else runs on the machine.

    make bench                                       # infra up, then this with the defaults
    .venv/bin/python bench/ingest_bench.py --runs 2 --duration 15
    .venv/bin/python bench/ingest_bench.py --systems ingest --only 100 --profile /tmp/ingest.prof

Needs TOCSIN_KAFKA_BOOTSTRAP and TOCSIN_MONGO_URL (`source .cache/infra.env`) for `ingest`. Each
ingest run uses its own topic namespace and database and checks at the end that Kafka holds at
least as many messages as alerts were accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-integration-token-0123456789"  # noqa: S105 (a throwaway test token)
CONFIG = f"""services:
  - id: checkout
    name: Checkout API
    escalation_policy: p
integrations:
  - id: prom
    type: alertmanager
    token: {TOKEN}
    service: checkout
users:
  - id: alice
    name: Alice
escalation_policies:
  - id: p
    levels:
      - targets: [{{user: alice}}]
"""
# Alertmanager routes everything to a receiver that notifies nobody, after a long group wait:
# what is measured is its API taking alerts, as ingest's is.
ALERTMANAGER_CONFIG = """route:
  receiver: nobody
  group_wait: 10m
  group_interval: 10m
  repeat_interval: 10h
receivers:
  - name: nobody
"""
SYSTEMS = ("alertmanager", "ingest", "up")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _labels(seed: int, n: int) -> dict[str, str]:
    return {
        "alertname": "CheckoutLatency",
        "service": "checkout",
        "severity": "critical",
        "job": "checkout",
        "instance": f"checkout-{seed}-{n}:9100",
        "app.kubernetes.io/name": "checkout",
    }


_ANNOTATIONS = {
    "summary": "Checkout p99 latency above 2s",
    "runbook_url": "https://runbooks.example/checkout-latency",
}
_GENERATOR_URL = "http://prometheus.example/graph?g0.expr=latency"


def alertmanager_body(alerts: int, seed: int) -> bytes:
    """An Alertmanager v4 webhook body with `alerts` distinct alerts of one group."""
    items = [
        {
            "status": "firing",
            "labels": _labels(seed, n),
            "annotations": _ANNOTATIONS,
            "startsAt": "2026-11-25T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": _GENERATOR_URL,
            "fingerprint": f"{(seed * 1000 + n) & 0xFFFFFFFFFFFFFFFF:016x}",
        }
        for n in range(alerts)
    ]
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="CheckoutLatency"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tocsin",
        "groupLabels": {"alertname": "CheckoutLatency"},
        "commonLabels": {"alertname": "CheckoutLatency", "service": "checkout"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": items,
    }
    return json.dumps(body).encode()


def postable_alerts_body(alerts: int, seed: int) -> bytes:
    """The same alerts as Prometheus posts them to Alertmanager's `/api/v2/alerts`."""
    items = [
        {
            "labels": _labels(seed, n),
            "annotations": _ANNOTATIONS,
            "startsAt": "2026-11-25T10:00:00Z",
            "generatorURL": _GENERATOR_URL,
        }
        for n in range(alerts)
    ]
    return json.dumps(items).encode()


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, of accepted requests
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    def add(self, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            self.latencies.append(latency)

    @property
    def accepted(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]


class RawClient:
    """HTTP/1.1 with keep-alive on asyncio streams: just enough for POST + a small answer."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> int:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        reader, writer = self._reader, self._writer
        writer.write(request)
        status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
        length = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def raw_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def run_load(
    port: int, path: str, bodies: list[bytes], concurrency: int, warmup: float, duration: float
) -> Result:
    result = Result()
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + duration
    requests = [raw_request(port, path, b) for b in bodies]

    async def worker(offset: int) -> None:
        connection = RawClient(port)
        cycle = itertools.islice(itertools.cycle(requests), offset, None)
        try:
            while (now := time.perf_counter()) < stop_at:
                try:
                    status = await connection.post(next(cycle))
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    result.errors += 1
                    await connection.close()
                    connection = RawClient(port)
                    continue
                if now >= measure_from:
                    result.add(status, time.perf_counter() - now)
        finally:
            await connection.close()

    await asyncio.gather(*(worker(i * 7) for i in range(concurrency)))
    return result


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live children (granian's workers)."""
    try:
        process = psutil.Process(pid)
        processes = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for each in processes:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def machine_busy_seconds() -> float:
    """CPU seconds spent by every process on the machine (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def kafka_pid() -> int | None:
    state = Path(os.environ.get("TOCSIN_INFRA_DIR", ROOT / ".cache"))
    try:
        return int((state / "kafka" / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def machine() -> str:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), {mem_kib / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    path: str
    body: Callable[[int, int], bytes]
    log_path: Path
    namespace: str | None = None  # ingest: the Kafka topic prefix of this run

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: server exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{url}: not ready:\n{log_path.read_text()[-3000:]}")


def _popen(command: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(  # noqa: S603 (our own command lines)
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )


def start_server(name: str, workdir: Path, profile: Path | None) -> Server:
    port = free_port()
    run_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    log_path = run_dir / f"{name}.log"
    if name == "alertmanager":
        binary = subprocess.run(  # noqa: S603 (our own build script)
            [str(ROOT / "scripts" / "alertmanager.sh")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        config = run_dir / "alertmanager.yml"
        config.write_text(ALERTMANAGER_CONFIG)
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.path={run_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: one private instance
        ]
        process = _popen(command, log_path, dict(os.environ))
        _wait_ready(process, f"http://127.0.0.1:{port}/-/ready", log_path)
        return Server(name, process, port, "/api/v2/alerts", postable_alerts_body, log_path)
    config = run_dir / "tocsin.yaml"
    config.write_text(CONFIG)
    tocsin = [str(ROOT / ".venv" / "bin" / "tocsin")]
    if profile is not None:
        tocsin = [sys.executable, "-m", "cProfile", "-o", str(profile), *tocsin]
    env = dict(os.environ)
    namespace = None
    if name == "ingest":
        namespace = f"bench-{uuid.uuid4().hex[:10]}."
        env["TOCSIN_KAFKA_NAMESPACE"] = namespace
        env["TOCSIN_MONGO_DATABASE"] = f"bench_{uuid.uuid4().hex[:10]}"
        command = [*tocsin, "serve", "ingest", "--config", str(config), "--port", str(port)]
    else:
        command = [
            *tocsin,
            "up",
            "--config",
            str(config),
            "--data-dir",
            str(run_dir / "data"),
            "--port",
            str(port),
        ]
    process = _popen(command, log_path, env)
    _wait_ready(process, f"http://127.0.0.1:{port}/readyz", log_path)
    return Server(
        name, process, port, f"/v1/ingest/{TOKEN}", alertmanager_body, log_path, namespace
    )


async def messages_on_topic(bootstrap: str, topic: str) -> int:
    # Subscribed (no group), so that the consumer's metadata covers the topic.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            raise SystemExit(f"topic {topic} not found")
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[p] - starts[p] for p in partitions)
    finally:
        await consumer.stop()


async def delete_namespace(bootstrap: str, namespace: str) -> None:
    """Drop the run's topics: a broker holding thousands of benchmark partitions runs out of
    heap (the shared test broker did)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [topic for topic in await admin.list_topics() if topic.startswith(namespace)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


@dataclass(frozen=True)
class Measured:
    alerts_per_s: float
    p50_ms: float
    p99_ms: float
    rejected: int
    errors: int
    server_cpu: float  # cores used by the server's process tree
    kafka_cpu: float
    client_cpu: float
    machine_cpu: float  # every process on the machine: other load makes the numbers low

    @property
    def alerts_per_cpu_second(self) -> float:
        return self.alerts_per_s / self.server_cpu if self.server_cpu else float("nan")


def measure(
    name: str, alerts_per_body: int, args: argparse.Namespace, workdir: Path, run: int
) -> Measured:
    profile = None
    if args.profile is not None and name != "alertmanager":
        profile = args.profile.with_suffix(f".{name}.{alerts_per_body}.{run}.prof")
    server = start_server(name, workdir, profile)
    bodies = [server.body(alerts_per_body, seed) for seed in range(args.bodies)]
    kafka = kafka_pid() if name == "ingest" else None
    me = psutil.Process()
    try:
        server_before = tree_cpu_seconds(server.process.pid)
        kafka_before = tree_cpu_seconds(kafka) if kafka else 0.0
        client_before = me.cpu_times()
        machine_before = machine_busy_seconds()
        wall_before = time.perf_counter()
        result = uvloop.run(
            run_load(server.port, server.path, bodies, args.connections, args.warmup, args.duration)
        )
        wall = time.perf_counter() - wall_before
        # Warm-up included on both sides of these ratios: cores busy over the whole run.
        machine_cpu = (machine_busy_seconds() - machine_before) / wall
        client_after = me.cpu_times()
        server_cpu = (tree_cpu_seconds(server.process.pid) - server_before) / wall
        kafka_cpu = ((tree_cpu_seconds(kafka) - kafka_before) / wall) if kafka else 0.0
        client_cpu = (
            client_after.user + client_after.system - client_before.user - client_before.system
        ) / wall
    finally:
        server.stop()
    if server.namespace is not None:
        # A 202 means durable: the topic holds at least every alert accepted in the measured
        # window (and those of the warm-up).
        bootstrap = os.environ["TOCSIN_KAFKA_BOOTSTRAP"]
        topic = f"{server.namespace}alerts.raw"
        on_topic = asyncio.run(messages_on_topic(bootstrap, topic))
        asyncio.run(delete_namespace(bootstrap, server.namespace))
        if on_topic < result.accepted * alerts_per_body:
            raise SystemExit(
                f"only {on_topic} messages on the topic for {result.accepted} accepted "
                f"requests of {alerts_per_body} alerts; see {server.log_path}"
            )
    latencies = sorted(result.latencies)
    return Measured(
        alerts_per_s=result.accepted * alerts_per_body / args.duration,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        rejected=sum(n for status, n in result.statuses.items() if not 200 <= status < 300),
        errors=result.errors,
        server_cpu=server_cpu,
        kafka_cpu=kafka_cpu,
        client_cpu=client_cpu,
        machine_cpu=machine_cpu,
    )


def spread(values: list[float]) -> float:
    """(max - min) / median: two runs 'agree within 10%' when this is at most 0.10."""
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--runs", type=int, default=2, help="rounds (median reported)")
    parser.add_argument("--bodies", type=int, default=200, help="distinct bodies cycled through")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--only", type=int, choices=(1, 100), help="one body size only")
    parser.add_argument(
        "--profile",
        type=Path,
        help="run Tocsin under cProfile, writing PATH.<system>.<alerts>.<run>.prof",
    )
    args = parser.parse_args()
    if "ingest" in args.systems and not os.environ.get("TOCSIN_KAFKA_BOOTSTRAP"):
        print("source .cache/infra.env first (scripts/infra.sh up)", file=sys.stderr)
        return 2
    sizes = [args.only] if args.only else [1, 100]
    print(f"machine: {machine()}; commit {commit()}")
    print(
        f"{args.connections} connections, closed loop, {args.duration:.0f} s per run after "
        f"{args.warmup:.0f} s warm-up, {args.runs} rounds; Kafka "
        f"{os.environ.get('TOCSIN_KAFKA_BOOTSTRAP', '-')} (acks=all)",
        flush=True,
    )
    results: dict[tuple[str, int], list[Measured]] = {}
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        for run in range(args.runs):
            for size in sizes:
                for name in args.systems:
                    m = measure(name, size, args, Path(tmp), run)
                    results.setdefault((name, size), []).append(m)
                    print(
                        f"  round {run + 1} {name:>12} {size:>3} alert(s)/body: "
                        f"{m.alerts_per_s:8.0f} alerts/s  p50 {m.p50_ms:6.1f} ms  "
                        f"p99 {m.p99_ms:6.1f} ms  non-2xx {m.rejected}  errors {m.errors}  "
                        f"cores: server {m.server_cpu:.2f} kafka {m.kafka_cpu:.2f} "
                        f"client {m.client_cpu:.2f} machine {m.machine_cpu:.2f}  "
                        f"alerts/CPU-s {m.alerts_per_cpu_second:6.0f}",
                        flush=True,
                    )
    print("\nmedians (spread = (max - min) / median of the rounds' alerts/s)")
    for size in sizes:
        base = results.get(("alertmanager", size))
        base_rate = statistics.median([m.alerts_per_s for m in base]) if base else None
        for name in args.systems:
            runs = results[(name, size)]
            rate = statistics.median([m.alerts_per_s for m in runs])
            ratio = f"{rate / base_rate:5.2f}x Alertmanager" if base_rate else ""
            print(
                f"{name:>12} {size:>3} alert(s)/body: {rate:8.0f} alerts/s {ratio}  "
                f"p50 {statistics.median([m.p50_ms for m in runs]):6.1f} ms  "
                f"p99 {statistics.median([m.p99_ms for m in runs]):6.1f} ms  "
                f"alerts/CPU-s {statistics.median([m.alerts_per_cpu_second for m in runs]):6.0f}"
                f"  server cores {statistics.median([m.server_cpu for m in runs]):.2f}  "
                f"spread {spread([m.alerts_per_s for m in runs]):.0%}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
