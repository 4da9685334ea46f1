"""Triage's `triage_maintenance_windows` collection: maintenance windows created through the
REST API (those of the configuration file live in triage's config section), and
`WindowsInForce`, what the consumer checks alerts against: the configured windows plus the
stored ones, read at most once a second (once per batch of alerts) and at once after this
process created or deleted one.

A window's document keeps `ends_at`, the end of its last occurrence (absent for a rule that
repeats forever, null): retention deletes windows that ended long ago; the alerts they held keep the
id in their decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from services.triage.config import TriageConfig
from services.triage.domain.maintenance import MaintenanceWindow
from services.triage.refreshed import Refreshed
from tocsin.runtime.clock import Clock, SystemClock
from tocsin.runtime.live_config import Current, Fixed
from tocsin.runtime.mongo import Document
from tocsin.runtime.retention import RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase

COLLECTION = "triage_maintenance_windows"


@dataclass(frozen=True)
class WindowRecord:
    window: MaintenanceWindow
    created_by: str
    created_at: datetime


class MaintenanceStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def save(self, record: WindowRecord) -> None:
        """Create the window, or replace the one with its id."""

    async def get(self, window_id: str) -> WindowRecord | None: ...

    async def list_all(self) -> list[WindowRecord]: ...

    async def delete(self, window_id: str) -> bool:
        """False if there is no such window."""

    async def in_force(self, at: datetime) -> list[MaintenanceWindow]:
        """Windows whose last occurrence has not ended at `at` (running or to come)."""


def _record(doc: Document) -> WindowRecord:
    window = MaintenanceWindow(
        id=doc["_id"],
        services=tuple(doc["services"]),
        starts_at=_utc(doc["starts_at"]),
        duration=timedelta(seconds=doc["duration_seconds"]),
        rrule=doc.get("rrule"),
        timezone=doc.get("timezone", "UTC"),
        comment=doc.get("comment", ""),
    )
    return WindowRecord(window, doc.get("created_by", ""), _utc(doc["created_at"]))


def _utc(value: datetime) -> datetime:
    # MongoDB hands back naive UTC datetimes unless the client is tz-aware.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class MongoMaintenanceStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._windows = database[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._windows.create_index("ends_at")

    async def save(self, record: WindowRecord) -> None:
        window = record.window
        fields: Document = {
            "services": list(window.services),
            "starts_at": window.starts_at.astimezone(UTC),
            "duration_seconds": window.duration.total_seconds(),
            "rrule": window.rrule,
            "timezone": window.timezone,
            "comment": window.comment,
            "created_by": record.created_by,
            "created_at": record.created_at,
            # None (a rule repeating forever) never compares with a time: retention keeps it.
            "ends_at": window.last_end(),
        }
        await self._windows.update_one({"_id": window.id}, {"$set": fields}, upsert=True)

    async def get(self, window_id: str) -> WindowRecord | None:
        doc = await self._windows.find_one({"_id": window_id})
        return _record(doc) if doc is not None else None

    async def list_all(self) -> list[WindowRecord]:
        return [_record(doc) async for doc in self._windows.find({}).sort("_id", 1)]

    async def delete(self, window_id: str) -> bool:
        result = await self._windows.delete_one({"_id": window_id})
        return bool(result.deleted_count)

    async def in_force(self, at: datetime) -> list[MaintenanceWindow]:
        # Few documents (windows are created by people); ended ones are filtered here because
        # a window that repeats forever has no `ends_at` to query on.
        found = []
        async for doc in self._windows.find({}):
            ends_at = doc.get("ends_at")
            if ends_at is None or _utc(ends_at) > at:
                found.append(_record(doc).window)
        return found


# The windows in force as the consumer sees them (see the module docstring).
WindowsInForce = Refreshed[tuple[MaintenanceWindow, ...]]


def windows_in_force(
    store: MaintenanceStore | None,
    config: TriageConfig | Current[TriageConfig],
    clock: Clock,
) -> WindowsInForce:
    """The configured windows (read live: a reload applies at the next refresh) plus, with a
    store, those created through the API."""
    live = Fixed(config) if isinstance(config, TriageConfig) else config

    async def load(at: datetime) -> tuple[MaintenanceWindow, ...]:
        stored = await store.in_force(at) if store is not None else []
        return live.current.windows + tuple(stored)

    return Refreshed(load, clock)


def no_windows() -> WindowsInForce:
    """No maintenance windows ever (a triage built without them, in tests)."""

    async def load(at: datetime) -> tuple[MaintenanceWindow, ...]:
        return ()

    return Refreshed(load, SystemClock(), timedelta.max)


def maintenance_retention(policy: RetentionPolicy) -> list[RetentionRule]:
    """Windows whose last occurrence ended past retention (one repeating forever stays)."""
    return [RetentionRule(COLLECTION, "ends_at", policy.resolved)]
