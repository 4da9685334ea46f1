"""HTTP plumbing shared by every service: ops routes, API-key auth and a redacting access log."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tocsin.metrics import HTTP_REQUESTS

access_log = logging.getLogger("tocsin.access")

ReadinessCheck = Callable[[], Awaitable[bool]]


def token_digest(token: str) -> str:
    """How API keys and integration tokens are stored: SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeys:
    """The operator API keys, held only as digests and compared in constant time."""

    def __init__(self, digests: dict[str, str]) -> None:
        self._digests = digests  # name -> sha256 hex

    def authenticate(self, token: str) -> str | None:
        candidate = token_digest(token)
        found: str | None = None
        for name, digest in self._digests.items():
            # Compare against every key so the time taken does not tell which one matched.
            if hmac.compare_digest(candidate, digest):
                found = name
        return found


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


def _route_template(request: Request) -> str:
    # The router records the matched route in the scope; its path is the template.
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


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

    @app.middleware("http")
    async def log_access(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - started
        route = _route_template(request)
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).observe(elapsed)
        if route not in ("/healthz", "/readyz", "/metrics"):
            access_log.info(
                "%s %s %d %.1fms", request.method, route, response.status_code, elapsed * 1000
            )
        return response
