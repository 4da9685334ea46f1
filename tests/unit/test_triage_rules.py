"""Triage's rules as data: grouping keys and windows, routes and grouping from the config file
(checked when it loads), and silences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import Severity
from services.triage.domain import assess_severity, blast_radius_raise
from services.triage.domain.grouping import GroupingRule, group_key, group_takes
from services.triage.domain.inhibition import InhibitRule, SourceAlert, inhibited_by, is_source
from services.triage.domain.matchers import MatchOp, parse_matchers
from services.triage.domain.silences import (
    Silence,
    SilenceState,
    matcher_op,
    matches_everything,
    silenced_by,
)
from services.triage.refreshed import Refreshed
from tocsin.composition.config import ConfigError, parse_config

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# -- grouping --------------------------------------------------------------------------------


def test_default_grouping_keeps_the_service_and_alertname_key() -> None:
    assert group_key("checkout", "A", {"alertname": "A", "dc": "x"}) == "checkout/A"


def test_group_by_labels_splits_by_their_values_and_ignores_the_others() -> None:
    rule = GroupingRule(group_by=("alertname", "dc"))
    east = group_key("db", "Down", {"dc": "east", "instance": "a"}, rule)
    assert east == group_key("db", "Down", {"dc": "east", "instance": "b"}, rule)
    assert east != group_key("db", "Down", {"dc": "west", "instance": "a"}, rule)
    assert east != group_key("db", "Up", {"dc": "east"}, rule)
    # A missing label is empty, and a value cannot pose as another label.
    assert group_key("db", "Down", {}, rule) != group_key("db", "Down", {"dc": ""}, GroupingRule())
    odd = GroupingRule(group_by=("a", "b"))
    assert group_key("s", "", {"a": '1","b', "b": ""}, odd) != group_key(
        "s", "", {"a": "1", "b": '","b'}, odd
    )


def test_every_label_groups_only_identical_label_sets() -> None:
    rule = GroupingRule(every_label=True)
    assert group_key("s", "A", {"i": "1"}, rule) == group_key("s", "A", {"i": "1"}, rule)
    assert group_key("s", "A", {"i": "1"}, rule) != group_key("s", "A", {"i": "2"}, rule)


def test_the_window_ends_joining() -> None:
    rule = GroupingRule(window=timedelta(minutes=10))
    assert group_takes(rule, T0, T0 + timedelta(minutes=10))
    assert not group_takes(rule, T0, T0 + timedelta(minutes=10, seconds=1))
    assert group_takes(GroupingRule(), T0, T0 + timedelta(days=30))


# -- configuration ---------------------------------------------------------------------------


def _config(**service: object) -> dict[str, object]:
    return {
        "escalation_policies": [{"id": "p", "levels": [{"targets": [{"user": "u"}]}]}],
        "users": [{"id": "u", "name": "U"}],
        "services": [
            {"id": "shop", "name": "Shop", "escalation_policy": "p", **service},
            {"id": "payments", "name": "Payments", "escalation_policy": "p"},
        ],
        "integrations": [
            {
                "id": "prom",
                "type": "alertmanager",
                "token": "t" * 20,
                "service": "shop",
                "routes": [
                    {"matchers": ['team="payments"', 'env=~"prod|live"'], "service": "payments"},
                    {"matchers": ["team=~pay.*"], "service": "shop"},
                ],
            }
        ],
    }


def test_routes_from_the_config_first_match_wins() -> None:
    triage = parse_config(_config()).triage()
    assert triage.route("prom", {"team": "payments", "env": "live"}) == ("payments", 0)
    assert triage.route("prom", {"team": "payments", "env": "preprod"}) == ("shop", 1)
    assert triage.route("prom", {"team": "search"}) is None
    assert triage.route("other", {"team": "payments", "env": "live"}) is None


def test_grouping_from_the_config() -> None:
    triage = parse_config(
        _config(group_by=["alertname", "dc"], group_window="10m", max_alerts=50)
    ).triage()
    assert triage.grouping_rule("shop") == GroupingRule(
        group_by=("alertname", "dc"), window=timedelta(minutes=10), max_alerts=50
    )
    assert triage.grouping_rule("payments") == GroupingRule()
    every = parse_config(_config(group_by=["..."])).triage().grouping_rule("shop")
    assert every.every_label


def test_bad_matchers_and_route_services_are_config_problems_at_their_key() -> None:
    document = _config()
    routes = document["integrations"][0]["routes"]  # type: ignore[index]
    routes[0]["matchers"][1] = 'env=~"(prod"'
    routes[1]["service"] = "nope"
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    problems = raised.value.problems
    assert any(p.startswith("integrations[0].routes[0].matchers[1]: ") for p in problems)
    assert any(p.startswith("integrations[0].routes[1].service: ") for p in problems)
    assert len(problems) == 2


def test_max_alerts_must_be_positive() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_config(max_alerts=0))
    assert raised.value.problems[0].startswith("services[0].max_alerts")


# -- silences --------------------------------------------------------------------------------


def _silence(sid: str, *matchers: str, hours: int = 1) -> Silence:
    return Silence(sid, parse_matchers(matchers), T0, T0 + timedelta(hours=hours))


def test_a_silence_is_in_force_from_its_start_to_its_end() -> None:
    silence = _silence("s", 'team="db"')
    assert silence.state(T0 - timedelta(seconds=1)) is SilenceState.PENDING
    assert silence.state(T0) is SilenceState.ACTIVE
    assert silence.state(T0 + timedelta(hours=1)) is SilenceState.EXPIRED
    assert silence.silences({"team": "db"}, T0)
    assert not silence.silences({"team": "db"}, T0 + timedelta(hours=1))
    assert not silence.silences({"team": "web"}, T0)


def test_silenced_by_names_the_matching_silence_ending_last() -> None:
    silences = [_silence("a", 'team="db"'), _silence("b", "team=~d."), _silence("c", "x=y")]
    silences.append(_silence("d", 'team="db"', hours=5))
    found = silenced_by(silences, {"team": "db"}, T0)
    assert found is not None
    assert found.id == "d"
    assert silenced_by(silences, {"team": "web"}, T0) is None


def test_alertmanager_v2_matcher_flags() -> None:
    assert matcher_op(is_regex=False, is_equal=True) is MatchOp.EQUAL
    assert matcher_op(is_regex=False, is_equal=False) is MatchOp.NOT_EQUAL
    assert matcher_op(is_regex=True, is_equal=True) is MatchOp.REGEX
    assert matcher_op(is_regex=True, is_equal=False) is MatchOp.NOT_REGEX


def test_a_silence_of_everything_is_recognised() -> None:
    assert matches_everything(parse_matchers(["team=~.*"]))
    assert not matches_everything(parse_matchers(["team=~.*", "a=b"]))


# -- inhibition ------------------------------------------------------------------------------


def _rule(source: list[str], target: list[str], equal: tuple[str, ...] = ()) -> InhibitRule:
    return InhibitRule(parse_matchers(source), parse_matchers(target), equal)


DC_DOWN = _rule(["alertname=DatacenterDown"], ["alertname=InstanceDown"], ("dc",))


def test_a_firing_source_inhibits_targets_with_equal_labels() -> None:
    source = SourceAlert("s1", {"alertname": "DatacenterDown", "dc": "east"})
    east = {"alertname": "InstanceDown", "dc": "east", "instance": "a"}
    west = {"alertname": "InstanceDown", "dc": "west", "instance": "b"}
    assert inhibited_by([DC_DOWN], "t1", east, [source]) == (source, 0)
    assert inhibited_by([DC_DOWN], "t2", west, [source]) is None
    assert inhibited_by([DC_DOWN], "t1", east, []) is None
    other = {"alertname": "DiskFull", "dc": "east"}
    assert inhibited_by([DC_DOWN], "t3", other, [source]) is None


def test_equal_labels_missing_on_both_sides_are_equal() -> None:
    source = SourceAlert("s1", {"alertname": "DatacenterDown"})
    assert inhibited_by([DC_DOWN], "t1", {"alertname": "InstanceDown"}, [source]) is not None
    target = {"alertname": "InstanceDown", "dc": "east"}
    assert inhibited_by([DC_DOWN], "t1", target, [source]) is None


def test_an_alert_never_inhibits_itself_nor_one_matching_both_sides() -> None:
    both = _rule(["severity=critical"], ["severity=~critical|warning"])
    critical = {"severity": "critical"}
    assert inhibited_by([both], "a", critical, [SourceAlert("a", critical)]) is None
    assert inhibited_by([both], "b", critical, [SourceAlert("a", critical)]) is None
    warning = {"severity": "warning"}
    assert inhibited_by([both], "b", warning, [SourceAlert("a", critical)]) is not None


def test_is_source() -> None:
    assert is_source([DC_DOWN], {"alertname": "DatacenterDown"})
    assert not is_source([DC_DOWN], {"alertname": "InstanceDown"})


def test_inhibit_rules_from_the_config_with_problems_at_their_key() -> None:
    document = _config()
    document["inhibit_rules"] = [
        {
            "source_matchers": ['alertname="DatacenterDown"'],
            "target_matchers": ['alertname="InstanceDown"'],
            "equal": ["dc"],
        }
    ]
    (rule,) = parse_config(document).triage().inhibitions
    assert rule == DC_DOWN
    document["inhibit_rules"] = [{"source_matchers": ["ok=1", "bad=~("], "equal": ["dc"]}]
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    assert len(raised.value.problems) == 1
    assert raised.value.problems[0].startswith("inhibit_rules[0].source_matchers[1]: ")


# -- severity rules --------------------------------------------------------------------------


def test_a_severity_rule_sets_the_severity_with_its_reason() -> None:
    assert assess_severity("info", 2, (Severity.SEV1, 3)) == (
        Severity.SEV1,
        ("severity_rules[3] matches: SEV1",),
    )
    # The tier still counts: SEV1 on the critical path is SEV0.
    severity, reasons = assess_severity("info", 0, (Severity.SEV1, 0))
    assert severity is Severity.SEV0
    assert reasons[-1] == "tier-0 service (critical path): raised to SEV0"
    assert assess_severity("critical", 2, (Severity.SEV3, 0))[0] is Severity.SEV3


def test_severity_rules_from_the_config_first_match_wins() -> None:
    document = _config()
    document["severity_rules"] = [
        {"matchers": ['alertname="DiskFull"', "env=prod"], "severity": "SEV1"},
        {"matchers": ["alertname=~Disk.*"], "severity": "SEV3"},
    ]
    triage = parse_config(document).triage()
    assert triage.severity_rule({"alertname": "DiskFull", "env": "prod"}) == (Severity.SEV1, 0)
    assert triage.severity_rule({"alertname": "DiskFull", "env": "dev"}) == (Severity.SEV3, 1)
    assert triage.severity_rule({"alertname": "CPU"}) is None
    document["severity_rules"] = [{"matchers": ["a=~("], "severity": "SEV9"}]
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    assert sorted(p.split(":")[0] for p in raised.value.problems) == [
        "severity_rules[0].matchers[0]",
        "severity_rules[0].severity",
    ]


# -- rules in force, read once per second ----------------------------------------------------


async def test_rules_in_force_are_read_once_per_ttl_and_after_invalidate() -> None:
    class Clock:
        at = T0

        def now(self) -> datetime:
            return self.at

    reads: list[datetime] = []

    async def load(at: datetime) -> list[datetime]:
        reads.append(at)
        return list(reads)

    clock = Clock()
    cached = Refreshed(load, clock, timedelta(seconds=1))
    assert await cached.current() == [T0]
    clock.at = T0 + timedelta(milliseconds=999)
    assert await cached.current() == [T0]
    clock.at = T0 + timedelta(seconds=1)
    assert len(await cached.current()) == 2
    cached.invalidate()
    assert len(await cached.current()) == 3
    clock.at = T0  # the clock went back: read again rather than trust a future read
    assert len(await cached.current()) == 4


# -- blast radius ----------------------------------------------------------------------------


def test_past_the_blast_radius_an_incident_is_one_level_more_severe_once() -> None:
    reasons = ("sender severity 'warning' maps to SEV2",)
    assert blast_radius_raise(Severity.SEV2, reasons, 10, 10) is None
    raised = blast_radius_raise(Severity.SEV2, reasons, 11, 10)
    assert raised == (
        Severity.SEV1,
        (*reasons, "blast radius: 11 alerts (more than 10): raised from SEV2 to SEV1"),
    )
    assert blast_radius_raise(raised[0], raised[1], 12, 10) is None
    assert blast_radius_raise(Severity.SEV0, (), 50, 10) is None
    assert blast_radius_raise(Severity.SEV3, (), 2, 1) == (
        Severity.SEV2,
        ("blast radius: 2 alerts (more than 1): raised from SEV3 to SEV2",),
    )


def test_blast_radius_from_the_config() -> None:
    triage = parse_config(_config(blast_radius=25)).triage()
    assert triage.blast_radius == {"shop": 25}
    with pytest.raises(ConfigError):
        parse_config(_config(blast_radius=0))
