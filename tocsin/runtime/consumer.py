"""What every bus adapter does with one consumed record: validate it, run the handler with
bounded retries and backoff, and dead-letter it to `<topic>.dlq` with the reason. A handler
that fails because infrastructure is unavailable (`UNAVAILABLE`) is retried until it passes:
the message is not at fault, and dead-lettering it would lose it.

The adapter commits its position only after `RecordProcessor.process` returned, so a record
whose handler never finished (the process died) is delivered again. A subscription with a batch
handler gets each fetched batch through `process_batch` (one call, one commit after it).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from opentelemetry import trace
from pydantic import Json, TypeAdapter, ValidationError

from schemas import DeadLetter, Envelope, dlq_topic
from tocsin.runtime import telemetry
from tocsin.runtime.backoff import backoff_delay
from tocsin.runtime.bus import M, PublishError, Subscription
from tocsin.runtime.clock import utc_now
from tocsin.runtime.metrics import CONSUMED, DEAD_LETTERED, HANDLER_RETRIES
from tocsin.runtime.store import StoreUnavailable

log = logging.getLogger(__name__)

Publish = Callable[[str, str, Envelope], Awaitable[None]]

# Failures of infrastructure, not of the message: retried until they pass, never dead-lettered.
# (The embedded SQLite file has no such transient failures: its errors are bugs, and go on.)
UNAVAILABLE: tuple[type[Exception], ...] = (PublishError, StoreUnavailable)


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]
    partition: int | None
    offset: int | None


# Allocations between two collections of the garbage collector's youngest generation
# (CPython's default: 700), at least.
GC_YOUNG_THRESHOLD = 20_000


def young_objects_die_young() -> None:
    """A consumer batch keeps hundreds of messages, and what handling them builds, alive for a
    while. With CPython's default threshold the collector examines the youngest generation
    every 700 allocations, so a batch's objects outlive several collections and reach the
    oldest generation; that one is then collected again and again, each time walking the
    whole heap (in `tocsin up`, every document of the embedded store): a quarter of triage's
    CPU in bench/triage_bench.py. With a threshold above what a batch allocates, they die
    young. Objects without cycles are freed by reference counting anyway: the threshold only
    delays freeing cyclic garbage, by at most that many allocations. Process-wide, set once
    (raised, never lowered) by the first bus consumer."""
    first, second, third = gc.get_threshold()
    if 0 < first < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, second, third)


# One validator of a list of each message model's JSON: a batch is validated in one call (each
# record parsed alone, exactly as one call per record would), about 30% cheaper per message.
_LIST_ADAPTERS: dict[type[Any], TypeAdapter[list[Any]]] = {}


def _validated_at_once(
    subscription: Subscription[M], records: Sequence[Record]
) -> list[tuple[Record, M]] | None:
    """Every record's message, validated in one call; None if any record is not a valid
    message: the caller then validates them one by one, to dead-letter those."""
    adapter = _LIST_ADAPTERS.get(subscription.model)
    if adapter is None:
        adapter = _LIST_ADAPTERS[subscription.model] = TypeAdapter(
            cast(Any, list)[cast(Any, Json)[subscription.model]]
        )
    try:
        messages: list[M] = adapter.validate_python([record.value for record in records])
    except ValidationError:
        return None
    return list(zip(records, messages, strict=True))


class RecordProcessor:
    def __init__(self, publish: Publish, *, attempts: int, backoff_seconds: float) -> None:
        young_objects_die_young()
        self._publish = publish
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._tracer = telemetry.tracer(__name__)

    async def process(self, subscription: Subscription[M], record: Record) -> None:
        topic = subscription.topic
        context = telemetry.extract_context(record.headers)
        with self._tracer.start_as_current_span(
            f"{topic} process", context=context, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.destination.name", topic)
            message = await self._validated(subscription, record)
            if message is None:
                return
            span.set_attribute("tocsin.event_id", str(message.event_id))
            await self._handle_one(subscription, record, message)

    async def process_batch(self, subscription: Subscription[M], records: Sequence[Record]) -> None:
        """Hand the valid records to the subscription's batch handler at once (invalid ones are
        dead-lettered first). If the batch still fails after the retries, each message is
        handled alone, so that only a message at fault is dead-lettered."""
        batch_handler = subscription.batch_handler
        if batch_handler is None:
            for record in records:
                await self.process(subscription, record)
            return
        topic = subscription.topic
        valid = _validated_at_once(subscription, records)
        if valid is None:
            valid = []
            for record in records:
                message = await self._validated(subscription, record)
                if message is not None:
                    valid.append((record, message))
        if not valid:
            return
        # One span for the batch, in the trace of its first message.
        context = telemetry.extract_context(valid[0][0].headers)
        with self._tracer.start_as_current_span(
            f"{topic} process", context=context, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.destination.name", topic)
            span.set_attribute("messaging.batch.message_count", len(valid))
            messages = [message for _, message in valid]
            error = await self._retrying(topic, lambda: batch_handler(messages))
            if error is None:
                CONSUMED.labels(topic=topic, outcome="handled").inc(len(valid))
                return
            log.warning(
                "batch of %d on %s failed (%s); handling its messages one at a time",
                len(valid),
                topic,
                error,
            )
            for record, message in valid:
                await self._handle_one(subscription, record, message, batch_handler)

    async def _validated(self, subscription: Subscription[M], record: Record) -> M | None:
        try:
            return subscription.model.model_validate_json(record.value)
        except ValidationError as error:
            await self._dead_letter(
                subscription.topic, record, f"invalid message: {error}", attempts=0
            )
            CONSUMED.labels(topic=subscription.topic, outcome="invalid").inc()
            return None

    async def _handle_one(
        self,
        subscription: Subscription[M],
        record: Record,
        message: M,
        batch_handler: Callable[[Sequence[M]], Awaitable[None]] | None = None,
    ) -> None:
        topic = subscription.topic
        if batch_handler is not None:
            error = await self._retrying(topic, lambda: batch_handler([message]))
        else:
            error = await self._retrying(topic, lambda: subscription.handler(message))
        if error is None:
            CONSUMED.labels(topic=topic, outcome="handled").inc()
            return
        log.error(
            "handler for %s failed %d times; dead-lettering",
            topic,
            self._attempts,
            exc_info=error,
        )
        await self._dead_letter(topic, record, f"{type(error).__name__}: {error}", self._attempts)
        CONSUMED.labels(topic=topic, outcome="dead_lettered").inc()

    async def _retrying(
        self, topic: str, handle: Callable[[], Awaitable[None]]
    ) -> Exception | None:
        """Run `handle` until it passes (None), or return its error after the last attempt."""
        attempt = 1
        unavailable_for = 0
        while True:
            try:
                await handle()
            except asyncio.CancelledError:
                raise
            except UNAVAILABLE as error:
                # The message is fine; what it needs is down (a MongoDB failover, Kafka
                # restarting). Dead-lettering it would lose a page: wait and retry, without
                # moving on, for as long as it takes (backpressure, like Kafka's own).
                unavailable_for += 1
                delay = backoff_delay(
                    unavailable_for, base=self._backoff, cap=10.0, random=random.random
                )
                HANDLER_RETRIES.labels(topic=topic).inc()
                log.warning(
                    "handler for %s: %s unavailable (%s); retrying in %.1fs",
                    topic,
                    type(error).__name__,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
            except Exception as error:
                if attempt >= self._attempts:
                    return error
                HANDLER_RETRIES.labels(topic=topic).inc()
                delay = backoff_delay(attempt, base=self._backoff, cap=10.0, random=random.random)
                log.warning(
                    "handler for %s failed (attempt %d): %s; retrying in %.1fs",
                    topic,
                    attempt,
                    error,
                    delay,
                )
                attempt += 1
                await asyncio.sleep(delay)
            else:
                return None

    async def _dead_letter(self, topic: str, record: Record, error: str, attempts: int) -> None:
        key = record.key.decode(errors="replace") if record.key else None
        letter = DeadLetter(
            occurred_at=utc_now(),
            correlation_id=key or "none",
            topic=topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            error=error[:8192],
            attempts=attempts,
            payload=record.value.decode(errors="replace"),
        )
        # A dead letter that cannot be written must stop the loop: moving past the record
        # would lose it.
        await self._publish(dlq_topic(topic), key or "", letter)
        DEAD_LETTERED.labels(topic=topic).inc()
