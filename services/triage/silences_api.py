"""Operator routes for silences, Alertmanager-compatible: `POST /api/v1/silences` takes the
body of Alertmanager's `POST /api/v2/silences` (`matchers` of `{name, value, isRegex, isEqual}`,
`startsAt`, `endsAt`, `createdBy`, `comment`, and `id` to replace a silence) and answers
`{"silenceID": …}`; `GET` lists them as Alertmanager's GettableSilence (with `status.state`);
`DELETE /api/v1/silences/{id}` expires one (its end becomes now)."""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.triage.domain.matchers import MatcherError
from services.triage.domain.silences import matches_everything
from services.triage.silence_store import (
    SilenceMatcher,
    SilenceRecord,
    SilencesInForce,
    SilenceStore,
)
from tocsin.runtime.clock import Clock

MAX_MATCHERS = 64


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MatcherBody(_Camel):
    name: str = Field(min_length=1, max_length=256)
    value: str = Field(max_length=4096)
    isRegex: bool
    isEqual: bool = True


class PostableSilence(_Camel):
    id: str | None = Field(default=None, max_length=64, description="Replace this silence.")
    matchers: list[MatcherBody] = Field(min_length=1, max_length=MAX_MATCHERS)
    startsAt: AwareDatetime
    endsAt: AwareDatetime
    createdBy: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=4096)


class SilenceStatus(BaseModel):
    state: str = Field(description="pending, active or expired")


class GettableSilence(BaseModel):
    id: str
    status: SilenceStatus
    updatedAt: datetime
    matchers: list[MatcherBody]
    startsAt: datetime
    endsAt: datetime
    createdBy: str
    comment: str

    @classmethod
    def of(cls, record: SilenceRecord, now: datetime) -> "GettableSilence":
        return cls(
            id=record.id,
            status=SilenceStatus(state=record.silence().state(now).value),
            updatedAt=record.updated_at,
            matchers=[
                MatcherBody(name=m.name, value=m.value, isRegex=m.is_regex, isEqual=m.is_equal)
                for m in record.matchers
            ],
            startsAt=record.starts_at,
            endsAt=record.ends_at,
            createdBy=record.created_by,
            comment=record.comment,
        )


class SilenceCreated(BaseModel):
    silenceID: str


def _record(body: PostableSilence, silence_id: str, now: datetime) -> SilenceRecord:
    matchers = tuple(SilenceMatcher(m.name, m.value, m.isRegex, m.isEqual) for m in body.matchers)
    try:
        compiled = [m.compiled() for m in matchers]
    except MatcherError as error:
        raise HTTPException(400, f"invalid matcher: {error}") from None
    if matches_everything(compiled):
        raise HTTPException(400, "at least one matcher must not match the empty string")
    if body.endsAt <= body.startsAt:
        raise HTTPException(400, "endsAt must be after startsAt")
    if body.endsAt <= now:
        raise HTTPException(400, "endsAt is in the past")
    return SilenceRecord(
        id=silence_id,
        matchers=matchers,
        starts_at=body.startsAt,
        ends_at=body.endsAt,
        created_by=body.createdBy,
        comment=body.comment,
        updated_at=now,
    )


def router(
    store: SilenceStore,
    in_force: SilencesInForce,
    clock: Clock,
    require_api_key: Callable[..., str],
) -> APIRouter:
    api = APIRouter(prefix="/api/v1/silences", tags=["silences"])
    ApiKey = Annotated[str, Depends(require_api_key)]
    SilenceId = Annotated[str, Path(max_length=64)]

    @api.post("", response_model=SilenceCreated, responses={400: {}, 401: {}, 404: {}})
    async def post_silence(_: ApiKey, body: PostableSilence) -> SilenceCreated:
        """Create a silence, or replace the one named by `id` (as Alertmanager does)."""
        now = clock.now()
        if body.id is not None and await store.get(body.id) is None:
            raise HTTPException(404, f"no silence {body.id!r}")
        record = _record(body, body.id or str(uuid.uuid4()), now)
        await store.save(record)
        in_force.invalidate()
        return SilenceCreated(silenceID=record.id)

    @api.get("", response_model=list[GettableSilence], responses={401: {}})
    async def list_silences(_: ApiKey) -> list[GettableSilence]:
        now = clock.now()
        return [GettableSilence.of(record, now) for record in await store.list_all()]

    @api.get("/{silence_id}", response_model=GettableSilence, responses={401: {}, 404: {}})
    async def get_silence(_: ApiKey, silence_id: SilenceId) -> GettableSilence:
        record = await store.get(silence_id)
        if record is None:
            raise HTTPException(404, f"no silence {silence_id!r}")
        return GettableSilence.of(record, clock.now())

    @api.delete("/{silence_id}", status_code=200, responses={401: {}, 404: {}})
    async def expire_silence(_: ApiKey, silence_id: SilenceId) -> None:
        """Expire the silence now; alerts it silenced are triaged at their next occurrence."""
        if not await store.expire(silence_id, clock.now()):
            raise HTTPException(404, f"no silence {silence_id!r}")
        in_force.invalidate()

    return api
