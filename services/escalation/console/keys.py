"""The console's API keys page: one's own keys (an admin's view: everyone's), a new key's
secret shown once, revocation; as POST and DELETE /api/v1/keys do, and audited."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.escalation.console.web import Posted, Web
from tocsin.runtime.access import Access, Principal, Role
from tocsin.runtime.audit import AuditLog


def router(web: Web, access: Access, audit: AuditLog) -> APIRouter:
    ui = APIRouter(prefix="/keys", include_in_schema=False)
    who, page, refused, to_login = web.who, web.page, web.refused, web.to_login

    @ui.get("")
    async def keys_page(request: Request) -> Response:
        """One's own API keys (an admin's view: everyone's)."""
        found = await who(request)
        if found is None:
            return to_login()
        _, csrf, principal = found
        return await _keys_page(request, principal, csrf, None)

    async def _keys_page(
        request: Request, principal: Principal, csrf: str, secret: str | None, status: int = 200
    ) -> HTMLResponse:
        owner = None if principal.at_least(Role.ADMIN) else principal.user_id
        listed = await access.keys.list(owner)
        return page(
            request, "keys.html", status, keys=listed, user=principal, csrf=csrf, secret=secret
        )

    @ui.post("")
    async def create_key(request: Request) -> Response:
        posted = await web.posted(request)
        if not isinstance(posted, Posted):
            return posted
        csrf, principal, form = posted.csrf, posted.principal, posted.form
        days = form.get("expires_in_days", "")
        if days and not (days.isdigit() and 1 <= int(days) <= 3650):
            return refused(request, 422, "expiry: a number of days from 1 to 3650", principal)
        now = access.now()
        expires = now + timedelta(days=int(days)) if days else None
        label = form.get("label", "")[:200]
        user_id = principal.user_id
        _, secret = await access.keys.create(user_id, label, user_id, now, expires)
        await audit.record(principal, "POST", "/api/v1/keys", {}, 201, via="console")
        return await _keys_page(request, principal, csrf, secret, 201)

    @ui.post("/{key_id}/revoke")
    async def revoke_key(request: Request, key_id: str) -> Response:
        posted = await web.posted(request)
        if not isinstance(posted, Posted):
            return posted
        principal = posted.principal
        key = await access.keys.get(key_id)
        params, template = {"key_id": key_id}, "/api/v1/keys/{key_id}"
        if key is None or not (principal.at_least(Role.ADMIN) or key.user_id == principal.user_id):
            await audit.record(principal, "DELETE", template, params, 404, via="console")
            return refused(request, 404, f"no key {key_id}", principal)
        await access.keys.revoke(key_id, access.now())
        access.forget(key_id)
        await audit.record(principal, "DELETE", template, params, 200, via="console")
        return RedirectResponse("/ui/keys", status_code=303)

    return ui
