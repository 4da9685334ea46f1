"""`email`: the page as a plain-text and HTML e-mail through the configured SMTP server
(`providers.smtp`: STARTTLS, implicit TLS or none; AUTH when a username is given), with a
signed, expiring acknowledge link on pages that ask for an answer (ack_links.py).

The SMTP server's answer is the delivery status: accepted is delivered; a 5xx (mailbox unknown,
relaying denied, authentication refused) fails at once so escalation tries the next contact; a
4xx, a timeout or a dropped connection is retried. Errors name the SMTP code, never the address
(the server's text often repeats it). Every attempt of one notification carries the same
`Message-ID`, so a mail system that sees a retry of a message it already took can drop it.
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from schemas import NotificationRequested
from services.notifier.ack_links import AckLinks
from services.notifier.channels.base import DeliveryFailed
from services.notifier.config import ContactConfig, SmtpConfig
from services.notifier.domain.email_text import ANSWERABLE, page_email

SMTP_TIMEOUT_SECONDS = 10.0
_MESSAGE_ID_NAMESPACE = uuid.UUID("5d0b7c9e-2f41-4e8a-9a53-7c1e6b2d4f80")


def message_id(notification_id: str, from_address: str) -> str:
    domain = from_address.rpartition("@")[2] or "tocsin.invalid"
    return f"<{uuid.uuid5(_MESSAGE_ID_NAMESPACE, notification_id)}@{domain}>"


class EmailChannel:
    def __init__(
        self, smtp: SmtpConfig, links: AckLinks, *, timeout: float = SMTP_TIMEOUT_SECONDS
    ) -> None:
        self._smtp = smtp
        self._links = links
        self._timeout = timeout

    async def message(self, contact: ContactConfig, request: NotificationRequested) -> EmailMessage:
        if contact.address is None:
            raise DeliveryFailed("email contact without an address", retryable=False)
        ack = await self._links.link(request) if request.event in ANSWERABLE else None
        text = page_email(request, ack=ack)
        message = EmailMessage()
        message["From"] = self._smtp.from_address
        message["To"] = contact.address
        message["Subject"] = text.subject
        message["Date"] = formatdate(request.occurred_at.timestamp(), usegmt=True)
        message["Message-ID"] = message_id(request.notification_id, self._smtp.from_address)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
        message["X-Tocsin-Incident"] = request.incident.id
        message.set_content(text.plain)
        message.add_alternative(text.html, subtype="html")
        return message

    async def send(self, contact: ContactConfig, request: NotificationRequested) -> None:
        message = await self.message(contact, request)
        smtp = self._smtp
        try:
            await aiosmtplib.send(
                message,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password.get_secret_value() if smtp.password else None,
                use_tls=smtp.tls == "tls",
                start_tls=smtp.tls == "starttls",
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = sorted({r.code for r in refused.recipients})
            raise DeliveryFailed(
                f"SMTP server refused the recipient ({', '.join(map(str, codes))})",
                retryable=all(400 <= code < 500 for code in codes),
            ) from None
        except aiosmtplib.SMTPAuthenticationError as error:
            raise DeliveryFailed(
                f"SMTP authentication refused ({error.code}): check providers.smtp "
                "username and password",
                retryable=False,
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryFailed(
                f"SMTP server answered {error.code}", retryable=400 <= error.code < 500
            ) from None
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected, OSError) as error:
            # Connection refused, reset, timed out, TLS handshake failed (OSError covers them).
            raise DeliveryFailed(
                f"SMTP server unreachable: {type(error).__name__}", retryable=True
            ) from None
        except aiosmtplib.SMTPException as error:
            # The server lacks what the configuration asks for (STARTTLS, AUTH): retrying will
            # not change that.
            raise DeliveryFailed(
                f"SMTP: {type(error).__name__} ({error}); check providers.smtp.tls",
                retryable=False,
            ) from None
