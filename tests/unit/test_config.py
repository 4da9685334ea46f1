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
    policy = config.policy("checkout-oncall")
    assert policy is not None
    assert [level.delay for level in policy.levels] == [timedelta(0), timedelta(minutes=5)]
    assert [[t.user for t in level.targets] for level in policy.levels] == [["alice"], ["bob"]]
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
    assert config.policy("nope") is None
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


def test_unknown_top_level_key() -> None:
    document = _document()
    document["escalation_policy"] = []
    assert _only_problem(document) == "escalation_policy: Extra inputs are not permitted"


def test_unknown_nested_key() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][1]["wait"] = "5m"
    assert _only_problem(document) == (
        "escalation_policies[0].levels[1].wait: Extra inputs are not permitted"
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


def test_unknown_policy_reference() -> None:
    document = _document()
    document["services"][0]["escalation_policy"] = "nope"
    problem = _only_problem(document)
    assert "services[0].escalation_policy: unknown policy 'nope'" in problem


def test_unknown_service_reference() -> None:
    document = _document()
    document["integrations"][0]["service"] = "nope"
    problem = _only_problem(document)
    assert "integrations[0].service: unknown service 'nope'" in problem


def test_unknown_user_reference() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][1]["targets"][0]["user"] = "carol"
    problem = _only_problem(document)
    assert "escalation_policies[0].levels[1].targets[0].user: unknown user 'carol'" in problem


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
    problem = _only_problem(document)
    assert f"{section}: duplicate id(s) {duplicate_id}" in problem


def test_unknown_contact_in_notification_rule() -> None:
    document = _document()
    document["users"][0]["notification_rules"][0]["contact"] = "zzz"
    problem = _only_problem(document)
    assert "users[0]" in problem
    assert "notification rule names unknown contact 'zzz'" in problem


def test_duplicate_contact_ids_within_a_user() -> None:
    document = _document()
    user = document["users"][0]
    user["contacts"].append(copy.deepcopy(user["contacts"][0]))
    problem = _only_problem(document)
    assert "users[0]" in problem
    assert "contact ids must be unique within a user" in problem


def test_non_http_webhook_address() -> None:
    document = _document()
    (webhook,) = [c for c in document["users"][0]["contacts"] if c["type"] == "webhook"]
    webhook["address"] = "ftp://example.com/hook"
    problem = _only_problem(document)
    assert "users[0].contacts[" in problem
    assert "http:// or https:// URL" in problem


def test_webhook_contact_needs_an_address_and_a_log_contact_does_not() -> None:
    document = _document()
    document["users"][0]["contacts"] = [
        {"id": "log", "type": "log"},
        {"id": "hook", "type": "webhook"},
    ]
    document["users"][0]["notification_rules"] = [{"contact": "log", "after": "0s"}]
    problem = _only_problem(document)
    assert problem.startswith("users[0].contacts[1]")
    assert "http:// or https:// URL" in problem


def test_short_integration_token() -> None:
    document = _document()
    document["integrations"][0]["token"] = "short"
    problem = _only_problem(document)
    assert problem.startswith("integrations[0].token: ")
    assert "16" in problem
    assert "short" not in problem.removeprefix("integrations[0].token: ")


def test_policy_without_levels() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"] = []
    problem = _only_problem(document)
    assert problem.startswith("escalation_policies[0].levels: ")
    assert "needs at least one item" in problem


@pytest.mark.parametrize("bad_id", ["-leading-dash", "has space", "", "a/b"])
def test_bad_identifier(bad_id: str) -> None:
    document = _document()
    document["users"][0]["id"] = bad_id
    problems = _problems(document)
    assert any(p.startswith("users[0].id: ") for p in problems), problems


def test_tier_out_of_range() -> None:
    document = _document()
    document["services"][0]["tier"] = 4
    problem = _only_problem(document)
    assert problem.startswith("services[0].tier: ")


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
        "escalation_policies[0].levels[1].targets[0].x: Extra inputs are not permitted"
    ]


def test_each_cross_reference_problem_is_its_own_entry_starting_with_its_path() -> None:
    document = _document()
    document["services"][0]["escalation_policy"] = "nope"
    document["integrations"][0]["service"] = "gone"
    assert _problems(document) == [
        "services[0].escalation_policy: unknown policy 'nope'",
        "integrations[0].service: unknown service 'gone'",
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
    assert "services[0].escalation_policy: unknown policy 'p'" in caught.value.problems[0]


def test_out_of_range_delay_is_a_config_error() -> None:
    document = _document()
    document["escalation_policies"][0]["levels"][0]["delay"] = "1000000000d"
    problem = _only_problem(document)
    assert problem.startswith("escalation_policies[0].levels[0].delay: ")
