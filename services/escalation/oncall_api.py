"""Operator routes for on-call: schedules (who is on call at an instant, the final timeline),
overrides (created, listed and deleted here, stored in MongoDB), who is on call now for every
service, and each user's calendar feed of their shifts.

The feed is read by calendar clients, which cannot send an API key: it sits behind a secret
token in its URL instead. `POST /api/v1/users/{id}/calendar-token` issues a new one (replacing
the one before, so a leaked URL is revoked by issuing another) and answers with the feed's URL;
only its SHA-256 digest is stored, and a wrong token and an unknown user get the same 404.
"""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.escalation.config import (
    EscalationConfig,
    LayerConfig,
    ScheduleConfig,
    format_local_start,
    format_restriction,
    format_rotation,
)
from services.escalation.domain.ical import CalendarEntry, render_calendar
from services.escalation.domain.schedules import (
    MAX_SHIFTS_RANGE,
    LayerSource,
    OnCall,
    Override,
    Source,
    oncall_at,
    shifts,
)
from services.escalation.domain.targets import Reached, ScheduleTarget
from services.escalation.engine import Escalation
from services.escalation.oncall_store import OncallStore, StoredOverride
from tocsin.runtime.config_problems import unknown
from tocsin.runtime.durations import format_duration
from tocsin.runtime.http import token_digest

DEFAULT_SHIFTS_RANGE = timedelta(days=7)
# The calendar feed: a week of past shifts, eight weeks ahead (within MAX_SHIFTS_RANGE).
FEED_PAST = timedelta(days=7)
FEED_AHEAD = timedelta(days=56)


class SourceView(BaseModel):
    """Why someone is on call: a layer of the schedule, or an override."""

    type: Literal["layer", "override"]
    layer: int | None = Field(default=None, description="The layer's position (0 first).")
    name: str | None = Field(default=None, description="The layer's name.")
    override_id: str | None = None

    @classmethod
    def of(cls, source: Source | None) -> "SourceView | None":
        if source is None:
            return None
        if isinstance(source, LayerSource):
            return cls(type="layer", layer=source.index, name=source.name)
        return cls(type="override", override_id=source.override_id)


class OnCallView(BaseModel):
    schedule: str
    at: datetime
    user: str | None = Field(description="Null when nobody is on call.")
    source: SourceView | None

    @classmethod
    def of(cls, schedule_id: str, at: datetime, oncall: OnCall | None) -> "OnCallView":
        return cls(
            schedule=schedule_id,
            at=at,
            user=oncall.user if oncall else None,
            source=SourceView.of(oncall.source) if oncall else None,
        )


class ShiftView(BaseModel):
    user: str
    start: datetime
    end: datetime
    source: SourceView


class ShiftsView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schedule: str
    from_: datetime = Field(alias="from")
    to: datetime
    shifts: list[ShiftView] = Field(description="In time order; a gap is nobody on call.")


class RestrictionView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    days: list[str]
    from_: str = Field(alias="from")
    to: str


class LayerView(BaseModel):
    name: str
    users: list[str]
    rotation: str | dict[str, str] = Field(description="hourly, daily, weekly or {every: 12h}")
    start: str = Field(description="The first handoff, local time in the schedule's zone.")
    restrictions: list[RestrictionView]

    @classmethod
    def of(cls, n: int, layer: LayerConfig) -> "LayerView":
        return cls(
            name=layer.name or f"layer {n + 1}",
            users=list(layer.users),
            rotation=format_rotation(layer.rotation),
            start=format_local_start(layer.start),
            restrictions=[
                RestrictionView.model_validate(format_restriction(r)) for r in layer.restrictions
            ],
        )


class ScheduleView(BaseModel):
    id: str
    name: str
    time_zone: str
    layers: list[LayerView]
    on_call_now: OnCallView


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]


class OverrideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=100, description="Who covers the range.")
    start: AwareDatetime
    end: AwareDatetime


class OverrideView(BaseModel):
    id: str
    schedule: str
    user: str
    start: datetime
    end: datetime
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, stored: StoredOverride) -> "OverrideView":
        override = stored.override
        return cls(
            id=override.id,
            schedule=stored.schedule_id,
            user=override.user,
            start=override.start,
            end=override.end,
            created_at=stored.created_at,
            created_by=stored.created_by,
        )


class OverrideList(BaseModel):
    overrides: list[OverrideView]


class TargetOnCall(BaseModel):
    user: str | None = Field(description="Who this target pages now; null: nobody on call.")
    schedule: str | None = Field(default=None, description="Set when the target is a schedule.")
    source: SourceView | None = None

    @classmethod
    def of(cls, reached: Reached) -> "TargetOnCall":
        if isinstance(reached.target, ScheduleTarget):
            return cls(
                user=reached.user,
                schedule=reached.target.schedule,
                source=SourceView.of(reached.source),
            )
        return cls(user=reached.user)


class LevelOnCallView(BaseModel):
    level: int
    delay: str
    targets: list[TargetOnCall]


class ServiceOnCall(BaseModel):
    service: str
    name: str
    escalation_policy: str | None
    levels: list[LevelOnCallView]


class OnCallNow(BaseModel):
    at: datetime
    services: list[ServiceOnCall]


class CalendarToken(BaseModel):
    user: str
    url: str = Field(description="The feed's URL, secret token included; keep it private.")


def router(
    engine: Escalation,
    store: OncallStore,
    require_api_key: Callable[..., str],
    *,
    public_url: str | None = None,
) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["on-call"])
    ApiKey = Annotated[str, Depends(require_api_key)]

    def _schedule(schedule_id: str) -> ScheduleConfig:
        found = next((s for s in engine.config.schedules if s.id == schedule_id), None)
        if found is None:
            raise HTTPException(404, f"no schedule {schedule_id!r}")
        return found

    async def _overrides(schedule_id: str, start: datetime, end: datetime) -> list[Override]:
        return [stored.override for stored in await store.overrides(schedule_id, start, end)]

    async def _oncall(config: EscalationConfig, schedule_id: str, at: datetime) -> OnCallView:
        schedule = config.schedule(schedule_id)
        assert schedule is not None  # from the same configuration
        overrides = await _overrides(schedule_id, at, at + timedelta(milliseconds=1))
        return OnCallView.of(schedule_id, at, oncall_at(schedule, overrides, at))

    @api.get("/schedules", response_model=ScheduleList, responses={401: {}})
    async def list_schedules(_: ApiKey) -> ScheduleList:
        config, now = engine.config, engine.now()
        return ScheduleList(
            schedules=[
                ScheduleView(
                    id=s.id,
                    name=s.name,
                    time_zone=s.time_zone,
                    layers=[LayerView.of(n, layer) for n, layer in enumerate(s.layers)],
                    on_call_now=await _oncall(config, s.id, now),
                )
                for s in config.schedules
            ]
        )

    @api.get("/schedules/{schedule_id}/oncall", response_model=OnCallView, responses={404: {}})
    async def schedule_oncall(
        schedule_id: str, _: ApiKey, at: AwareDatetime | None = None
    ) -> OnCallView:
        _schedule(schedule_id)
        return await _oncall(engine.config, schedule_id, at or engine.now())

    @api.get(
        "/schedules/{schedule_id}/shifts",
        response_model=ShiftsView,
        response_model_by_alias=True,
        responses={404: {}, 422: {}},
    )
    async def schedule_shifts(
        schedule_id: str,
        _: ApiKey,
        start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
        end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    ) -> ShiftsView:
        _schedule(schedule_id)
        schedule = engine.config.schedule(schedule_id)
        assert schedule is not None
        start = start or engine.now()
        end = end or start + DEFAULT_SHIFTS_RANGE
        if end <= start:
            raise HTTPException(422, "to: must be later than from")
        if end - start > MAX_SHIFTS_RANGE:
            raise HTTPException(
                422, f"the range is longer than {MAX_SHIFTS_RANGE.days} days; ask for less"
            )
        timeline = shifts(schedule, await _overrides(schedule_id, start, end), start, end)
        return ShiftsView(
            schedule=schedule_id,
            **{"from": start},
            to=end,
            shifts=[
                ShiftView(
                    user=shift.user,
                    start=shift.start,
                    end=shift.end,
                    source=SourceView.of(shift.source),
                )
                for shift in timeline
            ],
        )

    @api.post(
        "/schedules/{schedule_id}/overrides",
        response_model=OverrideView,
        status_code=201,
        responses={404: {}, 422: {}},
    )
    async def create_override(
        schedule_id: str, body: OverrideRequest, key_name: ApiKey
    ) -> OverrideView:
        _schedule(schedule_id)
        user_ids = [u.id for u in engine.config.users]
        if body.user not in user_ids:
            raise HTTPException(422, "user: " + unknown("user", body.user, user_ids))
        try:
            override = Override(id=uuid.uuid4().hex, user=body.user, start=body.start, end=body.end)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        stored = StoredOverride(schedule_id, override, engine.now(), f"api:{key_name}")
        await store.add_override(stored)
        return OverrideView.of(stored)

    @api.get("/schedules/{schedule_id}/overrides", response_model=OverrideList, responses={404: {}})
    async def list_overrides(
        schedule_id: str,
        _: ApiKey,
        start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
        end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    ) -> OverrideList:
        """Overrides overlapping `from`..`to` (default: those not yet over), by start."""
        _schedule(schedule_id)
        start = start or engine.now()
        end = end or datetime.max.replace(tzinfo=start.tzinfo)
        found = await store.overrides(schedule_id, start, end)
        found.sort(key=lambda s: (s.override.start, s.created_at))
        return OverrideList(overrides=[OverrideView.of(s) for s in found])

    @api.delete(
        "/schedules/{schedule_id}/overrides/{override_id}",
        status_code=204,
        responses={404: {}},
    )
    async def delete_override(schedule_id: str, override_id: str, _: ApiKey) -> Response:
        _schedule(schedule_id)
        if not await store.delete_override(schedule_id, override_id):
            raise HTTPException(404, f"schedule {schedule_id!r} has no override {override_id!r}")
        return Response(status_code=204)

    @api.get("/oncall", response_model=OnCallNow, responses={401: {}})
    async def oncall_now(_: ApiKey) -> OnCallNow:
        """Who each service's escalation policy pages now, level by level."""
        config, now = engine.config, engine.now()
        services = []
        for service_id in sorted(config.services):
            service = config.services[service_id]
            policy = config.policy(service.policy)
            levels: list[LevelOnCallView] = []
            if policy is not None:
                targets = [tuple(t.target() for t in level.targets) for level in policy.levels]
                resolved = await engine.planner.on_call(targets, now)
                levels = [
                    LevelOnCallView(
                        level=n,
                        delay=format_duration(level.delay),
                        targets=[TargetOnCall.of(r) for r in on_call.reached],
                    )
                    for n, (level, on_call) in enumerate(zip(policy.levels, resolved, strict=True))
                ]
            services.append(
                ServiceOnCall(
                    service=service_id,
                    name=service.name or service_id,
                    escalation_policy=policy.id if policy else None,
                    levels=levels,
                )
            )
        return OnCallNow(at=now, services=services)

    def _user(user_id: str) -> str:
        if engine.config.user(user_id) is None:
            raise HTTPException(404, f"no user {user_id!r}")
        return user_id

    def _feed_path(user_id: str) -> str:
        return f"/api/v1/users/{quote(user_id, safe='')}/oncall.ics"

    @api.post(
        "/users/{user_id}/calendar-token",
        response_model=CalendarToken,
        status_code=201,
        responses={404: {}},
    )
    async def issue_calendar_token(user_id: str, _: ApiKey) -> CalendarToken:
        """A new secret feed URL for the user; the one issued before stops working."""
        _user(user_id)
        token = secrets.token_urlsafe(32)
        await store.set_calendar_token(user_id, token_digest(token), engine.now())
        base = (public_url or "").rstrip("/")
        return CalendarToken(user=user_id, url=f"{base}{_feed_path(user_id)}?token={token}")

    @api.delete("/users/{user_id}/calendar-token", status_code=204, responses={404: {}})
    async def revoke_calendar_token(user_id: str, _: ApiKey) -> Response:
        _user(user_id)
        if not await store.delete_calendar_token(user_id):
            raise HTTPException(404, f"user {user_id!r} has no calendar token")
        return Response(status_code=204)

    @api.get(
        "/users/{user_id}/oncall.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}, 404: {}},
    )
    async def calendar_feed(
        user_id: str, token: Annotated[str, Query(max_length=200)] = ""
    ) -> Response:
        """The user's shifts in every schedule, a week back and eight weeks ahead (no API key:
        the URL's token is the credential)."""
        stored = await store.calendar_token(user_id) if token else None
        if stored is None or not secrets.compare_digest(stored, token_digest(token)):
            raise HTTPException(404, "no such calendar feed")
        config, now = engine.config, engine.now()
        entries: list[CalendarEntry] = []
        for schedule_config in config.schedules:
            schedule = config.schedule(schedule_config.id)
            assert schedule is not None
            start, end = now - FEED_PAST, now + FEED_AHEAD
            overrides = await _overrides(schedule.id, start, end)
            entries.extend(
                CalendarEntry(schedule.id, schedule.name, shift)
                for shift in shifts(schedule, overrides, start, end)
            )
        user = config.user(user_id)
        name = f"On call: {user.name}" if user is not None else None
        feed = render_calendar(user_id, entries, generated_at=now, calendar_name=name)
        return Response(
            feed,
            media_type="text/calendar; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300"},
        )

    return api
