"""The Kafka broker and FerretDB (and the PostgreSQL behind it) restarted during load.

The four services run as `tocsin serve` processes, one each, on a private Kafka broker, FerretDB
and PostgreSQL of their own (`scripts/infra.sh` with another state directory and other loopback
ports), so the shared servers of the other tests are never stopped. While a stream of new alert
groups arrives (each one retried as Alertmanager does, until a 2xx), the infrastructure goes
away for some seconds and comes back, one fault after the other:

- short (CI): the broker stopped cleanly, then FerretDB killed with SIGKILL;
- long (`make chaos`, TOCSIN_CHAOS_LONG=1): the broker stopped and killed, FerretDB stopped and
  killed, with longer outages; and, on its own, PostgreSQL stopped behind a running FerretDB
  (FerretDB's "backend unreachable" answers are the store being unavailable:
  tocsin/runtime/mongo.py `backend_down`).

Then the pipeline drains. Asserted: ingest answers only 202 or 503 with `Retry-After`, each
within a bound (no hang, no 500); every group that got a 2xx, before, during or after an outage,
is paged at both levels of its policy, exactly once per step (one notification id per incident
step; the same id delivered twice, at least once, is counted and printed: receivers dedupe by
it); no consumer group is left behind; every dead-letter topic is empty;
and no service process died (a supervisor would restart one and count it: the count must be 0,
the services recover by themselves). The counts are printed (the README's table).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import MongoClient

from tests.e2e.harness import (
    ROOT,
    alertmanager_payload,
    free_port,
    print_logs,
    stop_processes,
    wait_ready,
)
from tests.e2e.test_replicas_and_faults import (
    CHECKOUT_TOKEN,
    Deployment,
    Phones,
    alert,
    config_text,
    logical_duplicates,
    wait_until,
)

LONG = os.environ.get("TOCSIN_CHAOS_LONG") == "1"
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800 if LONG else 600)]
OUTAGE = 20.0 if LONG else 6.0  # seconds each server stays away
GAP = 10.0 if LONG else 6.0  # seconds of normal service around each fault
RATE = 3.0  # new alert groups per second
# How long the drain may take after the load. The backlog an outage leaves is worked through at
# the store's pace (a fired timer costs a dozen FerretDB round trips on the loaded machine).
DRAIN = 420.0 if LONG else 180.0
# TOCSIN_FAULTS (comma-separated) picks other faults, e.g. one to reproduce; "postgres stop" has
# its own test (below).
FAULTS: tuple[str, ...] = tuple(
    f.strip()
    for f in os.environ.get(
        "TOCSIN_FAULTS",
        "kafka stop, kafka kill -9, ferretdb stop, ferretdb kill -9"
        if LONG
        else "kafka stop, ferretdb kill -9",
    ).split(",")
)
SERVICES = ("ingest", "triage", "escalation", "notifier")
INFRA = ROOT / "scripts" / "infra.sh"
# Kafka's request timeout and ingest's publish timeout are 5 s: a 503 comes well within this,
# before Alertmanager's own webhook timeout would fire.
ANSWER_BOUND_S = 15.0


@dataclass
class PrivateInfra:
    """Kafka, FerretDB and PostgreSQL of this test alone, started by scripts/infra.sh."""

    state_dir: Path
    env: dict[str, str]
    kafka_port: int
    ferretdb_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.ferretdb_port}/?directConnection=true&retryWrites=false"

    def run(self, *args: str) -> None:
        subprocess.run([str(INFRA), *args], env=self.env, check=True, timeout=180)

    def kill(self, pid_file: str) -> None:
        """SIGKILL a server by the pid infra.sh recorded: no clean shutdown at all."""
        pid = int((self.state_dir / pid_file).read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self, fault: str) -> None:
        match fault:
            case "kafka stop":
                self.run("kafka-down")
            case "kafka kill -9":
                self.kill("kafka/kafka.pid")
            case "ferretdb stop":
                self.run("ferretdb-down")
            case "ferretdb kill -9":
                self.kill("ferretdb/ferretdb.pid")
            case "postgres stop":
                self.run("postgres-down")
            case _:
                raise ValueError(fault)

    def start(self, fault: str) -> None:
        self.run("kafka-up" if fault.startswith("kafka") else "ferretdb-up")


@pytest.fixture(scope="module")
def infra() -> Iterator[PrivateInfra]:
    # Under the repository's .cache (not /tmp/pytest-of-root, mode 0700): PostgreSQL runs as
    # the `postgres` user when the tests run as root, and must reach its data directory.
    state_dir = ROOT / ".cache" / f"faults-{uuid.uuid4().hex[:8]}"
    kafka_port, ferretdb_port = free_port(), free_port()
    env = {
        **os.environ,
        "TOCSIN_INFRA_DIR": str(state_dir),
        "TOCSIN_KAFKA_PORT": str(kafka_port),
        "TOCSIN_KAFKA_CONTROLLER_PORT": str(free_port()),
        "TOCSIN_FERRETDB_PORT": str(ferretdb_port),
        "TOCSIN_POSTGRES_PORT": str(free_port()),
    }
    servers = PrivateInfra(state_dir, env, kafka_port, ferretdb_port)
    try:
        servers.run("up")
        yield servers
    finally:
        subprocess.run([str(INFRA), "down", "--wipe"], env=env, check=False, timeout=120)
        shutil.rmtree(state_dir, ignore_errors=True)


@dataclass
class Supervisor:
    """Restarts a service process that exited (and counts it), as a process manager would."""

    deployment: Deployment
    crashes: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for name, process in list(self.deployment.processes.items()):
                if process.process.poll() is not None:
                    code = process.process.returncode
                    self.crashes.append(f"{name} (exit {code})")
                    print(f"----- {name} exited with {code} -----\n{process.log()[-4000:]}")
                    self.deployment.restarts[name] += 1
                    self.deployment.start(name, process.port)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass
class Answer:
    status: int  # 0: no answer (transport error or client timeout)
    seconds: float
    retry_after: str | None
    at: float
    title: str


async def post_groups(
    url: str, rate: float, patience: float, until: threading.Event
) -> tuple[list[str], set[str], list[Answer]]:
    """Post a new group every 1/rate s until `until` is set, each as Alertmanager would
    (retried on 5xx or no answer until a 2xx, or until `patience` runs out); every answer is
    recorded. Returns (groups posted, groups accepted, answers)."""
    titles: list[str] = []
    accepted: set[str] = set()
    answers: list[Answer] = []
    async with httpx.AsyncClient(timeout=ANSWER_BOUND_S * 2) as client:

        async def one(title: str) -> None:
            give_up_at = time.monotonic() + patience
            body = alertmanager_payload("firing", [alert(title)])
            while time.monotonic() < give_up_at:
                started = time.monotonic()
                try:
                    response = await client.post(f"{url}/v1/ingest/{CHECKOUT_TOKEN}", json=body)
                    status, retry_after = response.status_code, response.headers.get("Retry-After")
                except httpx.HTTPError:
                    status, retry_after = 0, None
                answers.append(
                    Answer(status, time.monotonic() - started, retry_after, started, title)
                )
                if 200 <= status < 300:
                    accepted.add(title)
                    return
                await asyncio.sleep(0.5)

        tasks = []
        while not until.is_set():
            titles.append(f"restart {len(titles):04d}")
            tasks.append(asyncio.create_task(one(titles[-1])))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return titles, accepted, answers


async def kafka_leftovers(bootstrap: str, namespace: str) -> tuple[dict[str, int], dict[str, int]]:
    """(consumer lag per topic, records per dead-letter topic) of this deployment."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    lag: dict[str, int] = {}
    dead: dict[str, int] = {}
    try:
        for group, _ in await admin.list_consumer_groups():
            if group.startswith(namespace):
                committed = await admin.list_consumer_group_offsets(group)
                ends = await consumer.end_offsets(list(committed))
                for tp, meta in committed.items():
                    lag[tp.topic] = lag.get(tp.topic, 0) + max(ends[tp] - meta.offset, 0)
        dlqs = [
            t for t in await consumer.topics() if t.startswith(namespace) and t.endswith(".dlq")
        ]
        for topic in dlqs:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in partitions]
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            dead[topic] = sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()
        await admin.close()
    return lag, dead


def store_trail(mongo_url: str, database: str, incident_ids: list[str]) -> str:
    """What the store holds about some incidents (printed when one was not paged)."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    lines = []
    try:
        db = client[database]
        for name in sorted(db.list_collection_names()):
            collection = db[name]
            lines.append(f"{name}: {collection.count_documents({})} documents")
            for incident_id in incident_ids:
                query = {"$or": [{"_id": incident_id}, {"incident_id": incident_id}]}
                for doc in collection.find(query).limit(5):
                    lines.append(f"  {name}: {str(doc)[:1500]}")
    finally:
        client.close()
    return "\n".join(lines)


def test_kafka_and_ferretdb_restarts_during_load_lose_nothing_and_page_once(
    infra: PrivateInfra, tmp_path: Path
) -> None:
    restarts_during_load(infra, tmp_path, FAULTS)


@pytest.mark.skipif(not LONG, reason="make chaos only (TOCSIN_CHAOS_LONG=1)")
def test_postgresql_stopped_behind_a_running_ferretdb_during_load(
    infra: PrivateInfra, tmp_path: Path
) -> None:
    restarts_during_load(infra, tmp_path, ("postgres stop",))


def restarts_during_load(infra: PrivateInfra, tmp_path: Path, faults: tuple[str, ...]) -> None:
    phones = Phones()
    phones.start()
    config = tmp_path / "tocsin.yaml"
    config.write_text(config_text(phones))
    run_id = uuid.uuid4().hex[:10]
    namespace = f"faults-{run_id}."
    env = {
        "TOCSIN_KAFKA_BOOTSTRAP": infra.bootstrap,
        "TOCSIN_MONGO_URL": infra.mongo_url,
        "TOCSIN_KAFKA_NAMESPACE": namespace,
        "TOCSIN_MONGO_DATABASE": f"faults_{run_id}",
        "TOCSIN_TIMER_POLL_SECONDS": "0.1",
        "TOCSIN_NOTIFIER_BACKOFF_SECONDS": "0.5",
        "TOCSIN_NOTIFIER_BACKOFF_CAP_SECONDS": "5",
        # A timer claimed by a firing the store outage broke is retaken after the lease.
        "TOCSIN_TIMER_LEASE_SECONDS": "5",
    }
    deployment = Deployment(config, tmp_path, env, namespace)
    for service in SERVICES:
        deployment.start(service)
    supervisor = Supervisor(deployment)
    windows: list[tuple[str, float, float]] = []  # (fault, down at, back at)
    try:
        wait_ready(list(deployment.processes.values()), timeout=120)
        supervisor.start()
        failure: list[BaseException] = []
        finished = threading.Event()

        def inject() -> None:
            try:
                time.sleep(GAP)
                for fault in faults:
                    down_at = time.monotonic()
                    infra.stop(fault)
                    time.sleep(OUTAGE)
                    infra.start(fault)
                    windows.append((fault, down_at, time.monotonic()))
                    time.sleep(GAP)
            except BaseException as error:  # reported by the main thread
                failure.append(error)
            finally:
                finished.set()

        injector = threading.Thread(target=inject)
        load_started = time.monotonic()
        injector.start()
        try:
            titles, accepted, answers = asyncio.run(
                post_groups(
                    deployment.processes["ingest"].base_url, RATE, OUTAGE * 3 + 60, finished
                )
            )
        finally:
            injector.join()
        assert not failure, failure

        def all_paged() -> bool:
            paged = {(h.path, h.body["incident"]["title"]) for h in phones.delivered("restart ")}
            return paged >= {(p, t) for t in accepted for p in ("/alice", "/bob")}

        load_seconds = time.monotonic() - load_started
        drained = wait_until(all_paged, DRAIN)
        drain_seconds = time.monotonic() - load_started - load_seconds
        time.sleep(5)  # a duplicate that would come has had time to
        hits = phones.delivered("restart ")
        paged = {h.body["incident"]["title"] for h in hits if h.path == "/alice"}
        escalated = {h.body["incident"]["title"] for h in hits if h.path == "/bob"}
        repeats = sum(n - 1 for n in Counter(h.body["notification_id"] for h in hits).values())
        duplicates = logical_duplicates(hits)
        lag, dead = asyncio.run(kafka_leftovers(infra.bootstrap, namespace))
        for _ in range(15):  # offsets are committed after the work: give the last ones a moment
            if not sum(lag.values()):
                break
            time.sleep(2)
            lag, dead = asyncio.run(kafka_leftovers(infra.bootstrap, namespace))

        statuses = Counter(a.status for a in answers)
        slowest = max((a.seconds for a in answers), default=0.0)

        def during(answer: Answer) -> str | None:
            for fault, down_at, back_at in windows:
                if down_at <= answer.at <= back_at:
                    return fault
            return None

        per_fault = {
            fault: dict(Counter(a.status for a in answers if during(a) == fault))
            for fault, _, _ in windows
        }
        print(
            f"infra restarts ({', '.join(faults)}; {OUTAGE:.0f}s each): groups posted "
            f"{len(titles)}, accepted {len(accepted)}, answers {dict(statuses)} (2xx "
            f"{sum(n for s, n in statuses.items() if 200 <= s < 300)}, 503 {statuses[503]}), "
            f"answers per outage {per_fault}, slowest answer {slowest:.1f}s; pages {len(hits)}: "
            f"paged {len(paged & accepted)}, escalated {len(escalated & accepted)}, lost "
            f"{len(accepted - paged)}, logical duplicates {duplicates}, repeated deliveries of "
            f"one id {repeats}, lag {lag}, dead letters {dead}, process crashes "
            f"{supervisor.crashes}; load {load_seconds:.0f}s, drained {drain_seconds:.0f}s later"
        )
        if not drained or supervisor.crashes:
            print_logs(list(deployment.processes.values()))
        assert len(windows) == len(faults)
        assert set(statuses) <= {202, 503}, statuses
        assert all(int(a.retry_after or 0) > 0 for a in answers if a.status == 503)
        assert slowest < ANSWER_BOUND_S, f"an answer took {slowest:.1f}s"
        kafka_outages = [f for f in per_fault if f.startswith("kafka")]
        assert all(per_fault[f].get(503) for f in kafka_outages), per_fault
        assert accepted == set(titles), f"never accepted: {sorted(set(titles) - accepted)[:5]}"
        accepted_at = {a.title: a.at - load_started for a in answers if a.status == 202}
        opened = [(f, round(d - load_started), round(b - load_started)) for f, d, b in windows]
        lost = [(t, round(accepted_at[t])) for t in sorted(accepted - paged)]
        assert not lost, f"lost (title, accepted at s): {lost[:10]}; outages (s) {opened}"
        if not accepted <= escalated:
            ids = {h.body["incident"]["title"]: h.body["incident"]["id"] for h in hits}
            missing = sorted(accepted - escalated)[:2]
            print(
                store_trail(
                    infra.mongo_url,
                    env["TOCSIN_MONGO_DATABASE"],
                    [ids[t] for t in missing if t in ids],
                )
            )
        assert accepted <= escalated, f"not escalated: {sorted(accepted - escalated)[:5]}"
        assert duplicates == 0
        assert sum(lag.values()) == 0, lag
        assert sum(dead.values()) == 0, dead
        assert supervisor.crashes == [], supervisor.crashes
    finally:
        supervisor.stop()
        stop_processes(list(deployment.processes.values()))
        phones.stop()
