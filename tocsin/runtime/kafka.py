"""The Kafka adapter of the bus port (aiokafka).

Producer: idempotent, `acks=all`; `publish` returns only after the broker acknowledged.
Consumer loop: fetches batches, hands each record to the shared `RecordProcessor` in partition
order (validation, bounded retries, dead-lettering), and commits offsets only after every
record of the batch was handled or dead-lettered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from opentelemetry import trace

from schemas import TOPICS, Envelope, dlq_topic
from tocsin.runtime import telemetry
from tocsin.runtime.bus import M, PublishError, Subscription
from tocsin.runtime.consumer import Record, RecordProcessor


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
    ) -> None:
        # `namespace` prefixes every topic and consumer group, so several deployments (or test
        # runs) can share one cluster without reading each other's messages.
        self._namespace = namespace
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._publish_timeout = publish_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._tracer = telemetry.tracer(__name__)
        self._processor = RecordProcessor(
            self.publish, attempts=handler_attempts, backoff_seconds=handler_backoff_seconds
        )

    async def ensure_topics(self, partitions: int = 4, replication: int = 1) -> None:
        """Create every contract topic and its DLQ if missing (idempotent)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id=self._client_id)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            names = [self._name(t) for topic in TOPICS for t in (topic, dlq_topic(topic))]
            wanted = [name for name in names if name not in existing]
            if wanted:
                try:
                    await admin.create_topics(
                        [NewTopic(t, partitions, replication) for t in wanted],
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
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=int(self._publish_timeout * 1000),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

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
        producer = self._producer
        if producer is None:
            raise PublishError("the producer is not started")
        with self._tracer.start_as_current_span(
            f"{topic} publish", kind=trace.SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.destination.name", topic)
            span.set_attribute("messaging.batch.message_count", len(messages))
            headers = telemetry.inject_headers()
            try:
                futures = [
                    await producer.send(
                        self._name(topic),
                        value=message.model_dump_json().encode(),
                        key=key.encode(),
                        headers=headers,
                    )
                    for key, message in messages
                ]
                await asyncio.wait_for(asyncio.gather(*futures), timeout=self._publish_timeout)
            except (KafkaError, TimeoutError, OSError) as error:
                raise PublishError(f"{topic}: {type(error).__name__}: {error}") from error

    async def consume(self, subscription: Subscription[M]) -> None:
        consumer = AIOKafkaConsumer(
            self._name(subscription.topic),
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=self._name(subscription.group),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                for partition, records in batches.items():
                    for record in records:
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
                    # Effects of every record up to here are durable: commit past the last one.
                    await consumer.commit({partition: records[-1].offset + 1})
        finally:
            await consumer.stop()


__all__ = ["KafkaBus"]
