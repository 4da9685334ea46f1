"""Datadog webhook → one `AlertReceived` message (pure).

Two bodies are understood. Datadog's default payload (`body`, `last_updated`, `event_type`,
`title`, `date`, `org`, `id`) carries the transition only as the title's prefix, e.g.
`[Triggered on {host:web-1}] CPU high` or `[Recovered] CPU high`. The richer template in the
README adds `alert_id`, `aggregation_key`, `alert_cycle_key`, `alert_transition`,
`alert_priority`, `alert_scope`, `tags`, `hostname`, `link`. Datadog substitutes `$VARIABLES`
as text: an empty string or a variable left unsubstituted (`"$ALERT_SCOPE"`) means "not set".

Identity: the aggregation key when present, else the monitor id and scope, else the title
without its transition prefix; so a `[Recovered]` notice resolves the alert its `[Triggered]`
notice opened.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from schemas import AlertReceived, AlertStatus
from services.ingest.domain.formats.common import (
    ALERTNAME_LIMIT,
    SUMMARY_LIMIT,
    URL_LIMIT,
    Lenient,
    ParseContext,
    clip,
    dedup_fingerprint,
    pairs,
)

_UNSUBSTITUTED = re.compile(r"^\$[A-Z][A-Z0-9_]*$")
# "[Triggered]", "[Re-Triggered on {host:a,env:b}]", "[P1] [Warn]" (priority may come first).
_PREFIX = re.compile(
    r"^\s*(?:\[P[1-5]\]\s*)?\[(?P<transition>[A-Za-z -]+?)(?: on \{(?P<scope>[^}]*)\})?\]\s*"
)
_RESOLVING = {"recovered"}
_SEVERITY_BY_PRIORITY = {"p1": "critical", "p2": "high", "p3": "medium", "p4": "low", "p5": "info"}
_SEVERITY_BY_TRANSITION = {"warn": "warning", "re-warn": "warning"}


def _scalar(value: object) -> object:
    """A template variable's value: text or a number (one error, not one per union member)."""
    if isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate is not text (a ValueError, as in Text)
        return value
    if value is None or isinstance(value, int | float):
        return value
    raise ValueError("expected a string or a number")


Loose = Annotated[str | int | float | None, BeforeValidator(_scalar)]


def _given(value: Loose) -> str | None:
    """A variable's value, or None when Datadog left it empty or unsubstituted."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or _UNSUBSTITUTED.match(text):
        return None
    return text


class DatadogOrg(Lenient):
    id: Loose = None
    name: Loose = None


class DatadogWebhook(Lenient):
    # The default payload.
    id: Loose = None
    title: Loose = None
    body: Loose = None
    date: Loose = None
    last_updated: Loose = None
    event_type: Loose = None
    org: DatadogOrg | None = None
    # The richer template (README).
    alert_id: Loose = None
    aggregation_key: Loose = Field(default=None)
    alert_cycle_key: Loose = None
    alert_transition: Loose = None
    alert_priority: Loose = None
    alert_scope: Loose = None
    alert_title: Loose = None
    tags: Loose = None
    hostname: Loose = None
    link: Loose = Field(default=None)

    @model_validator(mode="after")
    def _names_an_alert(self) -> DatadogWebhook:
        if not any(_given(v) for v in (self.title, self.alert_title, self.aggregation_key)):
            raise ValueError("a Datadog alert needs a title, alert_title or aggregation_key")
        return self


def _tag_labels(text: str | None) -> dict[str, str]:
    """`env:prod, role:db, canary` → {env: prod, role: db, canary: ""}."""
    labels: dict[str, str] = {}
    for tag in (text or "").split(","):
        tag = tag.strip()
        if tag:
            name, _, value = tag.partition(":")
            if name:
                labels[name] = value
    return labels


def _epoch_ms(value: Loose) -> datetime | None:
    text = _given(value)
    if text is None:
        return None
    try:
        milliseconds = float(text)
        return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None  # tolerated: the time is informational


def _status(transition: str | None) -> AlertStatus:
    # Unknown transitions (`Null`, future ones) page rather than drop silently.
    if transition is not None and transition.lower() in _RESOLVING:
        return AlertStatus.RESOLVED
    return AlertStatus.FIRING


def parse(document: object, context: ParseContext) -> list[AlertReceived]:
    webhook = DatadogWebhook.model_validate(document)
    title = _given(webhook.alert_title) or _given(webhook.title) or ""
    prefix = _PREFIX.match(title)
    name = title[prefix.end() :] if prefix else title
    transition = _given(webhook.alert_transition) or (
        prefix.group("transition") if prefix else None
    )
    scope = _given(webhook.alert_scope) or (prefix.group("scope") if prefix else None)
    labels = {**_tag_labels(_given(webhook.tags)), **_tag_labels(scope)}
    if (hostname := _given(webhook.hostname)) is not None:
        labels.setdefault("host", hostname)
    if (monitor_id := _given(webhook.alert_id)) is not None:
        labels["monitor_id"] = monitor_id
    if name:
        labels["alertname"] = clip(name, ALERTNAME_LIMIT)
    priority = _given(webhook.alert_priority)
    severity = _SEVERITY_BY_PRIORITY.get((priority or "").lower()) or _SEVERITY_BY_TRANSITION.get(
        (transition or "").lower()
    )
    if severity is not None:
        labels.setdefault("severity", severity)
    dedup_key = _given(webhook.aggregation_key) or (
        f"monitor:{monitor_id}/{scope or ''}" if monitor_id else f"title:{name}/{scope or ''}"
    )
    annotations = {
        key: value
        for key, value in (
            ("description", _given(webhook.body)),
            ("transition", transition),
            ("priority", priority),
            ("alert_cycle_key", _given(webhook.alert_cycle_key)),
            ("event_id", _given(webhook.id)),
            ("event_type", _given(webhook.event_type)),
            ("org", _given(webhook.org.name) if webhook.org else None),
        )
        if value is not None
    }
    link = _given(webhook.link)
    return [
        AlertReceived(
            occurred_at=context.received_at,
            correlation_id=context.correlation_id,
            fingerprint=dedup_fingerprint(context.integration_id, dedup_key),
            dedup_key=clip(dedup_key, 255),
            status=_status(transition),
            integration_id=context.integration_id,
            source="datadog",
            service_id=context.service_id,
            alertname=clip(name, ALERTNAME_LIMIT),
            summary=clip(name or title or dedup_key, SUMMARY_LIMIT),
            severity=clip(labels["severity"], 64) if "severity" in labels else None,
            labels=pairs(labels),
            annotations=pairs(annotations),
            starts_at=_epoch_ms(webhook.date),
            generator_url=clip(link, URL_LIMIT) if link else None,
        )
    ]
