"""The hot path of Alertmanager bodies, and of Grafana's (the same shape) (pure): the whole
body validated in one call into plain dicts (pydantic-core, in Rust), each alert serialized
straight to the `AlertReceived` JSON, no model per alert or per label.

It only ever answers for bodies it is sure about: whenever anything is off (a schema error, a
limit, a label name the contract refuses, a naive time stamp, text that is not Unicode) it
returns None and the caller takes the reference path (`alertmanager.parse` plus
`limits.check`), which gives the exact 4xx answer. So the hot path needs no error messages of
its own, and a test checks that both paths agree message for message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, NotRequired

import orjson
from pydantic import Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from schemas import AlertStatus
from services.ingest.config import IngestLimitsConfig
from services.ingest.domain.formats.common import (
    ALERTNAME_LIMIT,
    SUMMARY_LIMIT,
    URL_LIMIT,
    ParseContext,
    first_present,
    label_fingerprint,
    present,
)

_ZERO_TIME_YEAR = 1
_SEVERITY_LIMIT = 64


class _Alert(TypedDict):
    status: AlertStatus
    labels: NotRequired[dict[str, str]]
    annotations: NotRequired[dict[str, str]]
    startsAt: NotRequired[datetime | None]
    endsAt: NotRequired[datetime | None]
    generatorURL: NotRequired[Annotated[str | None, Field(max_length=URL_LIMIT)]]
    fingerprint: NotRequired[Annotated[str | None, Field(max_length=256)]]


class _Webhook(TypedDict):
    # The same fields and constraints as `alertmanager.AlertmanagerWebhook` (unknown fields
    # are ignored by both); only the Unicode check of `Text` is left to `_is_text`.
    version: NotRequired[str]
    groupKey: NotRequired[str | None]
    status: NotRequired[AlertStatus | None]
    receiver: NotRequired[str | None]
    alerts: Annotated[list[_Alert], Field(max_length=10_000)]


class _GrafanaAlert(_Alert):
    values: NotRequired[dict[str, float | None] | None]
    valueString: NotRequired[str | None]
    silenceURL: NotRequired[Annotated[str | None, Field(max_length=URL_LIMIT)]]
    dashboardURL: NotRequired[Annotated[str | None, Field(max_length=URL_LIMIT)]]
    panelURL: NotRequired[Annotated[str | None, Field(max_length=URL_LIMIT)]]
    imageURL: NotRequired[Annotated[str | None, Field(max_length=URL_LIMIT)]]


class _GrafanaWebhook(TypedDict):
    # `grafana.GrafanaWebhook`'s fields and constraints.
    version: NotRequired[str | None]
    groupKey: NotRequired[str | None]
    status: NotRequired[AlertStatus | None]
    receiver: NotRequired[str | None]
    alerts: Annotated[list[_GrafanaAlert], Field(max_length=10_000)]
    orgId: NotRequired[int | None]
    state: NotRequired[str | None]
    title: NotRequired[str | None]
    message: NotRequired[str | None]


_WEBHOOK: TypeAdapter[_Webhook] = TypeAdapter(_Webhook)
_GRAFANA_WEBHOOK: TypeAdapter[_GrafanaWebhook] = TypeAdapter(_GrafanaWebhook)
_GRAFANA_LINKS = ("valueString", "silenceURL", "dashboardURL", "panelURL", "imageURL")


def _is_text(value: str | None) -> bool:
    """False for a lone surrogate (not Unicode; the reference path answers 422)."""
    if value is None:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _pairs_fit(mapping: Mapping[str, str], limits: IngestLimitsConfig) -> bool:
    # Within the configured limits (at most 1,024 and 16,384 characters) a pair also fits the
    # `Label` contract, except an empty name, which the contract refuses.
    if len(mapping) > limits.max_labels:
        return False
    max_name, max_value = limits.max_name_length, limits.max_value_length
    for name, value in mapping.items():
        if not name or len(name) > max_name or len(value) > max_value:
            return False
    return True


def _time(value: datetime | None) -> datetime | bool | None:
    """The contract's time (UTC), None for no time, False when the contract refuses it."""
    if value is None or value.year == _ZERO_TIME_YEAR:
        return None
    if value.tzinfo is None:
        return False
    return value.astimezone(UTC)


def _pair_list(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": mapping[name]} for name in sorted(mapping)]


def parse(
    document: object, context: ParseContext, limits: IngestLimitsConfig
) -> list[tuple[str, bytes]] | None:
    """(fingerprint, `AlertReceived` JSON) per alert, or None: take the reference path."""
    try:
        webhook = _WEBHOOK.validate_python(document)
    except ValidationError:
        return None
    texts = (webhook.get("version"), webhook.get("groupKey"), webhook.get("receiver"))
    if not all(_is_text(text) for text in texts):
        return None
    return _messages(
        webhook["alerts"], [{}] * len(webhook["alerts"]), None, "alertmanager", context, limits
    )


def parse_grafana(
    document: object, context: ParseContext, limits: IngestLimitsConfig
) -> list[tuple[str, bytes]] | None:
    """`parse` for Grafana's bodies: its links and values become annotations, its title the
    summary of last resort (as `grafana.parse` does)."""
    try:
        webhook = _GRAFANA_WEBHOOK.validate_python(document)
    except ValidationError:
        return None
    texts = (
        webhook.get("version"),
        webhook.get("groupKey"),
        webhook.get("receiver"),
        webhook.get("state"),
        webhook.get("title"),
        webhook.get("message"),
    )
    if not all(_is_text(text) for text in texts):
        return None
    extras = []
    for alert in webhook["alerts"]:
        links = (
            alert.get("valueString"),
            alert.get("silenceURL"),
            alert.get("dashboardURL"),
            alert.get("panelURL"),
            alert.get("imageURL"),
        )
        extra: dict[str, str] = {}
        for name, link in zip(_GRAFANA_LINKS, links, strict=True):
            value = present(link)
            if value is not None:
                extra[name] = value
        values = alert.get("values")
        if values:
            # json.dumps escapes a lone surrogate, so orjson would not see it: check the names.
            if not all(_is_text(name) for name in values):
                return None
            extra["values"] = json.dumps(values, sort_keys=True)
        extras.append(extra)
    return _messages(webhook["alerts"], extras, webhook.get("title"), "grafana", context, limits)


def _messages(
    alerts: list[_Alert] | list[_GrafanaAlert],
    extras: list[dict[str, str]],
    fallback_summary: str | None,
    source: str,
    context: ParseContext,
    limits: IngestLimitsConfig,
) -> list[tuple[str, bytes]] | None:
    if len(alerts) > limits.max_alerts:
        return None
    occurred_at = context.received_at.astimezone(UTC)
    messages: list[tuple[str, bytes]] = []
    for alert, extra in zip(alerts, extras, strict=True):
        labels = alert.get("labels", {})
        sent = alert.get("annotations", {})
        annotations = {**extra, **sent} if extra else sent
        if not (_pairs_fit(labels, limits) and _pairs_fit(annotations, limits)):
            return None
        starts_at = _time(alert.get("startsAt"))
        ends_at = _time(alert.get("endsAt"))
        if starts_at is False or ends_at is False:
            return None
        status = alert["status"]
        try:
            fingerprint = alert.get("fingerprint") or label_fingerprint(labels)
        except UnicodeEncodeError:  # a lone surrogate in a label
            return None
        alertname = labels.get("alertname", "")
        summary = first_present((sent.get("summary"), sent.get("description")))
        if status is AlertStatus.FIRING:
            summary = first_present((summary, alertname, fallback_summary)) or fingerprint
        severity = labels.get("severity")
        message = {
            "event_id": str(uuid.uuid4()),
            "schema_version": 1,
            "occurred_at": occurred_at,
            "correlation_id": context.correlation_id,
            "kind": "alert.received",
            "fingerprint": fingerprint,
            "dedup_key": None,
            "status": status.value,
            "integration_id": context.integration_id,
            "source": source,
            "service_id": context.service_id,
            "alertname": alertname[:ALERTNAME_LIMIT],
            "summary": (summary or "")[:SUMMARY_LIMIT],
            "severity": severity[:_SEVERITY_LIMIT] if severity is not None else None,
            "labels": _pair_list(labels),
            "annotations": _pair_list(annotations),
            "starts_at": starts_at,
            "ends_at": ends_at,
            "generator_url": alert.get("generatorURL"),
        }
        try:
            # orjson refuses lone surrogates, wherever they are (names, values, fingerprint).
            value = orjson.dumps(message, option=orjson.OPT_UTC_Z)
        except orjson.JSONEncodeError:
            return None
        messages.append((fingerprint, value))
    return messages
