"""Triage as `tocsin up` runs it, for tests: the service built by `services.triage.app` on the
embedded bus and store, its consumers running, and a stand-in for escalation that collects what
triage publishes on `incidents.events`."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter
from pymongo.asynchronous.database import AsyncDatabase

from schemas import (
    ALERTS_RAW,
    INCIDENTS_EVENTS,
    INCIDENTS_LIFECYCLE,
    AlertReceived,
    AlertStatus,
    DeadLetter,
    IncidentEvent,
    IncidentLifecycleChanged,
    Label,
    LifecycleStatus,
    dlq_topic,
)
from services.triage import app as triage
from services.triage.config import TriageConfig
from services.triage.silence_store import MongoSilenceStore
from services.triage.store import MongoTriageStore
from tocsin.runtime.bus import Subscription
from tocsin.runtime.clock import Clock
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document, open_client

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def occurrence(
    fingerprint: str,
    *,
    status: AlertStatus = AlertStatus.FIRING,
    alertname: str = "CheckoutErrors",
    summary: str | None = None,
    severity: str | None = "warning",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    generator_url: str | None = None,
) -> AlertReceived:
    return AlertReceived(
        occurred_at=T0,
        correlation_id=fingerprint,
        fingerprint=fingerprint,
        status=status,
        integration_id="prom",
        source="alertmanager",
        service_id="checkout",
        alertname=alertname,
        summary=summary if summary is not None else f"{alertname} ({fingerprint})",
        severity=severity,
        labels=tuple(
            Label(name=n, value=v) for n, v in sorted((labels or {"alertname": alertname}).items())
        ),
        annotations=tuple(Label(name=n, value=v) for n, v in sorted((annotations or {}).items())),
        generator_url=generator_url,
    )


def resolved_by_person(incident_id: str, actor: str = "api:admin") -> IncidentLifecycleChanged:
    return IncidentLifecycleChanged(
        occurred_at=T0,
        correlation_id=incident_id,
        incident_id=incident_id,
        service_id="checkout",
        status=LifecycleStatus.RESOLVED,
        actor=actor,
    )


@dataclass
class TriagePipeline:
    bus: EmbeddedBus
    store: MongoTriageStore
    router: APIRouter
    silences: MongoSilenceStore
    database: AsyncDatabase[Document]
    events: list[IncidentEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    async def send_alert(self, alert: AlertReceived) -> None:
        await self.bus.publish(ALERTS_RAW, alert.fingerprint, alert)

    async def send_lifecycle(self, change: IncidentLifecycleChanged) -> None:
        await self.bus.publish(INCIDENTS_LIFECYCLE, change.incident_id, change)

    async def wait_events(self, count: int, timeout: float = 10.0) -> list[IncidentEvent]:
        """The first `count` incident events, once triage published that many."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.events) < count:
            assert not self.dead_letters, self.dead_letters[0].error
            assert asyncio.get_running_loop().time() < deadline, f"events so far: {self.events}"
            await asyncio.sleep(0.01)
        return self.events[:count]


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def run_pipeline(
    tmp_path: Path, config: TriageConfig | None = None, clock: Clock | None = None
) -> AsyncIterator[TriagePipeline]:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file, handler_attempts=1)
    await bus.start()
    database = cast(AsyncDatabase[Document], EmbeddedDatabase(file))
    store = MongoTriageStore(database)
    service = triage.build(
        bus,
        store,
        config or TriageConfig(),
        lambda: "test",
        silence_store=MongoSilenceStore(database),
        clock=clock,
    )
    for step in service.on_start:
        await step()
    pipeline = TriagePipeline(bus, store, service.router, MongoSilenceStore(database), database)

    async def collect(event: IncidentEvent) -> None:
        pipeline.events.append(event)

    async def dead(letter: DeadLetter) -> None:
        pipeline.dead_letters.append(letter)

    subscriptions: list[Subscription[Any]] = [
        *service.subscriptions,
        Subscription(INCIDENTS_EVENTS, "escalation", IncidentEvent, collect),
        *(
            Subscription(dlq_topic(s.topic), "watch", DeadLetter, dead)
            for s in service.subscriptions
        ),
    ]
    tasks = [asyncio.create_task(bus.consume(s)) for s in subscriptions]
    try:
        yield pipeline
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.stop()
        file.close()


async def open_database(kind: str, tmp_path: Path) -> AsyncIterator[AsyncDatabase[Document]]:
    """FerretDB (`mongo`) or the embedded store (`embedded`), empty."""
    if kind == "mongo":
        client = open_client(os.environ["TOCSIN_MONGO_URL"])
        name = f"triage_{uuid.uuid4().hex[:12]}"
        try:
            yield client[name]
        finally:
            await client.drop_database(name)
            await client.close()
        return
    embedded = EmbeddedDatabase(SqliteFile(tmp_path / "store.sqlite"))
    try:
        yield cast(AsyncDatabase[Document], embedded)
    finally:
        embedded.file.close()
