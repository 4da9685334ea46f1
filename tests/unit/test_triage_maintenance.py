"""Maintenance windows (services/triage/domain/maintenance.py): one-off and recurring windows,
wall-clock recurrence across daylight-saving changes, and which window holds a service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import WEEKLY, rrule
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.triage.domain.maintenance import (
    MaintenanceError,
    MaintenanceWindow,
    Occurrence,
    in_maintenance,
    scheduled,
    validate,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def window(
    window_id: str = "w",
    *,
    services: tuple[str, ...] = ("checkout",),
    starts_at: datetime = datetime(2026, 1, 4, 2, 30, tzinfo=BERLIN),
    duration: timedelta = timedelta(hours=1),
    rrule_text: str | None = None,
    timezone: str = "UTC",
) -> MaintenanceWindow:
    return MaintenanceWindow(window_id, services, starts_at, duration, rrule_text, timezone)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- one-off ---------------------------------------------------------------------------------


def test_one_off_window_covers_its_half_open_range() -> None:
    w = window(starts_at=utc(2026, 5, 1, 10), duration=timedelta(hours=2))
    assert w.occurrence_at(utc(2026, 5, 1, 9, 59)) is None
    assert w.occurrence_at(utc(2026, 5, 1, 10)) == Occurrence(
        "w", utc(2026, 5, 1, 10), utc(2026, 5, 1, 12)
    )
    assert w.occurrence_at(utc(2026, 5, 1, 11, 59)) is not None
    assert w.occurrence_at(utc(2026, 5, 1, 12)) is None
    assert w.last_end() == utc(2026, 5, 1, 12)


def test_in_maintenance_only_for_the_windows_services() -> None:
    w = window(services=("checkout", "payments"), starts_at=utc(2026, 5, 1, 10))
    at = utc(2026, 5, 1, 10, 30)
    assert in_maintenance([w], "checkout", at) is not None
    assert in_maintenance([w], "payments", at) is not None
    assert in_maintenance([w], "search", at) is None
    assert in_maintenance([], "checkout", at) is None


def test_in_maintenance_names_the_window_ending_last() -> None:
    short = window("short", starts_at=utc(2026, 5, 1, 10), duration=timedelta(hours=1))
    long = window("long", starts_at=utc(2026, 5, 1, 9), duration=timedelta(hours=5))
    found = in_maintenance([short, long], "checkout", utc(2026, 5, 1, 10, 30))
    assert found is not None
    assert found.window_id == "long"


# -- recurring, with a time zone -------------------------------------------------------------


def test_weekly_window_keeps_its_wall_clock_time_across_daylight_saving() -> None:
    # Sundays 02:30-03:30 Europe/Berlin: CET is UTC+1, CEST UTC+2.
    w = window(rrule_text="FREQ=WEEKLY;BYDAY=SU", timezone="Europe/Berlin")
    starts = [o.start for o in w.occurrences(utc(2026, 3, 21), utc(2026, 4, 6))]
    assert starts == [
        utc(2026, 3, 22, 1, 30),  # 02:30 CET
        # 29 March: clocks jump 02:00 -> 03:00, 02:30 does not exist: moved forward (03:30 CEST)
        utc(2026, 3, 29, 1, 30),
        utc(2026, 4, 5, 0, 30),  # 02:30 CEST
    ]
    autumn = [o.start for o in w.occurrences(utc(2026, 10, 24), utc(2026, 11, 2))]
    # 25 October: 02:30 happens twice; the first (CEST) counts.
    assert autumn == [utc(2026, 10, 25, 0, 30), utc(2026, 11, 1, 1, 30)]


def test_a_window_in_force_in_summer_and_not_an_hour_later_in_utc_terms() -> None:
    w = window(rrule_text="FREQ=WEEKLY;BYDAY=SU", timezone="Europe/Berlin")
    summer_local = datetime(2026, 7, 5, 2, 45, tzinfo=BERLIN)
    assert in_maintenance([w], "checkout", summer_local) is not None
    # 02:45 UTC is 04:45 in Berlin: outside.
    assert in_maintenance([w], "checkout", utc(2026, 7, 5, 2, 45)) is None


def test_rule_with_count_ends_and_says_when() -> None:
    w = window(
        starts_at=datetime(2026, 1, 1, 22, tzinfo=NEW_YORK),
        duration=timedelta(hours=4),
        rrule_text="RRULE:FREQ=DAILY;COUNT=3",
        timezone="America/New_York",
    )
    assert w.last_end() == datetime(2026, 1, 4, 2, tzinfo=NEW_YORK)
    # The last occurrence crosses midnight; after it nothing.
    assert w.occurrence_at(datetime(2026, 1, 4, 1, 59, tzinfo=NEW_YORK)) is not None
    assert w.occurrence_at(datetime(2026, 1, 4, 22, 30, tzinfo=NEW_YORK)) is None


def test_rule_without_end_repeats_forever() -> None:
    w = window(rrule_text="FREQ=MONTHLY;BYMONTHDAY=1", timezone="Europe/Berlin")
    assert w.last_end() is None
    assert in_maintenance([w], "checkout", datetime(2036, 6, 1, 3, tzinfo=BERLIN)) is not None


def test_overlapping_occurrences_longer_than_the_interval() -> None:
    # Every hour for 90 minutes: always in force after the first start.
    w = window(starts_at=utc(2026, 5, 1), duration=timedelta(minutes=90), rrule_text="FREQ=HOURLY")
    assert all(w.occurrence_at(utc(2026, 5, 1) + timedelta(minutes=m)) for m in range(0, 600, 7))


def test_scheduled_lists_occurrences_overlapping_the_range_in_order() -> None:
    weekly = window("weekly", rrule_text="FREQ=WEEKLY;BYDAY=SU", timezone="Europe/Berlin")
    once = window("once", starts_at=utc(2026, 3, 25, 12), duration=timedelta(hours=2))
    other = window("other", services=("search",), starts_at=utc(2026, 3, 25, 12))
    found = scheduled([weekly, once, other], "checkout", utc(2026, 3, 22, 2), utc(2026, 3, 30))
    assert [(o.window_id, o.start) for o in found] == [
        ("weekly", utc(2026, 3, 22, 1, 30)),  # still running at the range's start
        ("once", utc(2026, 3, 25, 12)),
        ("weekly", utc(2026, 3, 29, 1, 30)),
    ]


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"services": ()}, "services: name at least one service"),
        ({"duration": timedelta(0)}, "ends_at must be after starts_at"),
        ({"duration": timedelta(days=400)}, "duration: at most 366 days"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"starts_at": datetime(2026, 1, 1)}, "starts_at: needs a time zone"),
        ({"rrule_text": "FREQ=MINUTELY"}, "FREQ must be one of"),
        ({"rrule_text": "BYDAY=SU"}, "FREQ must be one of"),
        ({"rrule_text": "FREQ=WEEKLY;BYDAY=XX"}, "rrule:"),
        ({"rrule_text": "DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY"}, "without DTSTART"),
        ({"rrule_text": "FREQ=DAILY;UNTIL=20260101T000000"}, "UNTIL"),
        ({"rrule_text": "FREQ=DAILY;UNTIL=20200101T000000Z"}, "no occurrence"),
    ],
)
def test_invalid_windows_say_what_is_wrong(changes: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"rrule_text": None} | changes
    with pytest.raises(MaintenanceError, match=message.replace("(", r"\(")):
        validate(window(**args))  # type: ignore[arg-type]


# -- properties ------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]


@settings(max_examples=60, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    day=st.integers(min_value=0, max_value=365),
    minute=st.integers(min_value=0, max_value=24 * 60 - 1),
    hours=st.integers(min_value=1, max_value=6),
    probe_days=st.integers(min_value=0, max_value=700),
    probe_minute=st.integers(min_value=0, max_value=24 * 60 - 1),
)
# Sundays 02:30 Berlin from 3 May 2026, probed around 28 March 2027 (02:30 does not exist).
@example(zone_name="Europe/Berlin", day=122, minute=150, hours=1, probe_days=451, probe_minute=0)
def test_weekly_window_matches_a_brute_force_walk_in_local_time(
    zone_name: str, day: int, minute: int, hours: int, probe_days: int, probe_minute: int
) -> None:
    """A weekly window is in force at `at` exactly when a start of dateutil's own expansion
    (local wall-clock starts as instants) is at most `at` and less than `hours` before it."""
    tz = ZoneInfo(zone_name)
    first = datetime(2026, 1, 1, tzinfo=tz) + timedelta(days=day, minutes=minute)
    first = first.replace(tzinfo=tz)  # wall-clock arithmetic: the same local time
    w = window(
        starts_at=first,
        duration=timedelta(hours=hours),
        rrule_text="FREQ=WEEKLY",
        timezone=zone_name,
    )
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=probe_days, minutes=probe_minute)
    local_first = first.astimezone(tz)
    starts = [
        s.astimezone(UTC)
        for s in rrule(WEEKLY, dtstart=local_first, until=local_first + timedelta(days=800))
    ]
    expected = any(s <= at < s + timedelta(hours=hours) for s in starts)
    assert (w.occurrence_at(at) is not None) == expected
    # And every start keeps the first one's wall-clock time, unless that time does not exist
    # that day (a daylight-saving gap): then it is the hour after.
    for o in w.occurrences(at - timedelta(days=60), at + timedelta(days=60)):
        wall = o.start.astimezone(tz).replace(tzinfo=None)
        wanted = datetime.combine(wall.date(), local_first.time())
        if wall != wanted:
            assert wall - wanted == timedelta(hours=1)
            round_trip = wanted.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
            assert round_trip.replace(tzinfo=None) != wanted  # `wanted` does not exist


@settings(max_examples=60, deadline=None)
@given(
    minutes=st.lists(st.integers(min_value=0, max_value=60 * 24 * 60), min_size=1, max_size=30),
    length=st.integers(min_value=1, max_value=60 * 24 * 3),
)
def test_occurrences_in_a_range_agree_with_occurrence_at(minutes: list[int], length: int) -> None:
    w = window(
        starts_at=datetime(2026, 2, 1, 1, 15, tzinfo=BERLIN),
        duration=timedelta(minutes=length),
        rrule_text="FREQ=DAILY;INTERVAL=2",
        timezone="Europe/Berlin",
    )
    base = utc(2026, 2, 1)
    listed = w.occurrences(base, base + timedelta(days=61))
    for m in minutes:
        at = base + timedelta(minutes=m)
        in_listed = any(o.covers(at) for o in listed)
        assert (w.occurrence_at(at) is not None) == in_listed
