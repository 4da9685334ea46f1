"""The declarative configuration file (`--config`): services, integrations, users, policies.

The file is one document; each service declares the models of its own keys in its `config.py`
(integrations in ingest, contacts in notifier, policies and notification rules in escalation)
and receives only its section (`TocsinConfig.ingest()`, ...). This module composes them, checks
the references across sections, and owns what spans several (services, users).

The keys here are a public contract (see the README's configuration reference). Loading
validates shape and cross-references and reports every problem in the user's terms, each with
the exact path of the bad key (`users[1].notification_rules[0].contact: unknown contact 'x'`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import Field, ValidationError, model_validator

from services.escalation.config import (
    EscalationConfig,
    EscalationPolicyConfig,
    EscalationService,
    EscalationUser,
    NotificationRuleConfig,
    ReviewsConfig,
    ScheduleConfig,
    ServiceUrgencyConfig,
)
from services.escalation.console.catalogue import (
    Catalogue,
    DeclaredIntegration,
    DeclaredService,
)
from services.escalation.domain.cadence import UpdatesConfig
from services.ingest.config import HeartbeatConfig, IngestConfig, IntegrationConfig
from services.notifier.config import (
    CALLS_BACK,
    PROVIDER_OF,
    ContactConfig,
    NotifierConfig,
    ProvidersConfig,
)
from services.notifier.status_config import (
    StatusPageConfig,
    status_page_problems,
    update_cadence,
)
from services.triage.config import (
    FlappingConfig,
    InhibitRuleConfig,
    MaintenanceWindowConfig,
    RouteConfig,
    ServiceGroupingConfig,
    SeverityRuleConfig,
    TriageConfig,
    matcher_problems,
)
from tocsin.runtime.access import Person, Role
from tocsin.runtime.config_problems import (
    ConfigProblems,
    Loc,
    duplicates,
    problems_of,
    unknown,
)
from tocsin.runtime.config_types import Duration, Identifier, StrictModel


class ServiceConfig(StrictModel):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    tier: int = Field(default=2, ge=0, le=3, description="0 critical path .. 3 low")
    escalation_policy: Identifier
    urgency: ServiceUrgencyConfig = ServiceUrgencyConfig()
    # Triage: how this service's alerts group into incidents.
    group_by: tuple[Annotated[str, Field(min_length=1, max_length=256)], ...] = Field(
        default=("alertname",), description="Label names; ['...'] = every label."
    )
    group_window: Duration | None = None
    max_alerts: int | None = Field(default=None, ge=1, le=1_000_000)
    blast_radius: int | None = Field(
        default=None, ge=1, le=1_000_000, description="More alerts in an incident: one level up."
    )
    flapping: FlappingConfig | None = Field(
        default=None, description="This service's flap detection (else the top-level one)."
    )


class UserConfig(StrictModel):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    # Responder by default: everyone in the file is someone who may be paged, and a person who
    # is paged must be able to acknowledge. Admin is never implied; viewers are said so.
    role: Role = Field(
        default=Role.RESPONDER,
        description="admin (everything), responder (act on incidents, silences, overrides), "
        "viewer (read only).",
    )
    password_hash: str | None = Field(
        default=None,
        pattern=r"^\$argon2(id|i|d)\$",
        description="argon2 hash for the console's password login (`tocsin users "
        "hash-password`); without it, the user logs in with a personal API key.",
    )
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


class TocsinConfig(StrictModel):
    services: tuple[ServiceConfig, ...] = ()
    integrations: tuple[IntegrationConfig, ...] = ()
    heartbeats: tuple[HeartbeatConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    escalation_policies: tuple[EscalationPolicyConfig, ...] = ()
    schedules: tuple[ScheduleConfig, ...] = ()
    public_url: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="Where people and providers reach Tocsin (pages link here, callbacks).",
    )
    providers: ProvidersConfig = ProvidersConfig()
    inhibit_rules: tuple[InhibitRuleConfig, ...] = Field(
        default=(), description="Alertmanager-style inhibition (triage)."
    )
    severity_rules: tuple[SeverityRuleConfig, ...] = Field(
        default=(), description="Alerts matching get this severity (triage; first match wins)."
    )
    maintenance_windows: tuple[MaintenanceWindowConfig, ...] = Field(
        default=(), description="Services in maintenance: their alerts page nothing (triage)."
    )
    flapping: FlappingConfig | None = Field(
        default=None, description="Flap detection for every service (triage; unset: off)."
    )
    reviews: ReviewsConfig = ReviewsConfig()
    status_pages: tuple[StatusPageConfig, ...] = Field(
        default=(), description="Public status pages (notifier) and the update cadence."
    )

    def reference_problems(self) -> list[str]:
        """Duplicate ids and cross-references that do not resolve, one problem per bad key."""
        problems: list[str] = []
        for section, ids in (
            ("services", [s.id for s in self.services]),
            ("integrations", [i.id for i in self.integrations]),
            ("heartbeats", [h.id for h in self.heartbeats]),
            ("users", [u.id for u in self.users]),
            ("escalation_policies", [p.id for p in self.escalation_policies]),
            ("schedules", [s.id for s in self.schedules]),
            ("maintenance_windows", [w.id for w in self.maintenance_windows]),
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
            for r, route in enumerate(integration.routes):
                where = f"integrations[{n}].routes[{r}]"
                if route.service not in service_ids:
                    problems.append(
                        f"{where}.service: " + unknown("service", route.service, service_ids)
                    )
                problems.extend(
                    f"{where}.matchers[{m}]: {problem}"
                    for (m,), problem in matcher_problems(route.matchers)
                )
        for n, window in enumerate(self.maintenance_windows):
            problems.extend(
                f"maintenance_windows[{n}].services[{k}]: " + unknown("service", sid, service_ids)
                for k, sid in enumerate(window.services)
                if sid not in service_ids
            )
        problems.extend(status_page_problems(self.status_pages, service_ids))
        problems.extend(self._ingest_problems(service_ids))
        problems.extend(self._contact_problems())
        problems.extend(self._escalation_problems(user_ids))
        return problems

    def _escalation_problems(self, user_ids: list[str]) -> list[str]:
        """Policy targets and schedule layers name users and schedules that exist."""
        problems = []
        schedule_ids = [s.id for s in self.schedules]
        for p, policy in enumerate(self.escalation_policies):
            for lv, level in enumerate(policy.levels):
                for t, target in enumerate(level.targets):
                    where = f"escalation_policies[{p}].levels[{lv}].targets[{t}]"
                    if target.user is not None and target.user not in user_ids:
                        problems.append(f"{where}.user: " + unknown("user", target.user, user_ids))
                    if target.schedule is not None and target.schedule not in schedule_ids:
                        problems.append(
                            f"{where}.schedule: "
                            + unknown("schedule", target.schedule, schedule_ids)
                        )
        for s, schedule in enumerate(self.schedules):
            for lv, layer in enumerate(schedule.layers):
                for u, user in enumerate(layer.users):
                    if user not in user_ids:
                        problems.append(
                            f"schedules[{s}].layers[{lv}].users[{u}]: "
                            + unknown("user", user, user_ids)
                        )
        return problems

    def _contact_problems(self) -> list[str]:
        """A contact type that needs a provider (or callbacks) names what is missing."""
        problems = []
        for u, user in enumerate(self.users):
            for c, contact in enumerate(user.contacts):
                where = f"users[{u}].contacts[{c}].type"
                provider = PROVIDER_OF[contact.type]
                if provider and getattr(self.providers, provider) is None:
                    problems.append(f"{where}: {contact.type} needs providers.{provider}")
                if contact.type in CALLS_BACK and self.public_url is None:
                    problems.append(
                        f"{where}: {contact.type} needs public_url (where people acknowledge)"
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

    def user(self, user_id: str) -> UserConfig | None:
        return next((u for u in self.users if u.id == user_id), None)

    def people(self) -> dict[str, Person]:
        """Access control's view of the users (tocsin.runtime.access)."""
        return {u.id: Person(u.id, u.name, u.role, u.password_hash) for u in self.users}

    # Each service gets only its own section (services never see the whole file).

    def ingest(self) -> IngestConfig:
        return IngestConfig(integrations=self.integrations, heartbeats=self.heartbeats)

    def triage(self) -> TriageConfig:
        return TriageConfig(
            service_tiers={s.id: s.tier for s in self.services},
            grouping={
                s.id: ServiceGroupingConfig(
                    group_by=s.group_by, group_window=s.group_window, max_alerts=s.max_alerts
                )
                for s in self.services
            },
            routes={
                i.id: tuple(
                    RouteConfig(matchers=route.matchers, service=route.service)
                    for route in i.routes
                )
                for i in self.integrations
                if i.routes
            },
            blast_radius={s.id: s.blast_radius for s in self.services if s.blast_radius},
            inhibit_rules=self.inhibit_rules,
            severity_rules=self.severity_rules,
            maintenance_windows=self.maintenance_windows,
            flapping=self.flapping,
            flapping_by_service={s.id: s.flapping for s in self.services if s.flapping},
        )

    def escalation(self) -> EscalationConfig:
        return EscalationConfig(
            reviews=self.reviews,
            policies=self.escalation_policies,
            services={
                s.id: EscalationService(
                    policy=s.escalation_policy, name=s.name, tier=s.tier, urgency=s.urgency
                )
                for s in self.services
            },
            schedules=self.schedules,
            users=tuple(
                EscalationUser(
                    id=u.id,
                    name=u.name,
                    notification_rules=u.notification_rules,
                    contact_ids=tuple(c.id for c in u.contacts),
                )
                for u in self.users
            ),
        )

    def notifier(self) -> NotifierConfig:
        return NotifierConfig(
            contacts={u.id: u.contacts for u in self.users},
            providers=self.providers,
            public_url=self.public_url,
            status_pages=self.status_pages,
        )

    def catalogue(self) -> Catalogue:
        """The console's services page: services with their integrations and heartbeats."""
        return Catalogue.of(
            [DeclaredService(s.id, s.name, s.tier, s.escalation_policy) for s in self.services],
            [
                DeclaredIntegration(i.id, i.type, i.service, i.token, signed=i.hmac is not None)
                for i in self.integrations
            ]
            + [DeclaredIntegration(h.id, "heartbeat", h.service, h.token) for h in self.heartbeats],
        )

    def status_updates(self) -> UpdatesConfig:
        """Escalation's view of the status pages: the update cadence and component ids."""
        per_service, default = update_cadence(self.status_pages)
        components = {c.id for page in self.status_pages for c in page.components}
        return UpdatesConfig(per_service, default, frozenset(components))


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
