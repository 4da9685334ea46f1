"""Reading schedule rules as people write them in `tocsin.yaml`.

Each function takes the value as YAML produced it and returns the domain value, or raises
ValueError with a message that names what was written and shows how to write it. The config
model calls these from its validators and adds the key path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

from tocsin.runtime.durations import parse_duration

from .schedules import Restriction, Rotation, Weekday, load_zone

_ROTATION_HINT = "write hourly, daily, weekly or {every: 12h}"
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})")
_WEEKDAYS = {day.name.lower(): day for day in Weekday}
_WEEKDAYS.update(
    {
        "monday": Weekday.MON,
        "tuesday": Weekday.TUE,
        "wednesday": Weekday.WED,
        "thursday": Weekday.THU,
        "friday": Weekday.FRI,
        "saturday": Weekday.SAT,
        "sunday": Weekday.SUN,
    }
)


def parse_rotation(value: object) -> Rotation:
    """`hourly`, `daily`, `weekly` or `{every: <duration>}` (e.g. `{every: 12h}`)."""
    if isinstance(value, str):
        named = {"hourly": Rotation.hourly, "daily": Rotation.daily, "weekly": Rotation.weekly}
        make = named.get(value.strip().lower())
        if make is None:
            raise ValueError(f"rotation {value!r} is not known; {_ROTATION_HINT}")
        return make()
    if isinstance(value, Mapping):
        if set(value) != {"every"}:
            raise ValueError(f"rotation {dict(value)!r} is not known; {_ROTATION_HINT}")
        period = value["every"]
        if isinstance(period, timedelta):
            return Rotation.every(period)
        if not isinstance(period, str):
            raise ValueError(f"rotation every {period!r} is not a duration; write e.g. 12h or 2d")
        return Rotation.every(parse_duration(period))
    raise ValueError(f"rotation {value!r} is not known; {_ROTATION_HINT}")


def parse_time_of_day(value: object) -> time:
    """`"HH:MM"` on a 24-hour clock; `"24:00"` is accepted as the end of the day (00:00)."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020.
        raise ValueError(f'time of day {value!r} is a number; quote it, e.g. "17:00"')
    if not isinstance(value, str):
        raise ValueError(f'time of day {value!r} is not a time; write e.g. "09:00"')
    match = _TIME_OF_DAY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f'time of day {value!r} is not HH:MM; write e.g. "09:00"')
    hour, minute = int(match.group(1)), int(match.group(2))
    if (hour, minute) == (24, 0):
        return time(0, 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"time of day {value!r} is out of range; 00:00 to 23:59")
    return time(hour, minute)


def parse_weekday(value: object) -> Weekday:
    """`mon`..`sun` (full names and any case accepted)."""
    if isinstance(value, str) and value.strip().lower() in _WEEKDAYS:
        return _WEEKDAYS[value.strip().lower()]
    raise ValueError(f"day {value!r} is not known; write mon, tue, wed, thu, fri, sat or sun")


def parse_restriction(value: object) -> Restriction:
    """`{days: [mon, ...], from: "HH:MM", to: "HH:MM"}`; without `days`, every day.

    `to` at or before `from` wraps past midnight (22:00 to 06:00 is overnight); `to` equal to
    `from` is the whole day.
    """
    if not isinstance(value, Mapping):
        raise ValueError(
            f"restriction {value!r} is not a mapping; write"
            ' {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00"}'
        )
    unknown = set(value) - {"days", "from", "to"}
    if unknown:
        raise ValueError(
            f"restriction has unknown keys {sorted(map(str, unknown))}; use days, from and to"
        )
    missing = [key for key in ("from", "to") if key not in value]
    if missing:
        raise ValueError(f'restriction needs {" and ".join(missing)} (e.g. from: "09:00")')
    days_value = value.get("days", list(Weekday))
    if isinstance(days_value, str) or not isinstance(days_value, list | tuple):
        raise ValueError(f"restriction days {days_value!r} is not a list; write e.g. [mon, fri]")
    if not days_value:
        raise ValueError("restriction days is empty; leave it out to mean every day")
    return Restriction(
        days=frozenset(
            day if isinstance(day, Weekday) else parse_weekday(day) for day in days_value
        ),
        start=parse_time_of_day(value["from"]),
        end=parse_time_of_day(value["to"]),
    )


def parse_local_start(value: object) -> datetime:
    """A layer's first handoff: `2024-03-04T09:00` (local, no offset); a date means midnight."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(0, 0))
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"start {value!r} is not a date and time; write e.g. 2024-03-04T09:00"
            ) from None
    else:
        raise ValueError(f"start {value!r} is not a date and time; write e.g. 2024-03-04T09:00")
    if parsed.tzinfo is not None:
        raise ValueError(
            f"start {value!r} has an offset; write it as a local time in the schedule's"
            " time_zone, e.g. 2024-03-04T09:00"
        )
    if parsed.second or parsed.microsecond:
        raise ValueError(f"start {value!r} must be a whole minute")
    return parsed


def parse_time_zone(value: object) -> str:
    """An IANA zone name such as `Europe/Berlin`; returned unchanged once known to exist."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"time_zone {value!r} is not a zone name; write e.g. Europe/Berlin")
    load_zone(value)
    return value
