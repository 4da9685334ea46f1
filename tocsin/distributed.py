"""Distributed wiring: one service per process, on Apache Kafka and MongoDB."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Literal

import httpx
from fastapi import FastAPI

from services.escalation import app as escalation
from services.escalation.store import MongoEscalationStore
from services.ingest import app as ingest
from services.ingest.store import MongoIngestStore
from services.notifier import app as notifier
from services.notifier.store import MongoNotifierStore
from services.triage import app as triage
from services.triage.store import MongoTriageStore
from tocsin import telemetry
from tocsin.clock import SystemClock
from tocsin.config import TocsinConfig
from tocsin.http import ApiKeys, api_key_dependency, token_digest
from tocsin.kafka import KafkaBus
from tocsin.mongo import open_client, ping
from tocsin.service import ProcessState, Service, create_app
from tocsin.settings import Settings

ServiceName = Literal["ingest", "triage", "escalation", "notifier"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("ingest", "triage", "escalation", "notifier")


def api_keys(settings: Settings) -> ApiKeys:
    digests = {}
    if settings.admin_token is not None:
        digests["admin"] = token_digest(settings.admin_token.get_secret_value())
    return ApiKeys(digests)


def create_service_app(
    name: ServiceName, settings: Settings, config: TocsinConfig, state: ProcessState
) -> FastAPI:
    telemetry.setup(f"tocsin-{name}", console_spans=settings.otel_console)
    instance_id = settings.instance_id or f"{name}-{socket.gethostname()}-{os.getpid()}"
    bus = KafkaBus(
        settings.kafka_bootstrap,
        client_id=instance_id,
        handler_attempts=settings.handler_attempts,
        handler_backoff_seconds=settings.handler_backoff_seconds,
        publish_timeout_seconds=settings.publish_timeout_seconds,
        namespace=settings.kafka_namespace,
    )
    client = open_client(settings.mongo_url)
    database = client[settings.mongo_database]
    clock = SystemClock()
    http_client = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    service: Service
    if name == "ingest":
        service = ingest.build(bus, MongoIngestStore(database), config, clock)
    elif name == "triage":
        service = triage.build(
            bus, MongoTriageStore(database), config, api_key_dependency(api_keys(settings))
        )
    elif name == "escalation":
        service = escalation.build(
            bus,
            MongoEscalationStore(database),
            config,
            clock,
            api_key_dependency(api_keys(settings)),
            instance_id=instance_id,
            lease=timedelta(seconds=settings.timer_lease_seconds),
            poll_seconds=settings.timer_poll_seconds,
        )
    else:
        service = notifier.build(bus, MongoNotifierStore(database), config, clock, http_client)

    async def mongo_ready() -> bool:
        return await ping(database)

    async def close_clients() -> None:
        await http_client.aclose()
        await client.close()

    return create_app(
        f"Tocsin {name}",
        [service],
        bus,
        {"kafka": bus.ready, "mongodb": mongo_ready},
        on_close=[close_clients],
        state=state,
    )
