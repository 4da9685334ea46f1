"""Ingest's webhook routes: `POST /v1/ingest/{token}` (the integration's type picks the format)
and `POST /v1/heartbeats/{token}`. 2xx only once every alert is durable on the bus.

Order of checks, so that a refusal says as little as possible: token (401), body size (413),
signature (401), JSON (400), schema (422 with JSON paths), limits (413/422), then publish (202,
or 503 with Retry-After: senders such as Alertmanager and Datadog retry 5xx and drop 4xx).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from services.ingest.domain import limits, signatures
from services.ingest.domain.formats import FORMATS, ParseContext, alertmanager_fast
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.enqueue import answer_pagerduty
from services.ingest.heartbeat_monitor import HeartbeatMonitor
from services.ingest.intake import (
    BadJson,
    BodyTooLarge,
    Caller,
    Coalescing,
    SerializedPublisher,
    decode_json,
    publish,
    publish_serialized,
    read_body,
    refuse,
    schema_errors,
    unavailable,
)
from services.ingest.metrics import UNKNOWN, observe_response, payload_bytes
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.http import HotRoute, TokenDirectory
from tocsin.runtime.store import StoreUnavailable


def _documented_body() -> dict[str, Any]:
    schemas = [fmt.body_schema() for fmt in FORMATS.values()]
    return {"required": True, "content": {"application/json": {"schema": {"anyOf": schemas}}}}


def _signature_problem(caller: Caller, raw: bytes, request: Request, clock: Clock) -> str | None:
    if caller.hmac is None:
        return None
    secret = caller.hmac.secret.get_secret_value()
    if caller.format.signature == "grafana":
        return signatures.verify_grafana(
            secret,
            raw,
            request.headers,
            timestamp_header=caller.hmac.timestamp_header,
            max_skew=caller.hmac.max_skew,
            now=clock.now(),
        )
    return signatures.verify_tocsin(secret, raw, request.headers)


# Formats with a hot path (`alertmanager_fast`); the others take their reference parser.
HOT_PATHS = {"alertmanager": alertmanager_fast.parse, "grafana": alertmanager_fast.parse_grafana}


@dataclass(frozen=True)
class RouteTemplate:
    """What the access log and the HTTP metrics print for the lean route: its template."""

    path: str


WEBHOOK_PATH = "/v1/ingest/{token}"
_WEBHOOK_TEMPLATE = RouteTemplate(WEBHOOK_PATH)


class LeanWebhook:
    """`POST /v1/ingest/{token}` as a plain ASGI endpoint: no dependency injection, no
    per-request model of the route. It runs `before_request` (apply a reloaded section) itself,
    then `handle`; the documented FastAPI route behind it has the same handler. A service app
    serves it as a hot route (`WebhookRoutes.hot`), ahead of the middleware; an app that only
    mounts the router reaches it there."""

    def __init__(
        self,
        before_request: Callable[[], Awaitable[JSONResponse | None]],
        handle: Callable[[str, Request], Awaitable[JSONResponse]],
    ) -> None:
        self._before_request = before_request
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = _WEBHOOK_TEMPLATE
        response = await self._before_request()
        if response is None:
            response = await self._handle(scope["path_params"]["token"], Request(scope, receive))
        await response(scope, receive, send)


@dataclass(frozen=True)
class WebhookRoutes:
    router: APIRouter
    hot: HotRoute  # the lean webhook, for the service app to serve first


def router(
    bus: Bus,
    integrations: TokenDirectory[Caller],
    heartbeats: TokenDirectory[str],
    monitor: HeartbeatMonitor,
    clock: Clock,
    limiter: RateLimiter,
    before_request: Callable[[], Awaitable[JSONResponse | None]],
) -> WebhookRoutes:
    api = APIRouter(tags=["ingest"])
    # Checked once: a runtime protocol check costs more than the rest of a small request.
    serialized_bus = Coalescing(bus) if isinstance(bus, SerializedPublisher) else None

    async def ingest(token: str, request: Request) -> JSONResponse:
        started = time.perf_counter()
        caller = integrations.find(token)
        source = caller.format.name if caller else UNKNOWN
        response = await _ingest(caller, request)
        observe_response(source, response.status_code, time.perf_counter() - started)
        return response

    # Served first (see LeanWebhook); the route below documents it in the OpenAPI schema.
    lean = LeanWebhook(before_request, ingest)
    api.routes.append(Route(WEBHOOK_PATH, lean, methods=["POST"], include_in_schema=False))

    @api.post(
        WEBHOOK_PATH,
        status_code=202,
        summary="Receive alerts in the integration's format (alertmanager, grafana, datadog, "
        "pagerduty, generic)",
        responses={400: {}, 401: {}, 413: {}, 422: {}, 429: {}, 503: {}},
        # The body is read by hand, after the token check and within the size limit.
        openapi_extra={"requestBody": _documented_body()},
    )
    async def documented_ingest(token: str, request: Request) -> JSONResponse:
        return await ingest(token, request)

    async def _ingest(caller: Caller | None, request: Request) -> JSONResponse:
        if caller is None:
            return refuse(
                401,
                "unknown integration token",
                integration=UNKNOWN,
                source=UNKNOWN,
                reason="unknown_token",
            )
        who = {"integration": caller.integration.id, "source": caller.format.name}
        if caller.format.pagerduty_answers:
            return await answer_pagerduty(bus, caller, request, clock, limiter)
        try:
            raw = await read_body(request, caller.limits.max_body_bytes)
        except BodyTooLarge:
            detail = f"body exceeds {caller.limits.max_body_bytes} bytes"
            return refuse(413, detail, **who, reason="too_large")
        payload_bytes(caller.format.name).observe(len(raw))
        problem = _signature_problem(caller, raw, request, clock)
        if problem is not None:
            return refuse(401, f"bad signature: {problem}", **who, reason="signature")
        try:
            document = decode_json(raw)
        except BadJson as error:
            return refuse(400, str(error), **who, reason="invalid_json")
        context = ParseContext(caller.integration.id, caller.integration.service_id, clock.now())
        hot_path = HOT_PATHS.get(caller.format.name)
        if hot_path is not None and serialized_bus is not None:
            serialized = hot_path(document, context, caller.limits)
            if serialized is not None:  # else the reference path below answers
                if not await publish_serialized(serialized_bus, serialized, caller.integration):
                    return _unavailable(caller)
                return _accepted(len(serialized))
        try:
            messages = caller.format.parse(document, context)
        except ValidationError as error:
            return refuse(422, schema_errors(error), **who, reason="schema")
        many = caller.format.many_alerts and isinstance(document, dict) and "alerts" in document
        exceeded = limits.check(messages, caller.limits, many=many)
        if exceeded is not None:
            return refuse(
                exceeded.status,
                [{"path": exceeded.field, "msg": exceeded.message}],
                **who,
                reason="limit",
            )
        if not await publish(bus, messages, caller.integration):
            return _unavailable(caller)
        return _accepted(len(messages))

    @api.post(
        "/v1/heartbeats/{token}",
        status_code=202,
        summary="Ping a heartbeat: the job behind it is alive",
        responses={401: {}, 503: {}},
    )
    async def heartbeat(token: str) -> JSONResponse:
        heartbeat_id = heartbeats.find(token)
        if heartbeat_id is None:
            return refuse(
                401,
                "unknown heartbeat token",
                integration=UNKNOWN,
                source="heartbeat",
                reason="unknown_token",
            )
        try:
            found = await monitor.ping(heartbeat_id)
        except StoreUnavailable:
            return unavailable(
                heartbeat_id, "heartbeat", {"detail": "cannot record the ping right now"}
            )
        if found is None:
            return refuse(
                401,
                "unknown heartbeat token",
                integration=UNKNOWN,
                source="heartbeat",
                reason="unknown_token",
            )
        return JSONResponse({"status": "ok", "heartbeat": heartbeat_id}, status_code=202)

    return WebhookRoutes(api, HotRoute("POST", WEBHOOK_PATH, lean))


class _Accepted(JSONResponse):
    """`202 {"status": "accepted", "alerts": n}`, its body and headers rendered once per n."""

    def __init__(self, alerts: int) -> None:
        body, headers = _accepted_parts(alerts)
        self.status_code = 202
        self.background = None
        self.body = body
        self.raw_headers = list(headers)


@lru_cache(maxsize=512)
def _accepted_parts(alerts: int) -> tuple[bytes, tuple[tuple[bytes, bytes], ...]]:
    rendered = JSONResponse({"status": "accepted", "alerts": alerts}, status_code=202)
    return bytes(rendered.body), tuple(rendered.raw_headers)


def _accepted(alerts: int) -> JSONResponse:
    return _Accepted(alerts)


def _unavailable(caller: Caller) -> JSONResponse:
    return unavailable(
        caller.integration.id,
        caller.format.name,
        {"detail": "cannot accept alerts durably right now; retry later"},
    )
