"""Triage's part of the configuration file: each service's tier (it weighs in the severity) and
grouping, the routes of each integration, and the inhibition rules. The composition root hands
triage a `TriageConfig`.

Matchers are written in Alertmanager's syntax (`team="payments"`, `env=~"prod|live"`), checked
when the file loads (a bad one is a config problem at its exact key) and compiled once, here:
the consumer only calls `matches`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, PrivateAttr, model_validator

from schemas import Severity
from services.triage.domain.flapping import FlappingRule
from services.triage.domain.grouping import GroupingRule
from services.triage.domain.inhibition import InhibitRule
from services.triage.domain.maintenance import MaintenanceError, MaintenanceWindow, validate, zone
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


class FlappingConfig(StrictModel):
    """`flapping:` (top level, or a service's own): an alert that changes between firing and
    resolved more than `transitions` times within `window` flaps; its incident stays open and
    its flaps page nobody until it went `quiet` without a change."""

    transitions: int = Field(default=5, ge=1, le=1000)
    window: Duration = timedelta(minutes=30)
    quiet: Duration = timedelta(minutes=30)

    def rule(self) -> FlappingRule:
        return FlappingRule(self.transitions, self.window, self.quiet)


class MaintenanceWindowConfig(StrictModel):
    """`maintenance_windows[]`: the services' alerts are held while an occurrence is in force.

    `starts_at` is the first occurrence's start: with an offset (`2026-03-01T02:00:00+01:00`),
    or without one, then read in `timezone`. Its end is `ends_at` or `duration` (exactly one).
    `rrule` (an RFC 5545 RRULE, e.g. `FREQ=WEEKLY;BYDAY=SU`) repeats it at the same wall-clock
    time in `timezone` (an IANA name, default UTC)."""

    id: Identifier
    services: tuple[Identifier, ...] = Field(min_length=1, max_length=1000)
    starts_at: datetime
    ends_at: datetime | None = None
    duration: Duration | None = None
    rrule: str | None = Field(default=None, min_length=1, max_length=1024)
    timezone: str = Field(default="UTC", min_length=1, max_length=100)
    comment: str = Field(default="", max_length=4096)
    _window: MaintenanceWindow | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _valid_window(self) -> MaintenanceWindowConfig:
        if (self.ends_at is None) == (self.duration is None):
            raise ConfigProblems([(("ends_at",), "set exactly one of ends_at and duration")])
        try:
            tz = zone(self.timezone)
        except MaintenanceError as error:
            raise ConfigProblems([(("timezone",), str(error).removeprefix("timezone: "))]) from None
        starts_at = self.starts_at if self.starts_at.tzinfo else self.starts_at.replace(tzinfo=tz)
        if self.ends_at is not None:
            ends_at = self.ends_at if self.ends_at.tzinfo else self.ends_at.replace(tzinfo=tz)
            duration = ends_at - starts_at
        else:
            duration = self.duration or timedelta(0)
        window = MaintenanceWindow(
            id=self.id,
            services=self.services,
            starts_at=starts_at,
            duration=duration,
            rrule=self.rrule,
            timezone=self.timezone,
            comment=self.comment,
        )
        try:
            validate(window)
        except MaintenanceError as error:
            key, _, problem = str(error).partition(": ")
            known = {"services", "starts_at", "ends_at", "duration", "rrule", "timezone"}
            at = key if key in known else ("ends_at" if self.ends_at is not None else "duration")
            raise ConfigProblems([((at,), problem if key in known else str(error))]) from None
        self._window = window
        return self

    @property
    def window(self) -> MaintenanceWindow:
        assert self._window is not None  # set by the validator
        return self._window


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
    maintenance_windows: tuple[MaintenanceWindowConfig, ...] = ()
    flapping: FlappingConfig | None = Field(
        default=None, description="Flap detection for every service (None: off)."
    )
    flapping_by_service: Mapping[str, FlappingConfig] = Field(
        default_factory=dict, description="Service id -> its own flap detection."
    )

    def flapping_rule(self, service_id: str) -> FlappingRule | None:
        found = self.flapping_by_service.get(service_id, self.flapping)
        return found.rule() if found is not None else None

    @property
    def windows(self) -> tuple[MaintenanceWindow, ...]:
        """The configured maintenance windows (those created through the API are added to
        them by maintenance_store.WindowsInForce)."""
        return tuple(entry.window for entry in self.maintenance_windows)

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
