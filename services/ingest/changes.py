"""Change events: a deploy, a config change, a feature flag flipped on a service. They page
nobody; ingest publishes them on `changes.raw` (keyed by service) and triage shows those of the
30 minutes before an incident opened.

- `POST /v2/change/enqueue`: PagerDuty's Change Events API. Body `{routing_key, payload:
  {summary, timestamp?, source?, custom_details?}, links?: [{href, text?}]}`; the routing key is
  the token of any integration (it names the integration and so the service). Answers as
  PagerDuty: 202 `{"status": "success", "message": "Change event processed"}`, 400
  `{"status": "invalid event", "message": …, "errors": […]}`, 401 for an unknown routing key,
  429 past the integration's rate limit, 503 with Retry-After when the bus cannot take it.
- `POST /v1/changes/{token}`: a generic deploy body `{summary, service?, version?, source?,
  timestamp?, links?: [{href, text?}], details?: {…}}` (`service` defaults to the integration's;
  `timestamp` to now). Answers 202 `{"status": "accepted", "change_id": …}`, 401, 413, 400 (bad
  JSON), 422 (schema, with JSON paths), 429, 503.

A change carrying its own `timestamp` gets an event id derived from the integration and the
body, so a sender retrying after a 503 does not record it twice.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas import CHANGES_RAW, ChangeLink, ChangeReceived, Label
from schemas.changes import MAX_CHANGE_DETAILS, MAX_CHANGE_LINKS
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.intake import (
    BadJson,
    BodyTooLarge,
    Caller,
    decode_json,
    read_body,
    refuse,
    schema_errors,
    unavailable,
)
from services.ingest.metrics import BACKPRESSURE, PAYLOAD_BYTES, REQUESTS_REJECTED, UNKNOWN
from tocsin.runtime.bus import Bus, PublishError
from tocsin.runtime.clock import Clock
from tocsin.runtime.http import TokenDirectory

MAX_BODY_BYTES = 512 * 1024  # PagerDuty's limit for an event
PAGERDUTY_CHANGE = "pagerduty_change"
GENERIC_CHANGE = "change"
_NAMESPACE = uuid.UUID("6f1c1d0e-6a58-4c3e-9a53-0c7c2b1f4d21")

ServiceId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][\w.-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkBody(_Strict):
    href: str = Field(min_length=1, max_length=4096)
    text: str | None = Field(default=None, max_length=1024)


class PagerDutyChangePayload(BaseModel):
    # PagerDuty ignores unknown payload keys; so does Tocsin here.
    model_config = ConfigDict(extra="ignore", frozen=True)

    summary: str = Field(min_length=1, max_length=1024)
    timestamp: AwareDatetime | None = None
    source: str | None = Field(default=None, max_length=1024)
    custom_details: dict[str, Any] | None = None


class PagerDutyChangeEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    routing_key: str = Field(min_length=1, max_length=200)
    payload: PagerDutyChangePayload
    links: list[LinkBody] = Field(default_factory=list, max_length=MAX_CHANGE_LINKS)


class DeployBody(_Strict):
    """The generic deploy body of `POST /v1/changes/{token}`."""

    summary: str = Field(min_length=1, max_length=1024)
    service: ServiceId | None = Field(default=None, description="Default: the integration's.")
    version: str | None = Field(default=None, max_length=256)
    source: str | None = Field(default=None, max_length=1024)
    timestamp: AwareDatetime | None = Field(default=None, description="Default: now.")
    links: list[LinkBody] = Field(default_factory=list, max_length=MAX_CHANGE_LINKS)
    details: dict[str, Any] | None = None


def _details(details: dict[str, Any] | None) -> tuple[Label, ...]:
    """Top-level keys as pairs (JSON text for values that are not strings), bounded."""
    pairs = []
    for name, value in list((details or {}).items())[:MAX_CHANGE_DETAILS]:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        pairs.append(Label(name=str(name)[:1024] or "-", value=text[:16384]))
    return tuple(pairs)


def _event_id(caller: Caller, raw: bytes, timestamp: datetime | None) -> uuid.UUID:
    if timestamp is None:
        return uuid.uuid4()
    digest = hashlib.sha256(raw).hexdigest()
    return uuid.uuid5(_NAMESPACE, f"{caller.integration.id}:{digest}")


async def _publish(bus: Bus, change: ChangeReceived) -> bool:
    try:
        await bus.publish(CHANGES_RAW, change.service_id, change)
    except PublishError:
        return False
    return True


def _throttled(caller: Caller, limiter: RateLimiter, source: str) -> float | None:
    integration = caller.integration.id
    wait = limiter.allow(integration, caller.rate_limit_per_minute, time.monotonic())
    if wait is not None:
        BACKPRESSURE.labels(integration=integration, source=source, status="429").inc()
        REQUESTS_REJECTED.labels(integration=integration, source=source, reason="rate").inc()
    return wait


def _pd_invalid(errors: list[str], integration: str, status: int = 400) -> JSONResponse:
    REQUESTS_REJECTED.labels(
        integration=integration, source=PAGERDUTY_CHANGE, reason="invalid_event"
    ).inc()
    return JSONResponse(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status_code=status,
    )


def router(
    bus: Bus, integrations: TokenDirectory[Caller], clock: Clock, limiter: RateLimiter
) -> APIRouter:
    api = APIRouter(tags=["changes"])

    @api.post(
        "/v2/change/enqueue",
        status_code=202,
        summary="PagerDuty Change Events API: record a change (deploy) on a service",
        responses={400: {}, 401: {}, 413: {}, 429: {}, 503: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": PagerDutyChangeEvent.model_json_schema()}
                },
            }
        },
    )
    async def change_enqueue(request: Request) -> JSONResponse:
        try:
            raw = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return _pd_invalid([f"the event exceeds {MAX_BODY_BYTES} bytes"], UNKNOWN, 413)
        PAYLOAD_BYTES.labels(source=PAGERDUTY_CHANGE).observe(len(raw))
        try:
            document = decode_json(raw)
        except BadJson as error:
            return _pd_invalid([str(error)], UNKNOWN)
        routing_key = document.get("routing_key") if isinstance(document, dict) else None
        caller = integrations.find(routing_key) if isinstance(routing_key, str) else None
        if caller is None:
            REQUESTS_REJECTED.labels(
                integration=UNKNOWN, source=PAGERDUTY_CHANGE, reason="unknown_token"
            ).inc()
            return JSONResponse(
                {
                    "status": "invalid event",
                    "message": "unknown routing key",
                    "errors": ["'routing_key' does not name an integration"],
                },
                status_code=401,
            )
        integration = caller.integration.id
        try:
            event = PagerDutyChangeEvent.model_validate(document)
        except ValidationError as error:
            errors = [
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in error.errors(include_url=False, include_input=False)
            ]
            return _pd_invalid(errors, integration)
        wait = _throttled(caller, limiter, PAGERDUTY_CHANGE)
        if wait is not None:
            return JSONResponse(
                {"status": "throttle event", "message": "Request Limit Exceeded; retry later"},
                status_code=429,
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        payload = event.payload
        now = clock.now()
        change = ChangeReceived(
            event_id=_event_id(caller, raw, payload.timestamp),
            occurred_at=now,
            correlation_id=f"change:{integration}"[:200],
            integration_id=integration,
            integration_type=caller.integration.type,
            service_id=caller.integration.service_id,
            summary=payload.summary,
            at=payload.timestamp or now,
            source=payload.source,
            links=tuple(ChangeLink(href=link.href, text=link.text) for link in event.links),
            details=_details(payload.custom_details),
        )
        if not await _publish(bus, change):
            return unavailable(
                integration,
                PAGERDUTY_CHANGE,
                {"status": "unavailable", "message": "cannot accept events durably; retry later"},
            )
        return JSONResponse(
            {"status": "success", "message": "Change event processed"}, status_code=202
        )

    @api.post(
        "/v1/changes/{token}",
        status_code=202,
        summary="Record a change (deploy) on the integration's service, or the one named",
        responses={400: {}, 401: {}, 413: {}, 422: {}, 429: {}, 503: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": DeployBody.model_json_schema()}},
            }
        },
    )
    async def change(token: str, request: Request) -> JSONResponse:
        caller = integrations.find(token)
        if caller is None:
            return refuse(
                401,
                "unknown integration token",
                integration=UNKNOWN,
                source=GENERIC_CHANGE,
                reason="unknown_token",
            )
        who = {"integration": caller.integration.id, "source": GENERIC_CHANGE}
        try:
            raw = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return refuse(413, f"body exceeds {MAX_BODY_BYTES} bytes", **who, reason="too_large")
        PAYLOAD_BYTES.labels(source=GENERIC_CHANGE).observe(len(raw))
        try:
            document = decode_json(raw)
        except BadJson as error:
            return refuse(400, str(error), **who, reason="invalid_json")
        try:
            body = DeployBody.model_validate(document)
        except ValidationError as error:
            return refuse(422, schema_errors(error), **who, reason="schema")
        wait = _throttled(caller, limiter, GENERIC_CHANGE)
        if wait is not None:
            return JSONResponse(
                {"detail": "rate limit exceeded; retry later"},
                status_code=429,
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        now = clock.now()
        change = ChangeReceived(
            event_id=_event_id(caller, raw, body.timestamp),
            occurred_at=now,
            correlation_id=f"change:{caller.integration.id}"[:200],
            integration_id=caller.integration.id,
            integration_type=caller.integration.type,
            service_id=body.service or caller.integration.service_id,
            summary=body.summary,
            at=body.timestamp or now,
            source=body.source,
            version=body.version,
            links=tuple(ChangeLink(href=link.href, text=link.text) for link in body.links),
            details=_details(body.details),
        )
        if not await _publish(bus, change):
            return unavailable(
                caller.integration.id,
                GENERIC_CHANGE,
                {"detail": "cannot accept changes durably right now; retry later"},
            )
        return JSONResponse(
            {"status": "accepted", "change_id": str(change.event_id)}, status_code=202
        )

    return api
