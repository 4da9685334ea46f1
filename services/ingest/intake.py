"""The edge every ingest route shares: who is calling (by token, through the constant-time
`tocsin.runtime.http.TokenDirectory`), reading a bounded body, decoding JSON strictly, and
publishing so that 2xx means durable."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import ValidationError

from schemas import ALERTS_RAW, AlertReceived
from services.ingest.config import HmacConfig, IngestLimitsConfig
from services.ingest.domain.formats import Format
from services.ingest.domain.formats.errors import problems
from services.ingest.metrics import BACKPRESSURE, REQUESTS_REJECTED, alerts_accepted
from services.ingest.store import Integration
from tocsin.runtime import telemetry
from tocsin.runtime.bus import Bus, PublishError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


@dataclass(frozen=True)
class Caller:
    """An integration as a request sees it: its format and its per-integration options."""

    integration: Integration
    format: Format
    limits: IngestLimitsConfig
    hmac: HmacConfig | None
    rate_limit_per_minute: int


class BodyTooLarge(Exception):
    pass


class BadJson(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or BodyTooLarge without reading more than `limit` bytes of it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


# orjson reads an integer beyond 64 bits as a float; the reference reads it exactly. A body
# with a run of 19 digits anywhere (-9223372036854775809 has 19) goes to the reference.
_DIGITS = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
_LONG_INTEGER = b"1" * 19


def decode_json(raw: bytes) -> object:
    """Strict UTF-8 JSON (no NaN/Infinity, no BOM); BadJson says why not.

    orjson first (a tenth of the cost): it refuses everything the reference decoder refuses
    (and more: lone surrogate escapes, numbers out of a double's range, deep nesting), and
    what it accepts it reads to the same values, integers of 19 digits and more aside (those
    bodies go to the reference). Whatever it refuses, the reference decides, with its own
    error messages: answers are unchanged."""
    if _LONG_INTEGER not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError as error:
        raise BadJson(f"body is not valid UTF-8 JSON: {error}") from None
    except RecursionError:
        raise BadJson("body is not valid UTF-8 JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, and numbers too long to read
        raise BadJson(f"body is not valid UTF-8 JSON: {error}") from None


def schema_errors(error: ValidationError) -> list[dict[str, object]]:
    # The input is read only to say whether a too-long value is a string or a list; the
    # answer never echoes what the sender wrote.
    return problems(error.errors(include_url=False, include_context=True))


def refuse(
    status: int, detail: object, *, integration: str, source: str, reason: str
) -> JSONResponse:
    REQUESTS_REJECTED.labels(integration=integration, source=source, reason=reason).inc()
    return JSONResponse({"detail": detail}, status_code=status)


def unavailable(integration: str, source: str, body: object) -> JSONResponse:
    BACKPRESSURE.labels(integration=integration, source=source, status="503").inc()
    REQUESTS_REJECTED.labels(integration=integration, source=source, reason="unavailable").inc()
    return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS})


@runtime_checkable
class SerializedPublisher(Protocol):
    """A bus that also takes messages already serialized to their contract's JSON (both of
    Tocsin's buses do): the hot path builds that JSON without a model per message."""

    async def publish_serialized(self, topic: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish (key, JSON) pairs; return once all are durable, else PublishError."""


@dataclass
class _Batch:
    records: list[tuple[str, bytes]] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class Coalescing:
    """A `SerializedPublisher` that hands the bus the records of concurrent requests in one
    call: the requests that reach it within one turn of the event loop share one publish (one
    producer span, one set of trace headers, one wait for all acknowledgements) instead of
    paying for one each. Each request still returns only once its own records are durable: a
    batch's outcome is every one of its requests' (a failed batch answers 503 to each, which
    senders retry as after any 503; records of a failed publish may have been written, as
    with a failed publish of one body). No request waits for another batch: one starts as
    soon as the loop has run the requests that were ready.

    Only requests outside any trace are coalesced: when spans are recorded, or a caller sent
    its trace context, a request publishes alone, so that its messages carry its trace."""

    def __init__(
        self,
        bus: SerializedPublisher,
        *,
        spans_recorded: Callable[[], bool] = telemetry.spans_recorded,
    ) -> None:
        self._bus = bus
        self._spans_recorded = spans_recorded
        self._batches: dict[str, _Batch] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def publish_serialized(self, topic: str, messages: Sequence[tuple[str, bytes]]) -> None:
        if self._spans_recorded() or trace.get_current_span().get_span_context().is_valid:
            await self._bus.publish_serialized(topic, messages)
            return
        loop = asyncio.get_running_loop()
        batch = self._batches.get(topic)
        if batch is None:
            batch = self._batches[topic] = _Batch()
            # After the callbacks already due in this turn: the requests ready now join.
            loop.call_soon(self._send, topic)
        done: asyncio.Future[None] = loop.create_future()
        batch.records.extend(messages)
        batch.waiters.append(done)
        await done

    def _send(self, topic: str) -> None:
        batch = self._batches.pop(topic)
        # Outside any request's context: the publish starts a trace of its own.
        task = asyncio.create_task(self._publish(topic, batch), context=contextvars.Context())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, topic: str, batch: _Batch) -> None:
        try:
            await self._bus.publish_serialized(topic, batch.records)
        except asyncio.CancelledError:
            for waiter in batch.waiters:
                waiter.cancel()
            raise
        except Exception as error:  # PublishError (503), or whatever a request would raise
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(_copy(error))
            return
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(None)


def _copy(error: Exception) -> Exception:
    """One exception per waiting request (each raise adds to its traceback)."""
    if isinstance(error, PublishError):
        return PublishError(*error.args)
    return error


async def publish(bus: Bus, messages: Sequence[AlertReceived], caller: Integration) -> bool:
    """True once every message is durable on the bus; False if the bus cannot take them."""
    try:
        await bus.publish_many(ALERTS_RAW, [(m.fingerprint, m) for m in messages])
    except PublishError as error:
        log.warning("cannot accept %d alerts durably: %s", len(messages), error)
        return False
    alerts_accepted(caller.id, caller.type).inc(len(messages))
    return True


async def publish_serialized(
    bus: SerializedPublisher, messages: Sequence[tuple[str, bytes]], caller: Integration
) -> bool:
    """`publish` for messages the hot path serialized itself (`AlertReceived` JSON)."""
    try:
        await bus.publish_serialized(ALERTS_RAW, messages)
    except PublishError as error:
        log.warning("cannot accept %d alerts durably: %s", len(messages), error)
        return False
    alerts_accepted(caller.id, caller.type).inc(len(messages))
    return True
