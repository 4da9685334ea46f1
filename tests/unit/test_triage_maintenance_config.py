"""`maintenance_windows:` in the configuration file: the keys, and the problems it reports at
the exact key."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tocsin.composition.config import ConfigError, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tocsin.yaml"


def _document(*windows: dict[str, Any]) -> dict[str, Any]:
    loaded = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    document = copy.deepcopy(loaded)
    document["maintenance_windows"] = list(windows)
    return document


def _problems(document: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, "test.yaml")
    return caught.value.problems


WEEKLY = {
    "id": "sunday-db",
    "services": ["checkout"],
    "starts_at": "2026-01-04T02:00:00",
    "duration": "2h",
    "rrule": "FREQ=WEEKLY;BYDAY=SU",
    "timezone": "Europe/Berlin",
    "comment": "database patching",
}


def test_recurring_window_reaches_triage_in_its_time_zone() -> None:
    config = parse_config(_document(WEEKLY), "test.yaml")
    (window,) = config.triage().windows
    assert window.id == "sunday-db"
    assert window.services == ("checkout",)
    assert window.duration == timedelta(hours=2)
    # A naive starts_at is read in the window's time zone: 02:00 CET is 01:00 UTC.
    assert window.starts_at.astimezone(UTC) == datetime(2026, 1, 4, 1, tzinfo=UTC)
    summer = window.occurrence_at(datetime(2026, 7, 5, 0, 30, tzinfo=UTC))  # 02:30 CEST
    assert summer is not None


def test_one_off_window_with_ends_at() -> None:
    one_off = {
        "id": "migration",
        "services": ["checkout"],
        "starts_at": "2026-05-01T10:00:00Z",
        "ends_at": "2026-05-01T12:30:00Z",
    }
    (window,) = parse_config(_document(one_off), "test.yaml").triage().windows
    assert window.duration == timedelta(hours=2, minutes=30)
    assert window.rrule is None
    assert window.last_end() == datetime(2026, 5, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"ends_at": "2026-01-04T03:00:00"},
            "maintenance_windows[0].ends_at: set exactly one of ends_at and duration",
        ),
        ({"duration": None}, "maintenance_windows[0].ends_at: set exactly one of"),
        ({"timezone": "Europe/Nowhere"}, "maintenance_windows[0].timezone: unknown time zone"),
        ({"rrule": "FREQ=SECONDLY"}, "maintenance_windows[0].rrule: FREQ must be one of"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "maintenance_windows[0].rrule: "),
        ({"services": ["nope"]}, "maintenance_windows[0].services[0]: unknown service 'nope'"),
        ({"services": []}, "maintenance_windows[0].services"),
        ({"duration": "-1h"}, "maintenance_windows[0].duration"),
        ({"colour": "red"}, "maintenance_windows[0].colour: unknown key"),
    ],
)
def test_bad_windows_are_reported_at_their_key(changes: dict[str, Any], problem: str) -> None:
    entry = {key: value for key, value in (WEEKLY | changes).items() if value is not None}
    problems = _problems(_document(entry))
    assert any(p.startswith(problem) for p in problems), problems


def test_duplicate_window_ids_are_reported() -> None:
    problems = _problems(_document(WEEKLY, WEEKLY))
    assert problems == [
        "maintenance_windows[1].id: duplicate id 'sunday-db' (also maintenance_windows[0])"
    ]
