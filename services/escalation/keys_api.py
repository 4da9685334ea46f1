"""`/api/v1/keys`: personal API keys (tocsin.runtime.access). Anyone may create, list and
revoke their own keys; an admin anyone's. A key's secret is in the answer to its creation and
nowhere else (stored as its SHA-256 digest)."""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from tocsin.runtime.access import Access, Principal, Role, StoredKey


class KeyRequest(BaseModel):
    user_id: str | None = Field(default=None, description="Whose key (default: the caller's).")
    label: str = Field(default="", max_length=200, description="What the key is for.")
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="Expires after this many days (default: never)."
    )


class KeyView(BaseModel):
    id: str
    user_id: str
    label: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, key: StoredKey) -> "KeyView":
        return cls(
            id=key.id,
            user_id=key.user_id,
            label=key.label,
            created_at=key.created_at,
            created_by=key.created_by,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class NewKey(KeyView):
    secret: str = Field(description="The key itself: shown this once, stored only hashed.")


def caller(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):  # the guard always leaves one
        raise HTTPException(401, "no caller")
    return principal


def _may_manage(principal: Principal, user_id: str) -> bool:
    return principal.at_least(Role.ADMIN) or principal.user_id == user_id


def router(access: Access, require_api_key: Callable[..., str]) -> APIRouter:
    api = APIRouter(prefix="/api/v1/keys", tags=["access"])
    ApiKey = Annotated[str, Depends(require_api_key)]

    @api.post("", status_code=201, response_model=NewKey, responses={403: {}, 422: {}})
    async def create_key(body: KeyRequest, request: Request, caller_id: ApiKey) -> NewKey:
        """A new personal key; its secret is in this answer only."""
        principal = caller(request)
        user_id = body.user_id or principal.user_id
        if not _may_manage(principal, user_id):
            raise HTTPException(403, "only an admin may create keys for someone else")
        if access.person(user_id) is None:
            raise HTTPException(422, f"no user {user_id!r} in the configuration")
        now = access.now()
        expires = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
        key, secret = await access.keys.create(user_id, body.label, principal.user_id, now, expires)
        return NewKey(**KeyView.of(key).model_dump(), secret=secret)

    @api.get("", response_model=list[KeyView])
    async def list_keys(
        request: Request, caller_id: ApiKey, user_id: Annotated[str | None, Query()] = None
    ) -> list[KeyView]:
        """Keys (never their secrets): an admin's view is everyone's (or `user_id`'s), anyone
        else's their own."""
        principal = caller(request)
        if not principal.at_least(Role.ADMIN):
            user_id = principal.user_id
        return [KeyView.of(key) for key in await access.keys.list(user_id)]

    @api.delete("/{key_id}", response_model=KeyView, responses={403: {}, 404: {}})
    async def revoke_key(key_id: str, request: Request, caller_id: ApiKey) -> KeyView:
        """Revoke a key: refused from now on (in other processes within seconds)."""
        principal = caller(request)
        key = await access.keys.get(key_id)
        if key is None or not _may_manage(principal, key.user_id):
            # Someone else's key is as unknown as a missing one, unless you are an admin.
            if key is not None:
                raise HTTPException(403, "only an admin may revoke someone else's key")
            raise HTTPException(404, f"no key {key_id!r}")
        revoked = await access.keys.revoke(key_id, access.now())
        access.forget(key_id)
        return KeyView.of(revoked or key)

    return api
