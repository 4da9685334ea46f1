"""Who an escalation level pages: its targets, users named directly and schedules resolved to
whoever is on call at the instant the level pages (pure; time and overrides are parameters).

A level is resolved when it pages, never when the incident opens: a handoff between the trigger
and a later level (or a repeat pass) pages the person on call then. A schedule with nobody on
call, or one no longer configured, reaches nobody; the level's other targets are still paged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.escalation.domain.lifecycle import Effect, PageStep
from services.escalation.domain.schedules import (
    LayerSource,
    Override,
    OverrideSource,
    Schedule,
    Source,
    oncall_at,
)
from services.escalation.domain.timeline import Entry, TimelineEntry


@dataclass(frozen=True)
class UserTarget:
    user: str


@dataclass(frozen=True)
class ScheduleTarget:
    schedule: str


Target = UserTarget | ScheduleTarget


@dataclass(frozen=True)
class Reached:
    """A target as resolved at an instant: the user it reaches (None: nobody) and why."""

    target: Target
    user: str | None
    source: Source | None = None


@dataclass(frozen=True)
class LevelOnCall:
    reached: tuple[Reached, ...]

    @property
    def users(self) -> tuple[str, ...]:
        """The users the level pages, each once, in target order."""
        users: list[str] = []
        for entry in self.reached:
            if entry.user is not None and entry.user not in users:
                users.append(entry.user)
        return tuple(users)


def schedules_of(levels: Sequence[Sequence[Target]]) -> list[str]:
    """The schedule ids the levels name, each once, in order."""
    found: list[str] = []
    for level in levels:
        for target in level:
            if isinstance(target, ScheduleTarget) and target.schedule not in found:
                found.append(target.schedule)
    return found


def resolve_levels(
    levels: Sequence[Sequence[Target]],
    schedules: Mapping[str, Schedule],
    overrides: Mapping[str, Sequence[Override]],
    at: datetime,
) -> tuple[LevelOnCall, ...]:
    """Each level's targets as they stand at `at` (overrides per schedule, oldest first)."""
    resolved = []
    for level in levels:
        reached = []
        for target in level:
            if isinstance(target, UserTarget):
                reached.append(Reached(target, target.user))
                continue
            schedule = schedules.get(target.schedule)
            oncall = (
                oncall_at(schedule, overrides.get(target.schedule, ()), at)
                if schedule is not None
                else None
            )
            if oncall is None:
                reached.append(Reached(target, None))
            else:
                reached.append(Reached(target, oncall.user, oncall.source))
        resolved.append(LevelOnCall(tuple(reached)))
    return tuple(resolved)


def describe_source(source: Source | None) -> str:
    if isinstance(source, LayerSource):
        return f"layer {source.name!r}"
    if isinstance(source, OverrideSource):
        return f"override {source.override_id}"
    return "nobody on call"


def oncall_entries(
    incident_id: str,
    effects: Sequence[Effect],
    on_call: Sequence[LevelOnCall],
    at: datetime,
) -> list[TimelineEntry]:
    """For each level paged by `effects`, who each of its schedules reached (or that nobody
    was on call). Ids name the cycle, step and schedule: a redone write stores each once."""
    entries = []
    for effect in effects:
        if not isinstance(effect, PageStep) or effect.level >= len(on_call):
            continue
        for reached in on_call[effect.level].reached:
            if not isinstance(reached.target, ScheduleTarget):
                continue
            schedule = reached.target.schedule
            detail = (
                f"schedule {schedule}: {reached.user} on call ({describe_source(reached.source)})"
                if reached.user is not None
                else f"schedule {schedule}: nobody on call"
            )
            entries.append(
                TimelineEntry(
                    id=f"oncall:{incident_id}/c{effect.cycle}/s{effect.step}/{schedule}",
                    at=at,
                    action=Entry.ON_CALL,
                    user_id=reached.user,
                    level=effect.level,
                    detail=detail,
                )
            )
    return entries
