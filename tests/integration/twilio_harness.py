"""The notifier service as it runs (its FastAPI app, delivery loop and Twilio routes, served by
uvicorn on 127.0.0.1) on the embedded bus and store, with the fake Twilio as the provider.
Tests publish `notifications.requested` and read `notifications.results` and
`incidents.commands` off the bus; the fake Twilio sends its signed callbacks to the served app.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from schemas import (
    INCIDENTS_COMMANDS,
    NOTIFICATIONS_REQUESTED,
    NOTIFICATIONS_RESULTS,
    IncidentCommand,
    IncidentSnapshot,
    NotificationEvent,
    NotificationRequested,
    NotificationResult,
    Recipient,
    Severity,
)
from services.notifier.app import build
from services.notifier.contact_store import MongoContactStore
from services.notifier.domain.retry import RetryPolicy
from services.notifier.message_store import MongoMessageStore
from services.notifier.store import MongoNotifierStore
from tests.fakes.twilio import FakeTwilio
from tocsin.composition.config import parse_config
from tocsin.runtime.bus import Subscription
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.service import Service, create_app

T = TypeVar("T")

ALICE = "+15551234567"
ALICE_VOICE = "+15551234568"
BOB = "+15557654321"
FROM = "+15550001111"

RETRY = RetryPolicy(
    period=timedelta(seconds=3),
    backoff_base=timedelta(seconds=0.1),
    backoff_cap=timedelta(seconds=0.3),
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ShiftedClock:
    """The system clock, moved forward by `shift` (waits that tests skip)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift


async def wait_for(condition: Callable[[], T | None], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


def twilio_config(
    twilio: FakeTwilio,
    public_url: str,
    *,
    sms_interval: str = "30s",
    voice_interval: str = "2m",
) -> dict[str, Any]:
    """alice: an SMS number and a voice number; bob: SMS."""
    return {
        "public_url": public_url,
        "providers": {
            "twilio": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": FROM,
                "base_url": twilio.base_url,
                "sms_interval": sms_interval,
                "voice_interval": voice_interval,
            }
        },
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [
                    {"id": "alice-sms", "type": "sms", "address": ALICE},
                    {"id": "alice-voice", "type": "voice", "address": ALICE_VOICE},
                ],
            },
            {
                "id": "bob",
                "name": "Bob",
                "contacts": [{"id": "bob-sms", "type": "sms", "address": BOB}],
            },
        ],
    }


def page_request(
    notification_id: str,
    user: str,
    contact: str,
    *,
    incident_id: str = "inc-7f3a9c21",
    event: NotificationEvent = NotificationEvent.TRIGGERED,
    title: str = "Checkout 5xx above 5%",
    severity: Severity = Severity.SEV1,
) -> NotificationRequested:
    return NotificationRequested(
        occurred_at=datetime.now(UTC),
        correlation_id=incident_id,
        notification_id=notification_id,
        event=event,
        incident=IncidentSnapshot(
            id=incident_id,
            title=title,
            severity=severity,
            status="triggered",
            service="checkout",
            alert_count=2,
        ),
        recipient=Recipient(user_id=user, contact_id=contact),
        escalation_level=0,
    )


@dataclass
class TwilioNotifier:
    url: str
    bus: EmbeddedBus
    database: EmbeddedDatabase
    clock: ShiftedClock
    twilio: FakeTwilio
    results: list[NotificationResult]
    """Final outcomes (delivered, failed)."""
    commands: list[IncidentCommand]
    statuses: list[NotificationResult]
    """Every result, the non-final statuses (queued, sent) too, in the order published."""

    async def page(self, request: NotificationRequested) -> None:
        await self.bus.publish(NOTIFICATIONS_REQUESTED, request.incident.id, request)

    async def result_of(self, notification_id: str, timeout: float = 10.0) -> NotificationResult:
        return await wait_for(
            lambda: next((r for r in self.results if r.notification_id == notification_id), None),
            timeout,
        )

    def result(self, notification_id: str) -> NotificationResult | None:
        return next((r for r in self.results if r.notification_id == notification_id), None)

    async def wait_for_commands(self, count: int, timeout: float = 10.0) -> list[IncidentCommand]:
        return await wait_for(
            lambda: list(self.commands) if len(self.commands) >= count else None, timeout
        )

    async def outbound(self) -> list[dict[str, Any]]:
        return [doc async for doc in self.database["notifier_outbound"].find({})]

    async def notification(self, notification_id: str) -> dict[str, Any] | None:
        return await self.database["notifier_notifications"].find_one({"_id": notification_id})


@asynccontextmanager
async def running_notifier(
    tmp_path: Path, port: int, twilio: FakeTwilio, config: dict[str, Any]
) -> AsyncIterator[TwilioNotifier]:
    parsed = parse_config(config).notifier()
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file)
    database = EmbeddedDatabase(file)
    clock = ShiftedClock()
    results: list[NotificationResult] = []
    commands: list[IncidentCommand] = []
    statuses: list[NotificationResult] = []

    async def on_result(result: NotificationResult) -> None:
        statuses.append(result)
        if result.outcome.final:
            results.append(result)

    async def on_command(command: IncidentCommand) -> None:
        commands.append(command)

    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        service = build(
            bus,
            MongoNotifierStore(database),
            parsed,
            clock,
            client,
            instance_id="test",
            poll_seconds=0.05,
            retry=RETRY,
            messages=MongoMessageStore(database),
            contact_store=MongoContactStore(database),
        )
        listener = Service(
            name="test",
            subscriptions=[
                Subscription(NOTIFICATIONS_RESULTS, "test", NotificationResult, on_result),
                Subscription(INCIDENTS_COMMANDS, "test", IncidentCommand, on_command),
            ],
        )
        app = create_app("notifier", [service, listener], bus, checks={})
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        task = asyncio.create_task(server.serve())
        try:
            await wait_for(lambda: server.started or task.done())
            if task.done():
                task.result()
            yield TwilioNotifier(
                f"http://127.0.0.1:{port}",
                bus,
                database,
                clock,
                twilio,
                results,
                commands,
                statuses,
            )
        finally:
            server.should_exit = True
            await task
            file.close()
