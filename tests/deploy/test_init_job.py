"""`tocsin admin init`, the setup job of compose and the chart, on the real Kafka and FerretDB."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas import TOPICS, dlq_topic
from tests.deploy.support import ROOT
from tocsin.runtime.mongo import open_client

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

TOCSIN = Path(sys.executable).with_name("tocsin")  # the console script `make setup` installs

# Every collection a service queries by something other than `_id`, so each has an index.
INDEXED_COLLECTIONS = {
    "ingest_integrations",
    "ingest_heartbeats",
    "triage_alerts",
    "triage_incidents",
    "triage_incident_alerts",
    "triage_silences",
    "escalation_incidents",
    "escalation_commands",
    "escalation_timeline",
    "escalation_timers",
    "escalation_overrides",
    "notifier_notifications",
    "notifier_outbound",
    "notifier_outbound_pages",
    "notifier_slack_messages",
    "notifier_contacts",
}


def run_init(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOCSIN, "admin", "init"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=180,
        check=False,
    )  # fmt: skip


@pytest.fixture
async def database_name(mongo_url: str) -> AsyncIterator[str]:
    name = f"test_init_{uuid.uuid4().hex[:12]}"
    yield name
    client = open_client(mongo_url)
    await client.drop_database(name)
    await client.close()


async def test_init_creates_every_topic_and_index_as_asked_and_a_second_run_succeeds(
    kafka_bootstrap: str, mongo_url: str, namespace: str, database_name: str
) -> None:
    env = {
        "TOCSIN_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TOCSIN_MONGO_URL": mongo_url,
        "TOCSIN_MONGO_DATABASE": database_name,
        "TOCSIN_KAFKA_NAMESPACE": namespace,
        "TOCSIN_KAFKA_PARTITIONS": "3",
        "TOCSIN_KAFKA_RETENTION_HOURS": "36",
    }
    first = run_init(**env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "partitions 3, replication factor 1, min.insync.replicas 1, retention 36h" in (
        first.stdout
    )
    second = run_init(**env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.rstrip().endswith("done")

    wanted = sorted(f"{namespace}{t}" for topic in TOPICS for t in (topic, dlq_topic(topic)))
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(wanted)
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted]
        )
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    assert partitions == dict.fromkeys(wanted, 3)
    retention = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}["retention.ms"]
        for response in configs
        for resource in response.resources
    }
    assert retention == dict.fromkeys(wanted, str(36 * 3_600_000))

    client = open_client(mongo_url)
    try:
        database = client[database_name]
        indexes = {
            name: [index async for index in await database[name].list_indexes()]
            for name in await database.list_collection_names()
        }
    finally:
        await client.close()
    indexed = {name for name, found in indexes.items() if any(i["name"] != "_id_" for i in found)}
    assert indexed >= INDEXED_COLLECTIONS
    tokens = {i["name"]: i.get("unique", False) for i in indexes["ingest_integrations"]}
    assert tokens["token_sha256_1"] is True


def test_init_fails_when_kafka_never_answers(mongo_url: str, namespace: str) -> None:
    done = run_init(
        TOCSIN_KAFKA_BOOTSTRAP="127.0.0.1:1",
        TOCSIN_MONGO_URL=mongo_url,
        TOCSIN_KAFKA_NAMESPACE=namespace,
        TOCSIN_INIT_TIMEOUT_SECONDS="3",
    )
    assert done.returncode == 1
    assert "ERROR: cannot create topics on 127.0.0.1:1" in done.stdout


def test_init_fails_when_mongodb_never_answers(kafka_bootstrap: str, namespace: str) -> None:
    done = run_init(
        TOCSIN_KAFKA_BOOTSTRAP=kafka_bootstrap,
        TOCSIN_MONGO_URL="mongodb://127.0.0.1:1/?directConnection=true",
        TOCSIN_KAFKA_NAMESPACE=namespace,
        TOCSIN_INIT_TIMEOUT_SECONDS="8",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ERROR: cannot create the ingest indexes in MongoDB" in done.stdout
