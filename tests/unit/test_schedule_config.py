"""`schedules:` in the configuration file and `{schedule: ...}` targets: what loads, and each
problem reported at the exact key in the words of the person editing the file."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
import yaml

from services.escalation.domain.schedules import Rotation, Weekday
from services.escalation.domain.targets import ScheduleTarget, UserTarget
from tocsin.composition.config import ConfigError, parse_config

DOCUMENT = """
services:
  - {id: checkout, name: Checkout, tier: 0, escalation_policy: checkout-oncall}
users:
  - {id: alice, name: Alice}
  - {id: bob, name: Bob}
  - {id: carol, name: Carol}
schedules:
  - id: checkout-primary
    name: Checkout primary
    time_zone: Europe/Berlin
    layers:
      - name: weekly
        users: [alice, bob]
        rotation: weekly
        start: 2026-11-02T09:00
      - users: [carol]
        rotation: {every: 12h}
        start: 2026-11-02T08:00
        restrictions:
          - {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00"}
escalation_policies:
  - id: checkout-oncall
    levels:
      - targets: [{schedule: checkout-primary}, {user: alice}]
      - delay: 5m
        targets: [{user: bob}]
"""


def document() -> dict[str, Any]:
    loaded = yaml.safe_load(DOCUMENT)
    assert isinstance(loaded, dict)
    return loaded


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, "test.yaml")
    return caught.value.problems


def test_a_schedule_loads_into_the_domain_with_its_layers() -> None:
    escalation = parse_config(document()).escalation()
    schedule = escalation.schedule("checkout-primary")
    assert schedule is not None
    assert schedule.time_zone == "Europe/Berlin"
    weekly, second = schedule.layers
    assert (weekly.name, weekly.users, weekly.rotation) == (
        "weekly",
        ("alice", "bob"),
        Rotation.weekly(),
    )
    assert weekly.start == datetime(2026, 11, 2, 9, 0)
    assert second.name == "layer 2"  # unnamed layers are numbered
    assert second.rotation == Rotation.every(timedelta(hours=12))
    (restriction,) = second.restrictions
    assert restriction.days == frozenset(
        {Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI}
    )
    assert (restriction.start, restriction.end) == (time(9, 0), time(17, 0))
    assert escalation.schedule("nope") is None


def test_a_level_may_mix_schedule_and_user_targets() -> None:
    policy = parse_config(document()).escalation().policy_for("checkout")
    assert policy is not None
    assert [t.target() for t in policy.levels[0].targets] == [
        ScheduleTarget("checkout-primary"),
        UserTarget("alice"),
    ]


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (
            {},
            "escalation_policies[0].levels[0].targets[0]: give exactly one of user or schedule, "
            "e.g. {user: alice} or {schedule: checkout-primary}",
        ),
        (
            {"user": "alice", "schedule": "checkout-primary"},
            "escalation_policies[0].levels[0].targets[0]: give exactly one of user or schedule, "
            "e.g. {user: alice} or {schedule: checkout-primary}",
        ),
        (
            {"schedule": "nope"},
            "escalation_policies[0].levels[0].targets[0].schedule: unknown schedule 'nope' "
            "(defined: checkout-primary)",
        ),
        (
            {"user": "dave"},
            "escalation_policies[0].levels[0].targets[0].user: unknown user 'dave' "
            "(defined: alice, bob, carol)",
        ),
    ],
)
def test_a_bad_target_names_its_key(target: dict[str, str], problem: str) -> None:
    doc = document()
    doc["escalation_policies"][0]["levels"][0]["targets"][0] = target
    assert problems(doc) == [problem]


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (
            ("time_zone",),
            "Mars/Olympus",
            "schedules[0].time_zone: unknown time zone 'Mars/Olympus'; use an IANA name such "
            "as 'Europe/Berlin'",
        ),
        (
            ("layers", 0, "rotation"),
            "fortnightly",
            "schedules[0].layers[0].rotation: rotation 'fortnightly' is not known; write "
            "hourly, daily, weekly or {every: 12h}",
        ),
        (
            ("layers", 0, "rotation"),
            {"every": "30m"},
            "schedules[0].layers[0].rotation: rotation every 0:30:00 is too short: turns of "
            "2:00:00 or more only (for one-hour turns write 'hourly')",
        ),
        (
            ("layers", 0, "start"),
            "2026-11-02T09:00+01:00",
            "schedules[0].layers[0].start: start '2026-11-02T09:00+01:00' has an offset; write "
            "it as a local time in the schedule's time_zone, e.g. 2024-03-04T09:00",
        ),
        (
            ("layers", 1, "restrictions", 0),
            # YAML reads an unquoted 17:00 as the number 1020.
            {"days": ["mon"], "from": "09:00", "to": 1020},
            "schedules[0].layers[1].restrictions[0]: time of day 1020 is a number; quote it, "
            'e.g. "17:00"',
        ),
        (
            ("layers", 1, "restrictions", 0),
            {"days": ["someday"], "from": "09:00", "to": "17:00"},
            "schedules[0].layers[1].restrictions[0]: day 'someday' is not known; write mon, "
            "tue, wed, thu, fri, sat or sun",
        ),
        (("layers", 0, "users"), [], "schedules[0].layers[0].users: needs at least one user"),
        (("layers",), [], "schedules[0].layers: needs at least one layer"),
        (
            ("layers", 0, "users", 1),
            "dave",
            "schedules[0].layers[0].users[1]: unknown user 'dave' (defined: alice, bob, carol)",
        ),
        (
            ("layers", 0, "shift"),
            "x",
            "schedules[0].layers[0].shift: unknown key (known keys here: name, users, "
            "rotation, start, restrictions)",
        ),
    ],
)
def test_a_bad_schedule_names_its_key(
    path: tuple[str | int, ...], value: object, problem: str
) -> None:
    doc = document()
    where: Any = doc["schedules"][0]
    for part in path[:-1]:
        where = where[part]
    where[path[-1]] = value
    assert problems(doc) == [problem]


def test_the_unquoted_yaml_time_gets_the_quote_it_hint() -> None:
    text = DOCUMENT.replace('to: "17:00"', "to: 17:00")
    doc = yaml.safe_load(text)
    assert problems(doc) == [
        "schedules[0].layers[1].restrictions[0]: time of day 1020 is a number; quote it, "
        'e.g. "17:00"'
    ]


def test_duplicate_schedule_ids_are_reported() -> None:
    doc = document()
    doc["schedules"].append(dict(doc["schedules"][0]))
    assert problems(doc) == ["schedules[1].id: duplicate id 'checkout-primary' (also schedules[0])"]


def test_a_missing_schedule_key_is_reported() -> None:
    doc = document()
    del doc["schedules"][0]["time_zone"]
    assert problems(doc) == ["schedules[0].time_zone: missing (required)"]
