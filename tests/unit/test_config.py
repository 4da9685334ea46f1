"""The declarative configuration: shape, cross-references, problem paths and secrets."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tocsin.composition.config import ConfigError, TocsinConfig, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tocsin.yaml"
EXAMPLE_TOKEN = "example-token-change-me-0123456789"


def _document() -> dict[str, Any]:
    loaded = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return copy.deepcopy(loaded)


def _problems(document: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, "test.yaml")
    assert caught.value.source == "test.yaml"
    assert str(caught.value).startswith("test.yaml: ")
    return caught.value.problems


def _only_problem(document: object) -> str:
    problems = _problems(document)
    assert len(problems) == 1, problems
    return problems[0]


# -- the example -----------------------------------------------------------------------------


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert [s.id for s in config.services] == ["checkout"]
    assert config.services[0].tier == 0
    assert [u.id for u in config.users] == ["alice", "bob"]
    policy = config.escalation().policy_for("checkout")
    assert policy is not None
    assert [level.delay for level in policy.levels] == [timedelta(0), timedelta(minutes=5)]
    assert [[t.schedule or t.user for t in level.targets] for level in policy.levels] == [
        ["checkout-primary"],
        ["alice", "bob"],
    ]
    assert config.integrations[0].token.get_secret_value() == EXAMPLE_TOKEN


def test_lookups_find_by_id_or_return_none() -> None:
    config = load_config(EXAMPLE)
    service = config.service("checkout")
    assert service is not None
    assert service.escalation_policy == "checkout-oncall"
    user = config.user("bob")
    assert user is not None
    assert user.name == "Bob Backup"
    assert config.service("nope") is None
    assert config.escalation().policy_for("nope") is None
    assert config.user("nope") is None


def test_empty_document_is_an_empty_config() -> None:
    assert parse_config(None) == TocsinConfig()


def test_config_is_frozen() -> None:
    config = load_config(EXAMPLE)
    with pytest.raises(ValueError, match="frozen"):
        config.services = ()  # type: ignore[misc]


# -- secrets ---------------------------------------------------------------------------------


def test_repr_and_str_do_not_reveal_the_integration_token() -> None:
    config = load_config(EXAMPLE)
    assert EXAMPLE_TOKEN not in repr(config)
    assert EXAMPLE_TOKEN not in str(config)
    assert EXAMPLE_TOKEN not in repr(config.integrations[0])


def test_json_dump_does_not_reveal_the_integration_token() -> None:
    assert EXAMPLE_TOKEN not in load_config(EXAMPLE).model_dump_json()


def test_config_error_does_not_reveal_a_token() -> None:
    document = _document()
    document["integrations"][0]["service"] = "nope"
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert EXAMPLE_TOKEN not in str(caught.value)


# -- problems name the key path and the reason -----------------------------------------------


def test_unknown_top_level_key_suggests_the_close_one() -> None:
    document = _document()
    document["escalation_policy"] = []
    assert _only_problem(document) == (
        "escalation_policy: unknown key (did you mean 'escalation_policies'? known keys here: "
        "services, integrations, heartbeats, users, escalation_policies, schedules, public_url, "
        "providers, inhibit_rules, severity_rules, maintenance_windows, flapping, reviews, "
        "status_pages)"
    )


def test_unknown_nested_key_lists_the_known_keys_there() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][1]["wait"] = "5m"
    assert _only_problem(document) == (
        "escalation_policies[0].levels[1].wait: unknown key (known keys here: delay, targets)"
    )


def test_bad_level_delay() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][1]["delay"] = "5 minutes"
    problem = _only_problem(document)
    assert problem.startswith("escalation_policies[0].levels[1].delay: ")
    assert "'5 minutes' is not a duration" in problem


def test_delay_without_unit() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][1]["delay"] = 300
    assert _only_problem(document) == (
        "escalation_policies[0].levels[1].delay: write durations with a unit, e.g. '30s' or '5m'"
    )


def test_bad_notification_rule_after() -> None:
    document = _document()
    document["users"][1]["notification_rules"][0]["after"] = "soon"
    problem = _only_problem(document)
    assert problem.startswith("users[1].notification_rules[0].after: ")
    assert "'soon' is not a duration" in problem


def test_unknown_policy_reference_lists_the_defined_ones() -> None:
    document = _document()
    document["services"][0]["escalation_policy"] = "nope"
    assert _only_problem(document) == (
        "services[0].escalation_policy: unknown escalation policy 'nope' (defined: checkout-oncall)"
    )


def test_unknown_service_reference() -> None:
    document = _document()
    document["integrations"][0]["service"] = "nope"
    assert _only_problem(document) == (
        "integrations[0].service: unknown service 'nope' (defined: checkout)"
    )


def test_unknown_service_reference_when_none_is_defined() -> None:
    document = _document()
    document["services"] = []
    document.pop("status_pages", None)  # the example's page names the service too
    assert _only_problem(document) == (
        "integrations[0].service: unknown service 'checkout' (none is defined)"
    )


def test_unknown_heartbeat_service() -> None:
    document = _document()
    document["heartbeats"] = [
        {"id": "backup", "token": "h" * 20, "service": "nope", "interval": "1d"}
    ]
    assert _only_problem(document) == (
        "heartbeats[0].service: unknown service 'nope' (defined: checkout)"
    )


def test_unknown_user_reference() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][1]["targets"][0]["user"] = "carol"
    assert _only_problem(document) == (
        "escalation_policies[0].levels[1].targets[0].user: unknown user 'carol' "
        "(defined: alice, bob)"
    )


@pytest.mark.parametrize(
    ("section", "duplicate_id"),
    [
        ("services", "checkout"),
        ("integrations", "prom-prod"),
        ("users", "alice"),
        ("escalation_policies", "checkout-oncall"),
    ],
)
def test_duplicate_ids(section: str, duplicate_id: str) -> None:
    document = _document()
    document[section].append(copy.deepcopy(document[section][0]))
    second = len(document[section]) - 1
    problems = _problems(document)
    assert f"{section}[{second}].id: duplicate id {duplicate_id!r} (also {section}[0])" in (
        problems
    )


def test_unknown_contact_in_notification_rule_names_the_rule_and_the_users_contacts() -> None:
    document = _document()
    document["users"][1]["notification_rules"][1]["contact"] = "x"
    assert _only_problem(document) == (
        "users[1].notification_rules[1].contact: unknown contact 'x' "
        "(user 'bob' has: bob-log, bob-hook)"
    )


def test_every_rule_naming_an_unknown_contact_is_its_own_problem() -> None:
    document = _document()
    document["users"][0]["contacts"] = []
    assert _problems(document) == [
        "users[0].notification_rules[0].contact: unknown contact 'alice-log' "
        "(user 'alice' has no contacts)",
        "users[0].notification_rules[1].contact: unknown contact 'alice-hook' "
        "(user 'alice' has no contacts)",
    ]


def test_duplicate_contact_ids_within_a_user() -> None:
    document = _document()
    user = document["users"][0]
    user["contacts"].append(copy.deepcopy(user["contacts"][0]))
    assert _only_problem(document) == (
        "users[0].contacts[2].id: duplicate contact id 'alice-log' (also contacts[0])"
    )


def test_non_http_webhook_address_is_reported_without_repeating_it() -> None:
    document = _document()
    document["users"][0]["contacts"][1]["address"] = "ftp://example.com/hook?key=s3cret"
    assert _only_problem(document) == (
        "users[0].contacts[1].address: must be an http:// or https:// URL"
    )


def test_webhook_contact_needs_an_address_and_a_log_contact_does_not() -> None:
    document = _document()
    document["users"][0]["contacts"] = [
        {"id": "log", "type": "log"},
        {"id": "hook", "type": "webhook"},
    ]
    document["users"][0]["notification_rules"] = [{"contact": "log", "after": "0s"}]
    assert _only_problem(document) == (
        "users[0].contacts[1].address: missing: a webhook contact needs an http:// or https:// URL"
    )


def test_short_integration_token() -> None:
    document = _document()
    document["integrations"][0]["token"] = "short"
    assert _only_problem(document) == "integrations[0].token: must be at least 16 characters"


def test_short_hmac_secret() -> None:
    document = _document()
    document["integrations"][0]["type"] = "grafana"
    document["integrations"][0]["hmac"] = {"secret": "tiny"}
    assert _only_problem(document) == (
        "integrations[0].hmac.secret: must be at least 16 characters"
    )


def test_a_token_written_as_a_number_is_not_repeated() -> None:
    document = _document()
    document["integrations"][0]["token"] = 12345678901234567890
    assert _only_problem(document) == "integrations[0].token: must be text (put it in quotes)"


def test_policy_without_levels() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"] = []
    assert _only_problem(document) == "escalation_policies[0].levels: needs at least one level"


def test_level_without_targets() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][0]["targets"] = []
    assert _only_problem(document) == (
        "escalation_policies[0].levels[0].targets: needs at least one target"
    )


IDENTIFIER_RULE = "must start with a letter or digit and hold only letters, digits, '_', '.', '-'"


@pytest.mark.parametrize(
    ("bad_id", "problem"),
    [
        ("-leading-dash", IDENTIFIER_RULE),
        ("has space", IDENTIFIER_RULE),
        ("a/b", IDENTIFIER_RULE),
        ("", "must not be empty"),
        ("x" * 101, "must be at most 100 characters"),
        (42, "must be text (put it in quotes)"),
    ],
)
def test_bad_identifier(bad_id: object, problem: str) -> None:
    document = _document()
    document["users"][0]["id"] = bad_id
    assert f"users[0].id: {problem}" in _problems(document)


@pytest.mark.parametrize(
    ("tier", "problem"),
    [
        (4, "must be between 0 and 3"),
        (-1, "must be between 0 and 3"),
        ("high", "must be a whole number between 0 and 3"),
        (1.5, "must be a whole number between 0 and 3"),
        (None, "must be a whole number between 0 and 3"),
    ],
)
def test_tier_out_of_range_or_not_a_number(tier: object, problem: str) -> None:
    document = _document()
    document["services"][0]["tier"] = tier
    assert _only_problem(document) == f"services[0].tier: {problem}"


def test_nested_limit_out_of_range_names_its_bounds() -> None:
    document = _document()
    document["integrations"][0]["limits"] = {"max_alerts": 0}
    assert _only_problem(document) == (
        "integrations[0].limits.max_alerts: must be between 1 and 10000"
    )


def test_missing_key() -> None:
    document = _document()
    del document["services"][0]["name"]
    assert _only_problem(document) == "services[0].name: missing (required)"


def test_empty_name() -> None:
    document = _document()
    document["users"][0]["name"] = ""
    assert _only_problem(document) == "users[0].name: must not be empty"


def test_unknown_integration_type_lists_the_choices() -> None:
    document = _document()
    document["integrations"][0]["type"] = "prometheus"
    assert _only_problem(document) == (
        "integrations[0].type: must be one of: alertmanager, grafana, datadog, pagerduty, "
        "generic (got 'prometheus')"
    )


def test_unknown_contact_type_lists_the_choices() -> None:
    document = _document()
    document["users"][0]["contacts"][0]["type"] = "pager"
    assert _only_problem(document) == (
        "users[0].contacts[0].type: must be one of: "
        "webhook, log, sms, voice, email, slack, teams (got 'pager')"
    )


def test_a_section_that_is_not_a_list() -> None:
    document = _document()
    document["services"] = {"id": "checkout"}
    assert _only_problem(document) == (
        "services: must be a list (one `- item` per line, or [a, b])"
    )


def test_an_entry_that_is_not_a_mapping() -> None:
    document = _document()
    document["services"] = ["checkout"]
    assert _only_problem(document) == "services[0]: must be a mapping (key: value lines)"


@pytest.mark.parametrize("delay", [[1], {"minutes": 5}])
def test_a_duration_of_the_wrong_shape(delay: object) -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][0]["delay"] = delay
    assert _only_problem(document) == (
        "escalation_policies[0].levels[0].delay: must be a duration with a unit, e.g. '30s' or '5m'"
    )


def test_a_yes_is_not_a_duration() -> None:
    # YAML reads `delay: yes` as true, which pydantic would take for one second.
    document = _document()
    document["escalation_policies"][0]["levels"][0]["delay"] = True
    assert _only_problem(document) == (
        "escalation_policies[0].levels[0].delay: write durations with a unit, e.g. '30s' or '5m'"
    )


def test_hmac_on_an_unsigned_integration_type() -> None:
    document = _document()
    document["integrations"][0]["hmac"] = {"secret": "s" * 20}
    assert _only_problem(document) == (
        "integrations[0].hmac: signatures are supported for grafana and generic integrations, "
        "not alertmanager"
    )


def test_timestamp_header_on_a_generic_integration() -> None:
    document = _document()
    document["integrations"][0]["type"] = "generic"
    document["integrations"][0]["hmac"] = {"secret": "s" * 20, "timestamp_header": "X-Ts"}
    assert _only_problem(document) == (
        "integrations[0].hmac.timestamp_header: only Grafana signs with a timestamp; "
        "generic signatures have none"
    )


def test_heartbeat_interval_below_a_second() -> None:
    document = _document()
    document["heartbeats"] = [
        {"id": "backup", "token": "h" * 20, "service": "checkout", "interval": "500ms"}
    ]
    assert _only_problem(document) == "heartbeats[0].interval: must be at least 1s"


def test_the_same_token_twice() -> None:
    document = _document()
    document["heartbeats"] = [
        {"id": "backup", "token": EXAMPLE_TOKEN, "service": "checkout", "interval": "1d"}
    ]
    assert _only_problem(document) == "heartbeats[0].token: the same token as integrations[0]"


def test_no_problem_is_worded_by_pydantic() -> None:
    document = _document()
    document["bogus"] = 1
    document["services"][0]["tier"] = "x"
    document["services"][0]["id"] = ""
    document["integrations"][0]["token"] = "short"
    document["integrations"][0]["type"] = "x"
    del document["users"][0]["name"]
    document["escalation_policies"][0]["levels"][0]["delay"] = [1]
    problems = _problems(document)
    assert len(problems) == 7, problems
    for pydantic_words in ("Input should", "Value should", "String should", "Field required"):
        assert not any(pydantic_words in p for p in problems), problems
    assert not any("Extra inputs" in p or "items after validation" in p for p in problems)


def test_every_shape_problem_is_reported() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][1]["delay"] = "y"
    document["users"][1]["notification_rules"][0]["after"] = "x"
    document["services"][0]["color"] = "red"
    problems = _problems(document)
    assert len(problems) == 3, problems
    assert any(p.startswith("escalation_policies[0].levels[1].delay: ") for p in problems)
    assert any(p.startswith("users[1].notification_rules[0].after: ") for p in problems)
    assert any(p.startswith("services[0].color: ") for p in problems)


def test_a_bad_target_is_reported_without_a_spurious_empty_targets_problem() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][1]["targets"] = [{"user": "bob", "x": 1}]
    assert _problems(document) == [
        "escalation_policies[0].levels[1].targets[0].x: unknown key (known keys here: user, "
        "schedule)"
    ]


def test_each_cross_reference_problem_is_its_own_entry_starting_with_its_path() -> None:
    document = _document()
    document["services"][0]["escalation_policy"] = "nope"
    document["integrations"][0]["service"] = "gone"
    assert _problems(document) == [
        "services[0].escalation_policy: unknown escalation policy 'nope' "
        "(defined: checkout-oncall)",
        "integrations[0].service: unknown service 'gone' (defined: checkout)",
    ]


@pytest.mark.parametrize("document", [[1, 2], "text", 42])
def test_non_mapping_document(document: object) -> None:
    assert _problems(document) == ["(top level): expected a mapping of sections"]


# -- load_config -----------------------------------------------------------------------------


def test_load_config_of_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert caught.value.source == str(missing)
    assert caught.value.problems[0].startswith("cannot read: ")


def test_load_config_of_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("services: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].startswith("not valid YAML: ")


def test_load_config_reports_the_file_as_source(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "services:\n  - id: x\n    name: X\n    escalation_policy: p\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.problems == [
        "services[0].escalation_policy: unknown escalation policy 'p' (none is defined)"
    ]


def test_out_of_range_delay_is_a_config_error() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][0]["delay"] = "1000000000d"
    problem = _only_problem(document)
    assert problem.startswith("escalation_policies[0].levels[0].delay: ")
