"""The one SQLite file (WAL) that holds the embedded bus and the embedded store, with group
commit.

Both adapters write through one connection. Writes join the open transaction, and it commits
when durability is owed to someone:
- a consumer loop commits after each batch, together with its new position, so a batch's
  effects and its position become durable at once (a crash before that redelivers the batch);
  under load, batches that end within `COMMIT_INTERVAL` of the last commit share the next one;
- a publish from outside a consumer batch (an HTTP request: ingest's 202) commits at once;
- every HTTP response of `tocsin up` waits for a commit (middleware), so an acknowledged
  command is on disk;
- a background committer commits what timer loops wrote, within `COMMIT_INTERVAL`.
Committing other work early is always safe, since every write is already in memory and final.
One file rather than two: SQLite does not make a transaction across attached WAL databases
atomic, and a batch's effects must never be durable without its position, or the reverse.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# A consumer batch commits at once unless another commit happened this recently; then the
# background committer takes it within the same window (group commit under load).
COMMIT_INTERVAL = 0.02

CACHE_KIB = 16 * 1024
CHECKPOINT_PAGES = 10_000  # about 40 MiB of WAL at SQLite's 4 KiB pages
JOURNAL_LIMIT_BYTES = 64 * 1024 * 1024

# Set by a consumer loop for its own task: publishes then join the batch's transaction.
_IN_BATCH: ContextVar[bool] = ContextVar("tocsin_embedded_in_batch", default=False)


@contextmanager
def consumer_batch() -> Iterator[None]:
    token = _IN_BATCH.set(True)
    try:
        yield
    finally:
        _IN_BATCH.reset(token)


def in_consumer_batch() -> bool:
    return _IN_BATCH.get()


class SqliteFile:
    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        level = synchronous.upper()
        if level not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"SQLite synchronous must be NORMAL, FULL or EXTRA, not {level!r}")
        self.path = path
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute(f"PRAGMA synchronous={level}")
        # A page cache that holds a busy store's hot pages (the default is 2 MiB), and fewer
        # checkpoints (each copies the pages the WAL holds into the file, and syncs it): a page
        # rewritten by many commits in between is copied once. The WAL is cut back after.
        self._connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._connection.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        self._connection.execute(f"PRAGMA journal_size_limit={JOURNAL_LIMIT_BYTES}")
        self._closed = False
        self._last_commit = time.monotonic()

    def schema(self, script: str) -> None:
        self.commit()
        self._connection.executescript(script)

    def read(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self._connection.execute(sql, tuple(params))

    def write(self, sql: str, params: Iterable[Any] = ()) -> None:
        if not self._connection.in_transaction:
            self._connection.execute("BEGIN")
        self._connection.execute(sql, tuple(params))

    def write_many(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        if not self._connection.in_transaction:
            self._connection.execute("BEGIN")
        self._connection.executemany(sql, rows)

    def commit(self) -> None:
        if self._connection.in_transaction:
            self._connection.execute("COMMIT")
        self._last_commit = time.monotonic()

    def commit_soon(self) -> None:
        """Commit now, unless a commit happened within `COMMIT_INTERVAL` (the committer then
        commits within that interval)."""
        if time.monotonic() - self._last_commit >= COMMIT_INTERVAL:
            self.commit()

    def close(self) -> None:
        if self._closed:
            return
        self.commit()
        self._connection.close()
        self._closed = True

    async def run_committer(self) -> None:
        """Commit what background loops wrote; the bound on how long a write waits."""
        while True:
            await asyncio.sleep(COMMIT_INTERVAL)
            self.commit()
