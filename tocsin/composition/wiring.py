"""Building the four services from their parts, shared by both ways of running Tocsin: one
service per process (distributed.py) and all of them in one process (embedded/app.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from services.escalation import app as escalation
from services.escalation.store import MongoEscalationStore
from services.ingest import app as ingest
from services.ingest.store import MongoIngestStore
from services.notifier import app as notifier
from services.notifier.store import MongoNotifierStore
from services.triage import app as triage
from services.triage.store import MongoTriageStore
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.http import ApiKeys, api_key_dependency, token_digest
from tocsin.runtime.mongo import Document
from tocsin.runtime.service import Service
from tocsin.runtime.settings import Settings

ServiceName = Literal["ingest", "triage", "escalation", "notifier"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("ingest", "triage", "escalation", "notifier")


def api_keys(settings: Settings) -> ApiKeys:
    digests = {}
    if settings.admin_token is not None:
        digests["admin"] = token_digest(settings.admin_token.get_secret_value())
    return ApiKeys(digests)


@dataclass(frozen=True)
class Parts:
    """What every service is built from; only the bus and database adapters differ by mode."""

    bus: Bus
    database: AsyncDatabase[Document]
    config: TocsinConfig
    settings: Settings
    clock: Clock
    http_client: httpx.AsyncClient
    instance_id: str


def build_service(name: ServiceName, parts: Parts) -> Service:
    bus, database, config, clock = parts.bus, parts.database, parts.config, parts.clock
    require_api_key = api_key_dependency(api_keys(parts.settings))
    if name == "ingest":
        return ingest.build(bus, MongoIngestStore(database), config, clock)
    if name == "triage":
        return triage.build(bus, MongoTriageStore(database), config, require_api_key)
    if name == "escalation":
        return escalation.build(
            bus,
            MongoEscalationStore(database),
            config,
            clock,
            require_api_key,
            instance_id=parts.instance_id,
            lease=timedelta(seconds=parts.settings.timer_lease_seconds),
            poll_seconds=parts.settings.timer_poll_seconds,
        )
    return notifier.build(
        bus,
        MongoNotifierStore(database),
        config,
        clock,
        parts.http_client,
        instance_id=parts.instance_id,
        poll_seconds=parts.settings.timer_poll_seconds,
    )
