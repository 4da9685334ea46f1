"""Operator routes for alerts: what arrived, from where, and where it went (Bearer API key).

The listing pages in fingerprint order with an opaque cursor (the last fingerprint returned),
so paging visits every alert once even while alerts keep arriving and changing.
"""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from schemas import AlertStatus
from services.triage.store import AlertFilter, StoredAlert, TriageStore
from tocsin.runtime.paging import decode_cursor, encode_cursor

MAX_LIMIT = 500


class AlertView(BaseModel):
    fingerprint: str
    source: str = Field(description="The integration's type, e.g. alertmanager.")
    integration: str
    status: AlertStatus
    summary: str
    severity: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    service: str
    count: int = Field(description="Occurrences received, resends and resolutions included.")
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None = Field(description="Set while the alert is resolved.")
    incident_id: str | None
    decision: str | None = Field(
        description="What triage did with the alert's last firing and why, e.g. "
        "`grouped into incident …`, `silenced by …`, `flapping` (null before the first firing)."
    )
    flapping_since: datetime | None = Field(
        default=None,
        description="Set while the alert flaps (changes firing <-> resolved too often): its "
        "incident stays open and its flaps page nobody.",
    )

    @classmethod
    def of(cls, alert: StoredAlert) -> "AlertView":
        return cls(
            fingerprint=alert.fingerprint,
            source=alert.source,
            integration=alert.integration_id,
            status=alert.status,
            summary=alert.summary,
            severity=alert.severity,
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            service=alert.service_id,
            count=alert.count,
            first_seen=alert.first_seen,
            last_seen=alert.last_seen,
            resolved_at=alert.resolved_at if alert.status is AlertStatus.RESOLVED else None,
            incident_id=alert.incident_id,
            decision=alert.decision,
            flapping_since=alert.flapping_since,
        )


class AlertPage(BaseModel):
    alerts: list[AlertView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def router(store: TriageStore, require_api_key: Callable[..., str]) -> APIRouter:
    api = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
    ApiKey = Annotated[str, Depends(require_api_key)]

    @api.get("", response_model=AlertPage, responses={400: {}, 401: {}})
    async def list_alerts(
        _: ApiKey,
        status: AlertStatus | None = None,
        service: Annotated[str | None, Query(max_length=200)] = None,
        source: Annotated[str | None, Query(max_length=64)] = None,
        fingerprint: Annotated[str | None, Query(max_length=256)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> AlertPage:
        where = AlertFilter(
            status=status, service_id=service, source=source, fingerprint=fingerprint
        )
        after = decode_cursor(cursor) if cursor is not None else None
        # One more than asked tells whether another page exists without a second query.
        found = await store.list_alerts(where, after, limit + 1)
        page = found[:limit]
        next_cursor = encode_cursor(page[-1].fingerprint) if len(found) > limit else None
        return AlertPage(alerts=[AlertView.of(a) for a in page], next_cursor=next_cursor)

    return api
