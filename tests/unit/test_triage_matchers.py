"""Alertmanager's matcher grammar (pkg/labels, the classic parser), as triage parses it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.triage.domain.matchers import (
    MatcherError,
    MatchOp,
    matches_all,
    parse_matcher,
    parse_matchers,
)


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('team="payments"', "team", MatchOp.EQUAL, "payments"),
        ("team=payments", "team", MatchOp.EQUAL, "payments"),
        ('  team  !=  "a b"  ', "team", MatchOp.NOT_EQUAL, "a b"),
        ('env=~"prod|live"', "env", MatchOp.REGEX, "prod|live"),
        ("code!~5..", "code", MatchOp.NOT_REGEX, "5.."),
        ('team=""', "team", MatchOp.EQUAL, ""),
        ("team=", "team", MatchOp.EQUAL, ""),
        (r'quote="say \"hi\""', "quote", MatchOp.EQUAL, 'say "hi"'),
        (r'x="a\nb"', "x", MatchOp.EQUAL, "a\nb"),
        (r'x="a\\b"', "x", MatchOp.EQUAL, "a\\b"),
        (r'x="a\qb"', "x", MatchOp.EQUAL, "a\\qb"),  # a spurious escape is literal
        ("x=a\\", "x", MatchOp.EQUAL, "a\\"),  # a last lone backslash is literal
        ('ns:sub_1="v"', "ns:sub_1", MatchOp.EQUAL, "v"),
        ('x="a,b"', "x", MatchOp.EQUAL, "a,b"),
    ],
)
def test_parses_alertmanager_syntax(text: str, name: str, op: MatchOp, value: str) -> None:
    matcher = parse_matcher(text)
    assert (matcher.name, matcher.op, matcher.value) == (name, op, value)


@pytest.mark.parametrize(
    "text",
    [
        'team=="x"',  # `==` leaves a stray `=` that is no quote: value `="x"` has a quote
        '1team="x"',
        'team-x="x"',
        'team"x"',
        'team="x',
        'team="x"y"',
        'team=x"',
        'env=~"(prod"',
        "",
        '="x"',
    ],
)
def test_refuses_what_alertmanager_refuses(text: str) -> None:
    with pytest.raises(MatcherError):
        parse_matcher(text)


def test_regexes_are_fully_anchored() -> None:
    prod = parse_matcher('env=~"prod|live"')
    assert prod.matches({"env": "prod"})
    assert prod.matches({"env": "live"})
    assert not prod.matches({"env": "preprod"})
    assert not prod.matches({"env": "prod-eu"})
    not_prod = parse_matcher('env!~"prod|live"')
    assert not_prod.matches({"env": "preprod"})
    assert not not_prod.matches({"env": "live"})


def test_a_missing_label_has_the_empty_value() -> None:
    assert parse_matcher('team=""').matches({})
    assert not parse_matcher('team!=""').matches({})
    assert parse_matcher('team!="payments"').matches({})
    assert parse_matcher('team=~".*"').matches({})
    assert not parse_matcher('team=~".+"').matches({})


def test_all_matchers_must_hold_and_none_match_everything() -> None:
    matchers = parse_matchers(['team="payments"', 'env=~"prod|live"'])
    assert matches_all(matchers, {"team": "payments", "env": "live"})
    assert not matches_all(matchers, {"team": "payments", "env": "dev"})
    assert matches_all((), {"anything": "x"})


_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", fullmatch=True)
_values = st.text(max_size=30)
_literal_ops = st.sampled_from([MatchOp.EQUAL, MatchOp.NOT_EQUAL])


@given(_names, _literal_ops, _values)
def test_printed_matchers_parse_back_to_themselves(name: str, op: MatchOp, value: str) -> None:
    matcher = parse_matcher(f'{name}{op.value}"{_escape(value)}"')
    assert (matcher.name, matcher.op, matcher.value) == (name, op, value)
    assert parse_matcher(str(matcher)) == matcher


@given(_names, _values, _values)
def test_equality_is_exact_and_regex_of_an_escaped_literal_agrees(
    name: str, value: str, other: str
) -> None:
    import re

    equal = parse_matcher(f'{name}="{_escape(value)}"')
    regex = parse_matcher(f'{name}=~"{_escape(re.escape(value))}"')
    for candidate in (value, other, value + "x", "x" + value):
        assert equal.matches({name: candidate}) is (candidate == value)
        assert regex.matches({name: candidate}) is (candidate == value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
