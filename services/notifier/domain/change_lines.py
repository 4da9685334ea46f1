"""What a page says about the changes before an incident: "deployed checkout v2.3.1 4 min
before". Pure: the incident's opening time is a parameter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from schemas import ChangeSummary


def _when(change: ChangeSummary, opened_at: datetime) -> str:
    seconds = (opened_at - change.at).total_seconds()
    if seconds < 60:
        return "just before"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min before"
    return f"{minutes // 60} h before"


def change_line(change: ChangeSummary, opened_at: datetime) -> str:
    """One change: its summary, its version unless the summary says it, and how long before
    the incident opened."""
    summary = " ".join(change.summary.split())
    if change.version and change.version not in summary:
        summary = f"{summary} {change.version}"
    return f"{summary} {_when(change, opened_at)}"


def changes_text(
    changes: Sequence[ChangeSummary], opened_at: datetime, *, shown: int = 1
) -> str | None:
    """The newest `shown` changes (newest first), and how many more; None without changes."""
    if not changes:
        return None
    newest = sorted(changes, key=lambda c: c.at, reverse=True)
    lines = [change_line(change, opened_at) for change in newest[:shown]]
    more = len(newest) - shown
    text = "; ".join(lines)
    return f"{text} (+{more} more)" if more > 0 else text
