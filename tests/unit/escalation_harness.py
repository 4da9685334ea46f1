"""The escalation engine on the embedded adapters (SQLite bus and document store) with a clock
the test moves: what `tocsin up` runs, minus HTTP.

`RecordingBus` is the embedded bus plus a record of what was published and a switch that
makes the next publishes fail the way a broker outage does (`PublishError`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from pymongo.asynchronous.database import AsyncDatabase

from schemas import (
    INCIDENTS_LIFECYCLE,
    NOTIFICATIONS_REQUESTED,
    AlertDetails,
    Envelope,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    Label,
    NotificationRequested,
    Severity,
)
from services.escalation.deliveries import DeliveryResults
from services.escalation.engine import Escalation
from services.escalation.oncall_store import MongoOncallStore
from services.escalation.store import MongoEscalationStore
from tocsin.composition.config import TocsinConfig, parse_config
from tocsin.runtime.bus import M, PublishError, Subscription
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.live_config import LiveConfig
from tocsin.runtime.mongo import Document

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
E = TypeVar("E", bound=Envelope)


@dataclass
class FakeClock:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@dataclass
class RecordingBus:
    inner: EmbeddedBus
    published: list[tuple[str, str, Envelope]] = field(default_factory=list)
    fail_next: int = 0

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def ready(self) -> bool:
        return await self.inner.ready()

    async def publish(self, topic: str, key: str, message: Envelope) -> None:
        await self.publish_many(topic, [(key, message)])

    async def publish_many(self, topic: str, messages: Sequence[tuple[str, Envelope]]) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise PublishError(f"{topic}: broker unavailable (test)")
        await self.inner.publish_many(topic, messages)
        self.published.extend((topic, key, message) for key, message in messages)

    async def consume(self, subscription: Subscription[M]) -> None:
        await self.inner.consume(subscription)

    def of(self, topic: str, model: type[E]) -> list[E]:
        return [m for t, _, m in self.published if t == topic and isinstance(m, model)]


def config(
    levels: Sequence[tuple[str, Sequence[str]]] = (("0s", ["alice"]), ("5m", ["bob"])),
    *,
    repeat: int = 0,
    users: dict[str, list[dict[str, Any]]] | None = None,
) -> TocsinConfig:
    """Service `checkout` on policy `oncall` with `levels` as (delay, user ids). Each user has a
    webhook contact `<user>-hook` paged at once, unless `users` gives its rules and contacts as
    `{user: [{"contact": id, "type": "webhook"|"log", "after": "0s"}, ...]}` (rule order; a
    contact with `"rule": False` is declared but not in a rule)."""
    user_ids = sorted({u for _, targets in levels for u in targets} | set(users or {}))
    declared = []
    for user in user_ids:
        specs = (users or {}).get(user) or [{"contact": f"{user}-hook"}]
        contacts = [
            {
                "id": spec["contact"],
                "type": spec.get("type", "webhook"),
                **(
                    {"address": f"http://127.0.0.1:9/{spec['contact']}"}
                    if spec.get("type", "webhook") == "webhook"
                    else {}
                ),
            }
            for spec in specs
        ]
        rules = [
            {"contact": spec["contact"], "after": spec.get("after", "0s")}
            for spec in specs
            if spec.get("rule", True)
        ]
        declared.append(
            {"id": user, "name": user.title(), "contacts": contacts, "notification_rules": rules}
        )
    return parse_config(
        {
            "services": [{"id": "checkout", "name": "Checkout", "escalation_policy": "oncall"}],
            "users": declared,
            "escalation_policies": [
                {
                    "id": "oncall",
                    "repeat": repeat,
                    "levels": [
                        {"delay": delay, "targets": [{"user": u} for u in targets]}
                        for delay, targets in levels
                    ],
                }
            ],
        }
    )


@dataclass
class Rig:
    engine: Escalation
    results: DeliveryResults
    store: MongoEscalationStore
    bus: RecordingBus
    clock: FakeClock
    database: EmbeddedDatabase
    oncall: MongoOncallStore
    live: LiveConfig[TocsinConfig]

    @property
    def engine_config(self) -> TocsinConfig:
        return self.live.current


@asynccontextmanager
async def rig(tmp_path: Path, tocsin_config: TocsinConfig, **options: Any) -> AsyncIterator[Rig]:
    file = SqliteFile(tmp_path / f"tocsin-{uuid.uuid4().hex[:6]}.sqlite")
    database = EmbeddedDatabase(file)
    store = MongoEscalationStore(cast(AsyncDatabase[Document], database))
    bus = RecordingBus(EmbeddedBus(file))
    clock = FakeClock()
    oncall = MongoOncallStore(cast(AsyncDatabase[Document], database))
    # Reloadable like the running service's: `r.live.replace(...)` is a config reload.
    live = LiveConfig(tocsin_config)
    section = live.view(TocsinConfig.escalation)
    engine = Escalation(bus, store, section, clock, "test-engine", oncall=oncall, **options)
    results = DeliveryResults(bus, store, section, clock, public_url=options.get("public_url"))
    await bus.start()
    await store.ensure_indexes()
    await oncall.ensure_indexes()
    try:
        yield Rig(engine, results, store, bus, clock, database, oncall, live)
    finally:
        await bus.stop()
        file.close()


def alert(fingerprint: str = "fp-1", summary: str = "Checkout 5xx above 5%") -> AlertDetails:
    return AlertDetails(
        fingerprint=fingerprint,
        summary=summary,
        labels=(Label(name="alertname", value="CheckoutErrors"),),
        generator_url="http://prometheus.example/graph",
    )


def incident_event(
    kind: IncidentEventKind = IncidentEventKind.OPENED,
    *,
    incident_id: str = "inc-1",
    service: str = "checkout",
    severity: Severity = Severity.SEV1,
    firing: int = 1,
    count: int = 1,
    details: AlertDetails | None = None,
    at: datetime = T0,
) -> IncidentEvent:
    return IncidentEvent(
        occurred_at=at,
        correlation_id=incident_id,
        kind=kind,
        incident_id=incident_id,
        service_id=service,
        group_key=f"{service}/CheckoutErrors",
        title="CheckoutErrors",
        severity=severity,
        alert_count=count,
        firing_count=firing,
        alert=details,
    )


def lifecycle_changes(r: Rig) -> list[IncidentLifecycleChanged]:
    return r.bus.of(INCIDENTS_LIFECYCLE, IncidentLifecycleChanged)


def webhook_user(user: str, **extra: Any) -> dict[str, Any]:
    """A user with one webhook contact `<user>-hook`, paged at once."""
    return {
        "id": user,
        "name": user.title(),
        "contacts": [
            {"id": f"{user}-hook", "type": "webhook", "address": f"http://127.0.0.1:9/{user}"}
        ],
        "notification_rules": [{"contact": f"{user}-hook", "after": "0s"}],
        **extra,
    }


def oncall_config(
    levels: Sequence[Any],
    *,
    schedules: Sequence[dict[str, Any]] = (),
    users: Sequence[str | dict[str, Any]] = ("alice", "bob", "carol", "dave"),
    policy: dict[str, Any] | None = None,
    service: dict[str, Any] | None = None,
    extra_policies: Sequence[dict[str, Any]] = (),
) -> TocsinConfig:
    """Service `checkout` on policy `oncall` with `levels` as written in the file (`{delay,
    targets}`), `schedules` as written, and users (a name is a `webhook_user`)."""
    return parse_config(
        {
            "services": [
                {
                    "id": "checkout",
                    "name": "Checkout",
                    "escalation_policy": "oncall",
                    **(service or {}),
                }
            ],
            "users": [webhook_user(u) if isinstance(u, str) else u for u in users],
            "schedules": list(schedules),
            "escalation_policies": [
                {"id": "oncall", "levels": list(levels), **(policy or {})},
                *extra_policies,
            ],
        }
    )


def pages(r: Rig) -> list[tuple[str, str, int]]:
    """(user, event, escalation level) of every notification requested so far."""
    return [
        (m.recipient.user_id, m.event.value, m.escalation_level)
        for m in r.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)
    ]
