"""Urgency, personal notification rules and paging every level at once: the pure rules, their
configuration, and the engine on the embedded adapters with the injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import (
    NOTIFICATIONS_REQUESTED,
    IncidentEventKind,
    NotificationRequested,
    Severity,
)
from services.escalation.domain.lifecycle import Action, EscalationPlan
from services.escalation.domain.schedules import Restriction, Weekday
from services.escalation.domain.urgency import Rule as R
from services.escalation.domain.urgency import (
    SupportHours,
    Urgency,
    pages_all_levels,
    raised,
    rules_for,
    urgency_of,
)
from services.escalation.engine import Actor
from tests.unit.escalation_harness import (
    T0,
    Rig,
    incident_event,
    oncall_config,
    pages,
    rig,
)
from tocsin.composition.config import ConfigError, parse_config

MIN = timedelta(minutes=1)
ZERO = timedelta(0)
WEEKDAYS = frozenset({Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI})
BERLIN_OFFICE = SupportHours("Europe/Berlin", Restriction(WEEKDAYS, time(9), time(18)))
DEFAULTS = {
    Severity.SEV0: Urgency.HIGH,
    Severity.SEV1: Urgency.HIGH,
    Severity.SEV2: Urgency.LOW,
    Severity.SEV3: Urgency.LOW,
}

# -- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "urgency"),
    [
        (Severity.SEV0, Urgency.HIGH),
        (Severity.SEV1, Urgency.HIGH),
        (Severity.SEV2, Urgency.LOW),
        (Severity.SEV3, Urgency.LOW),
    ],
)
def test_severity_maps_to_urgency_by_default(severity: Severity, urgency: Urgency) -> None:
    assert urgency_of(severity, DEFAULTS, None, T0) is urgency


def test_a_service_may_map_a_severity_otherwise() -> None:
    assert urgency_of(Severity.SEV2, {**DEFAULTS, Severity.SEV2: Urgency.HIGH}, None, T0) is (
        Urgency.HIGH
    )


@pytest.mark.parametrize(
    ("at", "urgency"),
    [
        (datetime(2026, 11, 25, 10, 0, tzinfo=UTC), Urgency.HIGH),  # Wed 11:00 in Berlin
        (datetime(2026, 11, 25, 7, 59, tzinfo=UTC), Urgency.LOW),  # 08:59
        (datetime(2026, 11, 25, 8, 0, tzinfo=UTC), Urgency.HIGH),  # 09:00
        (datetime(2026, 11, 25, 17, 0, tzinfo=UTC), Urgency.LOW),  # 18:00: the window is over
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), Urgency.LOW),  # Saturday
        # Across DST: 09:00 Berlin is 07:00 UTC in summer, 08:00 in winter.
        (datetime(2026, 7, 1, 7, 0, tzinfo=UTC), Urgency.HIGH),
        (datetime(2026, 7, 1, 6, 59, tzinfo=UTC), Urgency.LOW),
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), Urgency.HIGH),  # the Monday after the change
    ],
)
def test_outside_support_hours_every_incident_is_low(at: datetime, urgency: Urgency) -> None:
    assert urgency_of(Severity.SEV0, DEFAULTS, BERLIN_OFFICE, at) is urgency


def test_support_hours_never_raise_a_low_severity() -> None:
    assert urgency_of(Severity.SEV3, DEFAULTS, BERLIN_OFFICE, T0) is Urgency.LOW


def test_an_incidents_urgency_only_rises() -> None:
    assert raised(Urgency.LOW, Urgency.HIGH) is Urgency.HIGH
    assert raised(Urgency.HIGH, Urgency.LOW) is Urgency.HIGH
    assert raised(Urgency.LOW, Urgency.LOW) is Urgency.LOW


HIGH_AND_LOW = (
    R("sms", ZERO, Urgency.HIGH),
    R("voice", 2 * MIN, Urgency.HIGH),
    R("email", ZERO),  # both
    R("push", ZERO, Urgency.LOW),
)


def test_rules_for_an_urgency_keep_their_order_and_include_rules_for_both() -> None:
    assert [r.contact_id for r in rules_for(HIGH_AND_LOW, Urgency.HIGH)] == [
        "sms",
        "voice",
        "email",
    ]
    assert [r.contact_id for r in rules_for(HIGH_AND_LOW, Urgency.LOW)] == ["email", "push"]


def test_a_person_without_rules_for_an_urgency_gets_the_others() -> None:
    high_only = (R("sms", ZERO, Urgency.HIGH), R("voice", 2 * MIN, Urgency.HIGH))
    assert rules_for(high_only, Urgency.LOW) == high_only
    assert rules_for((), Urgency.LOW) == ()


@pytest.mark.parametrize(
    ("severity", "tier", "setting", "expected"),
    [
        (Severity.SEV0, 0, None, True),
        (Severity.SEV0, 1, None, False),
        (Severity.SEV1, 0, None, False),
        (Severity.SEV1, 2, "SEV1", True),
        (Severity.SEV0, 3, "SEV1", True),
        (Severity.SEV2, 0, "SEV1", False),
        (Severity.SEV0, 0, "never", False),
        (Severity.SEV3, 3, "SEV3", True),
    ],
)
def test_which_incidents_page_every_level_at_once(
    severity: Severity, tier: int, setting: Any, expected: bool
) -> None:
    assert pages_all_levels(severity, tier, setting) is expected


def test_all_at_once_zeroes_the_delays_and_keeps_the_repeat_wait() -> None:
    plan = EscalationPlan((ZERO, 5 * MIN, 10 * MIN), (("a",), ("b",), ("c",)), repeat=1)
    at_once = plan.all_at_once()
    assert at_once.delays == (ZERO, ZERO, ZERO)
    assert at_once.delay_before(3) == 10 * MIN  # as the policy's own repeat would wait
    assert EscalationPlan((), ()).all_at_once() == EscalationPlan((), ())


# -- configuration ---------------------------------------------------------------------------


def document() -> dict[str, Any]:
    return {
        "services": [
            {
                "id": "checkout",
                "name": "Checkout",
                "escalation_policy": "p",
                "urgency": {
                    "SEV2": "high",
                    "support_hours": {
                        "time_zone": "Europe/Berlin",
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                        "from": "09:00",
                        "to": "18:00",
                    },
                },
            }
        ],
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [
                    {"id": "hook", "type": "webhook", "address": "http://127.0.0.1:9/a"},
                ],
                "notification_rules": [{"contact": "hook", "after": "0s", "urgency": "low"}],
            }
        ],
        "escalation_policies": [
            {"id": "p", "page_all_levels_at": "SEV1", "levels": [{"targets": [{"user": "alice"}]}]}
        ],
    }


def test_urgency_settings_load() -> None:
    escalation = parse_config(document()).escalation()
    service = escalation.services["checkout"]
    assert service.urgency.support_hours == BERLIN_OFFICE
    assert service.urgency.urgency(Severity.SEV2, T0) is Urgency.HIGH
    assert service.urgency.urgency(Severity.SEV3, T0) is Urgency.LOW
    assert service.urgency.urgency(Severity.SEV0, T0 + 12 * 60 * MIN) is Urgency.LOW  # 23:00
    assert escalation.users[0].notification_rules[0].rule() == R("hook", ZERO, Urgency.LOW)
    policy = escalation.policy("p")
    assert policy is not None
    assert policy.page_all_levels_at == "SEV1"
    # A dump reads back the same.
    dumped = parse_config(document()).model_dump(mode="json")
    assert dumped["services"][0]["urgency"]["support_hours"] == {
        "time_zone": "Europe/Berlin",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "from": "09:00",
        "to": "18:00",
    }


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["users"][0]["notification_rules"][0].update(urgency="urgent"),
            "users[0].notification_rules[0].urgency: must be one of: high, low (got 'urgent')",
        ),
        (
            lambda d: d["services"][0]["urgency"].update(SEV2="medium"),
            "services[0].urgency.SEV2: must be one of: high, low (got 'medium')",
        ),
        (
            lambda d: d["services"][0]["urgency"].update(SEV4="low"),
            "services[0].urgency.SEV4: unknown key (did you mean 'SEV3'? known keys here: SEV0, "
            "SEV1, SEV2, SEV3, support_hours)",
        ),
        (
            lambda d: d["services"][0]["urgency"]["support_hours"].pop("time_zone"),
            "services[0].urgency.support_hours: support_hours needs time_zone (e.g. time_zone: "
            "Europe/Berlin)",
        ),
        (
            lambda d: d["services"][0]["urgency"]["support_hours"].update(to=1080),
            "services[0].urgency.support_hours: time of day 1080 is a number; quote it, "
            'e.g. "17:00"',
        ),
        (
            lambda d: d["services"][0]["urgency"]["support_hours"].update(hours=8),
            "services[0].urgency.support_hours: support_hours has unknown keys ['hours']; use "
            "time_zone, days, from and to",
        ),
        (
            lambda d: d["escalation_policies"][0].update(page_all_levels_at="critical"),
            "escalation_policies[0].page_all_levels_at: must be one of: SEV0, SEV1, SEV2, SEV3, "
            "never (got 'critical')",
        ),
    ],
)
def test_a_bad_urgency_setting_names_its_key(change: Any, problem: str) -> None:
    doc = document()
    change(doc)
    with pytest.raises(ConfigError) as caught:
        parse_config(doc)
    assert caught.value.problems == [problem]


# -- the engine ------------------------------------------------------------------------------

ALICE = {
    "id": "alice",
    "name": "Alice",
    "contacts": [
        {"id": kind, "type": "webhook", "address": f"http://127.0.0.1:9/{kind}"}
        for kind in ("sms", "voice", "email")
    ],
    "notification_rules": [
        {"contact": "sms", "after": "0s", "urgency": "high"},
        {"contact": "voice", "after": "2m", "urgency": "high"},
        {"contact": "email", "after": "0s"},
    ],
}


def contacts(r: Rig) -> list[str]:
    """The contact of each notification requested so far, in order."""
    return [
        m.recipient.contact_id for m in r.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)
    ]


@pytest.fixture
async def personal(tmp_path: Path) -> AsyncIterator[Rig]:
    levels = [{"targets": [{"user": "alice"}]}, {"delay": "10m", "targets": [{"user": "bob"}]}]
    async with rig(tmp_path, oncall_config(levels, users=[ALICE, "bob"])) as r:
        yield r


async def test_high_urgency_follows_the_high_rules_step_by_step(personal: Rig) -> None:
    await personal.engine.on_incident_event(incident_event(severity=Severity.SEV1))
    assert contacts(personal) == ["sms", "email"]
    personal.clock.advance(2 * MIN)
    await personal.engine.fire_due_timers()
    assert contacts(personal) == ["sms", "email", "voice"]
    incident = await personal.store.get("inc-1")
    assert incident is not None
    assert incident.urgency is Urgency.HIGH


async def test_low_urgency_uses_only_the_rules_for_low(personal: Rig) -> None:
    await personal.engine.on_incident_event(incident_event(severity=Severity.SEV3))
    personal.clock.advance(5 * MIN)
    await personal.engine.fire_due_timers()
    assert contacts(personal) == ["email"]
    timeline = await personal.store.timeline("inc-1", 10)
    assert timeline[0].detail == "CheckoutErrors (SEV3, low urgency)"


async def test_an_acknowledged_page_cancels_the_users_remaining_rule_steps(personal: Rig) -> None:
    await personal.engine.on_incident_event(incident_event(severity=Severity.SEV1))
    personal.clock.advance(MIN)
    await personal.engine.command("inc-1", Action.ACKNOWLEDGE, Actor("alice"))
    personal.clock.advance(15 * MIN)
    await personal.engine.fire_due_timers()
    # No voice call at 2 minutes, no escalation to bob; only the acknowledgement notices.
    assert [(u, e) for u, e, _ in pages(personal)] == [
        ("alice", "incident.triggered"),
        ("alice", "incident.triggered"),
        ("alice", "incident.acknowledged"),
        ("alice", "incident.acknowledged"),
    ]
    assert contacts(personal)[2:] == ["sms", "email"]  # the notice goes to the immediate ones


async def test_a_raised_severity_makes_later_pages_high_urgency(personal: Rig) -> None:
    await personal.engine.on_incident_event(incident_event(severity=Severity.SEV3))
    await personal.engine.on_incident_event(
        incident_event(IncidentEventKind.SEVERITY_CHANGED, severity=Severity.SEV1)
    )
    incident = await personal.store.get("inc-1")
    assert incident is not None
    assert incident.urgency is Urgency.HIGH
    # Paged at once as a high-urgency incident pages her: the SMS her high rule adds (issue 11).
    assert contacts(personal) == ["email", "sms"]
    await personal.engine.command("inc-1", Action.RESOLVE, Actor("api:ops"))
    # The resolve notice goes to alice's immediate contacts for high urgency.
    assert contacts(personal) == ["email", "sms", "sms", "email"]


async def test_outside_support_hours_a_sev1_is_low_urgency(tmp_path: Path) -> None:
    hours = {
        "support_hours": {
            "time_zone": "Europe/Berlin",
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "from": "09:00",
            "to": "11:00",  # T0 is 11:00 in Berlin: just outside
        }
    }
    levels = [{"targets": [{"user": "alice"}]}]
    config = oncall_config(levels, users=[ALICE], service={"urgency": hours})
    async with rig(tmp_path, config) as r:
        await r.engine.on_incident_event(incident_event(severity=Severity.SEV1))
        r.clock.advance(5 * MIN)
        await r.engine.fire_due_timers()
        assert contacts(r) == ["email"]


# -- every level at once ---------------------------------------------------------------------

LEVELS: list[dict[str, Any]] = [
    {"targets": [{"user": "alice"}]},
    {"delay": "5m", "targets": [{"user": "bob"}]},
    {"delay": "10m", "targets": [{"user": "carol"}]},
]


@pytest.mark.parametrize(
    ("tier", "severity", "setting", "at_once"),
    [
        (0, Severity.SEV0, None, True),
        (1, Severity.SEV0, None, False),
        (0, Severity.SEV1, None, False),
        (2, Severity.SEV1, "SEV1", True),
        (0, Severity.SEV0, "never", False),
    ],
)
async def test_sev0_on_a_tier_0_service_pages_every_level_at_once(
    tmp_path: Path, tier: int, severity: Severity, setting: str | None, at_once: bool
) -> None:
    policy = {"page_all_levels_at": setting} if setting else {}
    config = oncall_config(LEVELS, service={"tier": tier}, policy=policy)
    async with rig(tmp_path, config) as r:
        await r.engine.on_incident_event(incident_event(severity=severity))
        paged = [(u, level) for u, _, level in pages(r)]
        entries = [e.action for e in await r.store.timeline("inc-1", 20)]
        if at_once:
            assert paged == [("alice", 0), ("bob", 1), ("carol", 2)]
            assert "all_levels" in entries
        else:
            assert paged == [("alice", 0)]
            assert "all_levels" not in entries


async def test_all_at_once_again_when_a_snooze_ends(tmp_path: Path) -> None:
    config = oncall_config(LEVELS, service={"tier": 0})
    async with rig(tmp_path, config) as r:
        await r.engine.on_incident_event(incident_event(severity=Severity.SEV0))
        await r.engine.command("inc-1", Action.SNOOZE, Actor("api:ops"), until=T0 + 30 * MIN)
        r.clock.advance(30 * MIN)
        await r.engine.fire_due_timers()
        triggered = [(u, level) for u, e, level in pages(r) if e == "incident.triggered"]
        escalated = [(u, level) for u, e, level in pages(r) if e == "incident.escalated"]
        assert triggered == [("alice", 0), ("alice", 0)]
        assert escalated == [("bob", 1), ("carol", 2), ("bob", 1), ("carol", 2)]
