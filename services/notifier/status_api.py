"""The public status page routes (no auth): `/status/{page}` (HTML), `/status/{page}/api/v2/
*.json` (Statuspage-compatible), `/status/{page}/history.atom`, and e-mail subscription with
double opt-in (`POST /status/{page}/subscribe`, the signed confirm link, the signed unsubscribe
link, also as RFC 8058 one-click POST).

Every read answers from the in-memory snapshot (status_pages.py) with an `ETag` and
`Cache-Control`, and `304 Not Modified` to a matching `If-None-Match`."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import aiosmtplib
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.notifier.config import NotifierConfig
from services.notifier.domain.signing import InvalidToken
from services.notifier.status_notices import (
    CONFIRM_PURPOSE,
    UNSUBSCRIBE_PURPOSE,
    NoticeFailed,
    StatusNotices,
)
from services.notifier.status_pages import Rendered, StatusPages
from services.notifier.status_store import StatusStore
from services.notifier.status_views import DOCUMENTS
from tocsin.runtime.clock import Clock
from tocsin.runtime.live_config import Current

MAX_FORM_BYTES = 2048
CONFIRM_INTERVAL = timedelta(hours=1)
"""At most one confirmation e-mail per address and page this often (no mail bombing)."""
CHECK_INBOX = "We sent a confirmation link. Updates start once you follow it."
CACHE_CONTROL = "public, max-age=10, stale-while-revalidate=30"


def _not_found() -> Response:
    return Response(b"no such status page\n", 404, media_type="text/plain")


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags


def _answer(request: Request, page: Rendered | None, *, cors: bool = False) -> Response:
    if page is None:
        return _not_found()
    headers = {"ETag": page.etag, "Cache-Control": CACHE_CONTROL}
    if cors:
        headers["Access-Control-Allow-Origin"] = "*"
    if _matches(request.headers.get("if-none-match"), page.etag):
        return Response(status_code=304, headers=headers)
    return Response(page.body, 200, headers=headers, media_type=page.media_type)


def _valid_email(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return (
        bool(at and local and "." in domain)
        and len(address) <= 254
        and not any(c.isspace() or c in '<>,;"' for c in address)
    )


def router(
    pages: StatusPages,
    notices: StatusNotices,
    store: StatusStore,
    config: Current[NotifierConfig],
    clock: Clock,
) -> APIRouter:
    api = APIRouter(prefix="/status", tags=["status pages"])

    @api.get("/{page_id}", response_class=HTMLResponse)
    async def status_page(page_id: str, request: Request) -> Response:
        """The public status page (server-rendered, no JavaScript)."""
        return _answer(request, await pages.render(page_id, "html"))

    @api.get("/{page_id}/history.atom")
    async def history_feed(page_id: str, request: Request) -> Response:
        """The last 14 days of incidents as an Atom feed."""
        return _answer(request, await pages.render(page_id, "atom"))

    def document_route(name: str) -> None:
        async def document(page_id: str, request: Request) -> Response:
            return _answer(request, await pages.render(page_id, name), cors=True)

        document.__doc__ = f"Statuspage-compatible `{name}.json`."
        api.add_api_route(
            f"/{{page_id}}/api/v2/{name}.json",
            document,
            methods=["GET"],
            name=f"status_{name.replace('/', '_').replace('-', '_')}",
        )

    for name in DOCUMENTS:
        document_route(name)

    def _message(page_id: str, title: str, text: str, status: int = 200, **form: str) -> Response:
        body = pages.message(
            title=title,
            text=text,
            back=f"/status/{page_id}",
            action=form.get("action"),
            button=form.get("button"),
        )
        return Response(body, status, media_type="text/html; charset=utf-8")

    @api.post("/{page_id}/subscribe")
    async def subscribe(page_id: str, request: Request) -> Response:
        """Ask for updates by e-mail (a form field `email`): a confirmation link is sent;
        nothing else until then."""
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _message(page_id, "Too long", "Send just an e-mail address.", 413)
        fields = parse_qs(body.decode("utf-8", "replace"))
        email = (fields.get("email") or [""])[0]
        current = config.current
        page = current.status_page(page_id)
        if page is None:
            return _not_found()
        if current.providers.smtp is None or current.public_url is None:
            return _message(page_id, "Not available", "E-mail subscriptions are off.", 404)
        address = email.strip()
        if not _valid_email(address):
            return _message(page_id, "Not an e-mail address", "Check the address.", 422)
        if not await store.may_confirm(page_id, address, clock.now(), CONFIRM_INTERVAL):
            # The same answer either way: it does not tell who subscribed.
            return _message(page_id, "Check your inbox", CHECK_INBOX)
        try:
            await notices.send_confirmation(page, address)
        except (NoticeFailed, aiosmtplib.SMTPException, OSError) as error:
            reason = f"We could not send the e-mail ({type(error).__name__})."
            return _message(page_id, "Try again later", reason, 503)
        return _message(page_id, "Check your inbox", CHECK_INBOX)

    @api.get("/{page_id}/subscribe/confirm/{token}")
    async def confirm_form(page_id: str, token: str) -> Response:
        # A button, not the GET itself: mail scanners follow links.
        if config.current.status_page(page_id) is None:
            return _not_found()
        return _message(
            page_id,
            "Confirm your subscription",
            "Press the button to start getting updates by e-mail.",
            action=f"/status/{page_id}/subscribe/confirm/{token}",
            button="Confirm",
        )

    @api.post("/{page_id}/subscribe/confirm/{token}")
    async def confirm(page_id: str, token: str) -> Response:
        if config.current.status_page(page_id) is None:
            return _not_found()
        try:
            email = await notices.read(CONFIRM_PURPOSE, page_id, token)
        except InvalidToken as error:
            return _message(page_id, "Link not valid", str(error).capitalize() + ".", 400)
        if not await store.confirm_subscriber(page_id, email, clock.now()):
            return _message(page_id, "Subscription gone", "Subscribe again.", 404)
        return _message(page_id, "Subscribed", "You will get every update of this page.")

    @api.get("/{page_id}/unsubscribe/{token}")
    async def unsubscribe_form(page_id: str, token: str) -> Response:
        if config.current.status_page(page_id) is None:
            return _not_found()
        return _message(
            page_id,
            "Unsubscribe",
            "Press the button to stop getting updates by e-mail.",
            action=f"/status/{page_id}/unsubscribe/{token}",
            button="Unsubscribe",
        )

    @api.post("/{page_id}/unsubscribe/{token}")
    async def unsubscribe(page_id: str, token: str) -> Response:
        """Also RFC 8058's one-click unsubscribe (`List-Unsubscribe-Post`)."""
        if config.current.status_page(page_id) is None:
            return _not_found()
        try:
            email = await notices.read(UNSUBSCRIBE_PURPOSE, page_id, token)
        except InvalidToken as error:
            return _message(page_id, "Link not valid", str(error).capitalize() + ".", 400)
        await store.remove_subscriber(page_id, email)
        return _message(page_id, "Unsubscribed", "You will get no more updates.")

    return api
