"""Configuration durations: `30s`, `5m`, `1h30m`, `2d`."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tocsin.runtime.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("500ms", timedelta(milliseconds=500)),
        ("1s500ms", timedelta(seconds=1, milliseconds=500)),
        ("0s", timedelta(0)),
        ("90s", timedelta(seconds=90)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_parse_valid_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["5", "m", "5 minutes", "1.5h", "-5m", "5M", "1h 30m", "5m3", "abc", "5mm", "s5"],
)
def test_bad_duration_raises_value_error_naming_the_input(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_duration_raises_value_error_with_example(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape("duration is empty; write e.g. '30s'")):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1000000000d", "99999999999999999999999s"])
def test_out_of_range_duration_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=1, minutes=30), "90m"),
        (timedelta(hours=2), "2h"),
        (timedelta(days=2), "48h"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.integers(min_value=0, max_value=10 * 365 * 86400))
def test_whole_second_durations_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_sub_second_durations_round_trip() -> None:
    value = parse_duration("1500ms")
    assert parse_duration(format_duration(value)) == value
