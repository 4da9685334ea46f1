"""The declarative configuration file (`--config`): services, integrations, users, policies.

The keys here are a public contract (see the README's configuration reference). Loading
validates shape and cross-references and reports every problem in the user's terms, each with
the exact path of the bad key (`users[1].notification_rules[0].contact: unknown contact 'x'`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    model_validator,
)

from tocsin.composition.config_problems import (
    IDENTIFIER_PATTERN,
    ConfigProblems,
    Loc,
    duplicates,
    problems_of,
    unknown,
)
from tocsin.runtime.durations import format_duration, parse_duration

Identifier = Annotated[str, Field(min_length=1, max_length=100, pattern=IDENTIFIER_PATTERN)]


def _to_timedelta(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float):  # bool too: YAML's `yes` is not a duration
        raise ValueError("write durations with a unit, e.g. '30s' or '5m'")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(format_duration, return_type=str),
]


def _non_empty(what: str) -> AfterValidator:
    # Not `Field(min_length=1)`: pydantic then also reports a filled-in tuple whose items are
    # all invalid as empty, a second, false problem.
    def check(items: tuple[object, ...]) -> tuple[object, ...]:
        if not items:
            raise ValueError(f"needs at least one {what}")
        return items

    return AfterValidator(check)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServiceConfig(_Strict):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    tier: int = Field(default=2, ge=0, le=3, description="0 critical path .. 3 low")
    escalation_policy: Identifier


IntegrationType = Literal["alertmanager", "grafana", "datadog", "pagerduty", "generic"]
SIGNED_TYPES = ("grafana", "generic")


class IngestLimitsConfig(_Strict):
    """What one webhook request may carry; past these ingest answers 413 (sizes, counts) or
    422 (a name or value too long), naming the field."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_alerts: int = Field(default=1000, ge=1, le=10_000, description="alerts per request")
    max_labels: int = Field(default=128, ge=1, le=1000, description="labels (and annotations)")
    max_name_length: int = Field(default=256, ge=1, le=1024)
    max_value_length: int = Field(default=8192, ge=1, le=16_384)


class HmacConfig(_Strict):
    """Shared secret for request signatures: Grafana's `X-Grafana-Alerting-Signature` (hex
    HMAC-SHA256 of the body, or of `timestamp:body` with a timestamp header) or, for generic
    senders, `X-Tocsin-Signature: sha256=<hex>`."""

    secret: SecretStr = Field(min_length=16, description="Never logged.")
    timestamp_header: str | None = Field(default=None, min_length=1, max_length=100)
    max_skew: Duration = timedelta(minutes=5)


class IntegrationConfig(_Strict):
    id: Identifier
    type: IntegrationType
    token: SecretStr = Field(min_length=16, description="Stored hashed, never logged.")
    service: Identifier
    hmac: HmacConfig | None = None
    limits: IngestLimitsConfig = IngestLimitsConfig()
    rate_limit_per_minute: int = Field(
        default=600, ge=0, le=1_000_000, description="events per minute (pagerduty); 0 = none"
    )

    @model_validator(mode="after")
    def _signatures_fit_the_type(self) -> IntegrationConfig:
        if self.hmac is not None and self.type not in SIGNED_TYPES:
            raise ConfigProblems(
                [
                    (
                        ("hmac",),
                        f"signatures are supported for {' and '.join(SIGNED_TYPES)} "
                        f"integrations, not {self.type}",
                    )
                ]
            )
        if self.hmac is not None and self.hmac.timestamp_header and self.type != "grafana":
            raise ConfigProblems(
                [
                    (
                        ("hmac", "timestamp_header"),
                        "only Grafana signs with a timestamp; generic signatures have none",
                    )
                ]
            )
        return self


class HeartbeatConfig(_Strict):
    """A job that must ping `POST /v1/heartbeats/{token}` at least every `interval` (+ grace);
    a missed ping raises an alert on `service`, the next ping resolves it."""

    id: Identifier
    token: SecretStr = Field(min_length=16, description="Stored hashed, never logged.")
    service: Identifier
    interval: Duration
    grace: Duration = timedelta(0)
    severity: str = Field(default="critical", min_length=1, max_length=64)
    summary: str | None = Field(default=None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _interval_is_positive(self) -> HeartbeatConfig:
        if self.interval < timedelta(seconds=1):
            raise ConfigProblems([(("interval",), "must be at least 1s")])
        return self


class ContactConfig(_Strict):
    """`webhook` POSTs the page to `address`; `log` writes it to Tocsin's own log."""

    id: Identifier
    type: Literal["webhook", "log"]
    address: str | None = Field(default=None, min_length=1, max_length=2048)

    @model_validator(mode="after")
    def _webhook_is_http(self) -> ContactConfig:
        # The address is not repeated in the message: webhook URLs can carry secrets.
        if self.type == "webhook" and self.address is None:
            problem = "missing: a webhook contact needs an http:// or https:// URL"
            raise ConfigProblems([(("address",), problem)])
        if self.type == "webhook" and not (self.address or "").startswith(("http://", "https://")):
            raise ConfigProblems([(("address",), "must be an http:// or https:// URL")])
        return self


class NotificationRuleConfig(_Strict):
    contact: Identifier
    after: Duration = timedelta(0)


class UserConfig(_Strict):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    contacts: tuple[ContactConfig, ...] = ()
    notification_rules: tuple[NotificationRuleConfig, ...] = ()

    @model_validator(mode="after")
    def _rules_name_contacts(self) -> UserConfig:
        contact_ids = [contact.id for contact in self.contacts]
        problems: list[tuple[Loc, str]] = [
            (("contacts", n, "id"), f"duplicate contact id {contact_id!r} (also contacts[{first}])")
            for n, first, contact_id in duplicates(contact_ids)
        ]
        has = f"has: {', '.join(contact_ids)}" if contact_ids else "has no contacts"
        for n, rule in enumerate(self.notification_rules):
            if rule.contact not in contact_ids:
                problems.append(
                    (
                        ("notification_rules", n, "contact"),
                        f"unknown contact {rule.contact!r} (user {self.id!r} {has})",
                    )
                )
        if problems:
            raise ConfigProblems(problems)
        return self


class TargetConfig(_Strict):
    user: Identifier


class LevelConfig(_Strict):
    delay: Duration = timedelta(0)
    targets: Annotated[tuple[TargetConfig, ...], _non_empty("target")]


class EscalationPolicyConfig(_Strict):
    id: Identifier
    repeat: int = Field(default=0, ge=0, le=20)
    levels: Annotated[tuple[LevelConfig, ...], _non_empty("level")]


class TocsinConfig(_Strict):
    services: tuple[ServiceConfig, ...] = ()
    integrations: tuple[IntegrationConfig, ...] = ()
    heartbeats: tuple[HeartbeatConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    escalation_policies: tuple[EscalationPolicyConfig, ...] = ()

    def reference_problems(self) -> list[str]:
        """Duplicate ids and cross-references that do not resolve, one problem per bad key."""
        problems: list[str] = []
        for section, ids in (
            ("services", [s.id for s in self.services]),
            ("integrations", [i.id for i in self.integrations]),
            ("heartbeats", [h.id for h in self.heartbeats]),
            ("users", [u.id for u in self.users]),
            ("escalation_policies", [p.id for p in self.escalation_policies]),
        ):
            problems.extend(
                f"{section}[{n}].id: duplicate id {entry_id!r} (also {section}[{first}])"
                for n, first, entry_id in duplicates(ids)
            )
        policy_ids = [p.id for p in self.escalation_policies]
        service_ids = [s.id for s in self.services]
        user_ids = [u.id for u in self.users]
        for n, service in enumerate(self.services):
            if service.escalation_policy not in policy_ids:
                problems.append(
                    f"services[{n}].escalation_policy: "
                    + unknown("escalation policy", service.escalation_policy, policy_ids)
                )
        for n, integration in enumerate(self.integrations):
            if integration.service not in service_ids:
                problems.append(
                    f"integrations[{n}].service: "
                    + unknown("service", integration.service, service_ids)
                )
        problems.extend(self._ingest_problems(service_ids))
        for p, policy in enumerate(self.escalation_policies):
            for lv, level in enumerate(policy.levels):
                for t, target in enumerate(level.targets):
                    if target.user not in user_ids:
                        problems.append(
                            f"escalation_policies[{p}].levels[{lv}].targets[{t}].user: "
                            + unknown("user", target.user, user_ids)
                        )
        return problems

    def _ingest_problems(self, service_ids: list[str]) -> list[str]:
        problems = []
        # A token names one integration or heartbeat (a duplicated entry is reported above).
        seen: dict[str, tuple[str, str]] = {}
        tokens = [
            (f"integrations[{n}]", f"i:{i.id}", i.token) for n, i in enumerate(self.integrations)
        ]
        tokens += [
            (f"heartbeats[{n}]", f"h:{h.id}", h.token) for n, h in enumerate(self.heartbeats)
        ]
        for where, key, token in tokens:
            first, first_key = seen.setdefault(token.get_secret_value(), (where, key))
            if first != where and first_key != key:
                problems.append(f"{where}.token: the same token as {first}")
        for n, heartbeat in enumerate(self.heartbeats):
            if heartbeat.service not in service_ids:
                problems.append(
                    f"heartbeats[{n}].service: "
                    + unknown("service", heartbeat.service, service_ids)
                )
        return problems

    def service(self, service_id: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.id == service_id), None)

    def policy(self, policy_id: str) -> EscalationPolicyConfig | None:
        return next((p for p in self.escalation_policies if p.id == policy_id), None)

    def user(self, user_id: str) -> UserConfig | None:
        return next((u for u in self.users if u.id == user_id), None)


class ConfigError(Exception):
    """The configuration file is unreadable or invalid; `problems` name each bad key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def parse_config(document: object, source: str = "config") -> TocsinConfig:
    if document is None:
        return TocsinConfig()
    if not isinstance(document, dict):
        raise ConfigError(source, ["(top level): expected a mapping of sections"])
    try:
        config = TocsinConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError(source, problems_of(error, TocsinConfig)) from None
    problems = config.reference_problems()
    if problems:
        raise ConfigError(source, problems)
    return config


def load_config(path: Path) -> TocsinConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), [f"cannot read: {error.strerror}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(str(path), [f"not valid YAML: {error}"]) from None
    return parse_config(document, str(path))
