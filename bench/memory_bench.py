"""Memory with a big store: each service's RSS with 100,000 open alerts (issue 15, target 150 MB).

How the store is filled, per mode (the four `tocsin serve` processes on the local Kafka and a
FerretDB of their own, started by scripts/infra.sh under .cache/memory-bench on other ports;
`tocsin up` on its SQLite file):

1. Seed through the real pipeline: the services run on an empty store and this process posts
   `--groups` Alertmanager bodies of `--alerts` alerts each (one alert group, one incident,
   one page each, and a second escalation level an hour later, so each arms a timer);
   `--resolved` more groups are posted and then resolved by their alerts, and a few open
   incidents are acknowledged. Every document in the store was written by the services.
2. Clone: the services are stopped, every document is read back and written `--copies - 1`
   more times with its identities renamed: the group token in alert names, titles and group
   keys (`MemBench-g00007` becomes `MemBench-g00032`, ...), every UUID (incident, event,
   notification ids, also inside longer strings), every fingerprint (recomputed from the
   renamed labels with ingest's own `fingerprint_hex`) and every other hex identity (hashed).
   Field names, types, nesting, timestamps and counts stay the services' own. A document the
   renaming leaves unchanged (configuration, counters, cursors) is not cloned.
3. Measure: the services start again on the filled store (new processes), become ready, are
   exercised (new alert groups that page, alerts into old groups, the API list endpoints with
   default paging, one incident, the status page, the console's incidents list after a password
   login, analytics, on-call, action items), three rounds, then left idle. RSS is sampled with
   psutil every 0.2 s from the process start: peak (over the whole run) and steady (median of
   the idle samples). Target: peak ≤ 150 MB per process.

Defaults: 20 open groups x 50 alerts x 100 copies = 100,000 open alerts in 2,000 open
incidents, plus 5 x 50 x 100 = 25,000 resolved alerts in 500 resolved incidents.
`--quick` (the `make bench` smoke run): 5 copies (5,000 open alerts).

    .venv/bin/python bench/memory_bench.py [--quick] [--modes distributed,embedded] [--json F]
    .venv/bin/python bench/memory_bench.py --trace triage   # tracemalloc top allocations too
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil  # type: ignore[import-untyped]
import yaml
from bson.binary import Binary
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline_bench import Sink, free_port, machine

from services.ingest.domain.fingerprint import fingerprint_hex
from tocsin.runtime.access import hash_password

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "memory-bench-token-0123456789abcdef"  # noqa: S105 (a local test token)
ADMIN = "memory-bench-admin-0123456789abcdef"
PASSWORD = "memory bench password"  # noqa: S105
TARGET_MB = 150.0
GROUP = re.compile(r"MemBench-g(\d{5})")
# One pass, so a replacement is never matched again: a UUID, a group token, a hex identity.
IDENTITY = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|MemBench-g\d{5}"
    r"|(?<![0-9A-Za-z])[0-9a-f]{16,}(?![0-9A-Za-z])"
)


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
                "password_hash": hash_password(PASSWORD),
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
        # A second level an hour later: every open incident holds a timer (parked: not due
        # within the minute, tocsin/runtime/parking.py).
        "escalation_policies": [
            {
                "id": "oncall",
                "levels": [
                    {"delay": "0s", "targets": [{"user": "alice"}]},
                    {"delay": "1h", "targets": [{"user": "alice"}]},
                ],
            }
        ],
        "status_pages": [
            {
                "id": "public",
                "title": "Bench status",
                "components": [{"id": "bench", "name": "Bench", "services": ["bench"]}],
            }
        ],
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def alert_body(name: str, instances: list[str], status: str = "firing") -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    alerts = [
        {
            "status": status,
            "labels": {
                "alertname": name,
                "instance": instance,
                "job": "node",
                "severity": "critical",
                "service": "bench",
            },
            "annotations": {
                "summary": f"{name} is down",
                "description": f"{instance} of {name} stopped answering its health check",
            },
            "startsAt": "2026-12-01T10:00:00Z",
            "endsAt": now if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0",
        }
        for instance in instances
    ]
    return {
        "version": "4",
        "status": status,
        "receiver": "tocsin",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    }


def group_name(group: int) -> str:
    return f"MemBench-g{group:05d}"


# ---------------------------------------------------------------------------------------------
# Processes and their RSS


@dataclass
class Service:
    """One process under measurement and its RSS samples (bytes), from its start."""

    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path
    argv: list[str]
    env: dict[str, str]
    samples: list[tuple[float, int]] = field(default_factory=list)
    ready_at: float | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Sampler:
    """Every 0.2 s: each process's RSS (psutil), until stopped."""

    def __init__(self, services: list[Service]) -> None:
        self._services = services
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        processes: dict[int, psutil.Process] = {}
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for service in self._services:
                try:
                    supervise(service, limit=20)  # one that dies while measured, too
                except NotReady:
                    pass
                pid = service.popen.pid  # a new one after a restart
                try:
                    process = processes.setdefault(pid, psutil.Process(pid))
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                if rss:  # 0: exited, not yet reaped
                    service.samples.append((now, rss))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def spawn(name: str, argv: list[str], env: dict[str, str], workdir: Path, trace: bool) -> Service:
    port = free_port()
    log = workdir / f"{name}.log"
    code = "import sys; from tocsin.composition.cli import main; sys.exit(main())"
    if trace:
        # tracemalloc from the first import. The first SIGUSR1 takes a baseline snapshot (once
        # ready), the second writes what grew since, by allocation site.
        code = (
            "import sys, signal, tracemalloc; tracemalloc.start(8)\n"
            "base = []\n"
            "def dump(*_):\n"
            "    snap = tracemalloc.take_snapshot().filter_traces("
            "[tracemalloc.Filter(False, tracemalloc.__file__)])\n"
            "    if not base:\n"
            "        base.append(snap); return\n"
            f"    with open({str(workdir / (name + '.tracemalloc'))!r}, 'w') as out:\n"
            "        print('traced now/peak MB', [round(v / 2**20, 1) for v in "
            "tracemalloc.get_traced_memory()], file=out)\n"
            "        for stat in snap.compare_to(base[0], 'traceback')[:20]:\n"
            "            print(round(stat.size_diff / 2**20, 2), 'MB more,', stat.count_diff, "
            "'blocks', file=out)\n"
            "            for line in stat.traceback.format()[-16:]: print('   ', line, file=out)\n"
            "        print('end of traceback list', file=out)\n"
            "signal.signal(signal.SIGUSR1, dump)\n"
            "from tocsin.composition.cli import main; sys.exit(main())"
        )
    command = [sys.executable, "-c", code, *argv, "--port", str(port)]
    full_env = {**os.environ, **env, "TOCSIN_INSTANCE_ID": f"{name}-{uuid.uuid4().hex[:6]}"}
    return Service(name, port, launch(command, full_env, log), log, command, full_env)


def launch(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )


_SUPERVISING = threading.Lock()


def supervise(service: Service, limit: int = 5) -> None:
    """As a supervisor (systemd, Kubernetes) would: start an exited process again, counted."""
    with _SUPERVISING:
        if service.popen.poll() is None:
            return
        if service.restarts >= limit:
            raise NotReady(f"{service.name} exited {limit + 1} times (see {service.log})")
        service.restarts += 1
        print(f"{service.name} exited; restart {service.restarts}", flush=True)
        service.popen = launch(service.argv, service.env, service.log)


class NotReady(Exception):
    """Some process did not become ready (named), even after restarts."""


def wait_ready(services: list[Service], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending:
        for service in list(pending):
            # A process that gave up at start (e.g. the store too slow to answer its index
            # builds within 3 s) is started again, and counted.
            supervise(service)
            try:
                if httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200:
                    service.ready_at = time.monotonic()
                    pending.remove(service)
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise NotReady(f"not ready after {timeout:g} s: {[s.name for s in pending]}")
        time.sleep(0.3)


def stop(services: list[Service]) -> None:
    for service in services:
        service.popen.terminate()
    for service in services:
        try:
            service.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.popen.kill()
            service.popen.wait()


@dataclass
class Deployment:
    """Where each part of the product answers: one port (`tocsin up`) or four."""

    services: list[Service]
    ingest: str
    triage: str
    escalation: str
    notifier: str


def start_deployment(
    mode: str, config: Path, env: dict[str, str], workdir: Path, trace: set[str]
) -> Deployment:
    if mode == "embedded":
        argv = ["up", "--config", str(config), "--data-dir", str(workdir / "data")]
        one = spawn("tocsin-up", argv, env, workdir, "tocsin-up" in trace)
        return Deployment([one], one.url, one.url, one.url, one.url)
    by_name = {
        name: spawn(name, ["serve", name, "--config", str(config)], env, workdir, name in trace)
        for name in ("ingest", "triage", "escalation", "notifier")
    }
    return Deployment(
        list(by_name.values()),
        by_name["ingest"].url,
        by_name["triage"].url,
        by_name["escalation"].url,
        by_name["notifier"].url,
    )


# ---------------------------------------------------------------------------------------------
# Seeding through the pipeline


async def post(client: httpx.AsyncClient, ingest: str, body: dict[str, Any]) -> None:
    for _ in range(20):
        answer = await client.post(f"{ingest}/v1/ingest/{TOKEN}", json=body)
        if answer.status_code < 300:
            return
        await asyncio.sleep(1)
    raise SystemExit(f"ingest refused a body: {answer.status_code} {answer.text[:300]}")


async def wait_for(what: str, check: Callable[[], Any], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def incidents(client: httpx.AsyncClient, escalation: str, status: str) -> list[Any]:
    found: list[Any] = []
    cursor = None
    while True:
        params = {"status": status, "limit": "500"} | ({"cursor": cursor} if cursor else {})
        answer = await client.get(f"{escalation}/api/v1/incidents", params=params)
        answer.raise_for_status()
        page = answer.json()
        found += page["incidents"]
        cursor = page.get("next_cursor")
        if not cursor:
            return found


async def seed(deployment: Deployment, sink: Sink, args: argparse.Namespace) -> dict[str, Any]:
    instances = [f"host-{i:03d}:9100" for i in range(args.alerts)]
    total = args.groups + args.resolved
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        began = time.monotonic()
        for group in range(total):
            await post(client, deployment.ingest, alert_body(group_name(group), instances))

        async def all_paged() -> bool:
            with sink.lock:
                return all(f"{group_name(g)} is down" in sink.first for g in range(total))

        await wait_for("a page for every seeded group", all_paged, 300)
        for group in range(args.groups, total):
            body = alert_body(group_name(group), instances, status="resolved")
            await post(client, deployment.ingest, body)

        async def all_resolved() -> bool:
            resolved = await incidents(client, deployment.escalation, "resolved")
            return len(resolved) >= int(args.resolved)

        await wait_for("the resolved groups' incidents to resolve", all_resolved, 300)
        opened = await incidents(client, deployment.escalation, "triggered")
        for incident in opened[: max(1, args.groups // 4)]:
            answer = await client.post(
                f"{deployment.escalation}/api/v1/incidents/{incident['id']}/acknowledge", json={}
            )
            if answer.status_code not in (200, 202):
                raise SystemExit(f"acknowledge: {answer.status_code} {answer.text[:300]}")
        await asyncio.sleep(5)  # acknowledgement notices, status page, outboxes settle
        return {"seed_seconds": round(time.monotonic() - began, 1), "groups": total}


# ---------------------------------------------------------------------------------------------
# Cloning the seeded documents


class Renamer:
    """Renames every identity in a document for copy `k` (see the module docstring)."""

    def __init__(self, groups: int, fingerprints: dict[tuple[int, str], str]) -> None:
        self.groups = groups
        self.fingerprints = fingerprints
        self.copy = 0

    def _identity(self, found: re.Match[str]) -> str:
        text = found.group(0)
        if text.startswith("MemBench-g"):
            return group_name(int(text[10:]) + self.copy * self.groups)
        if "-" in text:
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"memory-bench/{self.copy}/{text}"))
        known = self.fingerprints.get((self.copy, text))
        if known is not None:
            return known
        digest = hashlib.sha256(f"{self.copy}/{text}".encode()).hexdigest()
        while len(digest) < len(text):
            digest += hashlib.sha256(digest.encode()).hexdigest()
        return digest[: len(text)]

    def text(self, value: str) -> str:
        return IDENTITY.sub(self._identity, value)

    def value(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind is dict:
            return {self.text(k): self.value(v) for k, v in value.items()}
        if kind is list:
            return [self.value(item) for item in value]
        if isinstance(value, uuid.UUID):
            return uuid.uuid5(uuid.NAMESPACE_URL, f"memory-bench/{self.copy}/{value}")
        if isinstance(value, Binary) and value.subtype in (3, 4):
            renamed = uuid.uuid5(uuid.NAMESPACE_URL, f"memory-bench/{self.copy}/{value.hex()}")
            return Binary(renamed.bytes, value.subtype)
        return value


def fingerprint_map(
    alerts: list[dict[str, Any]], copies: int, groups: int
) -> dict[tuple[int, str], str]:
    """Each seeded alert's fingerprint in each copy: ingest's own function of renamed labels."""
    renamer = Renamer(groups, {})
    found: dict[tuple[int, str], str] = {}
    for alert in alerts:
        labels = [(pair["name"], pair["value"]) for pair in alert.get("labels") or ()]
        if not labels or not GROUP.search(str(labels)):
            continue
        for copy in range(1, copies):
            renamer.copy = copy
            renamed = [(name, renamer.text(value)) for name, value in labels]
            found[(copy, alert["_id"])] = fingerprint_hex(renamed)
    return found


@dataclass
class ClonePlan:
    per_copy: dict[str, list[dict[str, Any]]]  # collection -> documents to clone
    kept: dict[str, int]  # collection -> documents left alone (nothing to rename)
    shared: dict[str, int]  # collection -> documents whose _id stays but content changes


def plan(documents: dict[str, list[dict[str, Any]]], groups: int) -> ClonePlan:
    renamer = Renamer(groups, {})
    renamer.copy = 1
    result = ClonePlan({}, {}, {})
    for collection, docs in documents.items():
        for doc in docs:
            renamed = renamer.value(doc)
            if renamed == doc:
                result.kept[collection] = result.kept.get(collection, 0) + 1
            elif renamed["_id"] == doc["_id"]:
                result.shared[collection] = result.shared.get(collection, 0) + 1
            else:
                result.per_copy.setdefault(collection, []).append(doc)
    return result


def clones(
    clone_plan: ClonePlan, copies: int, groups: int, fingerprints: dict[tuple[int, str], str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    renamer = Renamer(groups, fingerprints)
    for copy in range(1, copies):
        renamer.copy = copy
        for collection, docs in clone_plan.per_copy.items():
            for doc in docs:
                yield collection, renamer.value(doc)


def fill_mongo(url: str, database: str, copies: int, groups: int) -> dict[str, Any]:
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    try:
        db = client[database]
        documents = {name: list(db[name].find({})) for name in db.list_collection_names()}
        return fill(documents, copies, groups, lambda c, batch: db[c].insert_many(batch))
    finally:
        client.close()


def fill_sqlite(path: Path, copies: int, groups: int) -> dict[str, Any]:
    connection = sqlite3.connect(path)
    try:
        documents: dict[str, list[dict[str, Any]]] = {}
        for collection, body in connection.execute("SELECT collection, body FROM docs"):
            # The stored JSON as is ({"$date": ...} stays a dict and is copied unchanged).
            documents.setdefault(collection, []).append(orjson.loads(body))

        def write(collection: str, batch: list[dict[str, Any]]) -> None:
            rows = [(collection, orjson.dumps(d["_id"]).decode(), orjson.dumps(d)) for d in batch]
            connection.executemany("INSERT INTO docs (collection, id, body) VALUES (?, ?, ?)", rows)
            connection.commit()

        return fill(documents, copies, groups, write)
    finally:
        connection.close()


def fill(
    documents: dict[str, list[dict[str, Any]]],
    copies: int,
    groups: int,
    write: Callable[[str, list[dict[str, Any]]], Any],
) -> dict[str, Any]:
    began = time.monotonic()
    clone_plan = plan(documents, groups)
    fingerprints = fingerprint_map(documents.get("triage_alerts", []), copies, groups)
    batches: dict[str, list[dict[str, Any]]] = {}
    written: dict[str, int] = {}
    for collection, doc in clones(clone_plan, copies, groups, fingerprints):
        batch = batches.setdefault(collection, [])
        batch.append(doc)
        if len(batch) >= 2000:
            write(collection, batch)
            written[collection] = written.get(collection, 0) + len(batch)
            batch.clear()
    for collection, batch in batches.items():
        if batch:
            write(collection, batch)
            written[collection] = written.get(collection, 0) + len(batch)
    seeded = {name: len(docs) for name, docs in documents.items()}
    return {
        "seeded_documents": seeded,
        "cloned_documents": written,
        "total_documents": {name: seeded[name] + written.get(name, 0) for name in seeded},
        "not_cloned_nothing_to_rename": clone_plan.kept,
        "not_cloned_shared_id": clone_plan.shared,
        "fill_seconds": round(time.monotonic() - began, 1),
    }


# ---------------------------------------------------------------------------------------------
# Exercising the filled deployment


async def console_client(escalation: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=escalation, timeout=60)
    form = await client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if csrf is None:
        raise SystemExit(f"no login form: {form.status_code}")
    answer = await client.post(
        "/ui/login", data={"csrf": csrf.group(1), "user": "alice", "password": PASSWORD}
    )
    if answer.status_code != 303:
        raise SystemExit(f"console login: {answer.status_code}")
    return client


async def exercise(
    deployment: Deployment, sink: Sink, tag: str, groups: int, copies: int, phases: Phases
) -> dict[str, Any]:
    phases.mark("alerts and API")
    headers = {"Authorization": f"Bearer {ADMIN}"}
    timings: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=120, headers=headers) as client:
        began = time.monotonic()
        new = [f"MemBenchNew-{tag}-{n}" for n in range(5)]
        for name in new:
            await post(client, deployment.ingest, alert_body(name, ["host-new:9100"]))
        # New alerts into old groups: seeded ones and cloned ones.
        for group in (0, 1, groups * (copies - 1), groups * copies - 1 - groups // 2):
            body = alert_body(group_name(group), [f"host-{tag}:9100"])
            await post(client, deployment.ingest, body)

        async def paged() -> bool:
            with sink.lock:
                return all(f"{name} is down" in sink.first for name in new)

        try:
            await wait_for("the new groups' pages", paged, 120)
            timings["new_groups_paged_s"] = round(time.monotonic() - began, 2)
        except TimeoutError:
            timings["new_groups_paged_s"] = "not all within 120 s"
        reads = {
            "alerts": (deployment.triage, "/api/v1/alerts"),
            "alerts_firing": (deployment.triage, "/api/v1/alerts?status=firing"),
            "incidents": (deployment.escalation, "/api/v1/incidents"),
            "incidents_triggered": (deployment.escalation, "/api/v1/incidents?status=triggered"),
            "analytics_incidents": (deployment.escalation, "/api/v1/analytics/incidents"),
            "analytics_responders": (deployment.escalation, "/api/v1/analytics/responders"),
            "oncall": (deployment.escalation, "/api/v1/oncall"),
            "action_items": (deployment.escalation, "/api/v1/action-items"),
            "status_page": (deployment.notifier, "/status/public"),
        }
        for name, (base, path) in reads.items():
            start = time.monotonic()
            try:
                answer = await client.get(base + path)
            except httpx.HTTPError as error:
                timings[name] = {"error": type(error).__name__}
                continue
            timings[name] = {
                "status": answer.status_code,
                "ms": round(1000 * (time.monotonic() - start)),
                "bytes": len(answer.content),
            }
        try:
            listing = (await client.get(f"{deployment.escalation}/api/v1/incidents")).json()
        except (httpx.HTTPError, ValueError):
            listing = {}
        if listing.get("incidents"):
            one = listing["incidents"][-1]["id"]
            start = time.monotonic()
            answer = await client.get(f"{deployment.escalation}/api/v1/incidents/{one}")
            timings["incident"] = {
                "status": answer.status_code,
                "ms": round(1000 * (time.monotonic() - start)),
            }
    phases.mark("password login")
    try:
        console = await console_client(deployment.escalation)
    except (SystemExit, httpx.HTTPError) as error:
        timings["console_incidents"] = {"error": str(error)}
        return timings
    finally:
        phases.mark("alerts and API")
    try:
        start = time.monotonic()
        answer = await console.get("/ui/incidents")
        timings["console_incidents"] = {
            "status": answer.status_code,
            "ms": round(1000 * (time.monotonic() - start)),
            "bytes": len(answer.content),
        }
    finally:
        await console.aclose()
    return timings


def mb(value: float) -> float:
    return round(value / 2**20, 1)


@dataclass
class Phases:
    """What the deployment was doing from when: start, alerts and API, password login, idle."""

    marks: list[tuple[float, str]] = field(default_factory=list)

    def mark(self, name: str) -> None:
        self.marks.append((time.monotonic(), name))

    def of(self, at: float) -> str:
        current = "start"
        for began, name in self.marks:
            if began <= at:
                current = name
        return current


def rss_summary(service: Service, phases: Phases) -> dict[str, Any]:
    """Peak per phase, steady (median while idle), and the last sample before ready."""
    peaks: dict[str, int] = {}
    idle: list[int] = []
    for at, rss in service.samples:
        phase = phases.of(at)
        peaks[phase] = max(peaks.get(phase, 0), rss)
        if phase == "idle":
            idle.append(rss)
    at_ready = [rss for at, rss in service.samples if service.ready_at and at <= service.ready_at]
    peak = max(peaks.values(), default=0)
    return {
        "rss_at_ready_mb": mb(at_ready[-1]) if at_ready else None,
        "rss_peak_mb": mb(peak),
        "rss_peak_mb_by_phase": {name: mb(value) for name, value in peaks.items()},
        "rss_steady_mb": mb(statistics.median(idle)) if idle else None,
        "within_target": peak <= TARGET_MB * 2**20,
        "restarts_at_start": service.restarts,
        "samples": len(service.samples),
    }


# ---------------------------------------------------------------------------------------------


async def run_mode(
    mode: str, args: argparse.Namespace, sink: Sink, mongo_url: str
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix=f"memory-bench-{mode}-"))
    config = workdir / "tocsin.yaml"
    config.write_text(config_text(sink.port))
    env = {
        "TOCSIN_ADMIN_TOKEN": ADMIN,
        "TOCSIN_LOG_LEVEL": "WARNING",
        "TOCSIN_KAFKA_NAMESPACE": f"membench-{run_id}.",
        "TOCSIN_MONGO_DATABASE": f"membench_{run_id}",
        "TOCSIN_MONGO_URL": mongo_url,
    }
    groups = args.groups + args.resolved
    seeded: dict[str, Any] = {}
    filled: dict[str, Any] = {}
    if args.reuse and mode == "distributed":
        # A database a run with --keep left filled: measure again (e.g. under --trace).
        env["TOCSIN_MONGO_DATABASE"] = args.reuse
        filled = {"reused_database": args.reuse}
    else:
        database = env["TOCSIN_MONGO_DATABASE"]
        print(f"[{mode}] seeding through the pipeline (logs in {workdir}, {database})", flush=True)
        deployment = start_deployment(mode, config, env, workdir, set())
        try:
            wait_ready(deployment.services)
            seeded = await seed(deployment, sink, args)
        finally:
            stop(deployment.services)
        print(f"[{mode}] seeded: {seeded}; cloning x{args.copies}", flush=True)
        if mode == "embedded":
            filled = fill_sqlite(workdir / "data" / "tocsin.sqlite", args.copies, groups)
        else:
            filled = fill_mongo(mongo_url, env["TOCSIN_MONGO_DATABASE"], args.copies, groups)
        print(f"[{mode}] filled: {json.dumps(filled)}", flush=True)
    deployment = start_deployment(mode, config, env, workdir, set(args.trace))
    sampler = Sampler(deployment.services)
    phases = Phases()
    rounds: list[dict[str, Any]] = []
    not_ready = None
    startup = None
    try:
        began = time.monotonic()
        try:
            wait_ready(deployment.services)
            startup = round(time.monotonic() - began, 1)
            for service in deployment.services:
                if service.name in args.trace:
                    service.popen.send_signal(signal.SIGUSR1)  # the baseline
            if args.trace:
                await asyncio.sleep(60)
        except NotReady as error:
            # Still a result: what each process used while trying; nothing to exercise.
            not_ready = str(error)
            print(f"[{mode}] NOT READY: {not_ready}", flush=True)
        for round_no in range(args.rounds if not_ready is None else 0):
            tag = f"{run_id}-r{round_no}"
            rounds.append(await exercise(deployment, sink, tag, groups, args.copies, phases))
        phases.mark("idle")
        await asyncio.sleep(args.idle)
        phases.mark("tracemalloc")
        for service in deployment.services:
            if service.name in args.trace:
                service.popen.send_signal(signal.SIGUSR1)
        for service in deployment.services:
            dump = workdir / f"{service.name}.tracemalloc"
            deadline = time.monotonic() + 300  # a snapshot of a big heap takes minutes
            while service.name in args.trace and time.monotonic() < deadline:
                if dump.exists() and "end of traceback list" in dump.read_text():
                    break
                await asyncio.sleep(2)
    finally:
        sampler.stop()
        stop(deployment.services)
        if mode == "distributed" and not args.keep and not args.reuse:
            drop_database(mongo_url, env["TOCSIN_MONGO_DATABASE"])
    processes = {s.name: rss_summary(s, phases) for s in deployment.services}
    for name, summary in processes.items():
        print(f"[{mode}] {name}: {summary}", flush=True)
    return {
        "mode": mode,
        "store": filled,
        "seed": seeded,
        "startup_seconds": startup,
        "not_ready": not_ready,
        "rounds": rounds,
        "processes": processes,
        "workdir": str(workdir),
    }


def drop_database(url: str, name: str) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    try:
        client.drop_database(name)
    finally:
        client.close()


@dataclass
class PrivateStore:
    """A FerretDB (on its own PostgreSQL when installed) for this benchmark alone, started by
    scripts/infra.sh as the shared one is, with its state under .cache/memory-bench: a store
    scan over 100,000 alerts must not stall other work's FerretDB."""

    ferretdb_port: int
    postgres_port: int
    infra_dir: Path = ROOT / ".cache" / "memory-bench"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.ferretdb_port}/?directConnection=true&retryWrites=false"

    def _infra(self, *command: str) -> None:
        env = {
            **os.environ,
            "TOCSIN_INFRA_DIR": str(self.infra_dir),
            "TOCSIN_FERRETDB_PORT": str(self.ferretdb_port),
            "TOCSIN_POSTGRES_PORT": str(self.postgres_port),
        }
        subprocess.run([str(ROOT / "scripts" / "infra.sh"), *command], env=env, check=True)  # noqa: S603

    def up(self) -> None:
        self._infra("ferretdb-up")

    def down(self) -> None:
        self._infra("ferretdb-down")
        self._infra("postgres-down")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="distributed,embedded")
    parser.add_argument("--groups", type=int, default=20, help="open groups seeded")
    parser.add_argument("--resolved", type=int, default=5, help="resolved groups seeded")
    parser.add_argument("--alerts", type=int, default=50, help="alerts per group")
    parser.add_argument("--copies", type=int, default=100, help="the seeded store, times")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle at the end")
    parser.add_argument("--quick", action="store_true", help="5 copies, 1 round, 5 s idle")
    parser.add_argument("--trace", default="", help="processes to run under tracemalloc")
    parser.add_argument("--keep", action="store_true", help="keep the MongoDB database")
    parser.add_argument("--reuse", default=None, help="measure a kept database again (its name)")
    parser.add_argument(
        "--shared-store",
        action="store_true",
        help="use TOCSIN_MONGO_URL's server instead of a private FerretDB (not on a shared one!)",
    )
    parser.add_argument("--ferretdb-port", type=int, default=27118, help="the private FerretDB")
    parser.add_argument("--postgres-port", type=int, default=27532, help="the PostgreSQL behind it")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    args.trace = [name for name in args.trace.split(",") if name]
    if args.quick:
        args.copies, args.rounds, args.idle = 5, 1, 5.0
    sink = Sink()
    sink.start()
    about = machine()
    print(f"memory bench: {about}", flush=True)
    store = None
    mongo_url = os.environ.get("TOCSIN_MONGO_URL", "")
    if "distributed" in args.modes and not args.shared_store:
        store = PrivateStore(args.ferretdb_port, args.postgres_port)
        store.up()
        mongo_url = store.url
    try:
        modes = [await run_mode(mode, args, sink, mongo_url) for mode in args.modes.split(",")]
    finally:
        if store is not None and not args.keep:
            store.down()
    results = {"machine": about, "target_mb": TARGET_MB, "modes": modes}
    for mode in modes:
        for name, summary in mode["processes"].items():
            print(
                f"{mode['mode']:>11} {name:>10}: peak {summary['rss_peak_mb']} MB, steady "
                f"{summary['rss_steady_mb']} MB, at ready {summary['rss_at_ready_mb']} MB, "
                f"peaks by phase {summary['rss_peak_mb_by_phase']}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))  # noqa: ASYNC240


if __name__ == "__main__":
    asyncio.run(main())
