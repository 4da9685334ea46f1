"""PagerDuty Events API v2 event → what ingest does with it (pure).

`trigger` fires the alert named by `dedup_key` (generated when absent, and returned to the
sender, as PagerDuty does); `resolve` resolves it; `acknowledge` is accepted and changes
nothing: in Tocsin people acknowledge incidents (through the operator API), and an alert-level
acknowledgement from a tool has no incident to apply to. The sender still gets PagerDuty's 202
so it does not retry. Errors are PagerDuty's: a list of plain messages, not JSON paths.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, ValidationError

from schemas import AlertReceived, AlertStatus
from services.ingest.domain.formats.common import (
    ALERTNAME_LIMIT,
    URL_LIMIT,
    LabelMap,
    Lenient,
    ParseContext,
    Text,
    clip,
    dedup_fingerprint,
    pairs,
)
from services.ingest.domain.formats.errors import describe

MAX_BODY_BYTES = 512 * 1024  # PagerDuty: "Events API payloads are limited to 512 KB"
SEVERITIES = ("critical", "error", "warning", "info")
EventAction = Literal["trigger", "acknowledge", "resolve"]


class PagerDutyPayload(Lenient):
    summary: Text = Field(min_length=1, max_length=1024)
    source: Text = Field(min_length=1, max_length=1024)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: Text | None = Field(default=None, max_length=100)
    component: Text | None = Field(default=None, max_length=1024)
    group: Text | None = Field(default=None, max_length=1024)
    class_: Text | None = Field(default=None, alias="class", max_length=1024)
    custom_details: object = None


class PagerDutyLink(Lenient):
    href: Text = Field(min_length=1, max_length=URL_LIMIT)
    text: Text | None = Field(default=None, max_length=1024)


class PagerDutyImage(Lenient):
    src: Text = Field(min_length=1, max_length=URL_LIMIT)
    href: Text | None = Field(default=None, max_length=URL_LIMIT)
    alt: Text | None = Field(default=None, max_length=1024)


class PagerDutyEvent(Lenient):
    routing_key: Text | None = Field(default=None, max_length=1024)
    event_action: EventAction
    dedup_key: Text | None = Field(default=None, min_length=1, max_length=255)
    payload: PagerDutyPayload | None = None
    client: Text | None = Field(default=None, max_length=1024)
    client_url: Text | None = Field(default=None, max_length=URL_LIMIT)
    links: list[PagerDutyLink] = Field(default_factory=list, max_length=100)
    images: list[PagerDutyImage] = Field(default_factory=list, max_length=100)


@dataclass(frozen=True)
class PagerDutyOutcome:
    """The dedup key to answer with and the messages to publish (none for acknowledge)."""

    action: EventAction
    dedup_key: str
    messages: list[AlertReceived]


class InvalidEvent(Exception):
    """The event breaks PagerDuty's rules; `errors` are the messages PagerDuty would give."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _error_text(error: ValidationError) -> list[str]:
    messages = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"]) or "event"
        messages.append(f"'{path}' {describe(item)}")
    return messages


def validate(document: object) -> PagerDutyEvent:
    if not isinstance(document, dict):
        raise InvalidEvent(["the event must be a JSON object"])
    try:
        event = PagerDutyEvent.model_validate(document)
    except ValidationError as error:
        raise InvalidEvent(_error_text(error)) from None
    if event.event_action == "trigger" and event.payload is None:
        raise InvalidEvent(["'payload' is missing or blank"])
    if event.event_action != "trigger" and event.dedup_key is None:
        raise InvalidEvent([f"'dedup_key' is required for {event.event_action} events"])
    return event


def _annotations(event: PagerDutyEvent) -> dict[str, str]:
    found: dict[str, str] = {}
    if event.payload is not None and event.payload.custom_details is not None:
        found["custom_details"] = json.dumps(
            event.payload.custom_details, sort_keys=True, ensure_ascii=False
        )
    for n, link in enumerate(event.links):
        found[f"link:{link.text or n}"] = link.href
    for n, image in enumerate(event.images):
        found[f"image:{image.alt or n}"] = image.src
    if event.client:
        found["client"] = event.client
    if event.client_url:
        found["client_url"] = event.client_url
    return found


def _timestamp(text: str | None) -> datetime | None:
    """PagerDuty fills in a missing or unreadable timestamp itself; so do we (None)."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def interpret(event: PagerDutyEvent, context: ParseContext) -> PagerDutyOutcome:
    try:
        return _interpret(event, context)
    except ValidationError as error:  # e.g. custom_details that are not Unicode text
        raise InvalidEvent(_error_text(error)) from None


def _interpret(event: PagerDutyEvent, context: ParseContext) -> PagerDutyOutcome:
    dedup_key = event.dedup_key or uuid.uuid4().hex
    if event.event_action == "acknowledge":
        return PagerDutyOutcome("acknowledge", dedup_key, [])
    payload = event.payload
    labels: LabelMap = {}
    if payload is not None:
        labels = {
            name: value
            for name, value in (
                ("source", payload.source),
                ("severity", payload.severity),
                ("component", payload.component),
                ("group", payload.group),
                ("class", payload.class_),
            )
            if value
        }
    alertname = (payload.class_ or payload.summary) if payload is not None else ""
    # A resolve names the alert by its dedup key alone: it carries no summary, severity or
    # labels, and triage keeps those of the trigger.
    summary = payload.summary if payload is not None else ""
    message = AlertReceived(
        occurred_at=context.received_at,
        correlation_id=context.correlation_id,
        fingerprint=dedup_fingerprint(context.integration_id, dedup_key),
        dedup_key=dedup_key,
        status=AlertStatus.FIRING if event.event_action == "trigger" else AlertStatus.RESOLVED,
        integration_id=context.integration_id,
        source="pagerduty",
        service_id=context.service_id,
        alertname=clip(alertname, ALERTNAME_LIMIT),
        summary=summary,
        severity=payload.severity if payload is not None else None,
        labels=pairs(labels),
        annotations=pairs(_annotations(event)),
        starts_at=_timestamp(payload.timestamp) if payload is not None else None,
        generator_url=event.client_url,
    )
    return PagerDutyOutcome(event.event_action, dedup_key, [message])


def parse(document: object, context: ParseContext) -> list[AlertReceived]:
    """The registry's view: an event's messages; InvalidEvent for a bad one."""
    return interpret(validate(document), context).messages
