"""A person's on-call shifts as an iCalendar feed, read back with the icalendar parser."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar

from services.escalation.domain.ical import CalendarEntry, render_calendar
from services.escalation.domain.schedules import (
    Layer,
    OverrideSource,
    Rotation,
    Schedule,
    Shift,
    shifts,
)

BERLIN = "Europe/Berlin"


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def berlin(month: int, day: int, hour: int) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=ZoneInfo(BERLIN)).astimezone(UTC)


def test_ical_feed_has_the_users_shifts_only_with_stable_uids() -> None:
    primary = Layer("primary", ("ana", "bo"), Rotation.daily(), datetime(2024, 6, 3, 9))
    sched = Schedule(id="checkout", name="Checkout", time_zone=BERLIN, layers=(primary,))
    timeline_ = shifts(sched, [], berlin(6, 3, 9), berlin(6, 7, 9))
    entries = [CalendarEntry(sched.id, sched.name, shift) for shift in timeline_]
    feed = render_calendar("ana", entries, generated_at=utc(2024, 6, 1, 12))
    again = render_calendar("ana", reversed(entries), generated_at=utc(2024, 6, 1, 13))

    assert feed.startswith(b"BEGIN:VCALENDAR\r\n")
    assert feed.endswith(b"END:VCALENDAR\r\n")
    calendar = Calendar.from_ical(feed)
    events = calendar.walk("VEVENT")
    assert [(e.decoded("dtstart"), e.decoded("dtend")) for e in events] == [
        (berlin(6, 3, 9), berlin(6, 4, 9)),
        (berlin(6, 5, 9), berlin(6, 6, 9)),
    ]
    assert all(str(e["summary"]) == "On call: Checkout" for e in events)
    assert "layer 'primary'" in str(events[0]["description"])
    assert events[0].decoded("dtstamp") == utc(2024, 6, 1, 12)
    assert str(calendar["x-wr-calname"]) == "On call: ana"
    uids = [str(e["uid"]) for e in events]
    assert len(set(uids)) == 2
    assert uids == [str(e["uid"]) for e in Calendar.from_ical(again).walk("VEVENT")]
    assert b"bo" not in feed


def test_ical_feed_names_an_override_and_may_be_empty() -> None:
    shift = Shift("ana", OverrideSource("o-7"), utc(2024, 6, 3, 10), utc(2024, 6, 3, 12))
    feed = render_calendar(
        "ana", [CalendarEntry("db", "Databases", shift)], generated_at=utc(2024, 6, 1)
    )
    (event,) = Calendar.from_ical(feed).walk("VEVENT")
    assert "override o-7" in str(event["description"])
    empty = Calendar.from_ical(render_calendar("cy", [], generated_at=utc(2024, 6, 1)))
    assert empty.walk("VEVENT") == []
