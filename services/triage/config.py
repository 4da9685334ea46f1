"""Triage's part of the configuration file: each service's tier (it weighs in the severity) and
grouping, the routes of each integration, and the inhibition rules. The composition root hands
triage a `TriageConfig`.

Matchers are written in Alertmanager's syntax (`team="payments"`, `env=~"prod|live"`), checked
when the file loads (a bad one is a config problem at its exact key) and compiled once, here:
the consumer only calls `matches`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, Field, PrivateAttr

from schemas import Severity
from services.triage.domain.grouping import GroupingRule
from services.triage.domain.inhibition import InhibitRule
from services.triage.domain.matchers import Matcher, MatcherError, parse_matcher
from tocsin.runtime.config_problems import ConfigProblems
from tocsin.runtime.config_types import Duration, Identifier, StrictModel

DEFAULT_TIER = 2
ALL_LABELS = "..."  # `group_by: ['...']`: every label, as in Alertmanager


def matcher_problems(texts: tuple[str, ...]) -> list[tuple[tuple[int], str]]:
    """One problem per matcher that does not parse or compile, at its index."""
    problems: list[tuple[tuple[int], str]] = []
    for n, text in enumerate(texts):
        try:
            parse_matcher(text)
        except MatcherError as error:
            problems.append(((n,), str(error)))
    return problems


def _valid_matchers(texts: tuple[str, ...]) -> tuple[str, ...]:
    problems = matcher_problems(texts)
    if problems:
        raise ConfigProblems(problems)
    return texts


MatcherTexts = Annotated[
    tuple[Annotated[str, Field(max_length=4096)], ...], AfterValidator(_valid_matchers)
]


class _Matched(StrictModel):
    """A rule with matchers, compiled once when the configuration loads."""

    matchers: MatcherTexts = ()
    _compiled: tuple[Matcher, ...] = PrivateAttr(default=())

    def model_post_init(self, context: object, /) -> None:
        self._compiled = tuple(parse_matcher(text) for text in self.matchers)

    @property
    def compiled(self) -> tuple[Matcher, ...]:
        return self._compiled


class RouteConfig(_Matched):
    """`integrations[].routes[]`: alerts whose labels match go to `service` (first match wins,
    else the integration's own service)."""

    service: Identifier


class SeverityRuleConfig(_Matched):
    """`severity_rules[]`: alerts whose labels match get `severity`, whatever the sender said
    (first match wins)."""

    severity: Severity


class InhibitRuleConfig(StrictModel):
    """`inhibit_rules[]`, as in Alertmanager's configuration."""

    source_matchers: MatcherTexts = ()
    target_matchers: MatcherTexts = ()
    equal: tuple[Annotated[str, Field(min_length=1, max_length=256)], ...] = ()
    _rule: InhibitRule = PrivateAttr(default=InhibitRule((), ()))

    def model_post_init(self, context: object, /) -> None:
        self._rule = InhibitRule(
            source=tuple(parse_matcher(text) for text in self.source_matchers),
            target=tuple(parse_matcher(text) for text in self.target_matchers),
            equal=self.equal,
        )

    @property
    def rule(self) -> InhibitRule:
        return self._rule


class ServiceGroupingConfig(StrictModel):
    """How a service's alerts group into incidents."""

    group_by: tuple[Annotated[str, Field(min_length=1, max_length=256)], ...] = ("alertname",)
    group_window: Duration | None = None
    max_alerts: int | None = Field(default=None, ge=1, le=1_000_000)

    def rule(self) -> GroupingRule:
        every = ALL_LABELS in self.group_by
        return GroupingRule(
            group_by=() if every else self.group_by,
            every_label=every,
            window=self.group_window,
            max_alerts=self.max_alerts,
        )


class TriageConfig(StrictModel):
    service_tiers: Mapping[str, int] = Field(
        default_factory=dict, description="Service id -> tier (0 critical path .. 3 low)."
    )
    grouping: Mapping[str, ServiceGroupingConfig] = Field(default_factory=dict)
    routes: Mapping[str, tuple[RouteConfig, ...]] = Field(
        default_factory=dict, description="Integration id -> its routes, in order."
    )

    blast_radius: Mapping[str, int] = Field(
        default_factory=dict,
        description="Service id -> alert count past which an incident is one level more severe.",
    )
    inhibit_rules: tuple[InhibitRuleConfig, ...] = ()
    severity_rules: tuple[SeverityRuleConfig, ...] = ()

    @property
    def inhibitions(self) -> tuple[InhibitRule, ...]:
        return tuple(rule.rule for rule in self.inhibit_rules)

    def tier(self, service_id: str) -> int:
        return self.service_tiers.get(service_id, DEFAULT_TIER)

    def severity_rule(self, labels: Mapping[str, str]) -> tuple[Severity, int] | None:
        """The severity the first matching `severity_rules` entry sets, and its index."""
        for n, rule in enumerate(self.severity_rules):
            if all(matcher.matches(labels) for matcher in rule.compiled):
                return rule.severity, n
        return None

    def grouping_rule(self, service_id: str) -> GroupingRule:
        found = self.grouping.get(service_id)
        return found.rule() if found is not None else GroupingRule()

    def route(self, integration_id: str, labels: Mapping[str, str]) -> tuple[str, int] | None:
        """The service an alert goes to and the index of the route that sent it there: the
        first route of its integration whose matchers all hold; None: the integration's own
        service."""
        for n, route in enumerate(self.routes.get(integration_id, ())):
            if all(matcher.matches(labels) for matcher in route.compiled):
                return route.service, n
        return None
