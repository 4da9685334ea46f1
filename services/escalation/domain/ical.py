"""A person's on-call shifts as an iCalendar feed (RFC 5545), for calendar subscriptions.

Pure: the caller computes the shifts (`schedules.shifts`) for the schedules and range it wants
to publish and passes the time of rendering. Only the named user's shifts are rendered, whatever
else is passed, so a feed can never show someone else's shifts. Every event is in UTC; a calendar
client shows it in its own zone. A shift's UID depends on the schedule, the user and the start,
so a refreshed feed updates an event whose end moved instead of duplicating it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from icalendar import Calendar, Event, vDuration

from .schedules import LayerSource, Shift, as_utc

PRODUCT_ID = "-//Tocsin//On-call schedules//EN"
# How often a subscribed client should fetch the feed again (RFC 7986 REFRESH-INTERVAL).
REFRESH_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class CalendarEntry:
    schedule_id: str
    schedule_name: str
    shift: Shift


def render_calendar(
    user: str,
    entries: Iterable[CalendarEntry],
    *,
    generated_at: datetime,
    calendar_name: str | None = None,
) -> bytes:
    """The feed for `user`: one VEVENT per shift of theirs in `entries`, sorted by start."""
    stamp = as_utc(generated_at, "generated_at")
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", calendar_name or f"On call: {user}")
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH_INTERVAL))
    own = sorted(
        (entry for entry in entries if entry.shift.user == user),
        key=lambda entry: (entry.shift.start, entry.schedule_id),
    )
    for entry in own:
        shift = entry.shift
        event = Event()
        event.add("uid", _uid(entry.schedule_id, user, shift.start))
        event.add("dtstamp", stamp)
        event.add("dtstart", as_utc(shift.start))
        event.add("dtend", as_utc(shift.end))
        event.add("summary", f"On call: {entry.schedule_name}")
        event.add("description", _description(entry))
        event.add("categories", ["on-call"])
        event.add("transp", "OPAQUE")
        calendar.add_component(event)
    feed: bytes = calendar.to_ical()
    return feed


def _uid(schedule_id: str, user: str, start: datetime) -> str:
    key = f"{schedule_id}\x00{user}\x00{as_utc(start).isoformat()}".encode()
    return f"{hashlib.sha256(key).hexdigest()[:32]}@tocsin"


def _description(entry: CalendarEntry) -> str:
    source = entry.shift.source
    if isinstance(source, LayerSource):
        why = f"layer {source.name!r}"
    else:
        why = f"override {source.override_id}"
    return f"On call for schedule {entry.schedule_name} ({entry.schedule_id}), from {why}."
