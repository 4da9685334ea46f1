"""What every console page shares: who is logged in (the session, checked against the key it
was opened with and the current file), rendering, refusals."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.escalation.console.forms import read_form
from services.escalation.console.sessions import SessionStore
from tocsin.runtime.access import Access, Principal

COOKIE = "tocsin_session"


@dataclass(frozen=True)
class Posted:
    """A form posted from a live session with its CSRF token: who, and what they sent."""

    token: str
    csrf: str
    principal: Principal
    form: dict[str, str]


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


class Web:
    def __init__(self, access: Access, sessions: SessionStore) -> None:
        self._access = access
        self._sessions = sessions

    async def _end(self, token: str, session_key_id: str | None, now: datetime) -> None:
        """The session and its own key end with the key it was opened with (the cookie's value
        must not outlive it as an API key)."""
        await self._sessions.close(token)
        if session_key_id is not None:
            await self._access.keys.revoke(session_key_id, now)
            self._access.forget(session_key_id)

    def now(self) -> datetime:
        return self._access.now()

    @staticmethod
    def secure(request: Request) -> bool:
        forwarded = request.headers.get("x-forwarded-proto", "")
        return request.url.scheme == "https" or forwarded == "https"

    async def who(self, request: Request) -> tuple[str, str, Principal] | None:
        """(session token, CSRF token, principal) of a live session, else None."""
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        now = self._access.now()
        session = await self._sessions.find(token, now)
        if session is None:
            return None
        if session.key_id != "password":
            key = await self._access.keys.get(session.key_id)
            if key is None or not key.usable(now):  # revoked or expired: logged out
                await self._end(token, session.session_key_id, now)
                return None
        # The session's own key (what the console calls triage with) must be live too: one
        # revoked by itself, or a session from before session keys, logs out.
        own = (
            await self._access.keys.get(session.session_key_id) if session.session_key_id else None
        )
        if own is None or not own.usable(now):
            await self._end(token, session.session_key_id, now)
            return None
        principal = self._access.principal(session.user_id, session.key_id)
        if principal is None:  # no longer in the file
            return None
        return token, session.csrf, principal

    async def posted(self, request: Request) -> Posted | Response:
        """The caller and the form of a post, or the answer to give instead: the login page
        without a live session, 403 without the session's CSRF token."""
        found = await self.who(request)
        if found is None:
            return self.to_login()
        token, csrf, principal = found
        form = await read_form(request)
        if not secrets.compare_digest(form.get("csrf", ""), csrf):
            return self.refused(request, 403, "missing or wrong CSRF token", principal)
        return Posted(token, csrf, principal, form)

    @staticmethod
    def page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    def refused(
        self, request: Request, status: int, reason: str, user: Principal | None = None
    ) -> HTMLResponse:
        return self.page(request, "refused.html", status, reason=reason, user=user)

    @staticmethod
    def to_login() -> RedirectResponse:
        return RedirectResponse("/ui/login", status_code=303)
