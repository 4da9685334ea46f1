"""Who may call the operator API: people, their roles, personal API keys and the one policy table.

People are declared in the configuration file (`users:` with a `role`); personal API keys are
runtime objects, stored hashed in one `access_keys` collection of the shared database.

Where keys live, and why there: escalation owns API keys (it serves `/api/v1/keys` and the
console, and is the only writer besides `tocsin keys`), but in the distributed mode all four
services answer operator routes, so each must check a key. The services already share one
MongoDB database, so every process reads `access_keys` through `Access`, a small cache
(`CACHE_SECONDS`) in front of a lookup by digest. A compacted Kafka topic would give each
process a full copy, but it adds a topic, a consumer per process and a second source of truth
for little gain: a key lookup is one indexed read, at most once per key per `CACHE_SECONDS`.
The price: a key revoked through another process stops working there after at most
`CACHE_SECONDS` (the process that revoked it forgets it at once).

Keys are 32 random bytes, so SHA-256 is enough to store them (nobody brute-forces 256 bits);
passwords are low-entropy and hashed with argon2 (`tocsin users hash-password`). A key's
`last_used_at` is written at most once a minute per process, never per request.

The bootstrap key (`TOCSIN_ADMIN_TOKEN`) stays: it acts as the user `admin` with the role
admin, for the first keys and for emergencies.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tocsin.runtime.clock import Clock
from tocsin.runtime.store import Document, DocumentDatabase

KEYS_COLLECTION = "access_keys"
CACHE_SECONDS = 5.0
CACHE_LIMIT = 10_000
LAST_USED_EVERY = timedelta(minutes=1)
KEY_PREFIX = "tsk_"
BOOTSTRAP_USER = "admin"
BOOTSTRAP_KEY_ID = "bootstrap"
# A personal key is made by its owner (API, CLI, console); a session key by the console at
# login, for the console to call other services' APIs as that person (its secret lives only in
# the session cookie); it ends with the session and is not listed among the person's keys.
PERSONAL = "personal"
SESSION = "session"
# What a console session's own key may call: the console reaches other services' APIs with it
# (triage's silences); everything else the console does runs in escalation itself. A leaked
# cookie must not make keys that outlive the session, or change anything else.
SESSION_ROUTES = ("/api/v1/silences",)


class Role(StrEnum):
    VIEWER = "viewer"
    RESPONDER = "responder"
    ADMIN = "admin"


RANK: Mapping[Role, int] = {Role.VIEWER: 0, Role.RESPONDER: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Person:
    """A declared user, as access control sees them."""

    id: str
    name: str
    role: Role
    password_hash: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their role now, and the key (id, never the secret)."""

    user_id: str
    name: str
    role: Role
    key_id: str
    # Calling with a console session's own key (see SESSION_ROUTES).
    session: bool = False

    def at_least(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


# ---- the policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """The least role a route needs. `own`: a path parameter naming a user; below admin, a
    caller may use the route only on themselves (their own calendar token)."""

    role: Role
    own: str | None = None


VIEWER = Rule(Role.VIEWER)
RESPONDER = Rule(Role.RESPONDER)
ADMIN = Rule(Role.ADMIN)
READS = frozenset({"GET", "HEAD"})

# Every change an operator route can make, by method and route template. Reads (GET) need a
# viewer unless listed here; anything missing from this table needs an admin (fails closed).
POLICY: Mapping[tuple[str, str], Rule] = {
    # Incidents: acting on them is a responder's job.
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): RESPONDER,
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): RESPONDER,
    ("POST", "/api/v1/incidents/{incident_id}/escalate"): RESPONDER,
    ("POST", "/api/v1/incidents/{incident_id}/reassign"): RESPONDER,
    ("POST", "/api/v1/incidents/{incident_id}/responders"): RESPONDER,
    ("POST", "/api/v1/incidents/{incident_id}/commander"): RESPONDER,
    ("POST", "/api/v1/incidents/{incident_id}/notes"): RESPONDER,
    ("POST", "/api/v1/incidents/{incident_id}/updates"): RESPONDER,
    ("POST", "/api/v1/incidents/{incident_id}/review"): RESPONDER,
    ("PATCH", "/api/v1/incidents/{incident_id}/review"): RESPONDER,
    ("POST", "/api/v1/incidents/{incident_id}/action-items"): RESPONDER,
    ("PATCH", "/api/v1/action-items/{item_id}"): RESPONDER,
    # Suppression and schedules.
    ("POST", "/api/v1/silences"): RESPONDER,
    ("DELETE", "/api/v1/silences/{silence_id}"): RESPONDER,
    ("POST", "/api/v1/maintenance-windows"): RESPONDER,
    ("DELETE", "/api/v1/maintenance-windows/{window_id}"): RESPONDER,
    ("POST", "/api/v1/schedules/{schedule_id}/overrides"): RESPONDER,
    ("DELETE", "/api/v1/schedules/{schedule_id}/overrides/{override_id}"): RESPONDER,
    # One's own things (an admin's for anyone).
    ("POST", "/api/v1/users/{user_id}/calendar-token"): Rule(Role.VIEWER, own="user_id"),
    ("DELETE", "/api/v1/users/{user_id}/calendar-token"): Rule(Role.VIEWER, own="user_id"),
    # Keys: the handlers let a non-admin create, list and revoke only their own.
    ("GET", "/api/v1/keys"): VIEWER,
    ("POST", "/api/v1/keys"): VIEWER,
    ("DELETE", "/api/v1/keys/{key_id}"): VIEWER,
    # Administration.
    ("GET", "/api/v1/audit"): ADMIN,
    ("POST", "/api/v1/config/reload"): ADMIN,
}

# Routes a viewer may change, on their own things only (the OpenAPI walk checks exactly these).
SELF_SERVICE: frozenset[tuple[str, str]] = frozenset(
    route for route, rule in POLICY.items() if route[0] not in READS and rule.role == Role.VIEWER
)


def required(method: str, template: str) -> Rule:
    rule = POLICY.get((method, template))
    if rule is not None:
        return rule
    return VIEWER if method in READS else ADMIN


def permits(principal: Principal, rule: Rule, path_params: Mapping[str, Any]) -> bool:
    if not principal.at_least(rule.role):
        return False
    if rule.own is not None and not principal.at_least(Role.ADMIN):
        return bool(path_params.get(rule.own) == principal.user_id)
    return True


# ---- keys ---------------------------------------------------------------------------------


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str | None:
    """SHA-256, hex: the same digest as `tocsin.runtime.http.token_digest`."""
    try:
        return hashlib.sha256(secret.encode()).hexdigest()
    except UnicodeEncodeError:  # a lone surrogate: no key of ours
        return None


@dataclass(frozen=True)
class StoredKey:
    id: str
    user_id: str
    label: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    kind: str = PERSONAL
    opened_with: str | None = None

    def usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    @classmethod
    def of(cls, document: Document) -> StoredKey:
        return cls(
            id=document["_id"],
            user_id=document["user_id"],
            label=document.get("label", ""),
            created_at=document["created_at"],
            created_by=document.get("created_by", ""),
            expires_at=document.get("expires_at"),
            revoked_at=document.get("revoked_at"),
            last_used_at=document.get("last_used_at"),
            kind=document.get("kind", PERSONAL),
            opened_with=document.get("opened_with"),
        )


class KeyStore:
    """The `access_keys` collection: one document per key, the secret only as its digest."""

    def __init__(self, database: DocumentDatabase) -> None:
        self._keys = database[KEYS_COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._keys.create_index([("digest", 1)], unique=True)
        await self._keys.create_index([("user_id", 1)])
        await self._keys.create_index([("revoked_at", 1)])
        await self._keys.create_index([("expires_at", 1)])

    async def create(
        self,
        user_id: str,
        label: str,
        created_by: str,
        now: datetime,
        expires_at: datetime | None = None,
        kind: str = PERSONAL,
        opened_with: str | None = None,
    ) -> tuple[StoredKey, str]:
        """The new key and its secret (returned once; only the digest is stored).
        `opened_with`: a session key's login key, whose revocation revokes it too."""
        secret = new_secret()
        key = StoredKey(
            id="key_" + secrets.token_hex(8),
            user_id=user_id,
            label=label,
            created_at=now,
            created_by=created_by,
            expires_at=expires_at,
            kind=kind,
            opened_with=opened_with,
        )
        await self._keys.insert_one(
            {
                "_id": key.id,
                "digest": digest(secret),
                "user_id": user_id,
                "label": label,
                "created_at": now,
                "created_by": created_by,
                "expires_at": expires_at,
                "revoked_at": None,
                "last_used_at": None,
                "kind": kind,
                "opened_with": opened_with,
            }
        )
        return key, secret

    async def get(self, key_id: str) -> StoredKey | None:
        document = await self._keys.find_one({"_id": key_id})
        return StoredKey.of(document) if document is not None else None

    async def by_digest(self, key_digest: str) -> StoredKey | None:
        document = await self._keys.find_one({"digest": key_digest})
        return StoredKey.of(document) if document is not None else None

    async def list(self, user_id: str | None = None) -> list[StoredKey]:
        """Personal keys (session keys are the console's, not listed)."""
        where: dict[str, Any] = {"kind": {"$ne": SESSION}}
        if user_id is not None:
            where["user_id"] = user_id
        cursor = self._keys.find(where).sort([("created_at", 1)])
        return [StoredKey.of(document) async for document in cursor]

    async def revoke(self, key_id: str, now: datetime) -> StoredKey | None:
        """Revoke (idempotent: a revoked key keeps its first revocation time), with the session
        keys of console logins made with it."""
        await self._keys.update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        await self._keys.update_many(
            {"opened_with": key_id, "kind": SESSION, "revoked_at": None},
            {"$set": {"revoked_at": now}},
        )
        return await self.get(key_id)

    async def touch(self, key_id: str, now: datetime) -> None:
        await self._keys.update_one({"_id": key_id}, {"$set": {"last_used_at": now}})


# ---- authentication -------------------------------------------------------------------------


class Access:
    """Authenticates the bootstrap token and personal keys; knows the declared people."""

    def __init__(
        self,
        keys: KeyStore,
        people: Callable[[], Mapping[str, Person]],
        clock: Clock,
        bootstrap_token: str | None = None,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.keys = keys
        self._people = people
        self._clock = clock
        self._bootstrap = digest(bootstrap_token) if bootstrap_token else None
        self._cache_seconds = cache_seconds
        # digest -> (the key or None, when it was read (monotonic))
        self._cache: dict[str, tuple[StoredKey | None, float]] = {}

    def person(self, user_id: str) -> Person | None:
        return self._people().get(user_id)

    def people(self) -> Mapping[str, Person]:
        return self._people()

    def now(self) -> datetime:
        return self._clock.now()

    def principal(self, user_id: str, key_id: str) -> Principal | None:
        """The principal of a declared user (None once they are no longer in the file)."""
        if user_id == BOOTSTRAP_USER and key_id == BOOTSTRAP_KEY_ID:
            return Principal(BOOTSTRAP_USER, "Administrator (bootstrap key)", Role.ADMIN, key_id)
        person = self.person(user_id)
        if person is None:
            return None
        return Principal(person.id, person.name, person.role, key_id)

    async def authenticate(self, secret: str) -> Principal | None:
        candidate = digest(secret)
        if candidate is None:
            return None
        if self._bootstrap is not None and hmac.compare_digest(candidate, self._bootstrap):
            return self.principal(BOOTSTRAP_USER, BOOTSTRAP_KEY_ID)
        key = await self._lookup(candidate)
        now = self._clock.now()
        if key is None or not key.usable(now):
            return None
        principal = self.principal(key.user_id, key.id)
        if principal is None:
            return None
        if key.kind == SESSION:
            principal = replace(principal, session=True)
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
            await self.keys.touch(key.id, now)
            self._remember(candidate, replace(key, last_used_at=now))
        return principal

    def forget(self, key_id: str) -> None:
        """Drop a key from the cache (after revoking it here), with its session keys."""
        self._cache = {
            d: e
            for d, e in self._cache.items()
            if e[0] is None or key_id not in (e[0].id, e[0].opened_with)
        }

    def verify_password(self, user_id: str, password: str) -> Principal | None:
        person = self.person(user_id)
        if person is None or person.password_hash is None:
            return None
        if not _argon2_matches(person.password_hash, password):
            return None
        return self.principal(person.id, "password")

    async def check_password(self, user_id: str, password: str) -> Principal | None:
        """`verify_password` off the event loop: an argon2 verify takes a few hundred
        milliseconds and as much memory as the hash was made with (64 MiB with argon2-cffi's
        defaults), so it runs on one thread of its own, one verify at a time per process (not
        the loop's default executor, whose threads also resolve host names). At most
        `PASSWORD_QUEUE` verifies wait; past it, `PasswordCheckBusy` (answer 503)."""
        global _password_checks_waiting
        if _password_checks_waiting >= PASSWORD_QUEUE:
            raise PasswordCheckBusy(f"{PASSWORD_QUEUE} password checks already waiting")
        _password_checks_waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                _PASSWORD_THREAD, self.verify_password, user_id, password
            )
        finally:
            _password_checks_waiting -= 1

    async def _lookup(self, key_digest: str) -> StoredKey | None:
        cached = self._cache.get(key_digest)
        if cached is not None and time.monotonic() - cached[1] < self._cache_seconds:
            return cached[0]
        key = await self.keys.by_digest(key_digest)
        self._remember(key_digest, key)
        return key

    def _remember(self, key_digest: str, key: StoredKey | None) -> None:
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[key_digest] = (key, time.monotonic())


# OWASP's argon2id parameters (19 MiB, 2 passes, 1 lane): a verify costs 19 MiB rather than
# argon2-cffi's default 64 MiB. Hashes made with other parameters still verify: argon2 reads
# them from the hash.
PASSWORD_TIME_COST = 2
PASSWORD_MEMORY_KIB = 19 * 1024
PASSWORD_PARALLELISM = 1
PASSWORD_QUEUE = 16
_PASSWORD_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")
_password_checks_waiting = 0  # touched on the event loop's thread only


class PasswordCheckBusy(Exception):
    """Too many password checks are waiting: refuse this one now rather than queue it."""


def _argon2_matches(password_hash: str, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return PasswordHasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher(
        time_cost=PASSWORD_TIME_COST,
        memory_cost=PASSWORD_MEMORY_KIB,
        parallelism=PASSWORD_PARALLELISM,
    ).hash(password)
