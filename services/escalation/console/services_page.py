"""The console's services and integrations page: each declared service (tier, escalation
policy) with its integrations and heartbeats, their kind and the URL a sender posts to, token
masked. An admin may reveal one token: a POST with the CSRF token, recorded in the audit log
(`POST /ui/services/reveal` with the integration named, a route not in the API's policy
table, so admin only: the table fails closed); the page that shows it is never cached and
nothing logs it.

The URLs start with the public URL (`public_url` in the file, else `TOCSIN_PUBLIC_URL`), else
the address the console was reached at."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.escalation.console.catalogue import Catalogue
from services.escalation.console.web import Posted, Web
from tocsin.runtime.access import Principal, permits, required
from tocsin.runtime.audit import AuditLog
from tocsin.runtime.live_config import Current

REVEAL = "/ui/services/reveal"


def router(
    web: Web, catalogue: Current[Catalogue], audit: AuditLog, public_url: str | None
) -> APIRouter:
    ui = APIRouter(prefix="/services", include_in_schema=False)

    def base(request: Request) -> str:
        if public_url:
            return public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    def _page(
        request: Request, principal: Principal, csrf: str, revealed: str | None, status: int = 200
    ) -> Response:
        return web.page(
            request,
            "services.html",
            status,
            catalogue=catalogue.current,
            base=base(request),
            revealed=revealed,
            may_reveal=permits(principal, required("POST", REVEAL), {}),
            user=principal,
            csrf=csrf,
        )

    @ui.get("")
    async def services_page(request: Request) -> Response:
        found = await web.who(request)
        if found is None:
            return web.to_login()
        _, csrf, principal = found
        return _page(request, principal, csrf, None)

    @ui.post("/reveal")
    async def reveal(request: Request) -> Response:
        posted = await web.posted(request)
        if not isinstance(posted, Posted):
            return posted
        csrf, principal, form = posted.csrf, posted.principal, posted.form
        ref = form.get("integration", "")[:300]
        params = {"integration": ref}
        if not permits(principal, required("POST", REVEAL), params):
            await audit.record(principal, "POST", REVEAL, params, 403, via="console")
            return web.refused(
                request, 403, f"a {principal.role.value} may not reveal tokens", principal
            )
        if catalogue.current.integration(ref) is None:
            await audit.record(principal, "POST", REVEAL, params, 404, via="console")
            return web.refused(request, 404, f"no integration {ref}", principal)
        await audit.record(principal, "POST", REVEAL, params, 200, via="console")
        return _page(request, principal, csrf, ref)

    return ui
