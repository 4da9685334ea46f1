"""`tocsin admin init`: the one-shot setup of a distributed deployment (docker compose's
`tocsin-init`, the Helm chart's pre-install/pre-upgrade hook).

Creates every contract topic and its `.dlq` (partitions, replication factor, min ISR and
retention from the settings, the same code the services run at start) and every store's
MongoDB indexes. Kafka and MongoDB may still be starting: each step is retried until it answers
or TOCSIN_INIT_TIMEOUT_SECONDS have passed since the start. Idempotent: existing topics and
indexes are left as they are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiokafka.errors import KafkaError

from services.escalation.oncall_store import MongoOncallStore
from services.escalation.reminders import ReminderStore
from services.escalation.review_store import ReviewStore
from services.escalation.store import MongoEscalationStore
from services.ingest.store import MongoIngestStore
from services.notifier.contact_store import MongoContactStore
from services.notifier.message_store import MongoMessageStore
from services.notifier.store import MongoNotifierStore
from services.triage.changes import MongoChangeStore
from services.triage.maintenance_store import MongoMaintenanceStore
from services.triage.silence_store import MongoSilenceStore
from services.triage.store import MongoTriageStore
from tocsin.composition.distributed import kafka_bus
from tocsin.runtime.access import KeyStore
from tocsin.runtime.audit import AuditLog
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.mongo import MongoDatabase, open_client
from tocsin.runtime.settings import Settings
from tocsin.runtime.store import DocumentDatabase, StoreUnavailable

RETRY_PAUSE_SECONDS = 2.0


class InitFailed(Exception):
    pass


class IndexedStore(Protocol):
    async def ensure_indexes(self) -> None: ...


def say(message: str) -> None:
    print(f"tocsin admin init: {message}", flush=True)


def index_steps(database: DocumentDatabase) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """Every store of every service, by name, with its `ensure_indexes`."""
    stores: list[tuple[str, IndexedStore]] = [
        ("ingest", MongoIngestStore(database)),
        ("triage", MongoTriageStore(database)),
        ("triage silences", MongoSilenceStore(database)),
        ("triage maintenance windows", MongoMaintenanceStore(database)),
        ("triage changes", MongoChangeStore(database)),
        ("escalation", MongoEscalationStore(database)),
        ("escalation on-call", MongoOncallStore(database)),
        ("escalation reminders", ReminderStore(database)),
        ("escalation reviews", ReviewStore(database)),
        ("notifier", MongoNotifierStore(database)),
        ("notifier messages", MongoMessageStore(database)),
        ("notifier contacts", MongoContactStore(database)),
        ("access keys", KeyStore(database)),
        ("audit log", AuditLog(database, SystemClock())),
    ]
    return [(name, store.ensure_indexes) for name, store in stores]


async def _retry(
    what: str,
    step: Callable[[], Awaitable[None]],
    deadline: float,
    retried: tuple[type[BaseException], ...],
) -> None:
    while True:
        remaining = deadline - time.monotonic()
        try:
            await asyncio.wait_for(step(), timeout=max(remaining, 0.1))
            return
        except retried as error:
            if time.monotonic() + RETRY_PAUSE_SECONDS > deadline:
                raise InitFailed(f"{what}: {type(error).__name__}: {error}") from error
            say(f"{what}: not ready ({type(error).__name__}), retrying")
            await asyncio.sleep(RETRY_PAUSE_SECONDS)


async def initialise(settings: Settings) -> None:
    deadline = time.monotonic() + settings.init_timeout_seconds
    bus = kafka_bus(settings, client_id="tocsin-admin-init")
    await _retry(
        f"cannot create topics on {settings.kafka_bootstrap}",
        bus.ensure_topics,
        deadline,
        (KafkaError, OSError, TimeoutError),
    )
    say(
        f"topics in place (missing ones created with partitions {settings.kafka_partitions}, "
        f"replication factor "
        f"{settings.kafka_replication_factor}, min.insync.replicas "
        f"{settings.kafka_min_insync_replicas}, retention {settings.kafka_retention_hours:g}h)"
    )
    client = open_client(settings.mongo_url)
    try:
        database = MongoDatabase(client[settings.mongo_database])
        for name, ensure_indexes in index_steps(database):
            await _retry(
                f"cannot create the {name} indexes in MongoDB",
                ensure_indexes,
                deadline,
                (StoreUnavailable, TimeoutError),
            )
    finally:
        await client.close()
    say(f"indexes present (database {settings.mongo_database}); done")


def run_init(settings: Settings) -> int:
    try:
        asyncio.run(initialise(settings))
    except InitFailed as error:
        say(f"ERROR: {error}")
        return 1
    return 0
