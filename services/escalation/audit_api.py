"""`GET /api/v1/audit` (admin): the audit log (tocsin.runtime.audit), newest first, and its
retention rules (escalation owns `audit_log` and `access_keys`)."""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from tocsin.runtime.access import KEYS_COLLECTION
from tocsin.runtime.audit import AUDIT_COLLECTION, AuditLog
from tocsin.runtime.retention import RetentionPolicy, RetentionRule


class PathParam(BaseModel):
    name: str
    value: str


class AuditEntry(BaseModel):
    at: datetime
    user_id: str
    user_name: str
    role: str
    key_id: str
    via: str
    method: str
    route: str
    action: str
    params: list[PathParam]
    status: int
    outcome: str

    @classmethod
    def of(cls, document: dict[str, Any]) -> "AuditEntry":
        return cls.model_validate({k: v for k, v in document.items() if k != "_id"})


def audit_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    """Audit entries, revoked keys and expired keys are kept as long as resolved incidents
    (TOCSIN_RETENTION_RESOLVED): who acted on an incident is known as long as the incident."""
    return [
        RetentionRule(AUDIT_COLLECTION, "at", policy.resolved),
        RetentionRule(KEYS_COLLECTION, "revoked_at", policy.resolved),
        RetentionRule(KEYS_COLLECTION, "expires_at", policy.resolved),
    ]


def router(audit: AuditLog, require_api_key: Callable[..., str]) -> APIRouter:
    api = APIRouter(prefix="/api/v1/audit", tags=["access"])
    ApiKey = Annotated[str, Depends(require_api_key)]

    @api.get("", response_model=list[AuditEntry])
    async def search_audit(
        caller_id: ApiKey,
        user: Annotated[str | None, Query(description="User id.")] = None,
        since: Annotated[datetime | None, Query(alias="from")] = None,
        until: Annotated[datetime | None, Query(alias="to")] = None,
        action: Annotated[
            str | None,
            Query(description="`acknowledge`, or a method and route: `POST /api/v1/silences`."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AuditEntry]:
        """Who changed what, when, with which key (its id), newest first."""
        entries = await audit.search(
            user_id=user, since=since, until=until, action=action, limit=limit
        )
        return [AuditEntry.of(entry) for entry in entries]

    return api
