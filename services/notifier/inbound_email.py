"""`GET`/`POST /v1/email/ack/{token}`: the acknowledge link of an e-mail page.

Mail scanners and link previews fetch every link in a message, so a GET never acknowledges: it
shows a confirm page whose button POSTs to the same URL. The POST publishes an
`IncidentCommand` (acknowledge, actor = the user the e-mail was sent to, via = email) on
`incidents.commands`; its `event_id` comes from the notification, so the same link posted twice
acts once (escalation drops the copy). A forged, malformed or expired token gets a 403 page that
says so, and nothing is published.

The pages are plain HTML with no script, sent with `Referrer-Policy: no-referrer` (the token is
in the URL and must not leak to a linked site), `Cache-Control: no-store` and framing refused
(a page with an acknowledge button must not be clickjacked).
"""

from __future__ import annotations

import html
import logging
import uuid

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from schemas import INCIDENTS_COMMANDS, CommandKind, IncidentCommand
from services.notifier.ack_links import AckClaim, AckLinks
from services.notifier.domain.signing import InvalidToken
from services.notifier.domain.sms_text import short_incident_id
from tocsin.runtime.bus import Bus, PublishError
from tocsin.runtime.clock import Clock

log = logging.getLogger(__name__)

MAX_TOKEN = 4096
_NAMESPACE = uuid.UUID("8a4f2d6e-1c3b-4e7f-9d25-6b0a8c3e1f74")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
_STYLE = (
    "body{font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em;line-height:1.4}"
    "button{font-size:1.1em;padding:.6em 1.4em;background:#b00020;color:#fff;border:0;"
    "border-radius:4px;cursor:pointer}.muted{color:#666;font-size:.9em}"
)


def command_id(notification_id: str) -> uuid.UUID:
    """The acknowledgement's `event_id`: one per page, whoever posts its link and how often."""
    return uuid.uuid5(_NAMESPACE, f"email-ack/{notification_id}")


def _page(status: int, title: str, body: str) -> HTMLResponse:
    document = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)} · Tocsin</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)


def _describe(claim: AckClaim) -> str:
    title = html.escape(claim.title or "(no title)")
    short = html.escape(short_incident_id(claim.incident_id))
    return f"<p><strong>{title}</strong></p><p class='muted'>Incident #{short}</p>"


def router(links: AckLinks, bus: Bus, clock: Clock) -> APIRouter:
    api = APIRouter(tags=["e-mail"])

    async def claim_of(token: str) -> AckClaim | HTMLResponse:
        if len(token) > MAX_TOKEN:
            return _page(403, "This link is not valid", "<p>The link is too long.</p>")
        try:
            return await links.read(token)
        except InvalidToken as error:
            log.info("e-mail acknowledge link refused: %s", error)
            return _page(
                403,
                "This link is not valid",
                f"<p>{html.escape(str(error).capitalize())}.</p>"
                "<p>Nothing was changed. Acknowledge the incident from a newer page, or in "
                "Tocsin's API or console.</p>",
            )

    @api.get("/v1/email/ack/{token}", response_class=HTMLResponse)
    async def confirm(token: str) -> HTMLResponse:
        """The confirm page of an e-mail acknowledge link; acknowledges nothing."""
        claim = await claim_of(token)
        if isinstance(claim, HTMLResponse):
            return claim
        return _page(
            200,
            "Acknowledge this incident?",
            _describe(claim)
            + "<form method='post'><button type='submit'>Acknowledge</button></form>"
            f"<p class='muted'>As {html.escape(claim.user_id)}. Acknowledging stops the "
            "escalation; the incident stays open until it is resolved.</p>",
        )

    @api.post("/v1/email/ack/{token}", response_class=HTMLResponse)
    async def acknowledge(token: str) -> HTMLResponse:
        """Acknowledge the incident of an e-mail page (idempotent per page)."""
        claim = await claim_of(token)
        if isinstance(claim, HTMLResponse):
            return claim
        command = IncidentCommand(
            event_id=command_id(claim.notification_id),
            occurred_at=clock.now(),
            correlation_id=claim.incident_id,
            command=CommandKind.ACKNOWLEDGE,
            incident_id=claim.incident_id,
            actor=claim.user_id,
            via="email",
        )
        try:
            await bus.publish(INCIDENTS_COMMANDS, claim.incident_id, command)
        except PublishError as error:
            log.warning("e-mail acknowledgement not published: %s", error)
            return _page(
                503,
                "Please try again",
                "<p>Tocsin could not take the acknowledgement just now. Nothing was changed; "
                "press Back and try again in a minute.</p>",
            )
        log.info("e-mail acknowledgement of %s by %s", claim.incident_id, claim.user_id)
        return _page(
            200,
            "Acknowledged",
            _describe(claim) + "<p>Thank you: the acknowledgement is on its way. Escalation "
            "stops as soon as Tocsin applies it; the incident's timeline shows it.</p>",
        )

    return api
