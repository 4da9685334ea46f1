"""Per-request limits on what a sender may put in one request (pure).

Counts (alerts per request, labels per alert) are refused with 413, like an oversized body;
a name or value that is too long with 422. Either way the answer names the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas import AlertReceived, Label
from services.ingest.config import IngestLimitsConfig
from services.ingest.domain.formats.common import json_path


@dataclass(frozen=True)
class LimitExceeded:
    status: int  # 413 or 422
    field: str
    message: str


def _pairs_problem(
    pairs: Sequence[Label], loc: tuple[int | str, ...], limits: IngestLimitsConfig
) -> LimitExceeded | None:
    where = json_path(loc)
    if len(pairs) > limits.max_labels:
        return LimitExceeded(
            413, where, f"{where}: {len(pairs)} entries exceed the limit of {limits.max_labels}"
        )
    for pair in pairs:
        field = json_path((*loc, pair.name[:64]))
        if len(pair.name) > limits.max_name_length:
            return LimitExceeded(
                422,
                field,
                f"{where}: a name of {len(pair.name)} characters exceeds the limit of "
                f"{limits.max_name_length}",
            )
        if len(pair.value) > limits.max_value_length:
            return LimitExceeded(
                422,
                field,
                f"{field}: a value of {len(pair.value)} characters exceeds the limit of "
                f"{limits.max_value_length}",
            )
    return None


def check(
    messages: Sequence[AlertReceived], limits: IngestLimitsConfig, *, many: bool = True
) -> LimitExceeded | None:
    """The first limit the request breaks, or None. `many`: the body held an `alerts` list."""
    if len(messages) > limits.max_alerts:
        return LimitExceeded(
            413,
            "$.alerts",
            f"alerts: {len(messages)} alerts exceed the limit of {limits.max_alerts} a request",
        )
    for index, message in enumerate(messages):
        base: tuple[int | str, ...] = ("alerts", index) if many else ()
        for section, pairs in (("labels", message.labels), ("annotations", message.annotations)):
            problem = _pairs_problem(pairs, (*base, section), limits)
            if problem is not None:
                return problem
    return None
