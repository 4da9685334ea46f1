"""Distributed wiring: one service per process, on Apache Kafka and MongoDB."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.escalation.console.triage_client import ConsoleSettings, TriageLink
from tocsin.composition.config import TocsinConfig
from tocsin.composition.reload import ConfigReloader, reload_service
from tocsin.composition.wiring import ServiceName, access_control, build_service
from tocsin.runtime import telemetry
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.kafka import ConsumerTiming, KafkaBus, KafkaSecurity, TopicLayout
from tocsin.runtime.live_config import LiveConfig
from tocsin.runtime.mongo import MongoDatabase, open_client, ping
from tocsin.runtime.parts import Parts
from tocsin.runtime.service import ProcessState, create_app
from tocsin.runtime.settings import Settings


def kafka_security(settings: Settings) -> KafkaSecurity:
    password = settings.kafka_sasl_password
    return KafkaSecurity(
        protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=password.get_secret_value() if password is not None else None,
        ssl_cafile=settings.kafka_ssl_cafile,
    )


def topic_layout(settings: Settings) -> TopicLayout:
    return TopicLayout(
        settings.kafka_partitions,
        settings.kafka_replication_factor,
        settings.kafka_min_insync_replicas,
        settings.kafka_retention_hours,
    )


def kafka_bus(settings: Settings, client_id: str) -> KafkaBus:
    """The Kafka bus of one process, every option from the settings."""
    return KafkaBus(
        settings.kafka_bootstrap,
        client_id=client_id,
        handler_attempts=settings.handler_attempts,
        handler_backoff_seconds=settings.handler_backoff_seconds,
        publish_timeout_seconds=settings.publish_timeout_seconds,
        namespace=settings.kafka_namespace,
        topics=topic_layout(settings),
        timing=ConsumerTiming(
            max_poll_interval_seconds=settings.kafka_max_poll_interval_seconds,
            batch_budget_seconds=settings.kafka_batch_budget_seconds,
        ),
        security=kafka_security(settings),
    )


def create_service_app(
    name: ServiceName,
    settings: Settings,
    config: TocsinConfig,
    state: ProcessState,
    config_path: Path | None = None,
) -> FastAPI:
    """`config_path`: the file `config` came from, reloaded on SIGHUP or through the API."""
    telemetry.setup(f"tocsin-{name}", console_spans=settings.otel_console)
    instance_id = settings.instance_id or f"{name}-{socket.gethostname()}-{os.getpid()}"
    bus = kafka_bus(settings, instance_id)
    client = open_client(settings.mongo_url)
    pymongo_database = client[settings.mongo_database]
    database = MongoDatabase(pymongo_database)
    http_client = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    live = LiveConfig(config)
    clock = SystemClock()
    access, audit, require_api_key = access_control(settings, database, live, clock)
    parts = Parts(
        bus, database, settings, clock, http_client, instance_id, require_api_key, access, audit
    )
    triage = None
    if name == "escalation":
        triage_url = ConsoleSettings().triage_url
        triage = TriageLink(http_client, triage_url) if triage_url else None
    service = build_service(name, parts, live, triage)
    reload = reload_service(ConfigReloader(config_path, live, [name]), require_api_key)

    async def mongo_ready() -> bool:
        return await ping(pymongo_database)

    async def close_clients() -> None:
        await http_client.aclose()
        await client.close()

    return create_app(
        f"Tocsin {name}",
        [service, reload],
        bus,
        {"kafka": bus.ready, "mongodb": mongo_ready},
        on_close=[close_clients],
        state=state,
    )
