"""Schedule rules as written in tocsin.yaml: rotations, restrictions, starts and zones."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from services.escalation.domain.schedule_parsing import (
    parse_local_start,
    parse_restriction,
    parse_rotation,
    parse_time_of_day,
    parse_time_zone,
    parse_weekday,
)
from services.escalation.domain.schedules import Restriction, Rotation, Weekday

EVERY_DAY = frozenset(Weekday)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hourly", Rotation.hourly()),
        ("daily", Rotation.daily()),
        ("Weekly", Rotation.weekly()),
        ({"every": "12h"}, Rotation.every(timedelta(hours=12))),
        ({"every": "2d"}, Rotation.every(timedelta(days=2))),
        ({"every": timedelta(hours=8)}, Rotation.every(timedelta(hours=8))),
    ],
)
def test_parse_rotation(value: object, expected: Rotation) -> None:
    assert parse_rotation(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("monthly", "rotation 'monthly' is not known; write hourly, daily, weekly or {every: 12h}"),
        ({"every": "12h", "at": "9"}, "is not known"),
        ({"every": 12}, "is not a duration"),
        ({"every": "twelve"}, "'twelve' is not a duration"),
        ({"every": "1h"}, "too short"),
        (7, "rotation 7 is not known"),
    ],
)
def test_parse_rotation_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_rotation(value)


def test_parse_restriction_and_its_parts() -> None:
    assert parse_restriction({"days": ["mon", "Friday"], "from": "09:00", "to": "17:30"}) == (
        Restriction(frozenset({Weekday.MON, Weekday.FRI}), time(9), time(17, 30))
    )
    assert parse_restriction({"from": "22:00", "to": "6:00"}).days == EVERY_DAY
    assert parse_time_of_day("24:00") == time(0)
    assert parse_weekday(" SUN ") is Weekday.SUN


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"days": ["mon"], "from": "9", "to": "17:00"}, "'9' is not HH:MM"),
        ({"days": ["mon"], "from": "09:00", "to": "25:00"}, "out of range"),
        ({"days": ["mon"], "from": 1020, "to": "17:00"}, 'quote it, e.g. "17:00"'),
        ({"days": ["mo"], "from": "09:00", "to": "17:00"}, "day 'mo' is not known"),
        ({"days": "mon", "from": "09:00", "to": "17:00"}, "is not a list"),
        ({"days": [], "from": "09:00", "to": "17:00"}, "leave it out"),
        ({"days": ["mon"], "to": "17:00"}, "needs from"),
        ({"days": ["mon"], "from": "09:00", "to": "17:00", "tz": "UTC"}, "unknown keys"),
        ("09:00-17:00", "is not a mapping"),
    ],
)
def test_parse_restriction_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_restriction(value)


def test_parse_local_start_and_time_zone() -> None:
    assert parse_local_start("2024-03-04T09:00") == datetime(2024, 3, 4, 9)
    assert parse_local_start(date(2024, 3, 4)) == datetime(2024, 3, 4)
    assert parse_time_zone("America/New_York") == "America/New_York"
    with pytest.raises(ValueError, match="has an offset"):
        parse_local_start("2024-03-04T09:00+01:00")
    with pytest.raises(ValueError, match="not a date and time"):
        parse_local_start("next monday")
    with pytest.raises(ValueError, match="whole minute"):
        parse_local_start("2024-03-04T09:00:30")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_time_zone("Mars/Olympus")
