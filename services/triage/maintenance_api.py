"""Operator routes for maintenance windows (`/api/v1/maintenance-windows`, operator API key):

- `POST` creates a window, or replaces the one named by `id`; the body has the keys of the
  configuration file's `maintenance_windows[]` entries (`services`, `starts_at`, `ends_at` or
  `duration`, `rrule`, `timezone`, `comment`) plus `created_by`; answers 201 with the window.
- `GET` lists every window, the configuration file's (`source: config`) and the API's, each
  with its state now (`active`, `scheduled`, `ended`), the occurrence in force and the next.
- `GET /{id}`; `DELETE /{id}` deletes an API window (its held alerts are triaged within
  seconds, see unsilence.py); a configured one answers 409.
- `GET /api/v1/maintenance-windows/occurrences?service=&start=&end=`: the occurrences on a
  service in a range (default: now to 7 days ahead), what a status page shows as scheduled
  maintenance.

After the store write, a create, replace or delete is published on `maintenance.windows`
(`MaintenanceWindowChanged`, without the comment) for the notifier's status pages. Its event id
is derived from the window's content, so a retried request publishes the same message; if the
publish fails the route answers 503 and the operator retries the same request (the store write
is idempotent: the same upsert; a DELETE of a window that is not there still publishes the
deletion before its 404, so a retry after a 503 reaches the pages).
"""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas import MAINTENANCE_WINDOWS, MaintenanceWindowChanged
from services.triage.config import MaintenanceWindowConfig, TriageConfig
from services.triage.domain.maintenance import MaintenanceWindow, Occurrence, scheduled
from services.triage.maintenance_store import MaintenanceStore, WindowRecord, WindowsInForce
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.config_problems import IDENTIFIER_PATTERN, problems_of
from tocsin.runtime.live_config import Current, Fixed

log = logging.getLogger(__name__)

_RESERVED_IDS = {"occurrences"}
_EVENTS = uuid.UUID("5b0c7f7e-3f7a-4d0e-9a39-6d1f6f3c2a13")  # namespace of the event ids
_MAX_RANGE = timedelta(days=366)


class WindowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        default=None, max_length=100, pattern=IDENTIFIER_PATTERN, description="Replace it."
    )
    services: list[str] = Field(min_length=1, max_length=1000)
    starts_at: datetime = Field(description="With an offset, or local time in `timezone`.")
    ends_at: datetime | None = None
    duration: str | None = Field(default=None, max_length=32, description="e.g. 2h, 90m")
    rrule: str | None = Field(default=None, max_length=1024, description="e.g. FREQ=WEEKLY")
    timezone: str = Field(default="UTC", max_length=100)
    comment: str = Field(min_length=1, max_length=4096)
    created_by: str = Field(min_length=1, max_length=200)


class OccurrenceOut(BaseModel):
    window_id: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, occurrence: Occurrence) -> "OccurrenceOut":
        return cls(window_id=occurrence.window_id, start=occurrence.start, end=occurrence.end)


class WindowOut(BaseModel):
    id: str
    source: Literal["api", "config"]
    services: list[str]
    starts_at: datetime
    duration_seconds: float
    rrule: str | None
    timezone: str
    comment: str
    created_by: str | None
    created_at: datetime | None
    state: Literal["active", "scheduled", "ended"]
    current: OccurrenceOut | None = Field(description="The occurrence in force now.")
    next: OccurrenceOut | None = Field(description="The next occurrence to start.")
    ends_at: datetime | None = Field(description="End of the last occurrence; null: never.")

    @classmethod
    def of(
        cls, window: MaintenanceWindow, now: datetime, record: WindowRecord | None = None
    ) -> "WindowOut":
        current = window.occurrence_at(now)
        upcoming = _next(window, now)
        last_end = window.last_end()
        state: Literal["active", "scheduled", "ended"] = (
            "active" if current else "scheduled" if upcoming else "ended"
        )
        return cls(
            id=window.id,
            source="api" if record is not None else "config",
            services=list(window.services),
            starts_at=window.starts_at,
            duration_seconds=window.duration.total_seconds(),
            rrule=window.rrule,
            timezone=window.timezone,
            comment=window.comment,
            created_by=record.created_by if record else None,
            created_at=record.created_at if record else None,
            state=state,
            current=OccurrenceOut.of(current) if current else None,
            next=OccurrenceOut.of(upcoming[0]) if upcoming else None,
            ends_at=last_end,
        )


def _next(window: MaintenanceWindow, now: datetime) -> list[Occurrence]:
    """The next occurrence to start after `now` (within a year), as a list of at most one."""
    for ahead in (timedelta(days=1), timedelta(days=32), _MAX_RANGE):
        upcoming = [o for o in window.occurrences(now, now + ahead) if o.start > now]
        if upcoming:
            return upcoming[:1]
    return []


def _window(body: WindowBody, window_id: str, known_services: set[str]) -> MaintenanceWindow:
    fields = body.model_dump(exclude={"id", "created_by"}, exclude_none=True)
    try:
        entry = MaintenanceWindowConfig.model_validate({"id": window_id, **fields})
    except ValidationError as error:
        raise HTTPException(400, "; ".join(problems_of(error, MaintenanceWindowConfig))) from None
    unknown = [s for s in entry.services if known_services and s not in known_services]
    if unknown:
        raise HTTPException(400, f"services: unknown service {unknown[0]!r}")
    return entry.window


def changed(
    window_id: str, window: MaintenanceWindow | None, at: datetime
) -> MaintenanceWindowChanged:
    """The message telling the notifier that the window is now `window` (None: deleted). The
    event id is a function of the content: the same change published twice is one event."""
    correlation_id = f"maintenance-{window_id}"
    if window is None:
        return MaintenanceWindowChanged(
            event_id=uuid.uuid5(_EVENTS, f"{window_id}|deleted"),
            occurred_at=at,
            correlation_id=correlation_id,
            window_id=window_id,
            deleted=True,
        )
    starts_at = window.starts_at.astimezone(UTC)
    seconds = window.duration.total_seconds()
    content = (window_id, ",".join(window.services), starts_at.isoformat(), str(seconds))
    key = "|".join((*content, window.rrule or "", window.timezone))
    return MaintenanceWindowChanged(
        event_id=uuid.uuid5(_EVENTS, key),
        occurred_at=at,
        correlation_id=correlation_id,
        window_id=window_id,
        services=window.services,
        starts_at=starts_at,
        duration_seconds=seconds,
        rrule=window.rrule,
        timezone=window.timezone,
    )


def router(
    store: MaintenanceStore,
    in_force: WindowsInForce,
    config: TriageConfig | Current[TriageConfig],
    clock: Clock,
    require_api_key: Callable[..., str],
    bus: Bus | None = None,
) -> APIRouter:
    """`bus`: where window changes are published for the status pages (None: nowhere)."""
    api = APIRouter(prefix="/api/v1/maintenance-windows", tags=["maintenance windows"])
    ApiKey = Annotated[str, Depends(require_api_key)]
    WindowId = Annotated[str, Path(max_length=100)]
    live = Fixed(config) if isinstance(config, TriageConfig) else config

    def configured() -> dict[str, MaintenanceWindow]:
        return {window.id: window for window in live.current.windows}

    async def publish(window_id: str, window: MaintenanceWindow | None) -> None:
        if bus is None:
            return
        try:
            await bus.publish(
                MAINTENANCE_WINDOWS, window_id, changed(window_id, window, clock.now())
            )
        except Exception as error:  # the store has it; the status pages do not yet
            log.warning(
                "maintenance window %s: publish failed (%s)", window_id, type(error).__name__
            )
            raise HTTPException(
                503, "saved, but the status pages were not told: retry the same request"
            ) from None

    @api.post("", status_code=201, response_model=WindowOut, responses={400: {}, 401: {}, 409: {}})
    async def post_window(_: ApiKey, body: WindowBody) -> WindowOut:
        """Create a window, or replace the API window named by `id`."""
        now = clock.now()
        window_id = body.id or f"mw-{uuid.uuid4().hex[:16]}"
        if window_id in _RESERVED_IDS:
            raise HTTPException(400, f"id: {window_id!r} is reserved")
        if window_id in configured():
            raise HTTPException(409, f"window {window_id!r} is declared in the configuration file")
        window = _window(body, window_id, set(live.current.service_tiers))
        last_end = window.last_end()
        if last_end is not None and last_end <= now:
            raise HTTPException(400, "the window has already ended")
        created_at = now
        if body.id is not None:
            previous = await store.get(body.id)
            created_at = previous.created_at if previous is not None else now
        record = WindowRecord(window, body.created_by, created_at)
        await store.save(record)
        in_force.invalidate()
        await publish(window_id, window)
        return WindowOut.of(window, now, record)

    @api.get("", response_model=list[WindowOut], responses={401: {}})
    async def list_windows(
        _: ApiKey, service: Annotated[str | None, Query(max_length=100)] = None
    ) -> list[WindowOut]:
        now = clock.now()
        found = [WindowOut.of(window, now) for window in configured().values()]
        found += [WindowOut.of(r.window, now, r) for r in await store.list_all()]
        return [w for w in found if service is None or service in w.services]

    @api.get("/occurrences", response_model=list[OccurrenceOut], responses={400: {}, 401: {}})
    async def occurrences(
        _: ApiKey,
        service: Annotated[str, Query(min_length=1, max_length=100)],
        start: AwareDatetime | None = None,
        end: AwareDatetime | None = None,
    ) -> list[OccurrenceOut]:
        """Scheduled maintenance of a service: occurrences overlapping `[start, end)`."""
        now = clock.now()
        start = start or now
        end = end or start + timedelta(days=7)
        if not start < end <= start + _MAX_RANGE:
            raise HTTPException(400, "end must be after start, at most 366 days later")
        windows = await in_force.current()
        return [OccurrenceOut.of(o) for o in scheduled(windows, service, start, end)]

    @api.get("/{window_id}", response_model=WindowOut, responses={401: {}, 404: {}})
    async def get_window(_: ApiKey, window_id: WindowId) -> WindowOut:
        now = clock.now()
        declared = configured().get(window_id)
        if declared is not None:
            return WindowOut.of(declared, now)
        record = await store.get(window_id)
        if record is None:
            raise HTTPException(404, f"no maintenance window {window_id!r}")
        return WindowOut.of(record.window, now, record)

    @api.delete("/{window_id}", status_code=204, responses={401: {}, 404: {}, 409: {}})
    async def delete_window(_: ApiKey, window_id: WindowId) -> None:
        """Delete the window; alerts it held are triaged within seconds if they still fire."""
        if window_id in configured():
            raise HTTPException(
                409, f"window {window_id!r} is declared in the configuration file: edit it there"
            )
        if not await store.delete(window_id):
            await publish(window_id, None)  # a retry after a failed publish tells the pages
            raise HTTPException(404, f"no maintenance window {window_id!r}")
        in_force.invalidate()
        await publish(window_id, None)

    return api
