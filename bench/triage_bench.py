"""Triage drain benchmark (not a test): how fast one triage process works through a backlog on
`alerts.raw`, batched (a consumer batch at a time) against the per-alert path (the same code
handed one message at a time), in both modes: the embedded bus and store (`tocsin up`'s SQLite
file) and Kafka + MongoDB (FerretDB here).

Each run starts from an empty store: a warm-up opens the existing incidents (`--groups` groups of
`--fingerprints` alerts each, triaged untimed), then `--alerts` occurrences are preloaded on
`alerts.raw`: a storm into those incidents (repeats of their alerts, and new alerts joining
them: `--adds`), plus a few new alert groups (`--new-groups`). Then triage starts in this
process and the time until it handled the last preloaded message is measured: the drain rate,
alerts/s. Median of `--runs` runs per variant.

    .venv/bin/python bench/triage_bench.py                          # both modes
    .venv/bin/python bench/triage_bench.py --modes embedded --alerts 20000 --runs 1
    source .cache/infra.env && .venv/bin/python bench/triage_bench.py --modes kafka
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingest_bench import commit, machine

from schemas import ALERTS_RAW, AlertReceived, AlertStatus, Label
from services.triage.config import TriageConfig
from services.triage.consumers import AlertTriage
from services.triage.store import MongoTriageStore
from tocsin.runtime.bus import Bus, Subscription
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.kafka import KafkaBus
from tocsin.runtime.mongo import MongoDatabase, open_client
from tocsin.runtime.store import DocumentDatabase

GROUP = "bench-triage"


@dataclass(frozen=True)
class Storm:
    groups: int
    fingerprints: int  # per group, opened by the warm-up
    alerts: int  # preloaded occurrences
    adds: float  # share of new alerts joining an existing group
    new_groups: int  # alerts opening new groups (one each)


def occurrence(group: int, alert: int, salt: str) -> AlertReceived:
    name = f"Bench{group}{salt}"
    return AlertReceived(
        occurred_at=datetime.now(UTC),
        correlation_id=f"bench-{group}-{alert}",
        fingerprint=f"{salt}{group:04d}{alert:08d}",
        status=AlertStatus.FIRING,
        integration_id="bench",
        source="alertmanager",
        service_id="checkout",
        alertname=name,
        summary=f"{name} on instance {alert}",
        severity="critical",
        labels=(
            Label(name="alertname", value=name),
            Label(name="instance", value=f"host-{alert}:9100"),
            Label(name="job", value="checkout"),
        ),
    )


def warm_up(storm: Storm) -> list[AlertReceived]:
    return [occurrence(g, a, "") for g in range(storm.groups) for a in range(storm.fingerprints)]


def preload(storm: Storm, seed: int) -> list[AlertReceived]:
    """Repeats and adds in random order, the new groups spread through the storm."""
    pick = random.Random(seed)  # noqa: S311 (a reproducible storm, not a secret)
    alerts: list[AlertReceived] = []
    added = 0
    for _ in range(storm.alerts - storm.new_groups):
        group = pick.randrange(storm.groups)
        if pick.random() < storm.adds:
            added += 1
            alerts.append(occurrence(group, storm.fingerprints + added, ""))
        else:
            alerts.append(occurrence(group, pick.randrange(storm.fingerprints), ""))
    for n in range(storm.new_groups):
        alerts.insert(pick.randrange(len(alerts) + 1), occurrence(n, 0, "new"))
    return alerts


@dataclass
class Drained:
    """Counts handled messages; set once `expected` were."""

    expected: int
    handled: int = 0

    def __post_init__(self) -> None:
        self.done = asyncio.Event()

    def add(self, n: int) -> None:
        self.handled += n
        if self.handled >= self.expected:
            self.done.set()


def subscription(
    triage: AlertTriage, drained: Drained, batched: bool
) -> Subscription[AlertReceived]:
    async def one(alert: AlertReceived) -> None:
        await triage.handle(alert)
        drained.add(1)

    async def many(alerts: Sequence[AlertReceived]) -> None:
        await triage.handle_batch(alerts)
        drained.add(len(alerts))

    return Subscription(
        ALERTS_RAW, GROUP, AlertReceived, one, batch_handler=many if batched else None
    )


@asynccontextmanager
async def embedded() -> AsyncIterator[tuple[Bus, DocumentDatabase]]:
    with tempfile.TemporaryDirectory(prefix="tocsin-triage-bench-") as directory:
        file = SqliteFile(Path(directory) / "tocsin.sqlite")
        bus = EmbeddedBus(file)
        await bus.start()
        try:
            yield bus, EmbeddedDatabase(file)
        finally:
            await bus.stop()
            file.close()


@asynccontextmanager
async def kafka() -> AsyncIterator[tuple[Bus, DocumentDatabase]]:
    run = uuid.uuid4().hex[:8]
    bus = KafkaBus(os.environ["TOCSIN_KAFKA_BOOTSTRAP"], f"bench-{run}", namespace=f"bench-{run}-")
    await bus.start()
    client = open_client(os.environ["TOCSIN_MONGO_URL"])
    name = f"bench_triage_{run}"
    try:
        yield bus, MongoDatabase(client[name])
    finally:
        await bus.stop()
        await client.drop_database(name)
        await client.close()


async def publish(bus: Bus, alerts: Sequence[AlertReceived]) -> None:
    for start in range(0, len(alerts), 1000):
        chunk = alerts[start : start + 1000]
        await bus.publish_many(ALERTS_RAW, [(a.fingerprint, a) for a in chunk])


async def drain(bus: Bus, triage: AlertTriage, expected: int, batched: bool) -> tuple[float, float]:
    """Seconds from starting the consumer to its handling the `expected`-th message, and the
    CPU seconds this process spent meanwhile."""
    drained = Drained(expected)
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(bus.consume(subscription(triage, drained, batched)))
    try:
        done = asyncio.create_task(drained.done.wait())
        finished, _ = await asyncio.wait({task, done}, return_when=asyncio.FIRST_COMPLETED)
        if task in finished:
            task.result()  # the consumer failed: say why
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        done.cancel()


async def one_run(mode: str, storm: Storm, batched: bool, seed: int) -> tuple[float, float]:
    """Alerts per second, and per CPU-second of this process (the one triage process)."""
    setup = embedded if mode == "embedded" else kafka
    async with setup() as (bus, database):
        store = MongoTriageStore(database)
        await store.ensure_indexes()
        triage = AlertTriage(bus, store, TriageConfig())
        opening = warm_up(storm)
        await publish(bus, opening)
        await drain(bus, triage, len(opening), batched=True)  # untimed: the existing incidents
        alerts = preload(storm, seed)
        await publish(bus, alerts)
        count = len(alerts)
        # A triage process holds no copy of its backlog: neither does the timed drain (the
        # garbage collector would walk it), nor the setup's garbage.
        del alerts, opening
        gc.collect()
        seconds, cpu = await drain(bus, triage, count, batched)
        return count / seconds, count / cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", default=["embedded", "kafka"])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument(
        "--baseline-alerts",
        type=int,
        default=10_000,
        help="occurrences for the per-alert baseline (it is an order of magnitude slower)",
    )
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--fingerprints", type=int, default=1000)
    parser.add_argument("--adds", type=float, default=0.05)
    parser.add_argument("--new-groups", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}; commit {commit()}", flush=True)
    rows = []
    for mode in args.modes:
        result: dict[bool, tuple[float, float]] = {}
        for batched, alerts in ((False, args.baseline_alerts), (True, args.alerts)):
            storm = Storm(args.groups, args.fingerprints, alerts, args.adds, args.new_groups)
            rates, per_cpu = [], []
            for run in range(args.runs):
                rate, cpu_rate = await one_run(mode, storm, batched, seed=run)
                rates.append(rate)
                per_cpu.append(cpu_rate)
                what = "batched" if batched else "per alert"
                print(
                    f"{mode:8} {what:9} run {run + 1}: {alerts:,} alerts, {rate:,.0f}/s, "
                    f"{cpu_rate:,.0f} per CPU-second (load average {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
            result[batched] = (statistics.median(rates), statistics.median(per_cpu))
        rows.append((mode, result[False], result[True]))
    print()
    print(
        "| mode | per alert (baseline), alerts/s | batched, alerts/s | speed-up "
        "| alerts per CPU-second (baseline / batched) |"
    )
    print("|---|---|---|---|---|")
    for mode, (single, single_cpu), (batch, batch_cpu) in rows:
        print(
            f"| {mode} | {single:,.0f} | {batch:,.0f} | {batch / single:.1f}x "
            f"| {single_cpu:,.0f} / {batch_cpu:,.0f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
