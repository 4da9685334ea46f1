"""On-call schedules: rotations, restrictions, layers, overrides and DST, against a naive model.

The property tests compare `oncall_at` and `shifts` with an independent reference that walks a
range minute by minute, keeps the highest reading the schedule's wall clock has shown so far, and
applies the rules to that reading with plain local-time arithmetic (no `first_instant`, no
search). Ranges are drawn around real DST changes in four zones.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.escalation.domain.schedules import (
    MAX_SHIFTS_RANGE,
    Layer,
    LayerSource,
    OnCall,
    Override,
    OverrideSource,
    Restriction,
    Rotation,
    RotationKind,
    Schedule,
    Shift,
    Weekday,
    first_instant,
    oncall_at,
    shifts,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
WEEKDAYS = frozenset({Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI})
EVERY_DAY = frozenset(Weekday)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in `zone` (first occurrence), as a UTC instant."""
    return wall_instant(zone, datetime(year, month, day, hour, minute))


def wall_instant(zone: str, wall: datetime) -> datetime:
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def schedule(zone: str, *layers: Layer) -> Schedule:
    return Schedule(id="checkout", name="Checkout", time_zone=zone, layers=layers)


def layer(
    users: Sequence[str],
    rotation: Rotation,
    start: datetime,
    *restrictions: Restriction,
    name: str = "primary",
) -> Layer:
    return Layer(name, tuple(users), rotation, start, tuple(restrictions))


def who(sched: Schedule, at: datetime, overrides: Sequence[Override] = ()) -> str | None:
    found = oncall_at(sched, overrides, at)
    return found.user if found else None


def timeline(
    sched: Schedule, start: datetime, end: datetime, overrides: Sequence[Override] = ()
) -> list[tuple[str, datetime, datetime]]:
    return [(s.user, s.start, s.end) for s in shifts(sched, overrides, start, end)]


# --- the independent reference --------------------------------------------------------------


def reference_first_reach(wall_time: datetime, zone: ZoneInfo) -> datetime:
    """Brute force: the first whole minute at which the wall clock reads `wall_time` or later."""
    instant = wall_time.replace(tzinfo=UTC) - timedelta(hours=15)
    while instant.astimezone(zone).replace(tzinfo=None) < wall_time:
        instant += MINUTE
    return instant


def reference_person(
    sched: Schedule,
    overrides: Sequence[Override],
    at: datetime,
    high_water: datetime,
    hourly_starts: dict[int, datetime],
) -> OnCall | None:
    for override in reversed(overrides):
        if override.start <= at < override.end:
            return OnCall(override.user, OverrideSource(override.id))
    for index in reversed(range(len(sched.layers))):
        lay = sched.layers[index]
        if lay.rotation.kind is RotationKind.HOURLY:
            if at < hourly_starts[index]:
                continue
            turn = (at - hourly_starts[index]) // HOUR
        else:
            if high_water < lay.start:
                continue
            turn = (high_water - lay.start) // lay.rotation.period
        if lay.restrictions and not any(
            opens <= high_water < opens + restriction.duration
            for restriction in lay.restrictions
            for day in (high_water.date() - timedelta(days=1), high_water.date())
            if day.weekday() in restriction.days
            for opens in [datetime.combine(day, restriction.start)]
        ):
            continue
        return OnCall(lay.users[turn % len(lay.users)], LayerSource(index, lay.name))
    return None


def reference_minutes(
    sched: Schedule, overrides: Sequence[Override], start: datetime, end: datetime
) -> list[tuple[datetime, OnCall | None]]:
    zone = ZoneInfo(sched.time_zone)
    hourly_starts = {
        index: reference_first_reach(lay.start, zone)
        for index, lay in enumerate(sched.layers)
        if lay.rotation.kind is RotationKind.HOURLY
    }
    expected = []
    high_water: datetime | None = None
    instant = start - timedelta(hours=3)  # long enough to see any repeated hour before start
    while instant < end:
        wall = instant.astimezone(zone).replace(tzinfo=None, fold=0)
        high_water = wall if high_water is None or wall > high_water else high_water
        if instant >= start:
            person = reference_person(sched, overrides, instant, high_water, hourly_starts)
            expected.append((instant, person))
        instant += MINUTE
    return expected


# --- strategies ------------------------------------------------------------------------------

PROPERTY_ZONES = (NEW_YORK, BERLIN, "Australia/Lord_Howe", "America/Santiago")


def _transitions(zone_name: str, year: int) -> list[datetime]:
    zone = ZoneInfo(zone_name)
    found = []
    instant = datetime(year, 1, 1, tzinfo=UTC)
    previous = instant.astimezone(zone).utcoffset()
    while instant.year == year:
        offset = instant.astimezone(zone).utcoffset()
        if offset != previous:
            found.append(instant)
            previous = offset
        instant += HOUR
    return found


ANCHORS = {zone: _transitions(zone, 2024) for zone in PROPERTY_ZONES}
USERS = ("ana", "bo", "cy", "di")
ROTATIONS = (
    Rotation.hourly(),
    Rotation.daily(),
    Rotation.weekly(),
    Rotation.every(timedelta(hours=2)),
    Rotation.every(timedelta(minutes=150)),
    Rotation.every(timedelta(hours=12)),
    Rotation.every(timedelta(days=2)),
)
quarter_hours = st.integers(0, 95).map(lambda q: time(q // 4, q % 4 * 15))


@st.composite
def cases(draw: st.DrawFn) -> tuple[Schedule, list[Override], datetime, datetime]:
    zone_name = draw(st.sampled_from(PROPERTY_ZONES))
    zone = ZoneInfo(zone_name)
    anchor = draw(st.sampled_from(ANCHORS[zone_name]))
    if draw(st.booleans()) and draw(st.booleans()):
        anchor += timedelta(days=draw(st.integers(-60, 60)))  # an ordinary day, now and then
    length = draw(st.integers(60, 30 * 60))
    start = anchor - draw(st.integers(0, length - 1)) * MINUTE  # the range holds the anchor
    end = start + length * MINUTE
    anchor_day = anchor.astimezone(zone).date()
    layers = []
    for index in range(draw(st.integers(1, 3))):
        day = anchor_day + timedelta(days=draw(st.integers(-9, 1)))
        restrictions = draw(
            st.lists(
                st.builds(
                    Restriction,
                    days=st.frozensets(st.sampled_from(Weekday), min_size=1),
                    start=quarter_hours,
                    end=quarter_hours,
                ),
                max_size=2,
            )
        )
        layers.append(
            Layer(
                name=f"layer-{index}",
                users=tuple(draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=3))),
                rotation=draw(st.sampled_from(ROTATIONS)),
                start=datetime.combine(day, draw(quarter_hours)),
                restrictions=tuple(restrictions),
            )
        )
    overrides = [
        Override(
            id=f"ov-{index}",
            user=draw(st.sampled_from((*USERS, "eve"))),
            start=(opens := start + draw(st.integers(-120, 30 * 60)) * MINUTE),
            end=opens + draw(st.integers(15, 8 * 60)) * MINUTE,
        )
        for index in range(draw(st.integers(0, 2)))
    ]
    sched = Schedule(id="s", name="S", time_zone=zone_name, layers=tuple(layers))
    return sched, overrides, start, end


def _covering(timeline_: list[Shift], at: datetime) -> OnCall | None:
    for shift in timeline_:
        if shift.start <= at < shift.end:
            return OnCall(shift.user, shift.source)
    return None


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_minute_has_exactly_the_person_the_rules_say(
    case: tuple[Schedule, list[Override], datetime, datetime],
) -> None:
    sched, overrides, start, end = case
    final = shifts(sched, overrides, start, end)
    expected = reference_minutes(sched, overrides, start, end)

    # The timeline: ordered, non-empty shifts inside the range, no overlaps, nothing to merge.
    for shift in final:
        assert start <= shift.start < shift.end <= end
    for before, after in itertools.pairwise(final):
        assert before.end <= after.start
        if before.end == after.start:
            assert (before.user, before.source) != (after.user, after.source)

    # Every minute: the timeline says what the reference says (so gaps are exactly the
    # reference's nobody-minutes), and so does oncall_at on a sample and at every edge.
    cursor = 0
    for instant, person in expected:
        while cursor < len(final) and final[cursor].end <= instant:
            cursor += 1
        in_shift = cursor < len(final) and final[cursor].start <= instant
        got = OnCall(final[cursor].user, final[cursor].source) if in_shift else None
        assert got == person, f"shifts at {instant.isoformat()}"
    for instant, person in expected[::17]:
        assert oncall_at(sched, overrides, instant) == person, f"oncall_at at {instant}"
    for shift in final:
        for instant in (shift.start, shift.end - MINUTE, shift.end - timedelta(microseconds=1)):
            assert oncall_at(sched, overrides, instant) == OnCall(shift.user, shift.source)
        if shift.end < end:
            assert oncall_at(sched, overrides, shift.end) == _covering(final, shift.end)


@settings(max_examples=60, deadline=None)
@given(cases(), st.integers(1, 59))
def test_splitting_the_range_gives_the_same_timeline(
    case: tuple[Schedule, list[Override], datetime, datetime], cut_minutes: int
) -> None:
    sched, overrides, start, end = case
    cut = min(start + cut_minutes * 17 * MINUTE, end - MINUTE)
    joined = shifts(sched, overrides, start, cut) + shifts(sched, overrides, cut, end)
    merged: list[Shift] = []
    for shift in joined:
        last = merged[-1] if merged else None
        if (
            last
            and last.end == shift.start
            and (last.user, last.source)
            == (
                shift.user,
                shift.source,
            )
        ):
            merged[-1] = Shift(last.user, last.source, last.start, shift.end)
        else:
            merged.append(shift)
    assert merged == shifts(sched, overrides, start, end)


# --- rotations -------------------------------------------------------------------------------


def test_daily_rotation_hands_off_at_the_local_time_each_day() -> None:
    sched = schedule(BERLIN, layer(["ana", "bo", "cy"], Rotation.daily(), datetime(2024, 6, 3, 9)))
    assert timeline(sched, local(BERLIN, 2024, 6, 3, 0), local(BERLIN, 2024, 6, 7, 0)) == [
        ("ana", local(BERLIN, 2024, 6, 3, 9), local(BERLIN, 2024, 6, 4, 9)),
        ("bo", local(BERLIN, 2024, 6, 4, 9), local(BERLIN, 2024, 6, 5, 9)),
        ("cy", local(BERLIN, 2024, 6, 5, 9), local(BERLIN, 2024, 6, 6, 9)),
        ("ana", local(BERLIN, 2024, 6, 6, 9), local(BERLIN, 2024, 6, 7, 0)),
    ]
    assert who(sched, local(BERLIN, 2024, 6, 3, 8, 59)) is None  # before the first handoff
    assert oncall_at(sched, [], local(BERLIN, 2024, 6, 3, 9)) == OnCall(
        "ana", LayerSource(0, "primary")
    )


def test_weekly_rotation_and_a_single_user_make_one_merged_shift() -> None:
    weekly = schedule(NEW_YORK, layer(["ana", "bo"], Rotation.weekly(), datetime(2024, 6, 3, 10)))
    assert who(weekly, local(NEW_YORK, 2024, 6, 10, 9, 59)) == "ana"
    assert who(weekly, local(NEW_YORK, 2024, 6, 10, 10)) == "bo"
    assert who(weekly, local(NEW_YORK, 2024, 6, 17, 10)) == "ana"
    alone = schedule(NEW_YORK, layer(["ana"], Rotation.daily(), datetime(2024, 6, 3, 10)))
    start, end = local(NEW_YORK, 2024, 6, 4), local(NEW_YORK, 2024, 6, 20)
    assert timeline(alone, start, end) == [("ana", start, end)]


def test_every_rotation_takes_turns_of_the_given_length() -> None:
    sched = schedule(
        BERLIN, layer(["ana", "bo"], Rotation.every(timedelta(hours=12)), datetime(2024, 6, 3, 8))
    )
    assert [
        user
        for user, _, _ in timeline(
            sched, local(BERLIN, 2024, 6, 3, 8), local(BERLIN, 2024, 6, 5, 8)
        )
    ] == ["ana", "bo", "ana", "bo"]
    assert who(sched, local(BERLIN, 2024, 6, 3, 19, 59)) == "ana"
    assert who(sched, local(BERLIN, 2024, 6, 3, 20)) == "bo"


def test_rotation_far_from_its_start_keeps_counting() -> None:
    sched = schedule(
        NEW_YORK, layer(["ana", "bo", "cy"], Rotation.daily(), datetime(2020, 1, 1, 9))
    )
    # 2024-06-03 is day 1615 after 2020-01-01: 1615 % 3 == 1 -> bo from 09:00.
    assert who(sched, local(NEW_YORK, 2024, 6, 3, 9)) == "bo"
    assert who(sched, local(NEW_YORK, 2024, 6, 3, 8, 59)) == "ana"


# --- restrictions ----------------------------------------------------------------------------


def test_weekday_business_hours_restriction() -> None:
    hours = Restriction(WEEKDAYS, time(9), time(17))
    sched = schedule(
        BERLIN, layer(["ana", "bo"], Rotation.weekly(), datetime(2024, 6, 3, 0), hours)
    )  # Monday 2024-06-03
    assert who(sched, local(BERLIN, 2024, 6, 3, 8, 59)) is None
    assert who(sched, local(BERLIN, 2024, 6, 3, 9)) == "ana"
    assert who(sched, local(BERLIN, 2024, 6, 3, 16, 59)) == "ana"
    assert who(sched, local(BERLIN, 2024, 6, 3, 17)) is None
    assert who(sched, local(BERLIN, 2024, 6, 8, 12)) is None  # Saturday
    assert timeline(sched, local(BERLIN, 2024, 6, 7, 0), local(BERLIN, 2024, 6, 11, 0)) == [
        ("ana", local(BERLIN, 2024, 6, 7, 9), local(BERLIN, 2024, 6, 7, 17)),
        ("bo", local(BERLIN, 2024, 6, 10, 9), local(BERLIN, 2024, 6, 10, 17)),
    ]


def test_restriction_that_wraps_past_midnight_belongs_to_the_day_it_opens() -> None:
    nights = Restriction(frozenset({Weekday.FRI}), time(22), time(6))
    sched = schedule(NEW_YORK, layer(["ana"], Rotation.daily(), datetime(2024, 6, 1, 0), nights))
    assert timeline(sched, local(NEW_YORK, 2024, 6, 6), local(NEW_YORK, 2024, 6, 10)) == [
        ("ana", local(NEW_YORK, 2024, 6, 7, 22), local(NEW_YORK, 2024, 6, 8, 6)),
    ]
    assert who(sched, local(NEW_YORK, 2024, 6, 8, 5, 59)) == "ana"  # Saturday morning
    assert who(sched, local(NEW_YORK, 2024, 6, 9, 3)) is None  # Sunday: Saturday has none


def test_restriction_from_equal_to_is_a_whole_day_and_overlaps_join() -> None:
    whole_monday = Restriction(frozenset({Weekday.MON}), time(7), time(7))
    evening = Restriction(frozenset({Weekday.MON}), time(20), time(23))
    sched = schedule(
        BERLIN,
        layer(["ana"], Rotation.daily(), datetime(2024, 6, 1, 0), whole_monday, evening),
    )
    assert timeline(sched, local(BERLIN, 2024, 6, 3), local(BERLIN, 2024, 6, 5)) == [
        ("ana", local(BERLIN, 2024, 6, 3, 7), local(BERLIN, 2024, 6, 4, 7)),
    ]


def test_restriction_masks_the_rotation_without_pausing_it() -> None:
    weekdays = Restriction(WEEKDAYS, time(0), time(0))
    sched = schedule(
        BERLIN, layer(["ana", "bo", "cy"], Rotation.daily(), datetime(2024, 6, 3, 0), weekdays)
    )
    # Mon ana, Tue bo, Wed cy, Thu ana, Fri bo, Sat (cy, masked), Sun (ana, masked), Mon bo.
    assert who(sched, local(BERLIN, 2024, 6, 10, 12)) == "bo"


# --- layers and overrides --------------------------------------------------------------------


def test_later_layer_wins_where_it_has_someone_and_gaps_fall_through() -> None:
    base = layer(["ana"], Rotation.weekly(), datetime(2024, 6, 3, 0), name="week")
    day = layer(
        ["bo"],
        Rotation.weekly(),
        datetime(2024, 6, 3, 0),
        Restriction(WEEKDAYS, time(9), time(17)),
        name="business hours",
    )
    sched = schedule(BERLIN, base, day)
    assert oncall_at(sched, [], local(BERLIN, 2024, 6, 3, 10)) == OnCall(
        "bo", LayerSource(1, "business hours")
    )
    assert oncall_at(sched, [], local(BERLIN, 2024, 6, 3, 18)) == OnCall(
        "ana", LayerSource(0, "week")
    )
    assert timeline(sched, local(BERLIN, 2024, 6, 3, 0), local(BERLIN, 2024, 6, 4, 0)) == [
        ("ana", local(BERLIN, 2024, 6, 3, 0), local(BERLIN, 2024, 6, 3, 9)),
        ("bo", local(BERLIN, 2024, 6, 3, 9), local(BERLIN, 2024, 6, 3, 17)),
        ("ana", local(BERLIN, 2024, 6, 3, 17), local(BERLIN, 2024, 6, 4, 0)),
    ]


def test_same_user_from_two_layers_stays_two_shifts() -> None:
    sched = schedule(
        BERLIN,
        layer(["ana"], Rotation.daily(), datetime(2024, 6, 3, 0), name="a"),
        layer(
            ["ana"],
            Rotation.daily(),
            datetime(2024, 6, 3, 0),
            Restriction(EVERY_DAY, time(12), time(13)),
            name="b",
        ),
    )
    found = shifts(sched, [], local(BERLIN, 2024, 6, 3, 11), local(BERLIN, 2024, 6, 3, 14))
    assert [s.source for s in found] == [
        LayerSource(0, "a"),
        LayerSource(1, "b"),
        LayerSource(0, "a"),
    ]


def test_overrides_win_over_every_layer_and_the_newest_wins_among_them() -> None:
    sched = schedule(BERLIN, layer(["ana"], Rotation.daily(), datetime(2024, 6, 3, 0)))
    older = Override("o-1", "bo", local(BERLIN, 2024, 6, 3, 10), local(BERLIN, 2024, 6, 3, 14))
    newer = Override("o-2", "cy", local(BERLIN, 2024, 6, 3, 12), local(BERLIN, 2024, 6, 3, 13))
    assert oncall_at(sched, [older, newer], local(BERLIN, 2024, 6, 3, 12, 30)) == OnCall(
        "cy", OverrideSource("o-2")
    )
    assert timeline(
        sched, local(BERLIN, 2024, 6, 3, 9), local(BERLIN, 2024, 6, 3, 15), [older, newer]
    ) == [
        ("ana", local(BERLIN, 2024, 6, 3, 9), local(BERLIN, 2024, 6, 3, 10)),
        ("bo", local(BERLIN, 2024, 6, 3, 10), local(BERLIN, 2024, 6, 3, 12)),
        ("cy", local(BERLIN, 2024, 6, 3, 12), local(BERLIN, 2024, 6, 3, 13)),
        ("bo", local(BERLIN, 2024, 6, 3, 13), local(BERLIN, 2024, 6, 3, 14)),
        ("ana", local(BERLIN, 2024, 6, 3, 14), local(BERLIN, 2024, 6, 3, 15)),
    ]


def test_override_covers_a_gap_and_nobody_is_a_valid_answer() -> None:
    sched = schedule(
        BERLIN,
        layer(
            ["ana"],
            Rotation.daily(),
            datetime(2024, 6, 3, 0),
            Restriction(WEEKDAYS, time(9), time(17)),
        ),
    )
    cover = Override("o-1", "bo", local(BERLIN, 2024, 6, 8, 10), local(BERLIN, 2024, 6, 8, 11))
    assert who(sched, local(BERLIN, 2024, 6, 8, 10, 30), [cover]) == "bo"
    assert who(sched, local(BERLIN, 2024, 6, 8, 11)) is None
    assert shifts(sched, [], local(BERLIN, 2024, 6, 8, 0), local(BERLIN, 2024, 6, 9, 0)) == []
    assert oncall_at(schedule(BERLIN), [], utc(2024, 6, 3)) is None


# --- DST: America/New_York (2024-03-10 02:00 -> 03:00, 2024-11-03 02:00 -> 01:00) -----------
# --- and Europe/Berlin (2024-03-31 02:00 -> 03:00, 2024-10-27 03:00 -> 02:00) ---------------


@pytest.mark.parametrize(
    ("zone", "spring_day", "autumn_day"),
    [
        (NEW_YORK, date(2024, 3, 10), date(2024, 11, 3)),
        (BERLIN, date(2024, 3, 31), date(2024, 10, 27)),
    ],
)
def test_daily_handoff_stays_at_nine_local_across_both_changes(
    zone: str, spring_day: date, autumn_day: date
) -> None:
    for day, hours in ((spring_day, 23), (autumn_day, 25)):
        first = datetime.combine(day - timedelta(days=1), time(9))
        handoff, noon = datetime.combine(day, time(9)), datetime.combine(day, time(12))
        sched = schedule(zone, layer(["ana", "bo"], Rotation.daily(), first))
        found = timeline(sched, wall_instant(zone, first), wall_instant(zone, noon))
        assert found == [
            ("ana", wall_instant(zone, first), wall_instant(zone, handoff)),
            ("bo", wall_instant(zone, handoff), wall_instant(zone, noon)),
        ]
        assert found[0][2] - found[0][1] == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("zone", "jump"),
    [
        (NEW_YORK, utc(2024, 3, 10, 7)),
        (BERLIN, utc(2024, 3, 31, 1)),
        (NEW_YORK, utc(2024, 11, 3, 6)),
        (BERLIN, utc(2024, 10, 27, 1)),
    ],
)
def test_hourly_rotation_counts_real_hours_across_a_change(zone: str, jump: datetime) -> None:
    first = jump - 3 * HOUR
    wall = first.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    sched = schedule(zone, layer(["ana", "bo", "cy"], Rotation.hourly(), wall))
    found = timeline(sched, first, first + 6 * HOUR)
    assert [user for user, _, _ in found] == ["ana", "bo", "cy", "ana", "bo", "cy"]
    assert all(end - start == HOUR for _, start, end in found)


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (NEW_YORK, date(2024, 3, 10), utc(2024, 3, 10, 7)),  # 02:30 does not exist: 03:00 EDT
        (BERLIN, date(2024, 3, 31), utc(2024, 3, 31, 1)),  # 02:30 does not exist: 03:00 CEST
    ],
)
def test_handoff_in_a_skipped_hour_rolls_forward_to_the_jump(
    zone: str, day: date, expected: datetime
) -> None:
    start = datetime.combine(day - timedelta(days=1), time(2, 30))
    sched = schedule(zone, layer(["ana", "bo"], Rotation.daily(), start))
    assert first_instant(datetime.combine(day, time(2, 30)), ZoneInfo(zone)) == expected
    assert who(sched, expected - timedelta(seconds=1)) == "ana"
    assert who(sched, expected) == "bo"
    # The next day is back to 02:30 local.
    next_day = datetime.combine(day + timedelta(days=1), time(2, 30))
    assert who(sched, wall_instant(zone, next_day)) == "ana"


@pytest.mark.parametrize(
    ("zone", "wall", "first", "second"),
    [
        (NEW_YORK, datetime(2024, 11, 3, 1, 30), utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 6, 30)),
        (BERLIN, datetime(2024, 10, 27, 2, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30)),
    ],
)
def test_handoff_in_a_repeated_hour_is_its_first_occurrence(
    zone: str, wall: datetime, first: datetime, second: datetime
) -> None:
    sched = schedule(zone, layer(["ana", "bo"], Rotation.daily(), wall - timedelta(days=1)))
    assert first_instant(wall, ZoneInfo(zone)) == first
    assert who(sched, first - timedelta(seconds=1)) == "ana"
    assert who(sched, first) == "bo"
    assert who(sched, second) == "bo"  # the clock shows the time again: no second handoff


def test_every_twelve_hours_keeps_eight_and_eight_local_across_a_change() -> None:
    start = datetime(2024, 3, 9, 8)
    sched = schedule(NEW_YORK, layer(["day", "night"], Rotation.every(timedelta(hours=12)), start))
    found = timeline(sched, local(NEW_YORK, 2024, 3, 9, 8), local(NEW_YORK, 2024, 3, 10, 20))
    assert found == [
        ("day", local(NEW_YORK, 2024, 3, 9, 8), local(NEW_YORK, 2024, 3, 9, 20)),
        ("night", local(NEW_YORK, 2024, 3, 9, 20), local(NEW_YORK, 2024, 3, 10, 8)),
        ("day", local(NEW_YORK, 2024, 3, 10, 8), local(NEW_YORK, 2024, 3, 10, 20)),
    ]
    assert found[1][2] - found[1][1] == timedelta(hours=11)


def test_restrictions_across_the_changes_in_new_york() -> None:
    ny = ZoneInfo(NEW_YORK)
    # Spring: 01:00-03:00 lasts one real hour; a window inside the skipped hour is empty.
    spring = schedule(
        NEW_YORK,
        layer(
            ["ana"],
            Rotation.daily(),
            datetime(2024, 3, 1),
            Restriction(EVERY_DAY, time(1), time(3)),
        ),
    )
    assert timeline(spring, utc(2024, 3, 10, 0), utc(2024, 3, 10, 12)) == [
        ("ana", utc(2024, 3, 10, 6), utc(2024, 3, 10, 7)),
    ]
    inside = schedule(
        NEW_YORK,
        layer(
            ["ana"],
            Rotation.daily(),
            datetime(2024, 3, 1),
            Restriction(EVERY_DAY, time(2), time(2, 45)),
        ),
    )
    assert timeline(inside, utc(2024, 3, 10, 0), utc(2024, 3, 10, 12)) == []
    # Autumn: 00:00-02:00 ends at the only 02:00 (EST), three real hours; 02:00-04:00 follows it
    # without overlap or hole.
    autumn = schedule(
        NEW_YORK,
        layer(
            ["ana"],
            Rotation.daily(),
            datetime(2024, 3, 1),
            Restriction(EVERY_DAY, time(0), time(2)),
            name="a",
        ),
        layer(
            ["bo"],
            Rotation.daily(),
            datetime(2024, 3, 1),
            Restriction(EVERY_DAY, time(2), time(4)),
            name="b",
        ),
    )
    found = timeline(autumn, utc(2024, 11, 3, 3), utc(2024, 11, 3, 12))
    assert found == [
        ("ana", datetime(2024, 11, 3, tzinfo=ny).astimezone(UTC), utc(2024, 11, 3, 7)),
        ("bo", utc(2024, 11, 3, 7), utc(2024, 11, 3, 9)),
    ]
    assert found[0][2] - found[0][1] == timedelta(hours=3)


def test_restrictions_across_the_changes_in_berlin() -> None:
    nights = Restriction(EVERY_DAY, time(22), time(6))
    sched = schedule(BERLIN, layer(["ana"], Rotation.daily(), datetime(2024, 3, 1), nights))
    spring = timeline(sched, utc(2024, 3, 30, 12), utc(2024, 3, 31, 12))
    autumn = timeline(sched, utc(2024, 10, 26, 12), utc(2024, 10, 27, 12))
    assert spring == [("ana", local(BERLIN, 2024, 3, 30, 22), local(BERLIN, 2024, 3, 31, 6))]
    assert autumn == [("ana", local(BERLIN, 2024, 10, 26, 22), local(BERLIN, 2024, 10, 27, 6))]
    assert spring[0][2] - spring[0][1] == timedelta(hours=7)
    assert autumn[0][2] - autumn[0][1] == timedelta(hours=9)


# --- inputs the functions refuse ------------------------------------------------------------


def test_shifts_refuses_long_empty_and_naive_ranges() -> None:
    sched = schedule(BERLIN, layer(["ana"], Rotation.hourly(), datetime(2024, 1, 1)))
    start = utc(2024, 1, 1)
    assert len(shifts(sched, [], start, start + MAX_SHIFTS_RANGE)) == 1
    with pytest.raises(ValueError, match="longer than 93 days"):
        shifts(sched, [], start, start + MAX_SHIFTS_RANGE + MINUTE)
    with pytest.raises(ValueError, match="must end after it starts"):
        shifts(sched, [], start, start)
    with pytest.raises(ValueError, match="no time zone"):
        shifts(sched, [], datetime(2024, 1, 1), datetime(2024, 1, 2))
    with pytest.raises(ValueError, match="no time zone"):
        oncall_at(sched, [], datetime(2024, 1, 1))


def test_a_quarter_of_hourly_turns_with_restrictions_is_computed_whole() -> None:
    busy = layer(
        ["ana", "bo", "cy"],
        Rotation.hourly(),
        datetime(2024, 1, 1),
        Restriction(WEEKDAYS, time(9), time(17)),
        Restriction(frozenset({Weekday.SAT}), time(22), time(6)),
    )
    sched = schedule(NEW_YORK, layer(["di"], Rotation.weekly(), datetime(2024, 1, 1)), busy)
    found = shifts(sched, [], utc(2024, 2, 1), utc(2024, 2, 1) + MAX_SHIFTS_RANGE)
    assert found[0].start == utc(2024, 2, 1)
    assert found[-1].end == utc(2024, 2, 1) + MAX_SHIFTS_RANGE
    assert all(a.end == b.start for a, b in itertools.pairwise(found))


def test_model_refuses_what_cannot_be_meant() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Berln'"):
        Schedule("s", "S", "Europe/Berln", ())
    with pytest.raises(ValueError, match="at least one user"):
        Layer("l", (), Rotation.daily(), datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="without an offset"):
        Layer("l", ("a",), Rotation.daily(), utc(2024, 1, 1))
    with pytest.raises(ValueError, match="too short"):
        Rotation.every(timedelta(minutes=90))
    with pytest.raises(ValueError, match="end after it starts"):
        Override("o", "a", utc(2024, 1, 2), utc(2024, 1, 1))
    with pytest.raises(ValueError, match="no time zone"):
        Override("o", "a", datetime(2024, 1, 1), datetime(2024, 1, 2))
    with pytest.raises(ValueError, match="at least one day"):
        Restriction(frozenset(), time(9), time(17))
    with pytest.raises(ValueError, match="must be weekdays"):
        Restriction(frozenset({7}), time(9), time(17))  # type: ignore[arg-type]
    assert Restriction(frozenset({0}), time(9), time(17)).days == {Weekday.MON}  # type: ignore[arg-type]


def test_override_times_are_kept_in_utc() -> None:
    berlin = ZoneInfo(BERLIN)
    override = Override(
        "o", "a", datetime(2024, 6, 3, 10, tzinfo=berlin), datetime(2024, 6, 3, 12, tzinfo=berlin)
    )
    assert override.start == utc(2024, 6, 3, 8)
    assert override.start.tzinfo is UTC
