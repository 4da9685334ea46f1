"""Building the four services, shared by both ways of running Tocsin: one service per process
(distributed.py) and all of them in one process (embedded.py). A registry maps each service's
name to its `from_parts`, handing it only its own section of the configuration file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Literal, cast

from services.escalation import app as escalation
from services.escalation.console.triage_client import TriageLink
from services.ingest import app as ingest
from services.notifier import app as notifier
from services.notifier.status_domain import Maintenance, MaintenanceSchedule, WindowCopy
from services.triage import app as triage
from services.triage.domain.maintenance import MaintenanceWindow
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.access import Access, KeyStore
from tocsin.runtime.audit import AuditLog
from tocsin.runtime.clock import Clock
from tocsin.runtime.http import access_dependency
from tocsin.runtime.live_config import LiveConfig
from tocsin.runtime.parts import Parts
from tocsin.runtime.service import Service
from tocsin.runtime.settings import Settings
from tocsin.runtime.store import DocumentDatabase

ServiceName = Literal["ingest", "triage", "escalation", "notifier"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("ingest", "triage", "escalation", "notifier")

# Every service reads its section through a view of the live configuration, so a reload reaches
# it; what a service builds once at start (provider clients, public URL) is listed in reload.py.
BUILDERS: Mapping[ServiceName, Callable[[Parts, LiveConfig[TocsinConfig]], Service]] = {
    "ingest": lambda parts, live: ingest.from_parts(parts, live.view(TocsinConfig.ingest)),
    "triage": lambda parts, live: triage.from_parts(parts, live.view(TocsinConfig.triage)),
    "escalation": lambda parts, live: escalation_service(parts, live, None),
    "notifier": lambda parts, live: notifier.from_parts(
        parts,
        live.view(lambda config: notifier.with_public_url(config.notifier(), parts.settings)),
        maintenance_schedule(live),
        expand_window,
    ),
}


def maintenance_schedule(live: LiveConfig[TocsinConfig]) -> MaintenanceSchedule:
    """The status pages' scheduled maintenance: occurrences of the current configuration's
    `maintenance_windows` (triage's expansion; the notifier does not import triage)."""

    def scheduled(start: datetime, end: datetime) -> list[Maintenance]:
        return [
            Maintenance(occurrence.window_id, window.services, occurrence.start, occurrence.end)
            for window in live.current.maintenance_windows
            for occurrence in window.window.occurrences(start, end)
        ]

    return scheduled


def expand_window(copy: WindowCopy, start: datetime, end: datetime) -> list[Maintenance]:
    """Occurrences of a window created through triage's API, from the notifier's copy of it
    (`maintenance.windows`), by triage's expansion."""
    window = MaintenanceWindow(
        id=copy.window_id,
        services=copy.services,
        starts_at=copy.starts_at,
        duration=copy.duration,
        rrule=copy.rrule,
        timezone=copy.timezone,
    )
    return [
        Maintenance(occurrence.window_id, copy.services, occurrence.start, occurrence.end)
        for occurrence in window.occurrences(start, end)
    ]


def _with_public_url(parts: Parts, config: TocsinConfig) -> Parts:
    # The file's `public_url` wins over TOCSIN_PUBLIC_URL (and `tocsin up`'s default).
    if config.public_url is None:
        return parts
    settings = parts.settings.model_copy(update={"public_url": config.public_url})
    return replace(parts, settings=settings)


def access_control(
    settings: Settings, database: DocumentDatabase, live: LiveConfig[TocsinConfig], clock: Clock
) -> tuple[Access, AuditLog, Callable[..., str]]:
    """People (from the live file), personal keys and the bootstrap token, the audit log, and
    the operator API's guard built on them (tocsin.runtime.access, tocsin.runtime.http)."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    people = live.view(TocsinConfig.people)
    access = Access(KeyStore(database), lambda: people.current, clock, token)
    audit = AuditLog(database, clock)
    # FastAPI awaits the coroutine dependency; routers only see the user id it returns.
    guard = cast(Callable[..., str], access_dependency(access, audit))
    return access, audit, guard


def escalation_service(
    parts: Parts, live: LiveConfig[TocsinConfig], triage: TriageLink | None
) -> Service:
    """`triage`: where the console reaches triage's API (see its triage_client)."""
    return escalation.from_parts(
        _with_public_url(parts, live.current),
        live.view(TocsinConfig.escalation),
        live.view(TocsinConfig.status_updates),
        triage=triage,
        catalogue=live.view(TocsinConfig.catalogue),
    )


def build_service(
    name: ServiceName,
    parts: Parts,
    config: LiveConfig[TocsinConfig],
    triage: TriageLink | None = None,
) -> Service:
    """`triage`: for escalation's console (the other services ignore it)."""
    if name == "escalation":
        return escalation_service(parts, config, triage)
    return BUILDERS[name](parts, config)
