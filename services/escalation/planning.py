"""What an incident's escalation looks like right now, from the configuration as it is now:
the plan the lifecycle applies (schedules resolved to who is on call at this instant, every
level at once when the severity says so, the ack timeout), each person's notification rules
for the incident's urgency, and the timeline entries that explain who a level reached.

Nothing here is kept between calls but caches keyed by the configuration object itself, so a
reload (a new configuration object) takes effect at the next page, timer or request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas import Severity
from services.escalation.config import EscalationConfig
from services.escalation.domain.lifecycle import (
    Action,
    Assignment,
    EscalationPlan,
    Outcome,
    PageStep,
    Refused,
)
from services.escalation.domain.outbox import NotificationRule, RecordTimeline, timeline_item
from services.escalation.domain.targets import (
    LevelOnCall,
    ScheduleTarget,
    Target,
    UserTarget,
    oncall_entries,
    resolve_levels,
    schedules_of,
)
from services.escalation.domain.timeline import Entry, TimelineEntry
from services.escalation.domain.urgency import (
    DEFAULT_URGENCY,
    Urgency,
    pages_all_levels,
    rules_for,
    urgency_of,
)
from services.escalation.oncall_store import OncallStore
from tocsin.runtime.config_problems import unknown
from tocsin.runtime.live_config import Current

log = logging.getLogger(__name__)

_INSTANT = timedelta(milliseconds=1)  # the stores keep milliseconds

UserRules = Mapping[str, Sequence[NotificationRule]]


@dataclass(frozen=True)
class Planned:
    """An incident's escalation plan as of `now`: schedules resolved to who is on call."""

    policy_id: str | None
    plan: EscalationPlan
    on_call: tuple[LevelOnCall, ...] = ()
    all_levels: bool = False  # every level pages at once (page_all_levels_at)


class UnknownName(Refused):
    """A person's action names a user, schedule or policy that is not configured."""


class Planner:
    def __init__(self, config: Current[EscalationConfig], oncall: OncallStore) -> None:
        self._config = config
        self._oncall = oncall
        self._rules_of: tuple[EscalationConfig, Mapping[Urgency, UserRules]] | None = None

    @property
    def config(self) -> EscalationConfig:
        """The configuration as it is now (a reload replaces it; nothing keeps a copy)."""
        return self._config.current

    def rules(self, urgency: Urgency) -> UserRules:
        """Each user's notification rules for incidents of `urgency`."""
        config = self.config
        if self._rules_of is None or self._rules_of[0] is not config:
            by_urgency = {
                level: {
                    user.id: tuple(
                        NotificationRule(rule.contact_id, rule.after)
                        for rule in rules_for([r.rule() for r in user.notification_rules], level)
                    )
                    for user in config.users
                }
                for level in Urgency
            }
            self._rules_of = (config, by_urgency)
        return self._rules_of[1][urgency]

    def urgency(self, service_id: str, severity: Severity, now: datetime) -> Urgency:
        service = self.config.services.get(service_id)
        if service is None:
            return urgency_of(severity, DEFAULT_URGENCY, None, now)
        return service.urgency.urgency(severity, now)

    async def plan(
        self,
        service_id: str,
        severity: Severity,
        now: datetime,
        assignment: Assignment | None = None,
    ) -> Planned:
        """The service's policy, or what the incident was reassigned to."""
        config = self.config
        service = config.services.get(service_id)
        default = config.policy_for(service_id)
        if assignment is not None and assignment.kind != "policy":
            target: Target = (
                UserTarget(assignment.id)
                if assignment.kind == "user"
                else ScheduleTarget(assignment.id)
            )
            on_call = await self.on_call([(target,)], now)
            plan = EscalationPlan(
                delays=(timedelta(0),),
                targets=(on_call[0].users,),
                ack_timeout=default.ack_timeout if default else None,
            )
            return Planned(default.id if default else None, plan, on_call)
        policy = config.policy(assignment.id) if assignment is not None else default
        if policy is None and assignment is not None:
            log.warning(
                "policy %r (reassigned to) is no longer configured: using the service's",
                assignment.id,
            )
            policy = default
        if policy is None:
            log.warning(
                "service %r has no escalation policy: its incidents page nobody", service_id
            )
            return Planned(None, EscalationPlan((), ()))
        levels = [tuple(t.target() for t in level.targets) for level in policy.levels]
        on_call = await self.on_call(levels, now)
        plan = EscalationPlan(
            delays=tuple(level.delay for level in policy.levels),
            targets=tuple(level.users for level in on_call),
            repeat=policy.repeat,
            ack_timeout=policy.ack_timeout,
        )
        tier = service.tier if service is not None else 2
        all_levels = pages_all_levels(severity, tier, policy.page_all_levels_at)
        return Planned(policy.id, plan.all_at_once() if all_levels else plan, on_call, all_levels)

    async def on_call(
        self, levels: Sequence[Sequence[Target]], at: datetime
    ) -> tuple[LevelOnCall, ...]:
        """The levels' targets as they stand at `at`: each schedule resolved, with its
        overrides, to who is on call then."""
        schedules = {
            schedule_id: schedule
            for schedule_id in schedules_of(levels)
            if (schedule := self.config.schedule(schedule_id)) is not None
        }
        overrides = {
            schedule_id: [
                stored.override
                for stored in await self._oncall.overrides(schedule_id, at, at + _INSTANT)
            ]
            for schedule_id in schedules
        }
        return resolve_levels(levels, schedules, overrides, at)

    def check_names(self, action: Action, user: str | None, assignment: Assignment | None) -> None:
        """Refuse a person's action that names a user, schedule or policy not configured."""
        config = self.config
        if action in (Action.ADD_RESPONDER, Action.SET_COMMANDER) and user is not None:
            users = [u.id for u in config.users]
            if user not in users:
                raise UnknownName(f"user: {unknown('user', user, users)}")
        if action is Action.REASSIGN and assignment is not None:
            known = {
                "user": [u.id for u in config.users],
                "schedule": [s.id for s in config.schedules],
                "policy": [p.id for p in config.policies],
            }[assignment.kind]
            if assignment.id not in known:
                raise UnknownName(
                    f"{assignment.kind}: {unknown(assignment.kind, assignment.id, known)}"
                )


def plan_entries(
    incident_id: str, planned: Planned, outcome: Outcome, now: datetime
) -> list[RecordTimeline]:
    """Who each paged schedule reached, and why every level paged at once."""
    entries = oncall_entries(incident_id, outcome.effects, planned.on_call, now)
    if planned.all_levels and any(isinstance(e, PageStep) and e.step == 0 for e in outcome.effects):
        entries.insert(
            0,
            TimelineEntry(
                id=f"all_levels:{incident_id}/c{outcome.state.cycle}",
                at=now,
                action=Entry.ALL_LEVELS,
                detail="every level of the policy pages at once (page_all_levels_at)",
            ),
        )
    return [timeline_item(entry) for entry in entries]
