"""Ingest benchmark (not a test): accepted alerts/s and latency of one ingest process with
durable acceptance (real Kafka, `acks=all`, idempotent producer), for Alertmanager bodies of 1
and of 100 alerts.

This process is the load generator; `tocsin serve ingest` runs as a second process on loopback.
The load is a fixed number of keep-alive connections, each sending its next request as soon as
the previous answer arrived (closed loop), for a bounded duration after a warm-up. The default
client is a minimal HTTP/1.1 client on asyncio streams, so that the load generator costs as
little CPU as possible on a small machine; `--client httpx` uses httpx instead.

    make bench                      # infra up, then this with the defaults below
    .venv/bin/python bench/ingest_bench.py --duration 20 --runs 3
    .venv/bin/python bench/ingest_bench.py --profile /tmp/ingest.prof   # cProfile the server

Needs TOCSIN_KAFKA_BOOTSTRAP and TOCSIN_MONGO_URL (`source .cache/infra.env`). Each run uses its
own topic namespace and database, and checks at the end that Kafka holds at least as many
messages as alerts were accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def alertmanager_body(alerts: int, seed: int) -> bytes:
    """An Alertmanager v4 webhook body with `alerts` distinct alerts of one group."""
    items = []
    for n in range(alerts):
        instance = f"checkout-{seed}-{n}:9100"
        items.append(
            {
                "status": "firing",
                "labels": {
                    "alertname": "CheckoutLatency",
                    "service": "checkout",
                    "severity": "critical",
                    "job": "checkout",
                    "instance": instance,
                    "app.kubernetes.io/name": "checkout",
                },
                "annotations": {
                    "summary": "Checkout p99 latency above 2s",
                    "runbook_url": "https://runbooks.example/checkout-latency",
                },
                "startsAt": "2026-11-25T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph?g0.expr=latency",
                "fingerprint": f"{(seed * 1000 + n) & 0xFFFFFFFFFFFFFFFF:016x}",
            }
        )
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


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, of accepted requests
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    def add(self, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 202:
            self.latencies.append(latency)


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
    port: int, bodies: list[bytes], concurrency: int, warmup: float, duration: float, client: str
) -> tuple[Result, float]:
    path = f"/v1/ingest/{TOKEN}"
    result = Result()
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + duration

    async def raw_worker(offset: int) -> None:
        connection = RawClient(port)
        requests = [raw_request(port, path, b) for b in bodies]
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

    async def httpx_worker(offset: int, http: httpx.AsyncClient) -> None:
        cycle = itertools.islice(itertools.cycle(bodies), offset, None)
        headers = {"Content-Type": "application/json"}
        while (now := time.perf_counter()) < stop_at:
            try:
                response = await http.post(path, content=next(cycle), headers=headers)
            except httpx.HTTPError:
                result.errors += 1
                continue
            if now >= measure_from:
                result.add(response.status_code, time.perf_counter() - now)

    if client == "raw":
        await asyncio.gather(*(raw_worker(i) for i in range(concurrency)))
    else:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
        ) as http:
            await asyncio.gather(*(httpx_worker(i, http) for i in range(concurrency)))
    return result, duration


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


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


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem_kib / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def start_ingest(
    workdir: Path, namespace: str, database: str, profile: Path | None
) -> tuple[subprocess.Popen[bytes], int, Path]:
    config = workdir / "tocsin.yaml"
    config.write_text(CONFIG)
    port = free_port()
    env = {
        **os.environ,
        "TOCSIN_KAFKA_NAMESPACE": namespace,
        "TOCSIN_MONGO_DATABASE": database,
    }
    tocsin = [str(ROOT / ".venv" / "bin" / "tocsin")]
    if profile is not None:
        tocsin = [sys.executable, "-m", "cProfile", "-o", str(profile), *tocsin]
    log_path = workdir / "ingest.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own command line)
            [*tocsin, "serve", "ingest", "--config", str(config), "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ingest exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process, port, log_path
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"ingest not ready:\n{log_path.read_text()[-3000:]}")


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


@dataclass(frozen=True)
class Case:
    alerts_per_body: int
    concurrency: int


@dataclass(frozen=True)
class Measured:
    requests_per_s: float
    alerts_per_s: float
    p50_ms: float
    p99_ms: float
    rejected: int
    errors: int
    server_cpu: float  # cores used by the ingest process
    kafka_cpu: float
    client_cpu: float
    other_cpu: float  # everything else on the machine: other load makes the numbers low


def measure_case(
    case: Case, args: argparse.Namespace, workdir: Path, bootstrap: str, run: int
) -> Measured:
    namespace = f"bench-{uuid.uuid4().hex[:10]}."
    database = f"bench_{uuid.uuid4().hex[:10]}"
    profile = None
    if args.profile is not None:
        profile = args.profile.with_suffix(f".{case.alerts_per_body}.{run}.prof")
    process, port, log_path = start_ingest(workdir, namespace, database, profile)
    bodies = [alertmanager_body(case.alerts_per_body, seed) for seed in range(args.bodies)]
    kafka = kafka_pid()
    try:
        server_before = cpu_seconds(process.pid)
        kafka_before = cpu_seconds(kafka) if kafka else 0.0
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        machine_before = machine_busy_seconds()
        wall_before = time.perf_counter()
        result, duration = asyncio.run(
            run_load(port, bodies, case.concurrency, args.warmup, args.duration, args.client)
        )
        wall = time.perf_counter() - wall_before
        machine_cpu = (machine_busy_seconds() - machine_before) / wall
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = (cpu_seconds(process.pid) - server_before) / wall
        kafka_cpu = ((cpu_seconds(kafka) - kafka_before) / wall) if kafka else float("nan")
        client_cpu = (
            client_after.ru_utime
            + client_after.ru_stime
            - client_before.ru_utime
            - client_before.ru_stime
        ) / wall
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    accepted_requests = result.statuses.get(202, 0)
    # A 202 means durable: the topic holds at least every alert accepted in the measured window
    # (and those of the warm-up).
    on_topic = asyncio.run(messages_on_topic(bootstrap, f"{namespace}alerts.raw"))
    if on_topic < accepted_requests * case.alerts_per_body:
        raise SystemExit(
            f"only {on_topic} messages on the topic for {accepted_requests} accepted "
            f"requests of {case.alerts_per_body} alerts; see {log_path}"
        )
    latencies = sorted(result.latencies)
    return Measured(
        requests_per_s=accepted_requests / duration,
        alerts_per_s=accepted_requests * case.alerts_per_body / duration,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        rejected=sum(n for status, n in result.statuses.items() if status != 202),
        errors=result.errors,
        server_cpu=server_cpu,
        kafka_cpu=kafka_cpu,
        client_cpu=client_cpu,
        other_cpu=machine_cpu - server_cpu - (kafka_cpu if kafka else 0.0) - client_cpu,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median reported)")
    parser.add_argument("--bodies", type=int, default=200, help="distinct bodies cycled through")
    parser.add_argument("--concurrency-1", type=int, default=64, dest="concurrency_1")
    parser.add_argument("--concurrency-100", type=int, default=16, dest="concurrency_100")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--only", type=int, choices=(1, 100), help="run one case only")
    parser.add_argument(
        "--profile", type=Path, help="run ingest under cProfile, writing PATH.<alerts>.<run>.prof"
    )
    args = parser.parse_args()
    bootstrap = os.environ.get("TOCSIN_KAFKA_BOOTSTRAP")
    if not bootstrap or not os.environ.get("TOCSIN_MONGO_URL"):
        print("source .cache/infra.env first (scripts/infra.sh up)", file=sys.stderr)
        return 2
    cases = [Case(1, args.concurrency_1), Case(100, args.concurrency_100)]
    if args.only:
        cases = [c for c in cases if c.alerts_per_body == args.only]
    print(f"machine: {machine()}")
    print(
        f"client: {args.client}, {args.duration:.0f} s per run after {args.warmup:.0f} s "
        f"warm-up, {args.runs} runs per case; Kafka {bootstrap} (acks=all)"
    )
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        for case in cases:
            runs = []
            for run in range(args.runs):
                measured = measure_case(case, args, Path(tmp), bootstrap, run)
                runs.append(measured)
                print(
                    f"  {case.alerts_per_body:>3} alert(s)/body, {case.concurrency} conns, "
                    f"run {run + 1}: {measured.requests_per_s:8.0f} req/s "
                    f"{measured.alerts_per_s:8.0f} alerts/s  p50 {measured.p50_ms:6.1f} ms  "
                    f"p99 {measured.p99_ms:6.1f} ms  non-202 {measured.rejected}  "
                    f"errors {measured.errors}  CPU cores: ingest {measured.server_cpu:.2f} "
                    f"kafka {measured.kafka_cpu:.2f} client {measured.client_cpu:.2f} "
                    f"other {measured.other_cpu:.2f}",
                    flush=True,
                )

            def median(values: list[float]) -> float:
                return statistics.median(values)

            print(
                f"median {case.alerts_per_body:>3} alert(s)/body: "
                f"{median([r.requests_per_s for r in runs]):.0f} req/s, "
                f"{median([r.alerts_per_s for r in runs]):.0f} alerts/s, "
                f"p50 {median([r.p50_ms for r in runs]):.1f} ms, "
                f"p99 {median([r.p99_ms for r in runs]):.1f} ms; per CPU-second of the "
                f"ingest process {median([r.requests_per_s / r.server_cpu for r in runs]):.0f} "
                f"req, {median([r.alerts_per_s / r.server_cpu for r in runs]):.0f} alerts; "
                f"other load {median([r.other_cpu for r in runs]):.2f} cores",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
