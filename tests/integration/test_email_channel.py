"""The `email` channel against a real SMTP server (aiosmtpd): a page arrives as a plain-text and
HTML e-mail with a signed acknowledge link; GET on the link only shows a confirm page (mail
scanners prefetch links), POST acknowledges through `incidents.commands`, once per page; a
forged, foreign or expired token gets 403 and changes nothing. SMTP answers are the delivery
status: a refused recipient fails at once, an unreachable server is retried then failed. TLS
(STARTTLS and implicit) is real too, with a certificate made for the test."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from schemas import CommandKind, DeliveryOutcome, NotificationEvent
from services.notifier.ack_links import AckLinks
from services.notifier.channels.email import EmailChannel
from services.notifier.config import ContactConfig, SmtpConfig
from services.notifier.domain.signing import issue_token
from services.notifier.message_store import EMAIL_LINK_KEY, MongoMessageStore
from tests.integration.notifier_harness import (
    FROM_ADDRESS,
    REFUSED_ADDRESS,
    SMTP_PASSWORD,
    SMTP_USER,
    Mailbox,
    Notifier,
    ShiftedClock,
    free_port,
    page_request,
    running_notifier,
    smtp_server,
    wait_for,
)
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.mongo import Document

# The test SMTP server takes AUTH without TLS too (the TLS modes have their own test below).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/v1/email/ack/[A-Za-z0-9_.-]+)")


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    server = smtp_server(box)
    server.start()
    yield box
    server.stop()


def _config(public_url: str, smtp_port: int) -> dict[str, object]:
    return {
        "public_url": public_url,
        "providers": {
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "tls": "none",
                "username": SMTP_USER,
                "password": SMTP_PASSWORD,
                "from_address": FROM_ADDRESS,
            }
        },
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [
                    {"id": "alice-mail", "type": "email", "address": "alice@example.com"},
                    {"id": "alice-bounce", "type": "email", "address": REFUSED_ADDRESS},
                ],
            }
        ],
    }


@pytest.fixture
async def notifier(tmp_path: Path, mailbox: Mailbox) -> AsyncIterator[Notifier]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with running_notifier(tmp_path, port, _config(url, mailbox.port)) as running:
        yield running


def _sent(channel: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "tocsin_notifications_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


async def test_an_email_page_arrives_and_its_link_acknowledges_on_post_only_once(
    notifier: Notifier, mailbox: Mailbox
) -> None:
    delivered_before = _sent("email", "delivered")
    request = page_request("n-mail-1", "alice", "alice-mail", public_url=notifier.url)
    await notifier.page(request)

    (message,) = await wait_for(lambda: mailbox.messages)
    assert mailbox.recipients == [["alice@example.com"]]
    assert mailbox.logins == [SMTP_USER]  # AUTH with the configured username and password
    assert message["From"] == FROM_ADDRESS
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == "[SEV1] Triggered: checkout: Checkout 5xx above 5% <script>"
    assert message["Message-ID"].endswith("@example.com>")
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (plain, html):
        assert "SEV1 incident triggered on checkout" in part
        assert "#inc7f3a9" in part
        assert f"{notifier.url}/api/v1/incidents/inc-7f3a9c21" in part
    assert "Alerts: 2" in plain
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    (link,) = set(LINK.findall(plain))
    assert link in html

    result = await notifier.result_of("n-mail-1")
    assert (result.outcome, result.attempt) == (DeliveryOutcome.DELIVERED, 1)
    assert _sent("email", "delivered") == delivered_before + 1

    async with httpx.AsyncClient() as client:
        # A GET (a mail scanner, a link preview, the person opening it) acknowledges nothing.
        for _ in range(2):
            shown = await client.get(link)
            assert shown.status_code == 200
            assert "Acknowledge this incident?" in shown.text
            assert "<form method='post'>" in shown.text
            assert shown.headers["referrer-policy"] == "no-referrer"
            assert shown.headers["cache-control"] == "no-store"
        await asyncio.sleep(0.5)
        assert notifier.commands == []

        # POST acknowledges, as the user the page went to.
        acked = await client.post(link)
        assert acked.status_code == 200, acked.text
        assert "Acknowledged" in acked.text
        (command,) = await notifier.wait_for_commands(1)
        assert (command.command, command.incident_id, command.actor, command.via) == (
            CommandKind.ACKNOWLEDGE,
            "inc-7f3a9c21",
            "alice",
            "email",
        )
        # The same link posted again is the same command: escalation applies it once.
        again = await client.post(link)
        assert again.status_code == 200
        first, second = await notifier.wait_for_commands(2)
        assert first.event_id == second.event_id


async def test_a_forged_foreign_or_expired_link_is_refused_and_changes_nothing(
    notifier: Notifier, mailbox: Mailbox
) -> None:
    await notifier.page(page_request("n-mail-2", "alice", "alice-mail", public_url=notifier.url))
    (message,) = await wait_for(lambda: mailbox.messages)
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (link,) = set(LINK.findall(plain))
    base, token = link.rsplit("/", 1)
    body, mac = token.split(".")
    forged = f"{base}/{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    # A token signed with the right key for another purpose is worthless here.
    key = await MongoMessageStore(notifier.database).secret(EMAIL_LINK_KEY, notifier.clock.now())
    foreign = issue_token(
        key, purpose="calendar", subject="{}", expires_at=notifier.clock.now() + timedelta(days=1)
    )

    async with httpx.AsyncClient() as client:
        for url, reason in (
            (forged, "signature does not match"),
            (f"{base}/{foreign}", "signature does not match"),
            (f"{base}/not-a-token", "malformed"),
        ):
            for method in ("GET", "POST"):
                refused = await client.request(method, url)
                assert refused.status_code == 403, (method, url)
                assert reason in refused.text
                assert "Nothing was changed" in refused.text
        # Seven days and a minute later, the real link has expired.
        notifier.clock.shift = timedelta(days=7, minutes=1)
        for method in ("GET", "POST"):
            expired = await client.request(method, link)
            assert expired.status_code == 403
            assert "expired" in expired.text
    await asyncio.sleep(0.5)
    assert notifier.commands == []


async def test_deleting_the_link_key_retires_the_links_already_sent(
    notifier: Notifier, mailbox: Mailbox
) -> None:
    await notifier.page(page_request("n-mail-5", "alice", "alice-mail", public_url=notifier.url))
    (message,) = await wait_for(lambda: mailbox.messages)
    (link,) = set(LINK.findall(message.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
    async with httpx.AsyncClient() as client:
        assert (await client.get(link)).status_code == 200
        await notifier.database["notifier_secrets"].delete_one({"_id": EMAIL_LINK_KEY})
        assert (await client.get(link)).status_code == 403
        assert (await client.post(link)).status_code == 403
    await asyncio.sleep(0.3)
    assert notifier.commands == []


async def test_a_notice_email_has_no_acknowledge_link(notifier: Notifier, mailbox: Mailbox) -> None:
    notice = page_request(
        "n-mail-3",
        "alice",
        "alice-mail",
        public_url=notifier.url,
        event=NotificationEvent.ACKNOWLEDGED,
        status="acknowledged",
    )
    await notifier.page(notice)
    (message,) = await wait_for(lambda: mailbox.messages)
    assert message["Subject"].startswith("[SEV1] Acknowledged: checkout:")
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "/v1/email/ack/" not in plain
    assert (await notifier.result_of("n-mail-3")).outcome is DeliveryOutcome.DELIVERED


async def test_a_refused_recipient_fails_at_once_without_naming_the_address(
    notifier: Notifier, mailbox: Mailbox
) -> None:
    await notifier.page(page_request("n-bounce", "alice", "alice-bounce", public_url=notifier.url))
    result = await notifier.result_of("n-bounce")
    assert (result.outcome, result.attempt) == (DeliveryOutcome.FAILED, 1)
    assert result.error == "SMTP server refused the recipient (550)"
    assert mailbox.messages == []


async def test_an_unreachable_smtp_server_is_retried_then_failed(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with running_notifier(tmp_path, port, _config(url, free_port())) as notifier:
        await notifier.page(page_request("n-down", "alice", "alice-mail", public_url=url))
        result = await notifier.result_of("n-down", timeout=15)
    assert result.outcome is DeliveryOutcome.FAILED
    assert result.attempt > 1  # retried for the retry period (1.5 s here)
    assert result.error is not None
    assert result.error.startswith("SMTP server unreachable")


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_tls_modes_reach_a_real_tls_server(
    mode: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    # The client trusts the test's certificate the way an operator would add a CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    box = Mailbox()
    if mode == "starttls":
        server = smtp_server(box, tls_context=context, require_starttls=True)
    else:
        server = smtp_server(box, ssl_context=context)
    server.start()
    try:
        smtp = SmtpConfig.model_validate(
            {
                "host": "127.0.0.1",
                "port": server.port,
                "tls": mode,
                "username": SMTP_USER,
                "password": SMTP_PASSWORD,
                "from_address": FROM_ADDRESS,
            }
        )
        channel = EmailChannel(smtp, _links(tmp_path))
        contact = ContactConfig(id="alice-mail", type="email", address="alice@example.com")
        await channel.send(contact, page_request("n-tls", "alice", "alice-mail", public_url="x"))
    finally:
        server.stop()
    assert len(box.messages) == 1
    assert box.logins == [SMTP_USER]


def _links(tmp_path: Path) -> AckLinks:
    database = cast(AsyncDatabase[Document], EmbeddedDatabase(SqliteFile(tmp_path / "l.sqlite")))
    return AckLinks(MongoMessageStore(database), ShiftedClock(), "http://127.0.0.1:1")
