"""The Kafka adapter of the bus port (aiokafka).

Producer: idempotent, `acks=all`; `publish` returns only after the broker acknowledged.
`publish_serialized` takes messages already serialized (ingest's hot path builds the JSON
without a model per alert); a batch is appended whole, then its acknowledgements are awaited.
Consumer loop: fetches batches, hands each record to the shared `RecordProcessor` in partition
order (validation, bounded retries, dead-lettering), and commits offsets only after every
record of the batch was handled or dead-lettered.

A producer that a broker outage left wedged is replaced. aiokafka 0.14's idempotent producer
numbers each partition's batches when it first sends them; a batch that then expires while the
partition has no leader (the broker is down) is failed, but its numbers are not given back, so
every later batch to that partition is refused with `OutOfOrderSequenceNumber`, for ever. A
publish failing with such an error (or one saying the broker no longer knows the producer id or
epoch) starts a new producer (a new producer id, sequences from 0), unless another publish is
doing so already; the old one is stopped in the background. These errors come from a broker
that is up again, so the new producer starts at once. What the old one still holds is sent or
failed while it stops; its callers had their answer already (ingest: 503, and the sender
retries; consumers retry the record), so a record may reach its topic twice, as after any
publish timeout; consumers are idempotent.

Rebalances never stop a consumer. aiokafka rebalances in the background while a batch is
being handled; a partition revoked mid-batch ends that partition's batch without committing
(its new owner redoes it from the last commit; handlers are idempotent), and a commit refused
because the group moved on (`CommitFailedError`, `IllegalStateError`) is logged and dropped
for the same reason. A batch also stops at a time budget well inside `max.poll.interval`: the
records done are committed and the fetch position is moved back to the first one not done, so
retries of a slow batch never get the consumer thrown out of its group.

Topics are created explicitly with the configured partitions, replication factor and
`min.insync.replicas` and `retention.ms`; relying on the broker's auto-creation (replication 1)
would defeat `acks=all`.

Every client (producer, consumers, admin) connects with the same `KafkaSecurity` (PLAINTEXT, SSL,
SASL_PLAINTEXT or SASL_SSL); `client_options` turns it into aiokafka's keyword arguments.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TopicAlreadyExistsError,
    UnknownProducerId,
)
from aiokafka.helpers import create_ssl_context
from opentelemetry import trace
from prometheus_client import Gauge

from schemas import TOPICS, Envelope, dlq_topic
from tocsin.runtime import telemetry
from tocsin.runtime.bus import M, PublishError, Subscription
from tocsin.runtime.consumer import Record, RecordProcessor
from tocsin.runtime.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)

# Below the broker's default `message.max.bytes` (1 MiB).
MAX_BATCH_BYTES = 512 * 1024

# Publish failures after which the producer is replaced (module docstring): the broker refuses
# its sequence numbers, producer id or epoch.
PRODUCER_WEDGED: tuple[type[Exception], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerIdMapping,
    InvalidProducerEpoch,
    ProducerFenced,
)


@dataclass(frozen=True)
class TopicLayout:
    """How contract topics are created. Production wants replication 3 and min ISR 2."""

    partitions: int = 4
    replication_factor: int = 1
    min_insync_replicas: int = 1
    # How long Kafka keeps a record (`retention.ms`); consumers further behind lose records.
    retention_hours: float = 168.0

    def topic_configs(self) -> dict[str, str]:
        return {
            "min.insync.replicas": str(self.min_insync_replicas),
            "retention.ms": str(round(self.retention_hours * 3_600_000)),
        }


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True)
class KafkaSecurity:
    """How every client authenticates to the brokers and encrypts the connection."""

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)  # never printed
    # CA bundle the brokers' certificates are checked against (SSL, SASL_SSL); unset, the
    # system's trust store.
    ssl_cafile: Path | None = None


def client_options(security: KafkaSecurity) -> dict[str, Any]:
    """aiokafka keyword arguments (producer, consumer and admin alike) for `security`."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=security.ssl_cafile)
    if security.protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        if not security.sasl_username or security.sasl_password is None:
            raise ValueError(f"{security.protocol} needs a SASL username and password")
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password
    return options


@dataclass(frozen=True)
class ConsumerTiming:
    # Kafka's own limit between two fetches of one consumer; past it, the group evicts it.
    max_poll_interval_seconds: float = 300.0
    # A batch stops taking new records after this long (must stay well inside the above).
    batch_budget_seconds: float = 60.0
    max_records: int = 500


class KafkaBus:
    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        *,
        handler_attempts: int = 5,
        handler_backoff_seconds: float = 0.2,
        publish_timeout_seconds: float = 5.0,
        namespace: str = "",
        topics: TopicLayout | None = None,
        timing: ConsumerTiming | None = None,
        security: KafkaSecurity | None = None,
    ) -> None:
        # `namespace` prefixes every topic and consumer group, so several deployments (or test
        # runs) can share one cluster without reading each other's messages.
        self._namespace = namespace
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._publish_timeout = publish_timeout_seconds
        self._topics = topics or TopicLayout()
        self._timing = timing or ConsumerTiming()
        self._options = client_options(security or KafkaSecurity())
        if self._timing.batch_budget_seconds >= self._timing.max_poll_interval_seconds:
            raise ValueError("the batch budget must be shorter than max.poll.interval")
        self._producer: AIOKafkaProducer | None = None
        self._renewing = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()  # old producers being stopped
        self.producer_renewals = 0
        self._tracer = telemetry.tracer(__name__)
        self._processor = RecordProcessor(
            self.publish, attempts=handler_attempts, backoff_seconds=handler_backoff_seconds
        )

    async def ensure_topics(self) -> None:
        """Create every contract topic and its DLQ if missing (idempotent)."""
        layout = self._topics
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, client_id=self._client_id, **self._options
        )
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            names = [self._name(t) for topic in TOPICS for t in (topic, dlq_topic(topic))]
            wanted = [name for name in names if name not in existing]
            if wanted:
                try:
                    await admin.create_topics(
                        [
                            NewTopic(
                                t,
                                layout.partitions,
                                layout.replication_factor,
                                topic_configs=layout.topic_configs(),
                            )
                            for t in wanted
                        ],
                        timeout_ms=10_000,
                    )
                except TopicAlreadyExistsError:
                    pass  # another process created them first
        finally:
            await admin.close()

    def _name(self, topic_or_group: str) -> str:
        return f"{self._namespace}{topic_or_group}"

    async def start(self) -> None:
        await self.ensure_topics()
        self._producer = await self._new_producer()

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            # No lingering: callers hand a batch's records over together (`publish_many`,
            # `publish_serialized`; ingest coalesces concurrent requests itself), and aiokafka
            # still batches whatever is appended before its sender runs. Measured with 32
            # concurrent 1-record publishes through ingest's coalescing: p50 1.9-2.9 ms at 0
            # against 3.8-5.1 ms at 2, and more records per second.
            linger_ms=0,
            # A produce request carries one batch per partition: with the default 16 KiB, a
            # 100-alert body (about 100 KiB) took several round trips to the broker.
            max_batch_size=MAX_BATCH_BYTES,
            request_timeout_ms=int(self._publish_timeout * 1000),
            **self._options,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def _renew_producer(self, wedged: AIOKafkaProducer) -> None:
        """Replace `wedged` by a new producer, unless another publish already did. If the new
        one cannot start (the broker went away again), the old one stays for the next try.
        A publish that finds a renewal under way fails at once instead of queueing behind it."""
        if self._renewing.locked():
            return
        async with self._renewing:
            if self._producer is not wedged:
                return
            try:
                fresh = await asyncio.wait_for(self._new_producer(), self._publish_timeout)
            except (KafkaError, TimeoutError, OSError) as error:
                log.warning("cannot start a new Kafka producer yet: %r", error)
                return
            self._producer = fresh
            self.producer_renewals += 1
            log.warning("Kafka producer replaced after the broker refused its sequence")
            # Its pending batches end (delivered or failed) before it stops: not on this path.
            task = asyncio.create_task(_retire(wedged), name="retire a Kafka producer")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def stop(self) -> None:
        # After any renewal under way (at most the publish timeout): one finishing later would
        # install a producer nobody stops.
        async with self._renewing:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
        retiring = list(self._retiring)
        if retiring:
            # A replaced producer still sending what it held: a moment to finish, no more.
            await asyncio.wait(retiring, timeout=self._publish_timeout)
            for task in retiring:
                task.cancel()
            await asyncio.gather(*retiring, return_exceptions=True)

    async def ready(self) -> bool:
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=2)
        except (KafkaError, TimeoutError, OSError):
            return False
        return True

    async def publish(self, topic: str, key: str, message: Envelope) -> None:
        await self.publish_many(topic, [(key, message)])

    async def publish_many(self, topic: str, messages: Sequence[tuple[str, Envelope]]) -> None:
        await self.publish_serialized(
            topic, [(key, message.model_dump_json().encode()) for key, message in messages]
        )

    async def publish_serialized(self, topic: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish (key, JSON of a contract message) pairs as one batch: every record is
        appended to the producer's buffers first, then all acknowledgements are awaited at once
        (one produce request per partition carries them, with other requests' records)."""
        producer = self._producer
        if producer is None:
            raise PublishError("the producer is not started")
        with self._tracer.start_as_current_span(
            f"{topic} publish", kind=trace.SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.destination.name", topic)
            span.set_attribute("messaging.batch.message_count", len(messages))
            headers = telemetry.inject_headers()
            name = self._name(topic)
            try:
                futures = [
                    await producer.send(name, value=value, key=key.encode(), headers=headers)
                    for key, value in messages
                ]
                # One alert (the usual webhook) needs no gathering future around its ack.
                acks = futures[0] if len(futures) == 1 else asyncio.gather(*futures)
                await asyncio.wait_for(acks, timeout=self._publish_timeout)
            except (KafkaError, TimeoutError, OSError) as error:
                if isinstance(error, PRODUCER_WEDGED):
                    await self._renew_producer(producer)
                raise PublishError(f"{topic}: {type(error).__name__}: {error}") from error

    async def consume(self, subscription: Subscription[M]) -> None:
        timing = self._timing
        consumer = AIOKafkaConsumer(
            self._name(subscription.topic),
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=self._name(subscription.group),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_interval_ms=int(timing.max_poll_interval_seconds * 1000),
            **self._options,
        )
        await consumer.start()
        lag = CONSUMER_LAG.labels(topic=subscription.topic, group=subscription.group)
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=timing.max_records)
                if subscription.batch_handler is not None:
                    await self._consume_batch(consumer, subscription, batches)
                else:
                    deadline = time.monotonic() + timing.batch_budget_seconds
                    for partition, records in batches.items():
                        await self._consume_partition(
                            consumer, subscription, partition, records, deadline
                        )
                await _record_lag(consumer, lag)
        finally:
            await consumer.stop()

    async def _consume_batch(
        self,
        consumer: AIOKafkaConsumer,
        subscription: Subscription[M],
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """Every partition's records in one call of the batch handler (the records of one key
        stay in order: a key lives in one partition), then one commit of every partition."""
        batches = {p: records for p, records in batches.items() if records}
        if not batches:
            return
        await self._processor.process_batch(
            subscription,
            [
                Record(
                    key=record.key,
                    value=record.value or b"",
                    headers=record.headers,
                    partition=record.partition,
                    offset=record.offset,
                )
                for records in batches.values()
                for record in records
            ],
        )
        assigned = consumer.assignment()
        done = {p: records[-1].offset + 1 for p, records in batches.items() if p in assigned}
        if not done:
            return
        try:
            await consumer.commit(done)
        except (CommitFailedError, IllegalStateError) as error:
            # As in _consume_partition: the new owners redo the batch (handlers are idempotent).
            log.info("commit of a batch dropped after a rebalance: %s", error)

    async def _consume_partition(
        self,
        consumer: AIOKafkaConsumer,
        subscription: Subscription[M],
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        deadline: float,
    ) -> None:
        done: int | None = None  # offset after the last record handled
        for record in records:
            if partition not in consumer.assignment():
                log.info("%s revoked mid-batch; its new owner redoes the rest", partition)
                return
            if done is not None and time.monotonic() > deadline:
                # Out of time: commit what is done, fetch the rest again next round.
                consumer.seek(partition, done)
                break
            await self._processor.process(
                subscription,
                Record(
                    key=record.key,
                    value=record.value or b"",
                    headers=record.headers,
                    partition=record.partition,
                    offset=record.offset,
                ),
            )
            done = record.offset + 1
        if done is None:
            return
        try:
            await consumer.commit({partition: done})
        except (CommitFailedError, IllegalStateError) as error:
            # The group moved on: another member owns the partition now and redoes the
            # uncommitted records (handlers are idempotent). Nothing is lost; go on.
            log.info("commit of %s at %d dropped after a rebalance: %s", partition, done, error)


async def _retire(producer: AIOKafkaProducer) -> None:
    await producer.stop()


async def _record_lag(consumer: AIOKafkaConsumer, lag: Gauge) -> None:
    """Set the group's lag over the partitions this consumer holds now (a partition another
    member took over is counted there): the high watermark minus this consumer's position."""
    behind = 0
    for partition in consumer.assignment():
        highwater = consumer.highwater(partition)
        if highwater is None:
            continue  # nothing fetched from it yet
        behind += max(highwater - await consumer.position(partition), 0)
    lag.set(behind)


__all__ = [
    "ConsumerTiming",
    "KafkaBus",
    "KafkaSecurity",
    "SaslMechanism",
    "SecurityProtocol",
    "TopicLayout",
    "client_options",
]
