"""`changes.raw` (ingest → triage): something changed on a service (a deploy, a config change,
a feature flag), as a PagerDuty Change Event or a generic deploy body said it. Changes page
nobody; triage keeps them and shows those of the 30 minutes before an incident opened."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.envelope import Contract, Envelope, Label, UtcDatetime

MAX_CHANGE_LINKS = 10
MAX_CHANGE_DETAILS = 32


class ChangeLink(Contract):
    """A link about the change (the pipeline run, the pull request, the release notes)."""

    href: str = Field(min_length=1, max_length=4096)
    text: str | None = Field(default=None, max_length=1024)


class ChangeReceived(Envelope):
    """An integration said something changed on its service; keyed by service id."""

    kind: Literal["change.received"] = "change.received"
    integration_id: str = Field(min_length=1, max_length=200)
    integration_type: str = Field(
        min_length=1, max_length=64, description="The integration's type, e.g. pagerduty."
    )
    service_id: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=1024)
    at: UtcDatetime = Field(description="When the change happened (the sender's timestamp).")
    source: str | None = Field(
        default=None, max_length=1024, description="What made the change (a pipeline, a host)."
    )
    version: str | None = Field(default=None, max_length=256)
    links: tuple[ChangeLink, ...] = Field(default=(), max_length=MAX_CHANGE_LINKS)
    details: tuple[Label, ...] = Field(
        default=(),
        max_length=MAX_CHANGE_DETAILS,
        description="The sender's custom details, one pair per top-level key (JSON text for "
        "values that are not strings).",
    )


class ChangeSummary(Contract):
    """A change on an incident's service shortly before it opened, as an incident carries it."""

    summary: str = Field(min_length=1, max_length=1024)
    at: UtcDatetime
    source: str | None = Field(default=None, max_length=1024)
    version: str | None = Field(default=None, max_length=256)
    links: tuple[ChangeLink, ...] = Field(default=(), max_length=MAX_CHANGE_LINKS)
