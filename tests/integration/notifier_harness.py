"""The notifier service as it runs (its FastAPI app with the delivery loop and its inbound routes,
served by uvicorn on 127.0.0.1) on the embedded bus and store, with real provider stand-ins: an
SMTP server (aiosmtpd), the fake Slack and an HTTP receiver for Teams. Tests publish
`notifications.requested` and read `notifications.results` and `incidents.commands` off the bus.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pymongo.asynchronous.database import AsyncDatabase

from schemas import (
    INCIDENTS_COMMANDS,
    NOTIFICATIONS_REQUESTED,
    NOTIFICATIONS_RESULTS,
    AlertDetails,
    IncidentCommand,
    IncidentSnapshot,
    NotificationEvent,
    NotificationRequested,
    NotificationResult,
    Recipient,
    Severity,
)
from services.notifier.app import build
from services.notifier.domain.retry import RetryPolicy
from services.notifier.message_store import MongoMessageStore
from services.notifier.store import MongoNotifierStore
from tocsin.composition.config import parse_config
from tocsin.runtime.bus import Subscription
from tocsin.runtime.embedded.bus import EmbeddedBus
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document
from tocsin.runtime.service import Service, create_app

T = TypeVar("T")

SMTP_USER = "tocsin"
SMTP_PASSWORD = "smtp-password-0123"
FROM_ADDRESS = "tocsin@example.com"
REFUSED_ADDRESS = "nobody@example.com"

RETRY = RetryPolicy(
    period=timedelta(seconds=1.5),
    backoff_base=timedelta(seconds=0.1),
    backoff_cap=timedelta(seconds=0.3),
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ShiftedClock:
    """The system clock, moved forward by `shift` (tests of expiry)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps each message it accepts; refuses `refused` recipients with
    550 (the answer repeats the address, as real servers do)."""

    refused: set[str] = field(default_factory=lambda: {REFUSED_ADDRESS})
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = 0  # set by smtp_server()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == SMTP_USER.encode()
            and data.password == SMTP_PASSWORD.encode()
        )
        if ok:
            self.logins.append(SMTP_USER)
        return AuthResult(success=ok)


def smtp_server(mailbox: Mailbox, **options: Any) -> Controller:
    """A real SMTP server on 127.0.0.1 that requires AUTH (allowed without TLS here)."""
    mailbox.port = free_port()
    return Controller(
        mailbox,
        hostname="127.0.0.1",
        port=mailbox.port,
        authenticator=mailbox.authenticate,
        auth_required=True,
        auth_require_tls=False,
        **options,
    )


async def wait_for(condition: Callable[[], T | None], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


@dataclass
class Notifier:
    url: str
    bus: EmbeddedBus
    database: AsyncDatabase[Document]
    clock: ShiftedClock
    results: list[NotificationResult]
    commands: list[IncidentCommand]

    async def page(self, request: NotificationRequested) -> None:
        await self.bus.publish(NOTIFICATIONS_REQUESTED, request.incident.id, request)

    async def result_of(self, notification_id: str, timeout: float = 10.0) -> NotificationResult:
        return await wait_for(
            lambda: next((r for r in self.results if r.notification_id == notification_id), None),
            timeout,
        )

    async def wait_for_commands(self, count: int, timeout: float = 10.0) -> list[IncidentCommand]:
        return await wait_for(
            lambda: list(self.commands) if len(self.commands) >= count else None, timeout
        )


def page_request(
    notification_id: str,
    user: str,
    contact: str,
    *,
    public_url: str,
    event: NotificationEvent = NotificationEvent.TRIGGERED,
    status: str = "triggered",
    incident_id: str = "inc-7f3a9c21",
    title: str = "Checkout 5xx above 5% <script>",
) -> NotificationRequested:
    return NotificationRequested(
        occurred_at=datetime.now(UTC),
        correlation_id=incident_id,
        notification_id=notification_id,
        event=event,
        incident=IncidentSnapshot(
            id=incident_id,
            title=title,
            severity=Severity.SEV1,
            status=status,
            service="checkout",
            alert_count=2,
            url=f"{public_url}/api/v1/incidents/{incident_id}",
            alerts=(
                AlertDetails(
                    fingerprint="a1b2c3d4e5f60001",
                    summary="Checkout 5xx above 5%",
                    runbook_url="https://runbooks.example/checkout",
                ),
            ),
        ),
        recipient=Recipient(user_id=user, contact_id=contact),
        escalation_level=0,
    )


@asynccontextmanager
async def running_notifier(
    tmp_path: Path, port: int, config: dict[str, Any]
) -> AsyncIterator[Notifier]:
    """The notifier service with `config` (a config file as a dict), served on `port`."""
    parsed = parse_config(config).notifier()
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    bus = EmbeddedBus(file)
    database = cast(AsyncDatabase[Document], EmbeddedDatabase(file))
    clock = ShiftedClock()
    results: list[NotificationResult] = []
    commands: list[IncidentCommand] = []

    async def on_result(result: NotificationResult) -> None:
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
            yield Notifier(f"http://127.0.0.1:{port}", bus, database, clock, results, commands)
        finally:
            server.should_exit = True
            await task
            file.close()
