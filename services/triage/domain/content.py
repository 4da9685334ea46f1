"""What an alert says (summary, severity, labels, annotations), and what a resolve changes of it.

A resolve updates only what it carries. Senders often resolve by identity alone (a PagerDuty
`resolve` has only the `dedup_key`; a Datadog recovery lacks the warning's severity; an
Alertmanager resolve may drop annotations): the trigger's content must survive it, or the
alert list and the incident's last event would show an alert that says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas import AlertReceived, Label


@dataclass(frozen=True)
class AlertContent:
    """What a stored alert says, as the last firing (and later resolves) left it."""

    alertname: str
    summary: str
    severity: str | None
    labels: tuple[Label, ...]
    annotations: tuple[Label, ...]
    generator_url: str | None


def _merged(kept: Iterable[Label], carried: Iterable[Label]) -> tuple[Label, ...]:
    """Kept pairs overridden by the carried ones of the same name, in name order."""
    by_name = {label.name: label for label in kept}
    by_name.update((label.name, label) for label in carried)
    return tuple(by_name[name] for name in sorted(by_name))


def keep_trigger_content(stored: AlertContent, resolve: AlertReceived) -> AlertReceived:
    """The resolve, completed with what it does not carry from the stored alert."""
    return resolve.model_copy(
        update={
            "alertname": resolve.alertname or stored.alertname,
            "summary": resolve.summary if resolve.summary.strip() else stored.summary,
            "severity": resolve.severity if resolve.severity is not None else stored.severity,
            "labels": _merged(stored.labels, resolve.labels),
            "annotations": _merged(stored.annotations, resolve.annotations),
            "generator_url": resolve.generator_url or stored.generator_url,
        }
    )
