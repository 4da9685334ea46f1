"""The Kafka adapter of the bus port (aiokafka).

Producer: idempotent, `acks=all`; `publish` returns only after the broker acknowledged.
Consumer loop: fetches batches, hands each message to the handler in partition order, retries a
failing handler with bounded exponential backoff, dead-letters it to `<topic>.dlq` with the
reason, and commits offsets only after every message of the batch was handled or dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from opentelemetry import trace
from pydantic import ValidationError

from schemas import TOPICS, DeadLetter, Envelope, dlq_topic
from tocsin import telemetry
from tocsin.bus import M, PublishError, Subscription
from tocsin.clock import utc_now
from tocsin.metrics import CONSUMED, DEAD_LETTERED, HANDLER_RETRIES

log = logging.getLogger(__name__)


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
        self._attempts = handler_attempts
        self._backoff = handler_backoff_seconds
        self._publish_timeout = publish_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._tracer = telemetry.tracer(__name__)

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
                        await self._handle_record(subscription, record)
                    # Effects of every record up to here are durable: commit past the last one.
                    await consumer.commit({partition: records[-1].offset + 1})
        finally:
            await consumer.stop()

    async def _handle_record(self, subscription: Subscription[M], record: object) -> None:
        topic = subscription.topic
        raw: bytes = record.value or b""  # type: ignore[attr-defined]
        context = telemetry.extract_context(record.headers)  # type: ignore[attr-defined]
        with self._tracer.start_as_current_span(
            f"{topic} process", context=context, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.destination.name", topic)
            try:
                message = subscription.model.model_validate_json(raw)
            except ValidationError as error:
                await self._dead_letter(topic, record, f"invalid message: {error}", attempts=0)
                CONSUMED.labels(topic=topic, outcome="invalid").inc()
                return
            span.set_attribute("tocsin.event_id", str(message.event_id))
            for attempt in range(1, self._attempts + 1):
                try:
                    await subscription.handler(message)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    if attempt == self._attempts:
                        log.exception(
                            "handler for %s failed %d times; dead-lettering", topic, attempt
                        )
                        await self._dead_letter(
                            topic, record, f"{type(error).__name__}: {error}", attempt
                        )
                        CONSUMED.labels(topic=topic, outcome="dead_lettered").inc()
                        return
                    HANDLER_RETRIES.labels(topic=topic).inc()
                    delay = min(self._backoff * 2 ** (attempt - 1), 10.0)
                    log.warning(
                        "handler for %s failed (attempt %d): %s; retrying in %.1fs",
                        topic,
                        attempt,
                        error,
                        delay,
                    )
                    await asyncio.sleep(delay)
                else:
                    CONSUMED.labels(topic=topic, outcome="handled").inc()
                    return

    async def _dead_letter(self, topic: str, record: object, error: str, attempts: int) -> None:
        key: bytes | None = record.key  # type: ignore[attr-defined]
        raw: bytes = record.value or b""  # type: ignore[attr-defined]
        letter = DeadLetter(
            occurred_at=utc_now(),
            correlation_id=key.decode(errors="replace") if key else "none",
            topic=topic,
            partition=record.partition,  # type: ignore[attr-defined]
            offset=record.offset,  # type: ignore[attr-defined]
            key=key.decode(errors="replace") if key else None,
            error=error[:8192],
            attempts=attempts,
            payload=raw.decode(errors="replace"),
        )
        # A dead letter that cannot be written must stop the loop: committing past the
        # message would lose it.
        await self.publish(dlq_topic(topic), letter.key or "", letter)
        DEAD_LETTERED.labels(topic=topic).inc()


__all__ = ["KafkaBus", "TopicPartition"]
