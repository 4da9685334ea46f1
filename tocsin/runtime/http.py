"""HTTP plumbing shared by every service: ops routes, API-key auth, a redacting access log,
hot routes served ahead of the middleware stack, and the API docs page with its assets served
locally."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from tocsin.runtime import telemetry
from tocsin.runtime.access import SESSION_ROUTES, Access, Principal, permits, required
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
    if principal.session and not template.startswith(SESSION_ROUTES):
        raise HTTPException(403, f"a console session's key may call only {SESSION_ROUTES[0]}")
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


@dataclass(frozen=True)
class HotRoute:
    """A route served at the outermost ASGI layer, ahead of the middleware stack, FastAPI's
    request telemetry and the router (`HotRoutes`): for a webhook taken thousands of times a
    second, that machinery cost more than the work. `path` is a template whose last segment
    is its one parameter (`/v1/ingest/{token}`); `endpoint` gets the scope with `path_params`
    and `route` (this object: its `path` is the template) set, as a router would.

    It is for routes that need none of the middleware: no API key, no audit, no commit of
    `tocsin up`'s file before the answer (the endpoint makes its own writes durable). Document
    it with an ordinary route of the same path: what the hot dispatch does not take (another
    method, a trailing slash, a root path) reaches that one."""

    method: str
    path: str
    endpoint: ASGIApp
    prefix: str = field(init=False)
    param: str = field(init=False)

    def __post_init__(self) -> None:
        prefix, brace, last = self.path.rpartition("/{")
        if not brace or not last.endswith("}") or "{" in prefix:
            raise ValueError(f"a hot route ends with its only parameter: {self.path!r}")
        object.__setattr__(self, "prefix", prefix + "/")
        object.__setattr__(self, "param", last[:-1])


class AccessSummary:
    """The access log of hot routes, aggregated: an answer that is not 2xx gets its own line
    (`POST /v1/ingest/{token} 401 0.3ms`, as every request of the other routes), 2xx answers
    are counted and printed once per `interval` seconds per route and status, while they come
    (`POST /v1/ingest/{token} 202 x1520 in 1.0s mean 3.1ms max 41.7ms`). A line per accepted
    webhook cost a tenth of ingest's time per request. What a per-request line told about an
    accepted request (its trace id, its own latency) is in its trace, when traces are
    exported, and in `tocsin_http_request_duration_seconds`."""

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._counts: dict[tuple[str, str, int], list[float]] = {}  # count, total, max
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def record(self, method: str, route: str, status: int, elapsed: float) -> None:
        if not 200 <= status < 300:
            access_log.info("%s %s %d %.1fms", method, route, status, elapsed * 1000)
            return
        key = (method, route, status)
        seen = self._counts.get(key)
        if seen is None:
            self._counts[key] = [1, elapsed, elapsed]
        else:
            seen[0] += 1
            seen[1] += elapsed
            if elapsed > seen[2]:
                seen[2] = elapsed
        if self._timer is None:
            self._since = time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(self._interval, self.flush)

    def flush(self) -> None:
        """Print what was counted (also called when the app stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counts, self._counts = self._counts, {}
        window = time.monotonic() - self._since
        for (method, route, status), (count, total, longest) in counts.items():
            access_log.info(
                "%s %s %d x%d in %.1fs mean %.1fms max %.1fms",
                method,
                route,
                status,
                count,
                window,
                total / count * 1000,
                longest * 1000,
            )


_TRACE_HEADERS = (b"traceparent", b"tracestate", b"baggage")


class HotRoutes:
    """Dispatch of `HotRoute`s and what the middleware would have done for them: the HTTP
    metric (`tocsin_http_request_duration_seconds`, children looked up once), the access log
    (`AccessSummary`) and the trace. When spans are recorded (`telemetry.spans_recorded`), a
    server span named `POST /v1/ingest/{token}` continues the caller's trace context, as
    FastAPI's own would (without the concrete path: it holds a token). When not, no span is
    made per request (it would carry ids only); a caller's `traceparent` is still continued."""

    def __init__(
        self,
        routes: list[HotRoute],
        summary: AccessSummary | None = None,
        *,
        tracer: trace.Tracer | None = None,
        spans_recorded: Callable[[], bool] = telemetry.spans_recorded,
    ) -> None:
        self._routes = {(route.method, route.prefix): route for route in routes}
        self._prefixes = {route.prefix for route in routes}
        self.summary = summary or AccessSummary()
        self._children: dict[tuple[str, str, int], Histogram] = {}
        self._tracer = tracer or trace.get_tracer(__name__)
        self._spans_recorded = spans_recorded

    def __bool__(self) -> bool:
        return bool(self._routes)

    def match(self, scope: Scope) -> HotRoute | None:
        path: str = scope["path"]
        slash = path.rfind("/") + 1
        if slash <= 1 or slash == len(path) or scope.get("root_path"):
            return None
        prefix = path[:slash]
        if prefix not in self._prefixes:
            return None
        return self._routes.get((scope["method"], prefix))

    async def serve(self, route: HotRoute, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        scope["path_params"] = {route.param: scope["path"][len(route.prefix) :]}
        scope["route"] = route
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            if self._spans_recorded():
                await self._traced(route, scope, receive, record_status)
            else:
                parent = _caller_context(scope)
                token = otel_context.attach(parent) if parent is not None else None
                try:
                    await route.endpoint(scope, receive, record_status)
                finally:
                    if token is not None:
                        otel_context.detach(token)
        finally:
            elapsed = time.perf_counter() - started
            key = (route.method, route.path, status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = HTTP_REQUESTS.labels(
                    route.method, route.path, str(status)
                )
            child.observe(elapsed)
            self.summary.record(route.method, route.path, status, elapsed)

    async def _traced(self, route: HotRoute, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        attributes = {
            "http.request.method": route.method,
            "http.route": route.path,
            "url.scheme": scope.get("scheme", "http"),
        }
        with self._tracer.start_as_current_span(
            f"{route.method} {route.path}",
            context=propagate.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            async def record_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(trace.StatusCode.ERROR)
                await send(message)

            await route.endpoint(scope, receive, record_status)


def _caller_context(scope: Scope) -> otel_context.Context | None:
    """The trace context the caller sent, if any (most webhook senders send none)."""
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _TRACE_HEADERS
    }
    return propagate.extract(carrier) if carrier else None
