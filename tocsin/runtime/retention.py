"""Retention: every collection declares how long its finished documents are kept, and one loop
per process deletes what is past it, in bounded batches, oldest first (GoAlert's engine has the
same kind of cleanup manager).

A rule names a collection, the time field that says when a document finished (an index on it,
or on the rule's equality fields plus it, keeps the sweep cheap), an optional filter of what
"finished" means (a delivered notification, a fired timer; open things are never deleted), and
how long to keep it (`keep=None` keeps forever). `cascade` names documents of other collections
that belong to a deleted one (an incident's timeline entries, its memberships): they go with it.

Each service's store declares its rules (`retention_rules(policy)`); the durations come from the
process settings (`TOCSIN_RETENTION_*`).

Deleting is safe against concurrent writers: a sweep reads a batch of ids matching the rule,
then deletes `{_id: {$in: ids}, <the rule's filter>}` so a document that changed in between
(e.g. a reopened incident) no longer matches and stays.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import Counter

from tocsin.runtime.backoff import backoff_delay
from tocsin.runtime.clock import Clock
from tocsin.runtime.parts import Parts
from tocsin.runtime.service import Service
from tocsin.runtime.settings import Settings
from tocsin.runtime.store import DocumentDatabase, StoreUnavailable

log = logging.getLogger(__name__)

DELETED = Counter(
    "tocsin_retention_deleted_total",
    "Documents deleted because they were past their retention.",
    ["collection"],
)


@dataclass(frozen=True)
class Cascade:
    collection: str
    parent_field: str  # holds the deleted document's `_id`


@dataclass(frozen=True)
class RetentionRule:
    collection: str
    time_field: str
    keep: timedelta | None
    where: Mapping[str, Any] = field(default_factory=dict)
    cascade: tuple[Cascade, ...] = ()


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of finished document is kept; None keeps forever."""

    resolved: timedelta | None
    notifications: timedelta | None
    internal: timedelta | None

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        def keep(value: timedelta) -> timedelta | None:
            return value if value > timedelta(0) else None

        return cls(
            keep(settings.retention_resolved),
            keep(settings.retention_notifications),
            keep(settings.retention_internal),
        )


class RetentionSweeper:
    def __init__(
        self,
        database: DocumentDatabase,
        rules: Sequence[RetentionRule],
        clock: Clock,
        *,
        interval_seconds: float = 300.0,
        batch_size: int = 500,
    ) -> None:
        self._database = database
        self._rules = [rule for rule in rules if rule.keep is not None]
        self._clock = clock
        self._interval = interval_seconds
        self._batch = batch_size

    async def sweep_once(self, *, max_batches: int = 20) -> dict[str, int]:
        """Delete what is past retention; at most `max_batches` batches per rule per call, so
        a first sweep over years of data never blocks the process for long."""
        deleted: dict[str, int] = {}
        for rule in self._rules:
            if rule.keep is None:
                continue
            cutoff = self._clock.now() - rule.keep
            query = {**rule.where, rule.time_field: {"$lt": cutoff}}
            collection = self._database[rule.collection]
            total = 0
            for _ in range(max_batches):
                cursor = (
                    collection.find(query, projection={"_id": 1})
                    .sort(rule.time_field, 1)
                    .limit(self._batch)
                )
                ids = [doc["_id"] async for doc in cursor]
                if not ids:
                    break
                # Children first: a crash in between leaves the parent, and the next sweep
                # finds it again (never an orphan nobody would delete).
                for child in rule.cascade:
                    await self._database[child.collection].delete_many(
                        {child.parent_field: {"$in": ids}}
                    )
                result = await collection.delete_many({**query, "_id": {"$in": ids}})
                total += result.deleted_count
                if len(ids) < self._batch:
                    break
                await asyncio.sleep(0)  # let the pipeline run between batches
            if total:
                DELETED.labels(collection=rule.collection).inc(total)
                log.info("retention: deleted %d from %s", total, rule.collection)
            deleted[rule.collection] = deleted.get(rule.collection, 0) + total
        return deleted

    async def run(self) -> None:
        """Sweep every interval; while the store is unavailable, retry with backoff (a loop that
        ended here took its process down with it)."""
        failures = 0
        while True:
            try:
                await self.sweep_once()
            except StoreUnavailable as error:
                failures += 1
                log.warning("retention sweep: store unavailable (%s); retrying", error)
                cap = max(1.0, min(60.0, self._interval))
                delay = backoff_delay(failures, base=1.0, cap=cap, random=random.random)
                await asyncio.sleep(delay)
                continue
            failures = 0
            await asyncio.sleep(self._interval)


def retention_loop(
    database: DocumentDatabase,
    rules: Sequence[RetentionRule],
    clock: Clock,
    settings: Settings,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A service's background loop that applies its rules (see `Service.loops`)."""
    sweeper = RetentionSweeper(
        database, rules, clock, interval_seconds=settings.retention_sweep_seconds
    )

    async def sweep_retention() -> None:
        await sweeper.run()

    return sweep_retention


def with_retention(
    service: Service, parts: Parts, rules: Callable[[RetentionPolicy], Sequence[RetentionRule]]
) -> Service:
    """`service` plus the loop that deletes its finished documents past retention."""
    policy = RetentionPolicy.from_settings(parts.settings)
    service.loops.append(retention_loop(parts.database, rules(policy), parts.clock, parts.settings))
    return service
