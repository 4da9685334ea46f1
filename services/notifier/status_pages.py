"""The status pages as served: an in-memory snapshot of every page, computed from the
notifier's records (status_store.py), refreshed when a consumer changed a record and at most
`max_age` old otherwise (another replica may have consumed the change), and each page's HTML,
JSON documents and Atom feed rendered once per snapshot with their `ETag`.

A request reads the snapshot; only a stale one costs a store read, and concurrent requests
share one refresh, so a crowd on the public page costs the store one query per `max_age`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.notifier import status_views
from services.notifier.config import NotifierConfig
from services.notifier.metrics import PROACTIVE_RATIO
from services.notifier.status_domain import (
    COMPONENT_LABEL,
    HISTORY,
    MAINTENANCE_AHEAD,
    Expand,
    IncidentView,
    MaintenanceSchedule,
    PageView,
    StatusIncident,
    no_expansion,
    no_maintenance,
    page_view,
    proactive,
)
from services.notifier.status_store import StatusStore
from tocsin.runtime.clock import Clock
from tocsin.runtime.consumer import UNAVAILABLE
from tocsin.runtime.live_config import Current

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "atom"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class Rendered:
    body: bytes
    media_type: str
    etag: str


def rendered(body: bytes, media_type: str) -> Rendered:
    return Rendered(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


class StatusPages:
    def __init__(
        self,
        store: StatusStore,
        config: Current[NotifierConfig],
        clock: Clock,
        *,
        max_age: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        maintenance: MaintenanceSchedule = no_maintenance,
        expand: Expand = no_expansion,
    ) -> None:
        """`maintenance`: the configuration file's windows; `expand`: occurrences of a window
        created through triage's API (the store keeps copies from `maintenance.windows`)."""
        self._maintenance = maintenance
        self._expand = expand
        self._store = store
        self._config = config
        self._clock = clock
        self._max_age = max_age
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._views: dict[str, PageView] = {}
        self._incidents: list[StatusIncident] = []
        self._cache: dict[tuple[str, str], Rendered] = {}
        self._loaded_at: float | None = None
        self._config_seen: NotifierConfig | None = None
        self._env = environment()

    async def run(self, every: float = 15.0) -> None:
        """Keep the snapshot (and `tocsin_incidents_proactive_ratio`) current when nobody is
        reading the page."""
        while True:
            try:
                await self._fresh()
            except UNAVAILABLE as error:
                log.warning("status pages: store unavailable (%s)", type(error).__name__)
            await asyncio.sleep(every)

    def changed(self) -> None:
        """A record changed here: the next request refreshes."""
        self._loaded_at = None

    async def incidents(self) -> list[StatusIncident]:
        await self._fresh()
        return self._incidents

    async def view(self, page_id: str) -> PageView | None:
        await self._fresh()
        return self._views.get(page_id)

    async def _fresh(self) -> None:
        config = self._config.current
        if self._is_fresh(config):
            return
        async with self._lock:
            if self._is_fresh(config):
                return  # another request refreshed meanwhile
            started = self._monotonic()
            now = self._clock.now()
            incidents = await self._store.shown(now - HISTORY)
            pages = config.status_pages
            ahead = [*self._maintenance(now, now + MAINTENANCE_AHEAD)]
            if self._expand is not no_expansion:
                for window in await self._store.windows():
                    ahead += self._expand(window, now, now + MAINTENANCE_AHEAD)
            self._views = {page.id: page_view(page, incidents, now, ahead) for page in pages}
            self._incidents = incidents
            self._cache = {}
            self._loaded_at = started
            self._config_seen = config
            total, told = proactive(incidents, pages)
            PROACTIVE_RATIO.set(told / total if total else 1.0)

    def _is_fresh(self, config: NotifierConfig) -> bool:
        return (
            self._loaded_at is not None
            and config is self._config_seen
            and self._monotonic() - self._loaded_at < self._max_age
        )

    async def render(self, page_id: str, kind: str) -> Rendered | None:
        """`kind`: `html`, `atom`, or a Statuspage document name (`summary`, ...)."""
        view = await self.view(page_id)
        if view is None:
            return None
        key = (page_id, kind)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._render(view, kind)
            self._cache[key] = cached
        return cached

    def _render(self, view: PageView, kind: str) -> Rendered:
        public_url = self._config.current.public_url
        zone = ZoneInfo(view.page.time_zone)
        base = status_views.page_url(None, view.page.id)
        helpers = {
            "iso": lambda at: status_views.timestamp(at),
            "local": lambda at: at.astimezone(zone).strftime("%b %d, %Y %H:%M %Z"),
            "labels": COMPONENT_LABEL,
            "base": base,
            "url": status_views.page_url(public_url, view.page.id),
        }
        if kind == "html":
            config = self._config.current
            body = self._env.get_template("status.html").render(
                view=view,
                history=_days(view, zone),
                subscribe=config.providers.smtp is not None and public_url is not None,
                **helpers,
            )
            return rendered(body.encode(), "text/html; charset=utf-8")
        if kind == "atom":
            body = self._env.get_template("history.atom").render(view=view, **helpers)
            return rendered(body.encode(), "application/atom+xml; charset=utf-8")
        document = status_views.document(view, public_url, kind)
        raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        return rendered(raw, "application/json")

    def message(self, **fields: str | None) -> bytes:
        """A small page (subscription confirmed, ...)."""
        return self._env.get_template("message.html").render(**fields).encode()


def _days(view: PageView, zone: ZoneInfo) -> list[tuple[str, list[IncidentView]]]:
    """The last 14 days, newest first, each with the resolved incidents published that day."""
    today = view.generated_at.astimezone(zone).date()
    by_day: dict[str, list[IncidentView]] = {}
    for incident in view.history:
        if incident.resolved_at is None:
            continue  # shown above, under active incidents
        day = incident.created_at.astimezone(zone).date()
        by_day.setdefault(day.isoformat(), []).append(incident)
    days = []
    for back in range(14):
        day = today - timedelta(days=back)
        label = datetime(day.year, day.month, day.day, tzinfo=UTC).strftime("%b %d, %Y")
        days.append((label, by_day.get(day.isoformat(), [])))
    return days
