"""`POST /v2/enqueue`: PagerDuty Events API v2, so any tool that can page PagerDuty can page
Tocsin. The `routing_key` is the token of a `pagerduty` integration.

Answers are PagerDuty's: 202 `{"status":"success","message":"Event processed","dedup_key":…}`,
400 `{"status":"invalid event","message":…,"errors":[…]}` (also for bad JSON), 429 past the
integration's rate limit (with Retry-After), 413 past 512 KB; and 503 with Retry-After when
the bus cannot accept durably (PagerDuty senders retry 429 and 5xx).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.ingest.domain import limits
from services.ingest.domain.formats import ParseContext, pagerduty
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.intake import (
    BadJson,
    BodyTooLarge,
    Caller,
    decode_json,
    publish,
    read_body,
    unavailable,
)
from services.ingest.metrics import (
    BACKPRESSURE,
    EVENTS_IGNORED,
    PAYLOAD_BYTES,
    REQUESTS_REJECTED,
    UNKNOWN,
    observe_response,
)
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.http import TokenDirectory

SOURCE = "pagerduty"


def _invalid(
    errors: list[str], integration: str, *, status: int = 400, message: str | None = None
) -> JSONResponse:
    REQUESTS_REJECTED.labels(integration=integration, source=SOURCE, reason="invalid_event").inc()
    return JSONResponse(
        {
            "status": "invalid event",
            "message": message or "Event object is invalid",
            "errors": errors,
        },
        status_code=status,
    )


async def _read(request: Request, integration: str) -> object | JSONResponse:
    try:
        raw = await read_body(request, pagerduty.MAX_BODY_BYTES)
    except BodyTooLarge:
        return _invalid(
            [f"the event exceeds {pagerduty.MAX_BODY_BYTES} bytes"],
            integration,
            status=413,
            message="Event object is too large",
        )
    PAYLOAD_BYTES.labels(source=SOURCE).observe(len(raw))
    try:
        return decode_json(raw)
    except BadJson as error:
        return _invalid([str(error)], integration)


async def _process(
    bus: Bus,
    caller: Caller,
    document: object,
    clock: Clock,
    limiter: RateLimiter,
) -> JSONResponse:
    integration = caller.integration.id
    wait = limiter.allow(integration, caller.rate_limit_per_minute, time.monotonic())
    if wait is not None:
        BACKPRESSURE.labels(integration=integration, source=SOURCE, status="429").inc()
        REQUESTS_REJECTED.labels(integration=integration, source=SOURCE, reason="rate").inc()
        return JSONResponse(
            {"status": "throttle event", "message": "Request Limit Exceeded; retry later"},
            status_code=429,
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    context = ParseContext(integration, caller.integration.service_id, clock.now())
    try:
        outcome = pagerduty.interpret(pagerduty.validate(document), context)
    except pagerduty.InvalidEvent as error:
        return _invalid(error.errors, integration)
    exceeded = limits.check(outcome.messages, caller.limits, many=False)
    if exceeded is not None:
        return _invalid([exceeded.message], integration, status=exceeded.status)
    if outcome.action == "acknowledge":
        EVENTS_IGNORED.labels(integration=integration, source=SOURCE, reason="acknowledge").inc()
    elif not await publish(bus, outcome.messages, caller.integration):
        return unavailable(
            integration,
            SOURCE,
            {"status": "unavailable", "message": "cannot accept events durably; retry later"},
        )
    return JSONResponse(
        {"status": "success", "message": "Event processed", "dedup_key": outcome.dedup_key},
        status_code=202,
    )


async def answer_pagerduty(
    bus: Bus, caller: Caller, request: Request, clock: Clock, limiter: RateLimiter
) -> JSONResponse:
    """A PagerDuty event posted to `/v1/ingest/{token}` (the token names the integration)."""
    document = await _read(request, caller.integration.id)
    if isinstance(document, JSONResponse):
        return document
    return await _process(bus, caller, document, clock, limiter)


def router(
    bus: Bus, integrations: TokenDirectory[Caller], clock: Clock, limiter: RateLimiter
) -> APIRouter:
    api = APIRouter(tags=["pagerduty"])

    @api.post(
        "/v2/enqueue",
        status_code=202,
        summary="PagerDuty Events API v2: trigger, acknowledge or resolve an alert",
        responses={400: {}, 401: {}, 413: {}, 429: {}, 503: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": pagerduty.PagerDutyEvent.model_json_schema()}
                },
            }
        },
    )
    async def enqueue(request: Request) -> JSONResponse:
        started = time.perf_counter()
        response = await _enqueue(request)
        observe_response(SOURCE, response.status_code, time.perf_counter() - started)
        return response

    async def _enqueue(request: Request) -> JSONResponse:
        document = await _read(request, UNKNOWN)
        if isinstance(document, JSONResponse):
            return document
        routing_key = document.get("routing_key") if isinstance(document, dict) else None
        caller = integrations.find(routing_key) if isinstance(routing_key, str) else None
        if caller is None or not caller.format.pagerduty_answers:
            REQUESTS_REJECTED.labels(
                integration=UNKNOWN, source=SOURCE, reason="unknown_token"
            ).inc()
            return JSONResponse(
                {
                    "status": "invalid event",
                    "message": "unknown routing key",
                    "errors": ["'routing_key' does not name an integration"],
                },
                status_code=401,
            )
        return await _process(bus, caller, document, clock, limiter)

    return api
