"""The embedded bus: a durable log of messages in the embedded SQLite file, for `tocsin up`.

Each topic is one ordered log (one partition, so per-key order holds trivially); each consumer
group keeps its position in `positions`. A consumer loop handles a batch inside one
transaction of the shared file and commits it together with its new position (see sqlite.py),
so what was not committed is delivered again after a crash. Dead letters go to `<topic>.dlq`
like on Kafka. Records every group has consumed are trimmed as positions advance.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence

import orjson
from opentelemetry import trace

from schemas import Envelope
from tocsin.runtime import telemetry
from tocsin.runtime.bus import M, PublishError, Subscription
from tocsin.runtime.consumer import Record, RecordProcessor
from tocsin.runtime.embedded.sqlite import SqliteFile, consumer_batch, in_consumer_batch
from tocsin.runtime.metrics import CONSUMER_LAG
from tocsin.runtime.waiting import wait_or_timeout

_BATCH = 500
_TRIM_EVERY = 1000
_HEADER_CACHE = 256


class _HeaderDecoder:
    """A record's stored headers as the bus hands them over. Every record of one publish
    stores the same headers text, so a few recent texts are remembered (decoding each record's
    alone was about 4% of triage's drain). orjson: the stdlib's decoder cost more than
    triaging the alert. Handlers read headers, never change them, so records share the list."""

    def __init__(self) -> None:
        self._recent: dict[str, list[tuple[str, bytes]]] = {}

    def __call__(self, text: str) -> list[tuple[str, bytes]]:
        found = self._recent.get(text)
        if found is None:
            if len(self._recent) >= _HEADER_CACHE:
                self._recent.clear()
            found = [(n, v.encode("latin-1")) for n, v in orjson.loads(text)]
            self._recent[text] = found
        return found


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_topic ON messages (topic, seq);
CREATE TABLE IF NOT EXISTS positions (
    grp TEXT NOT NULL, topic TEXT NOT NULL, next_seq INTEGER NOT NULL,
    PRIMARY KEY (grp, topic));
"""


class EmbeddedBus:
    def __init__(
        self,
        file: SqliteFile,
        *,
        handler_attempts: int = 5,
        handler_backoff_seconds: float = 0.2,
    ) -> None:
        self._file = file
        self._started = False
        self._wakeups: dict[str, asyncio.Event] = {}
        self._consumed_since_trim: dict[str, int] = {}
        self._tracer = telemetry.tracer(__name__)
        self._processor = RecordProcessor(
            self.publish, attempts=handler_attempts, backoff_seconds=handler_backoff_seconds
        )

    async def start(self) -> None:
        self._file.schema(_SCHEMA)
        self._started = True

    async def stop(self) -> None:
        # The file belongs to whoever opened it; make what was written durable.
        self._started = False
        self._file.commit()

    async def ready(self) -> bool:
        try:
            self._file.read("SELECT 1")
        except sqlite3.Error:
            return False
        return self._started

    async def publish(self, topic: str, key: str, message: Envelope) -> None:
        await self.publish_many(topic, [(key, message)])

    async def publish_many(self, topic: str, messages: Sequence[tuple[str, Envelope]]) -> None:
        await self.publish_serialized(
            topic, [(key, message.model_dump_json().encode()) for key, message in messages]
        )

    async def publish_serialized(self, topic: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish (key, JSON of a contract message) pairs in one write and one commit."""
        if not self._started:
            raise PublishError("the embedded bus is not started")
        with self._tracer.start_as_current_span(
            f"{topic} publish", kind=trace.SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.destination.name", topic)
            span.set_attribute("messaging.batch.message_count", len(messages))
            headers = json.dumps([[n, v.decode("latin-1")] for n, v in telemetry.inject_headers()])
            rows = [(topic, key, value, headers) for key, value in messages]
            try:
                self._file.write_many(
                    "INSERT INTO messages (topic, key, value, headers) VALUES (?, ?, ?, ?)", rows
                )
                if not in_consumer_batch():
                    self._file.commit()  # accepted means on disk (ingest answers after this)
            except sqlite3.Error as error:
                raise PublishError(f"{topic}: {error}") from error
        self._wakeup(topic).set()

    def _wakeup(self, topic: str) -> asyncio.Event:
        event = self._wakeups.get(topic)
        if event is None:
            event = self._wakeups[topic] = asyncio.Event()
        return event

    def _position(self, group: str, topic: str) -> int:
        row = self._file.read(
            "SELECT next_seq FROM positions WHERE grp = ? AND topic = ?", (group, topic)
        ).fetchone()
        return int(row[0]) if row else 0

    async def consume(self, subscription: Subscription[M]) -> None:
        topic, group = subscription.topic, subscription.group
        decoded = _HeaderDecoder()
        wakeup = self._wakeup(topic)
        position = self._position(group, topic)
        lag = CONSUMER_LAG.labels(topic=topic, group=group)
        with consumer_batch():
            while True:
                wakeup.clear()
                rows = self._file.read(
                    "SELECT seq, key, value, headers FROM messages"
                    " WHERE topic = ? AND seq >= ? ORDER BY seq LIMIT ?",
                    (topic, position, _BATCH),
                ).fetchall()
                lag.set(self._lag(topic, position) if len(rows) == _BATCH else len(rows))
                if not rows:
                    await wait_or_timeout(wakeup, 1.0)
                    continue
                records = [
                    Record(
                        key=key.encode(),
                        value=bytes(value),
                        headers=decoded(headers),
                        partition=0,
                        offset=seq,
                    )
                    for seq, key, value, headers in rows
                ]
                if subscription.batch_handler is not None:
                    await self._processor.process_batch(subscription, records)
                    await asyncio.sleep(0)
                else:
                    for record in records:
                        await self._processor.process(subscription, record)
                        # Embedded calls rarely suspend: yield after each record so that HTTP
                        # requests and the other consumers are not starved by a long batch.
                        await asyncio.sleep(0)
                position = rows[-1][0] + 1
                # The batch's effects and its position become durable in one commit.
                self._file.write(
                    "INSERT INTO positions (grp, topic, next_seq) VALUES (?, ?, ?)"
                    " ON CONFLICT (grp, topic) DO UPDATE SET next_seq = excluded.next_seq",
                    (group, topic, position),
                )
                self._maybe_trim(topic, len(rows))
                self._file.commit_soon()

    def _lag(self, topic: str, position: int) -> int:
        """Messages of the topic at or after `position` (asked only when a batch is full)."""
        row = self._file.read(
            "SELECT COUNT(*) FROM messages WHERE topic = ? AND seq >= ?", (topic, position)
        ).fetchone()
        return int(row[0]) if row else 0

    def _maybe_trim(self, topic: str, consumed: int) -> None:
        count = self._consumed_since_trim.get(topic, 0) + consumed
        if count < _TRIM_EVERY:
            self._consumed_since_trim[topic] = count
            return
        self._consumed_since_trim[topic] = 0
        self._file.write(
            "DELETE FROM messages WHERE topic = ? AND seq < "
            "(SELECT MIN(next_seq) FROM positions WHERE topic = ?)",
            (topic, topic),
        )
