"""The status pages' part of the notifier, assembled: store, snapshot, subscribers, consumers
(their own consumer group) and public routes. app.py mounts it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from fastapi import APIRouter

from services.notifier import status_api
from services.notifier.config import NotifierConfig
from services.notifier.message_store import MessageStore
from services.notifier.status_consumers import StatusConsumers
from services.notifier.status_domain import (
    Expand,
    MaintenanceSchedule,
    no_expansion,
    no_maintenance,
)
from services.notifier.status_notices import StatusNotices
from services.notifier.status_pages import StatusPages
from services.notifier.status_store import StatusStore
from tocsin.runtime.bus import Subscription
from tocsin.runtime.clock import Clock
from tocsin.runtime.live_config import Current


class StatusService:
    def __init__(
        self,
        store: StatusStore,
        config: Current[NotifierConfig],
        clock: Clock,
        client: httpx.AsyncClient,
        messages: MessageStore,
        *,
        max_age: float = 2.0,
        maintenance: MaintenanceSchedule = no_maintenance,
        expand: Expand = no_expansion,
    ) -> None:
        """`maintenance`: the configuration file's maintenance windows' occurrences; `expand`:
        the occurrences of one created through triage's API (both from the composition root)."""
        self.pages = StatusPages(
            store, config, clock, max_age=max_age, maintenance=maintenance, expand=expand
        )
        self.notices = StatusNotices(store, config, client, messages, clock)
        self.consumers = StatusConsumers(store, config, self.pages, self.notices)
        self.router: APIRouter = status_api.router(self.pages, self.notices, store, config, clock)
        self.subscriptions: list[Subscription[Any]] = self.consumers.subscriptions()
        self.loops: list[Callable[[], Coroutine[Any, Any, None]]] = [self.pages.run]
