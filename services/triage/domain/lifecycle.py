"""What triage does when escalation says an incident changed status (`incidents.lifecycle`).

The re-fire rule: once an incident is resolved (by a person, or by escalation for any reason),
triage releases it. The incident stops taking alerts, and its alerts that are still firing are
detached from it, so the next firing occurrence of any of them is a first firing again
(`classify` → NEW): it opens a new incident, which pages. This is what PagerDuty does with a
trigger after a resolve. Reopening the old incident instead would hide the new page behind an
incident a person already closed.
"""

from __future__ import annotations

from enum import Enum

from schemas import LifecycleStatus


class LifecycleEffect(Enum):
    RELEASE = "release"  # the incident is over: new firings of its alerts open a new one
    NONE = "none"  # acknowledged, or triggered again: triage keeps grouping into it


def on_lifecycle(status: LifecycleStatus) -> LifecycleEffect:
    return LifecycleEffect.RELEASE if status is LifecycleStatus.RESOLVED else LifecycleEffect.NONE
