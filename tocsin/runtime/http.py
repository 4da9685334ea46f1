"""HTTP plumbing shared by every service: ops routes, API-key auth, a redacting access log and
the API docs page with its assets served locally."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from tocsin.runtime.access import Access, Principal, permits, required
from tocsin.runtime.audit import DRAFT_STATE, MUTATING, AuditDraft, AuditLog, AuditTrail
from tocsin.runtime.metrics import HTTP_REQUESTS

access_log = logging.getLogger("tocsin.access")

T = TypeVar("T")

ReadinessCheck = Callable[[], Awaitable[bool]]


def token_digest(token: str) -> str:
    """How API keys and integration tokens are stored: SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenDirectory(Generic[T]):
    """Finds what a secret token names, holding only digests and comparing against every one,
    so that the time taken does not tell which entry matched (or how close a guess came)."""

    def __init__(self, entries: dict[str, T] | None = None) -> None:
        self._by_digest: dict[str, T] = dict(entries or {})

    def replace(self, entries: dict[str, T]) -> None:
        self._by_digest = dict(entries)

    def find(self, token: str) -> T | None:
        try:
            candidate = token_digest(token)
        except UnicodeEncodeError:  # a lone surrogate: no token of ours
            return None
        found = None
        for digest, entry in self._by_digest.items():
            if hmac.compare_digest(candidate, digest):
                found = entry
        return found


class ApiKeys:
    """The operator API keys: key name by digest."""

    def __init__(self, digests: dict[str, str]) -> None:
        self._keys = TokenDirectory({digest: name for name, digest in digests.items()})

    def authenticate(self, token: str) -> str | None:
        return self._keys.find(token)


_bearer = HTTPBearer(auto_error=False)


def api_key_dependency(keys: ApiKeys) -> Callable[..., str]:
    def require_api_key(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> str:
        if credentials is None:
            raise HTTPException(
                401, "missing Authorization: Bearer <api key>", {"WWW-Authenticate": "Bearer"}
            )
        name = keys.authenticate(credentials.credentials)
        if name is None:
            raise HTTPException(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
        return name

    return require_api_key


def access_dependency(access: Access, audit: AuditLog | None) -> Callable[..., Awaitable[str]]:
    """The operator API's one guard: authenticates the bootstrap token or a personal key (401),
    checks the route against the policy table (tocsin.runtime.access.POLICY; 403), leaves the
    caller in `request.state.principal` and, on a change, an audit draft the `AuditTrail`
    middleware records with the response status. Returns the caller's user id."""

    async def require_api_key(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> str:
        if credentials is None:
            raise HTTPException(
                401, "missing Authorization: Bearer <api key>", {"WWW-Authenticate": "Bearer"}
            )
        principal = await access.authenticate(credentials.credentials)
        if principal is None:
            raise HTTPException(
                401, "invalid, expired or revoked API key", {"WWW-Authenticate": "Bearer"}
            )
        authorize(request, principal, audit)
        return principal.user_id

    return require_api_key


def authorize(request: Request, principal: Principal, audit: AuditLog | None) -> None:
    """Policy check of the matched route for `principal` (403), with the audit draft."""
    # The router has matched before dependencies run: the scope holds the route template.
    template = str(getattr(request.scope.get("route"), "path", request.url.path))
    method = request.method
    request.state.principal = principal
    if audit is not None and method in MUTATING:
        draft = AuditDraft(audit, principal, method, template, dict(request.path_params))
        setattr(request.state, DRAFT_STATE, draft)
    if not permits(principal, required(method, template), request.path_params):
        raise HTTPException(
            403, f"{principal.role.value} {principal.user_id!r} may not {method} {template}"
        )


def install_ops(app: FastAPI, checks: dict[str, ReadinessCheck]) -> None:
    """Add /healthz, /readyz, /metrics and the access log that never prints a token."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in checks.items()}
        ready = all(results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": results},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(AuditTrail)
    app.add_middleware(AccessLog)


# The Swagger UI files /docs needs, from the swagger-ui-bundle-v2 package, by media type.
SWAGGER_UI_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
    # Fetched only by a browser's developer tools.
    "swagger-ui-bundle.js.map": "application/json",
    "swagger-ui.css.map": "application/json",
}


def install_docs(app: FastAPI) -> None:
    """Swagger UI at /docs, its JavaScript and CSS served by Tocsin itself.

    FastAPI's default page loads them from a CDN, so it is blank on a machine without internet
    access, the normal case for a self-hosted pager (FastAPI's "self-hosting JavaScript and CSS
    for docs"; the app is created with `docs_url=None, redoc_url=None`). The asset path names
    the Swagger UI version (`/docs/swagger-ui-5.31.0/...`), so browsers may cache it for good.
    """
    directory = Path(swagger_ui_path)
    assets = f"/docs/{directory.name}"
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets}/favicon-32x32.png",
            # Swagger UI would otherwise ask validator.swagger.io about the spec.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(assets + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        media_type = SWAGGER_UI_FILES.get(name)
        if media_type is None:  # a fixed list: nothing else of the directory is served
            raise HTTPException(404, "not found")
        return FileResponse(
            directory / name,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )


class AccessLog:
    """Request metrics and an access log that prints the route template, never the concrete
    path (tokens live in paths). Plain ASGI: `@app.middleware("http")` costs a task group and
    a response copy per request, a fifth of ingest's time for small bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, record_status)
        finally:
            elapsed = time.perf_counter() - started
            # The router records the matched route in the scope; its path is the template.
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            method = str(scope.get("method", ""))
            HTTP_REQUESTS.labels(method, route, str(status)).observe(elapsed)
            if route not in ("/healthz", "/readyz", "/metrics"):
                access_log.info("%s %s %d %.1fms", method, route, status, elapsed * 1000)
