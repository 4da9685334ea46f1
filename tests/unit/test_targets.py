"""Escalation targets resolved at the instant a level pages (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import NotificationEvent
from services.escalation.domain.lifecycle import PageStep, ScheduleEscalation
from services.escalation.domain.schedules import (
    Layer,
    LayerSource,
    Override,
    OverrideSource,
    Rotation,
    Schedule,
)
from services.escalation.domain.targets import (
    Reached,
    ScheduleTarget,
    UserTarget,
    oncall_entries,
    resolve_levels,
    schedules_of,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
# alice until 12:00 UTC on the 25th, then bob (daily turns at 12:00 UTC from the 24th).
PRIMARY = Schedule(
    "primary",
    "Primary",
    "UTC",
    (Layer("daily", ("alice", "bob"), Rotation.daily(), datetime(2026, 11, 24, 12, 0)),),
)
LEVELS = (
    (ScheduleTarget("primary"), UserTarget("carol")),
    (UserTarget("alice"), ScheduleTarget("primary"), ScheduleTarget("gone")),
)


def test_schedules_are_resolved_at_the_instant_given() -> None:
    before = resolve_levels(LEVELS, {"primary": PRIMARY}, {}, T0)
    after = resolve_levels(LEVELS, {"primary": PRIMARY}, {}, T0 + 2 * HOUR)
    assert before[0].users == ("alice", "carol")
    assert after[0].users == ("bob", "carol")
    assert before[0].reached[0] == Reached(
        ScheduleTarget("primary"), "alice", LayerSource(0, "daily")
    )


def test_a_person_reached_twice_in_a_level_is_paged_once_and_an_unknown_schedule_nobody() -> None:
    level = resolve_levels(LEVELS, {"primary": PRIMARY}, {}, T0)[1]
    assert level.users == ("alice",)
    assert level.reached[2] == Reached(ScheduleTarget("gone"), None)


def test_overrides_are_applied_per_schedule() -> None:
    override = Override("o1", "dave", T0 - HOUR, T0 + HOUR)
    (level, _) = resolve_levels(LEVELS, {"primary": PRIMARY}, {"primary": [override]}, T0)
    assert level.reached[0] == Reached(ScheduleTarget("primary"), "dave", OverrideSource("o1"))


def test_schedules_of_names_each_schedule_once_in_order() -> None:
    assert schedules_of(LEVELS) == ["primary", "gone"]


def test_oncall_entries_name_who_each_paged_level_reached() -> None:
    resolved = resolve_levels(LEVELS, {"primary": PRIMARY}, {}, T0)
    effects = (
        PageStep(step=3, level=1, cycle=2, users=("alice",), event=NotificationEvent.ESCALATED),
        ScheduleEscalation(step=4, cycle=2, due_at=T0),
    )
    entries = oncall_entries("inc-1", effects, resolved, T0)
    assert [(e.id, e.user_id, e.level, e.detail) for e in entries] == [
        (
            "oncall:inc-1/c2/s3/primary",
            "alice",
            1,
            "schedule primary: alice on call (layer 'daily')",
        ),
        ("oncall:inc-1/c2/s3/gone", None, 1, "schedule gone: nobody on call"),
    ]
