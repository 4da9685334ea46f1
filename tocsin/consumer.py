"""What every bus adapter does with one consumed record: validate it, run the handler with
bounded retries and backoff, and dead-letter it to `<topic>.dlq` with the reason.

The adapter commits its position only after `RecordProcessor.process` returned, so a record
whose handler never finished (the process died) is delivered again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from opentelemetry import trace
from pydantic import ValidationError

from schemas import DeadLetter, Envelope, dlq_topic
from tocsin import telemetry
from tocsin.bus import M, Subscription
from tocsin.clock import utc_now
from tocsin.metrics import CONSUMED, DEAD_LETTERED, HANDLER_RETRIES

log = logging.getLogger(__name__)

Publish = Callable[[str, str, Envelope], Awaitable[None]]


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]
    partition: int | None
    offset: int | None


class RecordProcessor:
    def __init__(self, publish: Publish, *, attempts: int, backoff_seconds: float) -> None:
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
            try:
                message = subscription.model.model_validate_json(record.value)
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
