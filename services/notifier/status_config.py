"""The `status_pages:` section: public status pages, their components, when an incident becomes
public on its own, the update cadence per severity, and the stakeholders told of every update.

```yaml
status_pages:
  - id: public
    title: Example Inc. status
    components:
      - {id: checkout, name: Checkout, services: [checkout], group: Shopping}
    auto_publish: [SEV0, SEV1]          # these open with an "Investigating" update at once
    name_template: "{components}: investigating an issue"
    message_template: "We are investigating an issue affecting {components}."
    cadence: {SEV0: 30m, SEV1: 60m}     # an open incident's next update is due after this
    subscribers:                         # stakeholders: every update, public or not
      - {type: email, address: cto@example.com}
      - {type: slack, address: C0123456, services: [checkout]}
      - {type: webhook, address: https://hooks.example.com/status}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from string import Formatter
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from schemas import Severity
from tocsin.runtime.config_problems import ConfigProblems, Loc, duplicates
from tocsin.runtime.config_types import Duration, Identifier, StrictModel

DEFAULT_CADENCE: Mapping[Severity, timedelta] = {
    Severity.SEV0: timedelta(minutes=30),
    Severity.SEV1: timedelta(minutes=60),
}
DEFAULT_NAME_TEMPLATE = "{components}: investigating an issue"
DEFAULT_MESSAGE_TEMPLATE = (
    "We are investigating an issue affecting {components}. "
    "We will post an update as soon as we know more."
)
_TEMPLATE_FIELDS = {"components", "page"}

SubscriberType = Literal["email", "slack", "webhook"]


class ComponentConfig(StrictModel):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    services: tuple[Identifier, ...] = Field(
        default=(), description="Open incidents on these services set the component's status."
    )
    group: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)


class SubscriberConfig(StrictModel):
    """A stakeholder: gets every update (public or not) of incidents on the page's services, or
    on `services` only."""

    type: SubscriberType
    address: str = Field(min_length=1, max_length=2048)
    services: tuple[Identifier, ...] = ()

    @model_validator(mode="after")
    def _address_fits(self) -> SubscriberConfig:
        if self.type == "webhook" and not self.address.startswith(("http://", "https://")):
            raise ConfigProblems([(("address",), "must be an http:// or https:// URL")])
        if self.type == "email":
            local, at, domain = self.address.rpartition("@")
            if not at or not local or "." not in domain or any(c.isspace() for c in self.address):
                raise ConfigProblems(
                    [(("address",), "must be an e-mail address like cto@example.com")]
                )
        return self


def _template(value: str) -> str:
    try:
        names = {name for _, name, _, _ in Formatter().parse(value) if name is not None}
    except ValueError as error:
        raise ValueError(f"not a valid template: {error}") from None
    unknown = names - _TEMPLATE_FIELDS
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{sorted(unknown)[0]}}}; use {{components}} or {{page}}"
        )
    return value


class StatusPageConfig(StrictModel):
    id: Identifier
    title: str = Field(min_length=1, max_length=200)
    components: tuple[ComponentConfig, ...] = ()
    auto_publish: tuple[Severity, ...] = Field(
        default=(Severity.SEV0, Severity.SEV1),
        description="Incidents of these severities are public at once, with an 'Investigating' "
        "update from the templates; others only once an operator posts a public update.",
    )
    name_template: Annotated[str, Field(min_length=1, max_length=300)] = DEFAULT_NAME_TEMPLATE
    message_template: Annotated[str, Field(min_length=1, max_length=2000)] = (
        DEFAULT_MESSAGE_TEMPLATE
    )
    cadence: Mapping[Severity, Duration] = Field(
        default_factory=lambda: dict(DEFAULT_CADENCE),
        description="An open incident of this severity needs an update this often.",
    )
    subscribers: tuple[SubscriberConfig, ...] = ()
    time_zone: str = Field(default="Etc/UTC", max_length=64)

    _check_name = field_validator("name_template")(_template)
    _check_message = field_validator("message_template")(_template)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name like Europe/Paris)"
            ) from None
        return value

    @model_validator(mode="after")
    def _unique_components(self) -> StatusPageConfig:
        problems: list[tuple[Loc, str]] = [
            (("components", n, "id"), f"duplicate component id {cid!r} (also components[{first}])")
            for n, first, cid in duplicates([c.id for c in self.components])
        ]
        problems.extend(
            (("cadence", severity.value), "must be longer than 0s")
            for severity, every in self.cadence.items()
            if every <= timedelta(0)
        )
        if problems:
            raise ConfigProblems(problems)
        return self

    def component(self, component_id: str) -> ComponentConfig | None:
        return next((c for c in self.components if c.id == component_id), None)


def status_page_problems(pages: tuple[StatusPageConfig, ...], service_ids: list[str]) -> list[str]:
    """Cross-references: page ids unique, services named by components and subscribers exist."""
    problems = [
        f"status_pages[{n}].id: duplicate id {page_id!r} (also status_pages[{first}])"
        for n, first, page_id in duplicates([p.id for p in pages])
    ]
    for p, page in enumerate(pages):
        for c, component in enumerate(page.components):
            problems.extend(
                f"status_pages[{p}].components[{c}].services[{k}]: unknown service {sid!r}"
                for k, sid in enumerate(component.services)
                if sid not in service_ids
            )
        for s, subscriber in enumerate(page.subscribers):
            problems.extend(
                f"status_pages[{p}].subscribers[{s}].services[{k}]: unknown service {sid!r}"
                for k, sid in enumerate(subscriber.services)
                if sid not in service_ids
            )
    return problems


def update_cadence(
    pages: tuple[StatusPageConfig, ...],
) -> tuple[Mapping[str, Mapping[Severity, timedelta]], Mapping[Severity, timedelta]]:
    """(per service, default): the shortest cadence of the pages showing a service; services
    on no page take the default cadence."""
    per_service: dict[str, dict[Severity, timedelta]] = {}
    for page in pages:
        for component in page.components:
            for service in component.services:
                mine = per_service.setdefault(service, {})
                for severity, every in page.cadence.items():
                    mine[severity] = min(every, mine.get(severity, every))
    return per_service, dict(DEFAULT_CADENCE)
