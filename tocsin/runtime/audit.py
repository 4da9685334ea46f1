"""The audit log: who changed what, when, with which key, and how it ended.

Recorded centrally, never by a router: the operator-API dependency (tocsin.runtime.http) leaves
an `AuditDraft` on every authenticated mutating request (refusals included), and the
`AuditTrail` middleware writes it once the response status is known, before the response
starts, so a client that saw its answer finds the record. Every service writes to the one
`audit_log` collection of the shared database (escalation owns and serves it:
`GET /api/v1/audit`). The key is named by its id, never its secret. Path parameters are stored
as `{name, value}` pairs (no user-controlled document keys). Retention:
services/escalation/audit_api.py `audit_rules`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tocsin.runtime.access import Principal
from tocsin.runtime.clock import Clock
from tocsin.runtime.store import Document, DocumentDatabase, StoreUnavailable

log = logging.getLogger(__name__)

AUDIT_COLLECTION = "audit_log"
DRAFT_STATE = "tocsin_audit"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def action_name(template: str) -> str:
    """The last literal segment of a route template: `acknowledge`, `silences`, `reload`."""
    literal = [s for s in template.split("/") if s and not s.startswith("{")]
    return literal[-1] if literal else template


class AuditLog:
    def __init__(self, database: DocumentDatabase, clock: Clock) -> None:
        self._entries = database[AUDIT_COLLECTION]
        self._clock = clock

    async def ensure_indexes(self) -> None:
        await self._entries.create_index([("at", -1)])
        await self._entries.create_index([("user_id", 1), ("at", -1)])

    async def record(
        self,
        principal: Principal,
        method: str,
        template: str,
        path_params: Mapping[str, Any],
        status: int,
        via: str = "api",
    ) -> None:
        await self._entries.insert_one(
            {
                "_id": str(uuid.uuid4()),
                "at": self._clock.now(),
                "user_id": principal.user_id,
                "user_name": principal.name,
                "role": principal.role.value,
                "key_id": principal.key_id,
                # A console session's own key: the console acted for the person.
                "via": "console" if principal.session else via,
                "method": method,
                "route": template,
                "action": action_name(template),
                "params": [{"name": k, "value": str(v)} for k, v in sorted(path_params.items())],
                "status": status,
                "outcome": "done" if status < 400 else "refused" if status < 500 else "failed",
            }
        )

    async def search(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[Document]:
        where: dict[str, Any] = {}
        if user_id is not None:
            where["user_id"] = user_id
        window: dict[str, datetime] = {}
        if since is not None:
            # `from` is inclusive; the common subset of both stores has $gt, not $gte, and
            # MongoDB keeps milliseconds.
            window["$gt"] = since - timedelta(milliseconds=1)
        if until is not None:
            window["$lt"] = until
        if window:
            where["at"] = window
        if action is not None:
            # `acknowledge` or a whole `POST /api/v1/...` template.
            method, _, template = action.partition(" ")
            if template:
                where["method"], where["route"] = method, template
            else:
                where["action"] = action
        cursor = self._entries.find(where).sort([("at", -1)]).limit(limit)
        return [entry async for entry in cursor]


@dataclass(frozen=True)
class AuditDraft:
    """A change to record once its status is known."""

    log: AuditLog
    principal: Principal
    method: str
    template: str
    path_params: Mapping[str, Any]

    async def finish(self, status: int) -> None:
        try:
            await self.log.record(
                self.principal, self.method, self.template, self.path_params, status
            )
        except StoreUnavailable:
            # The change is done and cannot be undone by failing its answer: say it loudly.
            log.error(
                "audit record lost (store unavailable): %s %s by %s (key %s) -> %d",
                self.method,
                self.template,
                self.principal.user_id,
                self.principal.key_id,
                status,
            )


class AuditTrail:
    """Writes the request's `AuditDraft` (if the API dependency left one) when the response
    starts, so the status is known and the record is stored before the client sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only the operator API has drafts: webhooks (ingest's hot path) pass straight through.
        if (
            scope["type"] != "http"
            or scope.get("method") not in MUTATING
            or not str(scope.get("path", "")).startswith("/api/")
        ):
            await self._app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def record_then_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                draft = state.pop(DRAFT_STATE, None)
                if isinstance(draft, AuditDraft):
                    await draft.finish(int(message["status"]))
            await send(message)

        try:
            await self._app(scope, receive, record_then_send)
        except Exception:
            # A crash answers 500 further out (ServerErrorMiddleware): the attempt is recorded.
            draft = state.pop(DRAFT_STATE, None)
            if isinstance(draft, AuditDraft):
                await draft.finish(500)
            raise
