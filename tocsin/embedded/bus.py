"""The embedded bus: a durable log of messages in one SQLite file (WAL), for `tocsin up`.

Each topic is one ordered log (one partition, so per-key order holds trivially); each consumer
group keeps its position in `positions` and advances it only after the handler's effects are
durable, so what was not committed is delivered again after a crash. Dead letters go to
`<topic>.dlq` like on Kafka. Records every group has consumed are trimmed as positions advance.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace

from schemas import Envelope
from tocsin import telemetry
from tocsin.bus import M, PublishError, Subscription
from tocsin.consumer import Record, RecordProcessor

_BATCH = 500
_TRIM_EVERY = 1000


class EmbeddedBus:
    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "NORMAL",
        handler_attempts: int = 5,
        handler_backoff_seconds: float = 0.2,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._connection: sqlite3.Connection | None = None
        self._wakeups: dict[str, asyncio.Event] = {}
        self._consumed_since_trim: dict[str, int] = {}
        self._tracer = telemetry.tracer(__name__)
        self._processor = RecordProcessor(
            self.publish, attempts=handler_attempts, backoff_seconds=handler_backoff_seconds
        )

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise PublishError("the embedded bus is not started")
        return self._connection

    async def start(self) -> None:
        if self._connection is not None:
            return
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.executescript(
            """
            CREATE TABLE IF NOT EXISTS messages (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                topic TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                headers TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS messages_by_topic ON messages (topic, seq);
            CREATE TABLE IF NOT EXISTS positions (
                grp TEXT NOT NULL, topic TEXT NOT NULL, next_seq INTEGER NOT NULL,
                PRIMARY KEY (grp, topic));
            """
        )
        self._connection = connection

    async def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def ready(self) -> bool:
        try:
            self._db.execute("SELECT 1")
        except (sqlite3.Error, PublishError):
            return False
        return True

    async def publish(self, topic: str, key: str, message: Envelope) -> None:
        await self.publish_many(topic, [(key, message)])

    async def publish_many(self, topic: str, messages: Sequence[tuple[str, Envelope]]) -> None:
        with self._tracer.start_as_current_span(
            f"{topic} publish", kind=trace.SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.destination.name", topic)
            span.set_attribute("messaging.batch.message_count", len(messages))
            headers = json.dumps([[n, v.decode("latin-1")] for n, v in telemetry.inject_headers()])
            rows = [
                (topic, key, message.model_dump_json().encode(), headers)
                for key, message in messages
            ]
            db = self._db
            insert = "INSERT INTO messages (topic, key, value, headers) VALUES (?, ?, ?, ?)"
            try:
                if len(rows) == 1:
                    db.execute(insert, rows[0])  # autocommit: one statement, one transaction
                else:
                    # One transaction: all of the batch is durable, or none of it.
                    db.execute("BEGIN")
                    db.executemany(insert, rows)
                    db.execute("COMMIT")
            except sqlite3.Error as error:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise PublishError(f"{topic}: {error}") from error
        self._wakeup(topic).set()

    def _wakeup(self, topic: str) -> asyncio.Event:
        event = self._wakeups.get(topic)
        if event is None:
            event = self._wakeups[topic] = asyncio.Event()
        return event

    def _position(self, group: str, topic: str) -> int:
        row = self._db.execute(
            "SELECT next_seq FROM positions WHERE grp = ? AND topic = ?", (group, topic)
        ).fetchone()
        return int(row[0]) if row else 0

    async def consume(self, subscription: Subscription[M]) -> None:
        topic, group = subscription.topic, subscription.group
        wakeup = self._wakeup(topic)
        position = self._position(group, topic)
        while True:
            wakeup.clear()
            rows = self._db.execute(
                "SELECT seq, key, value, headers FROM messages"
                " WHERE topic = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (topic, position, _BATCH),
            ).fetchall()
            if not rows:
                try:
                    await asyncio.wait_for(wakeup.wait(), timeout=1.0)
                except TimeoutError:
                    pass
                continue
            for seq, key, value, headers in rows:
                await self._processor.process(
                    subscription,
                    Record(
                        key=key.encode(),
                        value=bytes(value),
                        headers=[(n, v.encode("latin-1")) for n, v in json.loads(headers)],
                        partition=0,
                        offset=seq,
                    ),
                )
                position = seq + 1
                # Embedded store and bus calls rarely suspend: yield after each record so that
                # HTTP requests and the other consumers are not starved by a long batch.
                await asyncio.sleep(0)
            # Every record of the batch was handled and its effects are durable. A crash
            # before this line redelivers the batch; the handlers are idempotent.
            self._db.execute(
                "INSERT INTO positions (grp, topic, next_seq) VALUES (?, ?, ?)"
                " ON CONFLICT (grp, topic) DO UPDATE SET next_seq = excluded.next_seq",
                (group, topic, position),
            )
            self._maybe_trim(topic, len(rows))

    def _maybe_trim(self, topic: str, consumed: int) -> None:
        count = self._consumed_since_trim.get(topic, 0) + consumed
        if count < _TRIM_EVERY:
            self._consumed_since_trim[topic] = count
            return
        self._consumed_since_trim[topic] = 0
        self._db.execute(
            "DELETE FROM messages WHERE topic = ? AND seq < "
            "(SELECT MIN(next_seq) FROM positions WHERE topic = ?)",
            (topic, topic),
        )
