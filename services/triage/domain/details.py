"""What a responder needs from the alert behind an incident event (`IncidentEvent.alert`),
bounded for a message: its summary, the labels and annotations that matter most, where it came
from (`generator_url`) and what to do about it (`runbook_url`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from schemas import AlertDetails, AlertReceived, Label
from schemas.incidents import MAX_DETAIL_LABELS

_URL_LIMIT = 4096
# Kept first when an alert has more labels or annotations than a message carries.
_FIRST_LABELS = ("alertname", "severity", "service", "instance", "job", "host", "env")
_FIRST_ANNOTATIONS = ("summary", "description", "runbook_url", "runbook")
# Annotation names a runbook link goes by, compared without case or punctuation: Prometheus'
# `runbook_url` convention, a plain `runbook`, and a sender's link called "runbook" (generic
# and PagerDuty `links` become `link:<text>` annotations).
_RUNBOOK_NAMES = ("runbookurl", "runbook", "linkrunbook")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def _bounded(pairs: Sequence[Label], first: Sequence[str]) -> tuple[Label, ...]:
    rank = {name: position for position, name in enumerate(first)}
    ordered = sorted(pairs, key=lambda label: (rank.get(label.name, len(rank)), label.name))
    return tuple(sorted(ordered[:MAX_DETAIL_LABELS], key=lambda label: label.name))


def _web_url(value: str) -> str | None:
    value = value.strip()
    if value.startswith(("https://", "http://")) and len(value) <= _URL_LIMIT:
        return value
    return None  # free text ("restart the pod") is no link; it stays an annotation


def runbook_url(annotations: Sequence[Label]) -> str | None:
    by_name: dict[str, str] = {}
    for label in annotations:
        by_name.setdefault(_NOT_ALNUM.sub("", label.name.lower()), label.value)
    for name in _RUNBOOK_NAMES:
        url = _web_url(by_name.get(name, ""))
        if url is not None:
            return url
    return None


def alert_details(alert: AlertReceived) -> AlertDetails:
    return AlertDetails(
        fingerprint=alert.fingerprint,
        summary=alert.summary,
        labels=_bounded(alert.labels, _FIRST_LABELS),
        annotations=_bounded(alert.annotations, _FIRST_ANNOTATIONS),
        generator_url=alert.generator_url,
        runbook_url=runbook_url(alert.annotations),
        received_at=alert.occurred_at,
    )
