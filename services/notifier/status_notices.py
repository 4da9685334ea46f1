"""Telling subscribers: stakeholders (configured per page, optionally per service: e-mail,
Slack channel, webhook) get every update, public or not; public e-mail subscribers (double
opt-in) get the public ones, each with an unsubscribe link.

E-mail goes through the notifier's SMTP provider, Slack through its bot token, webhooks as a
JSON POST, as the page channels do. Each (update, subscriber) is sent once: `status_sent` marks
it before the send and unmarks it if the send failed, and the failure is raised so the message
is redelivered (and dead-lettered after its attempts) and only the ones not yet told are tried
again."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from functools import partial
from urllib.parse import quote

import aiosmtplib
import httpx

from services.notifier.config import NotifierConfig, SmtpConfig
from services.notifier.domain.signing import InvalidToken, issue_token, read_token
from services.notifier.message_store import MessageStore
from services.notifier.metrics import SUBSCRIBER_NOTICES
from services.notifier.status_config import StatusPageConfig, SubscriberConfig
from services.notifier.status_domain import StatusIncident, public_name
from services.notifier.status_store import StatusStore
from services.notifier.status_views import page_url, timestamp
from tocsin.runtime.clock import Clock
from tocsin.runtime.live_config import Current

log = logging.getLogger(__name__)

SUBSCRIBE_KEY = "status-subscribe"
CONFIRM_PURPOSE = "status-confirm"
UNSUBSCRIBE_PURPOSE = "status-unsubscribe"
CONFIRM_LIFETIME = timedelta(days=2)
UNSUBSCRIBE_LIFETIME = timedelta(days=365)
SEND_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Notice:
    """One update to tell: `public` ones go to the page's public subscribers too."""

    incident_id: str
    update_id: str
    status: str
    body: str
    public: bool
    at: datetime


class NoticeFailed(Exception):
    """A subscriber could not be told; the message is redelivered."""


class StatusNotices:
    def __init__(
        self,
        store: StatusStore,
        config: Current[NotifierConfig],
        client: httpx.AsyncClient,
        messages: MessageStore,
        clock: Clock,
    ) -> None:
        self._store = store
        self._config = config
        self._client = client
        self._messages = messages
        self._clock = clock

    # -- signed links ---------------------------------------------------------------------------

    async def _secret(self) -> bytes:
        return await self._messages.secret(SUBSCRIBE_KEY, self._clock.now())

    async def token(self, purpose: str, page_id: str, email: str) -> str:
        lifetime = CONFIRM_LIFETIME if purpose == CONFIRM_PURPOSE else UNSUBSCRIBE_LIFETIME
        return issue_token(
            await self._secret(),
            purpose=purpose,
            subject=f"{page_id}\n{email}",
            expires_at=self._clock.now() + lifetime,
        )

    async def read(self, purpose: str, page_id: str, token: str) -> str:
        """The e-mail address a token is for; `InvalidToken` if forged, expired or not for
        this page."""
        subject = read_token(await self._secret(), token, purpose=purpose, now=self._clock.now())
        page, _, email = subject.partition("\n")
        if page != page_id or not email:
            raise InvalidToken("the token is for another page")
        return email

    def _link(self, page_id: str, path: str) -> str:
        return f"{page_url(self._config.current.public_url, page_id)}/{path}"

    async def send_confirmation(self, page: StatusPageConfig, email: str) -> None:
        smtp = self._config.current.providers.smtp
        if smtp is None:
            raise NoticeFailed("no SMTP provider")
        link = self._link(
            page.id, "subscribe/confirm/" + await self.token(CONFIRM_PURPOSE, page.id, email)
        )
        message = _email(smtp, email, f"Confirm your subscription to {page.title}")
        message.set_content(
            f"Someone (hopefully you) asked to get {page.title} updates at this address.\n\n"
            f"Confirm here: {link}\n\n"
            "If it was not you, ignore this message: nothing is sent until you confirm.\n"
        )
        await _send_email(smtp, message)

    # -- updates -----------------------------------------------------------------------------

    async def announce(
        self, page: StatusPageConfig, incident: StatusIncident, notice: Notice
    ) -> None:
        """Tell the page's stakeholders (every update) and, when public, its confirmed public
        subscribers. Raises `NoticeFailed` after trying everyone, if anyone failed."""
        failures = 0
        name = public_name(page, incident)
        for subscriber in page.subscribers:
            if subscriber.services and incident.service_id not in subscriber.services:
                continue
            key = f"{notice.update_id}/{subscriber.type}:{_digest(subscriber.address)}"
            send = partial(self._stakeholder, page, name, notice, subscriber)
            failures += not await self._once(key, send, "stakeholder", subscriber.type)
        if notice.public:
            for email in await self._store.confirmed_subscribers(page.id):
                key = f"{notice.update_id}/public:{page.id}:{_digest(email)}"
                send = partial(self._public, page, name, notice, email)
                failures += not await self._once(key, send, "public", "email")
        if failures:
            raise NoticeFailed(f"{failures} subscriber(s) of page {page.id!r} not told yet")

    async def _once(
        self, key: str, send: Callable[[], Awaitable[None]], kind: str, channel: str
    ) -> bool:
        if not await self._store.first_send(key, self._clock.now()):
            return True
        try:
            await send()
        except (httpx.HTTPError, aiosmtplib.SMTPException, OSError, NoticeFailed) as error:
            log.warning("status notice %s failed: %s", channel, type(error).__name__)
            await self._store.unsend(key)
            return False
        SUBSCRIBER_NOTICES.labels(kind=kind, channel=channel).inc()
        return True

    def _text(self, page: StatusPageConfig, name: str, notice: Notice) -> str:
        label = notice.status.capitalize()
        scope = "" if notice.public else "[internal, not on the public page] "
        return (
            f"{scope}{name}\n{label}: {notice.body}\n\n"
            f"{page_url(self._config.current.public_url, page.id)}\n"
        )

    async def _stakeholder(
        self, page: StatusPageConfig, name: str, notice: Notice, subscriber: SubscriberConfig
    ) -> None:
        config = self._config.current
        text = self._text(page, name, notice)
        if subscriber.type == "email":
            smtp = config.providers.smtp
            if smtp is None:
                raise NoticeFailed("no SMTP provider")
            message = _email(smtp, subscriber.address, f"[{page.title}] {name}: {notice.status}")
            message.set_content(text)
            await _send_email(smtp, message)
        elif subscriber.type == "slack":
            slack = config.providers.slack
            if slack is None:
                raise NoticeFailed("no Slack provider")
            response = await self._client.post(
                f"{slack.base_url.rstrip('/')}/chat.postMessage",
                headers={"Authorization": f"Bearer {slack.bot_token.get_secret_value()}"},
                json={"channel": subscriber.address, "text": text},
                timeout=SEND_TIMEOUT_SECONDS,
            )
            response.raise_for_status()
            if not response.json().get("ok"):
                raise NoticeFailed(f"Slack said {response.json().get('error')!r}")
        else:
            response = await self._client.post(
                subscriber.address,
                json={
                    "page": {"id": page.id, "name": page.title},
                    "incident": {"id": notice.incident_id, "name": name},
                    "incident_update": {
                        "id": notice.update_id,
                        "status": notice.status,
                        "body": notice.body,
                        "created_at": timestamp(notice.at),
                    },
                    "public": notice.public,
                },
                timeout=SEND_TIMEOUT_SECONDS,
            )
            response.raise_for_status()

    async def _public(self, page: StatusPageConfig, name: str, notice: Notice, email: str) -> None:
        smtp = self._config.current.providers.smtp
        if smtp is None:
            raise NoticeFailed("no SMTP provider")
        token = await self.token(UNSUBSCRIBE_PURPOSE, page.id, email)
        unsubscribe = self._link(page.id, f"unsubscribe/{quote(token)}")
        message = _email(smtp, email, f"[{page.title}] {name}: {notice.status}")
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(self._text(page, name, notice) + f"\nUnsubscribe: {unsubscribe}\n")
        await _send_email(smtp, message)


def _digest(address: str) -> str:
    # Keys name subscribers without their address (the collection is not secret, still).
    return hashlib.sha256(address.encode()).hexdigest()[:16]


def _email(smtp: SmtpConfig, to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Auto-Submitted"] = "auto-generated"
    return message


async def _send_email(smtp: SmtpConfig, message: EmailMessage) -> None:
    await aiosmtplib.send(
        message,
        hostname=smtp.host,
        port=smtp.port,
        username=smtp.username,
        password=smtp.password.get_secret_value() if smtp.password else None,
        use_tls=smtp.tls == "tls",
        start_tls=smtp.tls == "starttls",
        timeout=SEND_TIMEOUT_SECONDS,
    )
