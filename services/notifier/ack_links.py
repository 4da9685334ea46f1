"""The acknowledge link of an e-mail page: `<public_url>/v1/email/ack/<token>`, where the token
is signed (domain/signing.py, purpose `email-ack`) with the notifier's link key (kept in the
database, see message_store.py) and expires `LINK_LIFETIME` after the e-mail was sent.

The token says which page it acknowledges: the notification id (so the same link used twice acts
once), the incident, the user it was sent to (the actor of the acknowledgement) and the start of
the title (for the confirm page). It is signed, not encrypted: whoever holds the e-mail can
read it, and they could read the e-mail anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from schemas import NotificationRequested
from services.notifier.domain.email_text import AckLink, one_line
from services.notifier.domain.signing import InvalidToken, issue_token, read_token
from services.notifier.message_store import EMAIL_LINK_KEY, MessageStore
from tocsin.runtime.clock import Clock

PURPOSE = "email-ack"
LINK_LIFETIME = timedelta(days=7)
ACK_PATH = "/v1/email/ack/"
_TITLE_IN_TOKEN = 80


@dataclass(frozen=True)
class AckClaim:
    notification_id: str
    incident_id: str
    user_id: str
    title: str


class AckLinks:
    def __init__(
        self,
        store: MessageStore,
        clock: Clock,
        public_url: str | None,
        *,
        lifetime: timedelta = LINK_LIFETIME,
    ) -> None:
        self._store = store
        self._clock = clock
        self._public_url = public_url.rstrip("/") if public_url else None
        self._lifetime = lifetime

    async def _secret(self) -> bytes:
        # Read each time (one small document): a rotated key takes effect at once everywhere.
        return await self._store.secret(EMAIL_LINK_KEY, self._clock.now())

    async def link(self, request: NotificationRequested) -> AckLink | None:
        """The page's acknowledge link; None when Tocsin has no public URL to put in it."""
        if self._public_url is None:
            return None
        expires_at = self._clock.now() + self._lifetime
        subject = json.dumps(
            {
                "n": request.notification_id,
                "i": request.incident.id,
                "u": request.recipient.user_id,
                "t": one_line(request.incident.title)[:_TITLE_IN_TOKEN],
            },
            separators=(",", ":"),
        )
        token = issue_token(
            await self._secret(), purpose=PURPOSE, subject=subject, expires_at=expires_at
        )
        return AckLink(f"{self._public_url}{ACK_PATH}{token}", expires_at)

    async def read(self, token: str) -> AckClaim:
        """What a token acknowledges; `InvalidToken` if it is forged, malformed or expired."""
        subject = read_token(await self._secret(), token, purpose=PURPOSE, now=self._clock.now())
        try:
            claims = json.loads(subject)
            return AckClaim(
                notification_id=_text(claims["n"]),
                incident_id=_text(claims["i"]),
                user_id=_text(claims["u"]),
                title=str(claims.get("t", "")),
            )
        except (ValueError, KeyError, TypeError):
            raise InvalidToken("the token is malformed") from None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a string")
    return value
