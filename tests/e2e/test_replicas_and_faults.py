"""Two replicas of every service on Kafka and MongoDB, under faults.

One deployment for the module: ingest, triage, escalation and notifier, two processes each, on
a topic namespace and a database of their own. In order:

1. No faults: every new alert group pages its first level once, and the second level (a timer,
   3 s later, claimed by either escalation replica) once.
2. A webhook contact that answers 500, then one that hangs, for a while: pages to it arrive
   after it recovers, once each (one 200 per notification id); pages to everyone else arrive
   meanwhile, not delayed behind it.
3. A kill -9 storm: while new alert groups arrive, a random process (any service, any replica)
   is killed with SIGKILL every few seconds and started again; then the pipeline drains. Every
   accepted group is paged at both levels, no incident step has two notification ids (a
   logical duplicate), no consumer group is left behind, and every dead-letter topic is empty.

CI runs the short version (3 kills, 8 s outages); `make chaos` sets TOCSIN_CHAOS_LONG=1:
20 kills one every 2 s, 60 s outages. Each test prints its counts (the README's table).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.e2e.harness import (
    TocsinProcess,
    alertmanager_payload,
    free_port,
    print_logs,
    start_process,
    stop_processes,
    wait_ready,
)

pytestmark = pytest.mark.e2e

LONG = os.environ.get("TOCSIN_CHAOS_LONG") == "1"
KILLS = 20 if LONG else 3
KILL_EVERY = 2.0 if LONG else 3.0
STORM_RATE = 4.0 if LONG else 3.0  # new alert groups per second during the storm
OUTAGE = 60.0 if LONG else 8.0
SERVICES = ("ingest", "triage", "escalation", "notifier")
CHECKOUT_TOKEN = "chaos-checkout-token-0123456789abcdef"
PAYMENTS_TOKEN = "chaos-payments-token-0123456789abcdef"


@dataclass
class Hit:
    path: str
    body: dict[str, Any]
    status: int
    at: float


@dataclass
class Phones:
    """Every responder's webhook: records each request and what it answered. `/carol` fails
    while `down_until` is ahead: `mode` 500 answers 500 at once, `hang` holds the request
    until then and answers 503."""

    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    down_until: float = 0.0
    mode: str = "500"
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        phones = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                status = 200
                if self.path == "/carol" and time.monotonic() < phones.down_until:
                    if phones.mode == "hang":
                        time.sleep(max(0.0, phones.down_until - time.monotonic()))
                        status = 503
                    else:
                        status = 500
                with phones.lock:
                    phones.hits.append(Hit(self.path, body, status, time.monotonic()))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def delivered(self, prefix: str) -> list[Hit]:
        """Pages answered 200 for incidents whose title starts with `prefix`."""
        with self.lock:
            return [
                h
                for h in self.hits
                if h.status == 200 and h.body["incident"]["title"].startswith(prefix)
            ]


def config_text(phones: Phones) -> str:
    def user(name: str) -> dict[str, Any]:
        hook = f"{name}-hook"
        return {
            "id": name,
            "name": name.title(),
            "contacts": [{"id": hook, "type": "webhook", "address": phones.url(f"/{name}")}],
            "notification_rules": [{"contact": hook, "after": "0s"}],
        }

    config = {
        "services": [
            {"id": "checkout", "name": "Checkout", "tier": 2, "escalation_policy": "two-levels"},
            {"id": "payments", "name": "Payments", "tier": 2, "escalation_policy": "pair"},
        ],
        "integrations": [
            {"id": "am-checkout", "type": "alertmanager", "token": CHECKOUT_TOKEN}
            | {"service": "checkout"},
            {"id": "am-payments", "type": "alertmanager", "token": PAYMENTS_TOKEN}
            | {"service": "payments"},
        ],
        "users": [user(name) for name in ("alice", "bob", "carol", "dave")],
        "escalation_policies": [
            {
                "id": "two-levels",
                "levels": [
                    {"delay": "0s", "targets": [{"user": "alice"}]},
                    {"delay": "3s", "targets": [{"user": "bob"}]},
                ],
            },
            {
                "id": "pair",
                "levels": [{"delay": "0s", "targets": [{"user": "carol"}, {"user": "dave"}]}],
            },
        ],
    }
    return str(yaml.safe_dump(config, sort_keys=False))


@dataclass
class Deployment:
    config: Path
    workdir: Path
    env: dict[str, str]
    namespace: str
    processes: dict[str, TocsinProcess] = field(default_factory=dict)
    restarts: Counter[str] = field(default_factory=Counter)

    def start(self, name: str, port: int | None = None) -> TocsinProcess:
        service = name.rstrip("0123456789")
        args = ["serve", service, "--config", str(self.config)]
        log_name = f"{name}-{self.restarts[name]}"
        process = start_process(args, log_name, port or free_port(), self.env, self.workdir)
        process.name = name
        self.processes[name] = process
        return process

    def kill_and_restart(self, name: str) -> None:
        victim = self.processes[name]
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        self.restarts[name] += 1
        self.start(name, victim.port)

    def ingest_urls(self) -> list[str]:
        return [p.base_url for n, p in self.processes.items() if n.startswith("ingest")]


@pytest.fixture(scope="module")
def phones() -> Iterator[Phones]:
    receiver = Phones()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def deployment(phones: Phones, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("replicas")
    config = workdir / "tocsin.yaml"
    config.write_text(config_text(phones))
    run_id = uuid.uuid4().hex[:10]
    namespace = f"chaos-{run_id}."
    env = {
        "TOCSIN_KAFKA_NAMESPACE": namespace,
        "TOCSIN_MONGO_DATABASE": f"chaos_{run_id}",
        "TOCSIN_TIMER_POLL_SECONDS": "0.1",
        # A killed replica's claimed timers are retaken after the lease: keep the drain short.
        "TOCSIN_TIMER_LEASE_SECONDS": "5",
        # Retries every few seconds: a recovered contact is paged soon, and the 30 attempts a
        # page gets outlast the long outage (a 2 s cap had spent them in 60 s).
        "TOCSIN_NOTIFIER_BACKOFF_SECONDS": "0.5",
        "TOCSIN_NOTIFIER_BACKOFF_CAP_SECONDS": "5",
    }
    deploy = Deployment(config, workdir, env, namespace)
    for service in SERVICES:
        for replica in (1, 2):
            deploy.start(f"{service}{replica}")
    try:
        wait_ready(list(deploy.processes.values()), timeout=180)
        yield deploy
    except BaseException:
        print_logs(list(deploy.processes.values()))
        raise
    finally:
        stop_processes(list(deploy.processes.values()))


def alert(title: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": title.replace(" ", "_"), "severity": "warning"},
        "annotations": {"summary": title},
    }


async def post_group(
    client: httpx.AsyncClient, urls: list[str], token: str, title: str, give_up_at: float
) -> bool:
    """Post one alert group as Alertmanager would: retried (either ingest replica) until a 2xx,
    until `give_up_at`. True once accepted."""
    attempt = 0
    while time.monotonic() < give_up_at:
        url = urls[attempt % len(urls)]
        attempt += 1
        try:
            response = await client.post(
                f"{url}/v1/ingest/{token}",
                json=alertmanager_payload("firing", [alert(title)]),
            )
            if 200 <= response.status_code < 300:
                return True
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.5)
    return False


async def post_groups(
    urls: list[str], token: str, titles: list[str], rate: float, patience: float = 60.0
) -> set[str]:
    accepted: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as client:

        async def one(title: str) -> None:
            if await post_group(client, urls, token, title, time.monotonic() + patience):
                accepted.add(title)

        tasks = []
        for title in titles:
            tasks.append(asyncio.create_task(one(title)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return accepted


def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def logical_duplicates(hits: list[Hit]) -> int:
    """Incident steps (incident, event, level, person) paged under more than one id."""
    ids: dict[tuple[str, str, int, str], set[str]] = defaultdict(set)
    for hit in hits:
        body = hit.body
        step = (
            body["incident"]["id"],
            body["event"],
            body["escalation_level"],
            body["recipient"]["user_id"],
        )
        ids[step].add(body["notification_id"])
    return sum(len(found) - 1 for found in ids.values())


async def kafka_leftovers(namespace: str) -> tuple[dict[str, int], dict[str, int]]:
    """(consumer lag per topic, records per dead-letter topic) of this deployment."""
    bootstrap = os.environ["TOCSIN_KAFKA_BOOTSTRAP"]
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


def test_two_replicas_page_each_group_once_and_fire_each_timer_once(
    deployment: Deployment, phones: Phones
) -> None:
    titles = [f"replicas {n:03d}" for n in range(20)]
    accepted = asyncio.run(post_groups(deployment.ingest_urls(), CHECKOUT_TOKEN, titles, rate=10))
    assert accepted == set(titles)

    def both_levels() -> bool:
        hits = phones.delivered("replicas ")
        return {(h.path, h.body["incident"]["title"]) for h in hits} >= {
            (path, t) for t in titles for path in ("/alice", "/bob")
        }

    assert wait_until(both_levels, 90), "not every group paged at both levels"
    time.sleep(4)  # a timer that would fire twice has had time to
    hits = phones.delivered("replicas ")
    per_title_path = Counter((h.path, h.body["incident"]["title"]) for h in hits)
    print(
        f"replicas: {len(titles)} groups, {len(hits)} pages; {dict(Counter(h.path for h in hits))}"
    )
    assert all(n == 1 for n in per_title_path.values()), per_title_path.most_common(3)
    assert logical_duplicates(hits) == 0


def paged_titles(phones: Phones, prefix: str, path: str) -> set[str]:
    return {h.body["incident"]["title"] for h in phones.delivered(prefix) if h.path == path}


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_a_failing_webhook_is_paged_after_it_recovers_and_delays_nobody_else(
    deployment: Deployment, phones: Phones, mode: str
) -> None:
    prefix = f"flaky-{mode} "
    titles = {f"{prefix}{n:03d}" for n in range(6)}
    phones.mode = mode
    phones.down_until = time.monotonic() + OUTAGE
    recovered_at = phones.down_until
    posted_at = time.monotonic()
    accepted = asyncio.run(
        post_groups(deployment.ingest_urls(), PAYMENTS_TOKEN, sorted(titles), rate=5)
    )
    assert accepted == titles
    dave = wait_until(lambda: paged_titles(phones, prefix, "/dave") >= titles, OUTAGE)
    dave_done = time.monotonic()
    assert dave, f"{mode}: dave's pages waited behind carol's"
    assert dave_done < recovered_at, f"{mode}: dave was paged only after carol recovered"
    carol = wait_until(lambda: paged_titles(phones, prefix, "/carol") >= titles, OUTAGE + 60)
    assert carol, f"{mode}: carol not paged after she recovered"
    time.sleep(3)
    hits = phones.delivered(prefix)
    answered = Counter(h.body["notification_id"] for h in hits)
    with phones.lock:
        failed = [
            h
            for h in phones.hits
            if h.path == "/carol" and h.status != 200 and h.body["incident"]["title"] in titles
        ]
    print(
        f"webhook {mode} for {OUTAGE:.0f}s: dave paged within {dave_done - posted_at:.1f}s; "
        f"carol's failed attempts {len(failed)}; deliveries per page "
        f"{sorted(set(answered.values()))}"
    )
    assert all(n == 1 for n in answered.values()), answered.most_common(3)
    assert len(answered) == 2 * len(titles)
    assert logical_duplicates(hits) == 0


def test_kill_9_storm_loses_nothing_and_pages_nobody_twice(
    deployment: Deployment, phones: Phones
) -> None:
    prefix = "storm "
    count = int(STORM_RATE * KILLS * KILL_EVERY) + 10
    titles = [f"{prefix}{n:04d}" for n in range(count)]
    names = sorted(deployment.processes)
    chooser = random.Random(15)
    killed: list[str] = []
    stop = threading.Event()

    def storm() -> None:
        for _ in range(KILLS):
            if stop.wait(KILL_EVERY):
                return
            name = chooser.choice(names)
            deployment.kill_and_restart(name)
            killed.append(name)

    killer = threading.Thread(target=storm)
    killer.start()
    try:
        accepted = asyncio.run(
            post_groups(deployment.ingest_urls(), CHECKOUT_TOKEN, titles, rate=STORM_RATE)
        )
    finally:
        stop.set()
        killer.join()
    wait_ready(list(deployment.processes.values()), timeout=120)

    def all_paged() -> bool:
        paged = {(h.path, h.body["incident"]["title"]) for h in phones.delivered(prefix)}
        return paged >= {(p, t) for t in accepted for p in ("/alice", "/bob")}

    drained = wait_until(all_paged, 180)
    time.sleep(5)
    hits = phones.delivered(prefix)
    paged = {h.body["incident"]["title"] for h in hits if h.path == "/alice"}
    escalated = {h.body["incident"]["title"] for h in hits if h.path == "/bob"}
    repeats = sum(n - 1 for n in Counter(h.body["notification_id"] for h in hits).values())
    duplicates = logical_duplicates(hits)
    lag, dead = asyncio.run(kafka_leftovers(deployment.namespace))
    for _ in range(15):  # offsets are committed after the work: give the last ones a moment
        if not sum(lag.values()):
            break
        time.sleep(2)
        lag, dead = asyncio.run(kafka_leftovers(deployment.namespace))
    print(
        f"kill -9 storm: kills {len(killed)} ({dict(Counter(killed))}), groups accepted "
        f"{len(accepted)} of {count}, paged {len(paged & accepted)}, escalated "
        f"{len(escalated & accepted)}, lost {len(accepted - paged)}, logical duplicates "
        f"{duplicates}, repeated deliveries of one id {repeats}, lag {lag}, dead letters {dead}"
    )
    if not drained:
        print_logs(list(deployment.processes.values()))
    assert len(killed) == KILLS
    assert accepted, "nothing was accepted"
    assert accepted <= paged, f"lost: {sorted(accepted - paged)[:5]}"
    assert accepted <= escalated, f"not escalated: {sorted(accepted - escalated)[:5]}"
    assert duplicates == 0
    assert sum(lag.values()) == 0, lag
    assert sum(dead.values()) == 0, dead
