"""The notifier's status page consumers (their own consumer group): `incidents.events` (an
incident opened or changed severity), `incidents.lifecycle` (resolved, re-triggered) and
`incidents.updates` (an operator's update). Each changes the notifier's record of the incident
(compare-and-set, idempotent on the message's id), marks the pages stale, and tells the
subscribers what became public or was posted (status_notices.py, once per subscriber).
`maintenance.windows` (a window created, replaced or deleted through triage's API) updates the
notifier's own copy of the window (the newest message wins) and marks the pages stale."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from schemas import (
    INCIDENTS_EVENTS,
    INCIDENTS_LIFECYCLE,
    INCIDENTS_UPDATES,
    MAINTENANCE_WINDOWS,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    IncidentUpdatePosted,
    LifecycleStatus,
    MaintenanceWindowChanged,
    UpdateStatus,
)
from services.notifier.config import NotifierConfig
from services.notifier.status_domain import (
    StatusIncident,
    auto_update,
    on_incident_event,
    on_lifecycle,
    on_page,
    on_update,
    page_updates,
    published_at,
)
from services.notifier.status_notices import Notice, StatusNotices
from services.notifier.status_pages import StatusPages
from services.notifier.status_store import StatusStore
from tocsin.runtime.bus import Subscription
from tocsin.runtime.live_config import Current

log = logging.getLogger(__name__)

STATUS_GROUP = "tocsin-notifier-status"
_MAX_RACES = 20


class StatusConsumers:
    def __init__(
        self,
        store: StatusStore,
        config: Current[NotifierConfig],
        pages: StatusPages,
        notices: StatusNotices,
    ) -> None:
        self._store = store
        self._config = config
        self._pages = pages
        self._notices = notices

    def subscriptions(self) -> list[Subscription[Any]]:
        return [
            Subscription(INCIDENTS_EVENTS, STATUS_GROUP, IncidentEvent, self.on_incident_event),
            Subscription(
                INCIDENTS_LIFECYCLE, STATUS_GROUP, IncidentLifecycleChanged, self.on_lifecycle
            ),
            Subscription(INCIDENTS_UPDATES, STATUS_GROUP, IncidentUpdatePosted, self.on_update),
            Subscription(
                MAINTENANCE_WINDOWS, STATUS_GROUP, MaintenanceWindowChanged, self.on_window
            ),
        ]

    async def on_window(self, change: MaintenanceWindowChanged) -> None:
        """Keep the notifier's copy of the window (the newest message wins; redelivery is a
        no-op) and mark the pages stale."""
        if await self._store.save_window(change):
            self._pages.changed()

    async def _change(
        self,
        incident_id: str,
        event_id: str,
        apply: Callable[[StatusIncident | None], StatusIncident | None],
    ) -> tuple[StatusIncident | None, StatusIncident | None, bool]:
        """(before, after, redelivered): apply the change with compare-and-set."""
        for _ in range(_MAX_RACES):
            before = await self._store.get(incident_id)
            if before is not None and before.seen(event_id):
                return before, before, True
            after = apply(before)
            if after is None:
                return before, None, False
            if after is before:
                return before, after, False  # nothing public changed: no write
            if await self._store.save(after):
                self._pages.changed()
                return before, after, False
        raise RuntimeError(f"status record of {incident_id} kept changing under us")

    async def on_incident_event(self, event: IncidentEvent) -> None:
        if event.kind == IncidentEventKind.ALERT_HELD:
            return  # a held alert is private to the incident's timeline
        before, after, again = await self._change(
            event.incident_id, str(event.event_id), lambda c: on_incident_event(c, event)
        )
        if after is None:
            return
        for page in self._config.current.status_pages:
            update = auto_update(page, after)
            if update is None or not on_page(page, after):
                continue
            if before is not None and auto_update(page, before) is not None and not again:
                continue  # announced when it was published
            await self._notices.announce(
                page,
                after,
                Notice(after.id, update.id, update.status.value, update.body, True, update.at),
            )

    async def on_lifecycle(self, change: IncidentLifecycleChanged) -> None:
        _, after, _ = await self._change(
            change.incident_id, str(change.event_id), lambda c: on_lifecycle(c, change)
        )
        if after is None or change.status != LifecycleStatus.RESOLVED:
            return
        for page in self._config.current.status_pages:
            if published_at(page, after) is None:
                continue
            last = page_updates(page, after)[-1]
            if last.status == UpdateStatus.RESOLVED and last.id.endswith("-resolved"):
                await self._notices.announce(
                    page,
                    after,
                    Notice(after.id, last.id, last.status.value, last.body, True, last.at),
                )

    async def on_update(self, posted: IncidentUpdatePosted) -> None:
        _, after, _ = await self._change(
            posted.incident_id, str(posted.event_id), lambda c: on_update(c, posted)
        )
        if after is None:
            return
        notice = Notice(
            incident_id=after.id,
            update_id=str(posted.event_id),
            status=posted.status.value,
            body=posted.message,
            public=posted.public,
            at=posted.occurred_at,
        )
        for page in self._config.current.status_pages:
            if on_page(page, after):
                await self._notices.announce(page, after, notice)
