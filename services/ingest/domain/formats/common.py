"""What every sender format shares (pure): input string types that refuse text which is not
Unicode, the context a parser runs in, and how an alert's identity is derived.

Identity: a sender's own fingerprint is kept; an explicit dedup key (PagerDuty `dedup_key`,
Datadog aggregation key, generic `dedup_key`) becomes the fingerprint of the pair (integration,
key), so two integrations never collide on one key; otherwise Alertmanager's fingerprint of the
label set, so alerts with the same labels dedupe across sources.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from schemas import Label
from services.ingest.domain.fingerprint import fingerprint_hex

SUMMARY_LIMIT = 4096
ALERTNAME_LIMIT = 1024
URL_LIMIT = 4096


def _require_unicode(value: str) -> str:
    # json.loads turns "\ud800" into a lone surrogate: not text, and not encodable as UTF-8.
    # UnicodeEncodeError is a ValueError, so pydantic reports it with the field's path.
    value.encode("utf-8")
    return value


Text = Annotated[str, AfterValidator(_require_unicode)]
LabelMap = dict[Text, Text]


class Lenient(BaseModel):
    """Senders add fields over time; ignore what we do not use rather than refuse the page."""

    model_config = ConfigDict(extra="ignore", frozen=True)


@dataclass(frozen=True)
class ParseContext:
    """Where a request came from. One correlation id ties one request's alerts together."""

    integration_id: str
    service_id: str
    received_at: datetime
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def pairs(mapping: Mapping[str, str]) -> tuple[Label, ...]:
    """Labels as sorted `{name, value}` pairs (names are never document keys, DESIGN §5)."""
    return tuple(Label(name=name, value=value) for name, value in sorted(mapping.items()))


def present(value: str | None) -> str | None:
    """None for a missing or blank value (senders send "" for "not set")."""
    if value is None or not value.strip():
        return None
    return value


def label_fingerprint(labels: Mapping[str, str]) -> str:
    return fingerprint_hex(labels.items())


def dedup_fingerprint(integration_id: str, dedup_key: str) -> str:
    """A sender's dedup key, scoped to its integration, as a 16-hex-digit fingerprint."""
    return fingerprint_hex([("__integration__", integration_id), ("__dedup_key__", dedup_key)])


def first_present(candidates: Iterable[str | None]) -> str | None:
    return next((c for c in candidates if present(c) is not None), None)


def clip(text: str, limit: int) -> str:
    return text[:limit]


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(loc: Sequence[int | str]) -> str:
    """`("alerts", 0, "labels", "app.kubernetes.io/name")` → `$.alerts[0].labels["app…"]`."""
    path = "$"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _NAME.match(part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(part, ensure_ascii=False)}]"
    return path
