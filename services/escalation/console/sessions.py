"""Console sessions: `console_sessions`, one document per login, keyed by the digest of the
cookie's token; each with its own CSRF token. The token is the secret of the session's own key
(kind `session` in `access_keys`, see triage_client), so the server keeps only digests of it.
Logout deletes the session and revokes its key; expired ones go by retention."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.runtime.retention import RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase

SESSIONS = "console_sessions"
SESSION_LIFETIME = timedelta(hours=12)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Session:
    user_id: str
    key_id: str  # the key logged in with, or "password"
    csrf: str
    expires_at: datetime
    # The session's own key (None for a session opened before sessions had one).
    session_key_id: str | None = None

    def csrf_ok(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


class SessionStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._sessions = database[SESSIONS]

    async def ensure_indexes(self) -> None:
        await self._sessions.create_index([("expires_at", 1)])

    async def open(
        self,
        user_id: str,
        key_id: str,
        now: datetime,
        token: str | None = None,
        session_key_id: str | None = None,
    ) -> tuple[str, Session]:
        """A new session and the token for its cookie (`token`: the session key's secret)."""
        token = token or secrets.token_urlsafe(32)
        session = Session(
            user_id, key_id, secrets.token_urlsafe(24), now + SESSION_LIFETIME, session_key_id
        )
        await self._sessions.insert_one(
            {
                "_id": _digest(token),
                "user_id": user_id,
                "key_id": key_id,
                "csrf": session.csrf,
                "created_at": now,
                "expires_at": session.expires_at,
                "session_key_id": session_key_id,
            }
        )
        return token, session

    async def find(self, token: str, now: datetime) -> Session | None:
        document = await self._sessions.find_one({"_id": _digest(token)})
        if document is None or document["expires_at"] <= now:
            return None
        return Session(
            document["user_id"],
            document["key_id"],
            document["csrf"],
            document["expires_at"],
            document.get("session_key_id"),
        )

    async def close(self, token: str) -> None:
        await self._sessions.delete_one({"_id": _digest(token)})


def session_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    return [RetentionRule(SESSIONS, "expires_at", policy.internal)]
