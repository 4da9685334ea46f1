"""Ingest's webhook routes. 202 only after the bus durably accepted every alert."""

from __future__ import annotations

import hmac
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import ValidationError

from schemas import ALERTS_RAW
from services.ingest.alertmanager import AlertmanagerWebhook, normalize
from services.ingest.store import Integration
from tocsin.bus import Bus, PublishError
from tocsin.clock import Clock
from tocsin.http import token_digest

log = logging.getLogger(__name__)

ALERTS_ACCEPTED = Counter(
    "tocsin_ingest_alerts_accepted_total", "Alerts durably accepted.", ["integration", "source"]
)
REQUESTS_REJECTED = Counter(
    "tocsin_ingest_requests_rejected_total", "Webhook requests refused, by reason.", ["reason"]
)

MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = "5"


class IntegrationDirectory:
    """Finds an integration by its token without revealing, through timing, which one."""

    def __init__(self) -> None:
        self._by_digest: dict[str, Integration] = {}

    def replace(self, integrations: list[Integration]) -> None:
        self._by_digest = {i.token_sha256: i for i in integrations}

    def find(self, token: str) -> Integration | None:
        candidate = token_digest(token)
        found = None
        for digest, integration in self._by_digest.items():
            if hmac.compare_digest(candidate, digest):
                found = integration
        return found


def _problem(status: int, reason: str, detail: object) -> JSONResponse:
    REQUESTS_REJECTED.labels(reason=reason).inc()
    return JSONResponse({"detail": detail}, status_code=status)


def router(bus: Bus, directory: IntegrationDirectory, clock: Clock) -> APIRouter:
    api = APIRouter(tags=["ingest"])

    @api.post(
        "/v1/ingest/{token}",
        status_code=202,
        summary="Receive an Alertmanager (webhook v4) notification",
        responses={401: {}, 400: {}, 413: {}, 422: {}, 503: {}},
        # The body is parsed by hand (after the token check and size limit); document it here.
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": AlertmanagerWebhook.model_json_schema()}
                },
            }
        },
    )
    async def ingest(token: str, request: Request) -> JSONResponse:
        integration = directory.find(token)
        if integration is None:
            return _problem(401, "unknown_token", "unknown integration token")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _problem(413, "too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return _problem(400, "invalid_json", f"body is not valid UTF-8 JSON: {error}")
        try:
            webhook = AlertmanagerWebhook.model_validate(document)
            messages = normalize(
                webhook,
                integration_id=integration.id,
                service_id=integration.service_id,
                received_at=clock.now(),
            )
        except ValidationError as error:
            return _problem(422, "schema", error.errors(include_url=False, include_input=False))
        try:
            await bus.publish_many(ALERTS_RAW, [(m.fingerprint, m) for m in messages])
        except PublishError as error:
            log.warning("cannot accept %d alerts durably: %s", len(messages), error)
            REQUESTS_REJECTED.labels(reason="unavailable").inc()
            return JSONResponse(
                {"detail": "cannot accept alerts durably right now; retry later"},
                status_code=503,
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        ALERTS_ACCEPTED.labels(integration=integration.id, source=integration.type).inc(
            len(messages)
        )
        return JSONResponse({"status": "accepted", "alerts": len(messages)}, status_code=202)

    return api
