"""Which incident an alert joins: its group key (the service plus the values of the service's
`group_by` labels), and whether the group's open incident still takes it (`group_window`,
`max_alerts`); otherwise the alert opens the group's next incident."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class GroupingRule:
    group_by: tuple[str, ...] = ("alertname",)
    every_label: bool = False  # `group_by: ['...']`
    window: timedelta | None = None  # None: join while the incident is open
    max_alerts: int | None = None  # None: no limit

    def describe(self) -> str:
        return "every label" if self.every_label else ", ".join(self.group_by)


DEFAULT_GROUPING = GroupingRule()


def group_key(
    service_id: str,
    alertname: str,
    labels: Mapping[str, str] | None = None,
    rule: GroupingRule = DEFAULT_GROUPING,
) -> str:
    """The default (`[alertname]`) keeps the key of DESIGN §4, `service/alertname` (the alert's
    name as ingest normalized it), so that groups stored before configurable grouping are still
    joined. Otherwise the named labels' values (a missing label is empty, as in Alertmanager);
    `alertname` is the alert's name when the labels lack one."""
    if not rule.every_label and rule.group_by == ("alertname",):
        return f"{service_id}/{alertname}"
    values = {"alertname": alertname, **(labels or {})}
    names = sorted(values) if rule.every_label else sorted(set(rule.group_by))
    # JSON keeps names and values apart whatever characters they hold.
    return f"{service_id}/" + json.dumps([[n, values.get(n, "")] for n in names])


def group_takes(rule: GroupingRule, opened_at: datetime | None, at: datetime) -> bool:
    """Whether a group whose incident opened at `opened_at` still takes an alert seen `at`
    (the alert count is checked by the store, atomically with taking a place)."""
    if rule.window is None or opened_at is None:
        return True
    return at - opened_at <= rule.window
