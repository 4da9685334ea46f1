"""One-shot setup job of a Tocsin deployment (docker compose's `tocsin-init`, the chart's hook).

Creates every contract topic and its `.dlq` with TOCSIN_KAFKA_PARTITIONS,
TOCSIN_KAFKA_REPLICATION_FACTOR and TOCSIN_KAFKA_MIN_INSYNC_REPLICAS (the same code, and so the
same settings, as the services run at start), then waits until MongoDB answers. Idempotent:
existing topics are left as they are. Kafka and MongoDB may still be starting: it retries for
TOCSIN_INIT_TIMEOUT_SECONDS (120). Indexes are created by each service at start (every store's
`ensure_indexes`, idempotent), as Tocsin has no `tocsin` subcommand for them yet.

    python /etc/tocsin/init.py      (with the image's environment)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from tocsin.runtime.kafka import KafkaBus, TopicLayout
from tocsin.runtime.mongo import open_client, ping
from tocsin.runtime.settings import Settings


def log(message: str) -> None:
    print(f"tocsin-init: {message}", flush=True)


async def main() -> int:
    settings = Settings()
    deadline = time.monotonic() + float(os.environ.get("TOCSIN_INIT_TIMEOUT_SECONDS", "120"))
    layout = TopicLayout(
        settings.kafka_partitions,
        settings.kafka_replication_factor,
        settings.kafka_min_insync_replicas,
    )
    bus = KafkaBus(
        settings.kafka_bootstrap,
        client_id="tocsin-init",
        namespace=settings.kafka_namespace,
        topics=layout,
    )
    while True:
        try:
            await bus.ensure_topics()
            break
        except Exception as error:  # any failure: Kafka not up yet, retry
            if time.monotonic() > deadline:
                log(f"ERROR: cannot create topics on {settings.kafka_bootstrap}: {error!r}")
                return 1
            log(f"Kafka not ready ({type(error).__name__}), retrying")
            await asyncio.sleep(2)
    log(
        f"topics present (partitions {layout.partitions}, replication factor "
        f"{layout.replication_factor}, min.insync.replicas {layout.min_insync_replicas})"
    )
    client = open_client(settings.mongo_url)
    try:
        while not await ping(client[settings.mongo_database]):
            if time.monotonic() > deadline:
                log("ERROR: MongoDB does not answer")
                return 1
            log("MongoDB not ready, retrying")
            await asyncio.sleep(2)
    finally:
        await client.close()
    log(f"MongoDB answers (database {settings.mongo_database}); done")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
