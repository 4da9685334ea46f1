"""Crash safety of `tocsin up`: post a few hundred distinct alert groups, kill -9 the process
right after the last 2xx, start it again on the same data directory.

What is guaranteed, and asserted on the deliveries the receiver saw:
- nothing accepted is lost: every group is delivered;
- one notification per group (one `notification_id`), never a second page for one step;
- a delivery is repeated (same `notification_id`, same `Idempotency-Key`) only when the kill
  landed between the receiver's answer and the notifier's record of it: so only deliveries
  the receiver answered before the kill repeat, at most as many as the notifier had in flight.
The test prints the repeat window: how long before the kill the repeated deliveries had been
answered (the time a delivered page stays unrecorded)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import (
    WebhookReceiver,
    alertmanager_payload,
    free_port,
    one_service_config,
    start_process,
    stop_processes,
    wait_ready,
)

pytestmark = pytest.mark.e2e

GROUPS = 300
IN_FLIGHT = 16  # the notifier's delivery concurrency (services/notifier/consumers.py)
TOKEN = "crash-test-token-0123456789abcdef"


def write_config(path: Path, receiver: WebhookReceiver) -> None:
    path.write_text(
        one_service_config(TOKEN, {"alice": receiver.url("/alice")}, [("0s", ["alice"])])
    )


async def post_groups(base_url: str) -> list[int]:
    limits = asyncio.Semaphore(16)

    async def post(client: httpx.AsyncClient, n: int) -> int:
        alert = {
            "status": "firing",
            "labels": {"alertname": f"Group{n:04d}", "severity": "warning"},
            "annotations": {"summary": f"group {n:04d}"},
        }
        async with limits:
            response = await client.post(
                f"{base_url}/v1/ingest/{TOKEN}", json=alertmanager_payload("firing", [alert])
            )
            return response.status_code

    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(post(client, n) for n in range(GROUPS))))


def test_kill_9_after_the_last_2xx_loses_nothing_and_pages_each_group_once(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver()
    receiver.start()
    config = tmp_path / "tocsin.yaml"
    write_config(config, receiver)
    args = ["up", "--config", str(config), "--data-dir", str(tmp_path / "data")]
    port = free_port()
    first = start_process(args, "first", port, {}, tmp_path)
    second = None
    try:
        wait_ready([first])
        statuses = asyncio.run(post_groups(first.base_url))
        first.process.send_signal(signal.SIGKILL)  # right after the last 2xx
        first.process.wait(timeout=10)
        # When it was gone: a page it sent before dying may still be answered after the signal
        # went out (a clean-clone CI run saw one), and is then rightly delivered again.
        killed_at = time.monotonic()
        assert statuses == [202] * GROUPS
        paged_before_crash = {p.body["incident"]["title"] for p in receiver.snapshot()}

        second = start_process(args, "second", port, {}, tmp_path)
        wait_ready([second])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            titles = {p.body["incident"]["title"] for p in receiver.snapshot()}
            if len(titles) >= GROUPS:
                break
            time.sleep(0.2)
        time.sleep(2)  # anything that would page twice has had time to
        pages = receiver.snapshot()
        ids_by_group: dict[str, set[str]] = defaultdict(set)
        for page in pages:
            ids_by_group[page.body["incident"]["title"]].add(page.body["notification_id"])
        deliveries = Counter(p.body["notification_id"] for p in pages)
        repeated = {nid for nid, n in deliveries.items() if n > 1}
        first_answer: dict[str, float] = {}
        for page in sorted(pages, key=lambda p: p.received_at):
            first_answer.setdefault(page.body["notification_id"], page.received_at)
        window = [killed_at - first_answer[nid] for nid in repeated]
        print(
            f"groups posted: {GROUPS}; paged before the kill: {len(paged_before_crash)}; "
            f"paged in all: {len(ids_by_group)}; deliveries: {len(pages)}; "
            f"repeated deliveries of one notification_id: "
            f"{sum(n - 1 for n in deliveries.values())}; repeat window: answered "
            f"{max(window, default=0) * 1000:.0f} ms or less before the kill"
        )
        assert set(ids_by_group) == {f"group {n:04d}" for n in range(GROUPS)}
        assert all(len(ids) == 1 for ids in ids_by_group.values())
        # Repeats: each at most once more, only of deliveries answered before the kill, no more
        # than were in flight.
        assert all(n <= 2 for n in deliveries.values()), deliveries.most_common(3)
        assert all(w >= 0 for w in window), "a delivery first seen after the kill repeated"
        assert len(repeated) <= IN_FLIGHT, f"{len(repeated)} repeated deliveries"
    finally:
        stop_processes([p for p in (first, second) if p is not None])
        receiver.stop()
