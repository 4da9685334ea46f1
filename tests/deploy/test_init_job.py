"""The topic job of compose and the chart (deploy/helm/tocsin/files/init.py) on the real Kafka."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from schemas import TOPICS, dlq_topic
from tests.deploy.support import CHART, ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


def run_init(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, CHART / "files" / "init.py"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


async def test_init_creates_every_topic_and_dlq_with_the_partitions_asked_for_idempotently(
    kafka_bootstrap: str, mongo_url: str, namespace: str
) -> None:
    env = {
        "TOCSIN_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TOCSIN_MONGO_URL": mongo_url,
        "TOCSIN_KAFKA_NAMESPACE": namespace,
        "TOCSIN_KAFKA_PARTITIONS": "3",
    }
    first = run_init(**env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "partitions 3, replication factor 1, min.insync.replicas 1" in first.stdout
    second = run_init(**env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.rstrip().endswith("done")

    wanted = {f"{namespace}{t}" for topic in TOPICS for t in (topic, dlq_topic(topic))}
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(sorted(wanted))
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    assert partitions == dict.fromkeys(wanted, 3)


def test_init_fails_when_kafka_never_answers(mongo_url: str, namespace: str) -> None:
    done = run_init(
        TOCSIN_KAFKA_BOOTSTRAP="127.0.0.1:1",
        TOCSIN_MONGO_URL=mongo_url,
        TOCSIN_KAFKA_NAMESPACE=namespace,
        TOCSIN_INIT_TIMEOUT_SECONDS="3",
    )
    assert done.returncode == 1
    assert "ERROR: cannot create topics on 127.0.0.1:1" in done.stdout
