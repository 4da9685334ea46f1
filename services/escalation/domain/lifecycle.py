"""The incident lifecycle as an explicit transition table and one pure `apply`.

`apply(state, action, plan, now)` returns the new state and the effects to carry out; the
caller persists the state with compare-and-set and executes the effects through an outbox.

Escalation steps are numbered across passes: step `k` pages level `k % n` in pass `k // n`,
for `n` levels and `repeat + 1` passes. A step's delay is its level's `delay`, counted from the
trigger (step 0) or from when the previous step paged (see `EscalationPlan.delay_before` for
the first level of a repeat pass). A timer names the step it will page and
the `cycle` it belongs to, so a stale timer (after an ack, or from an earlier cycle) does
nothing (or, once acknowledged or resolved, is refused by the table and dropped by the
caller): nobody is paged twice for one step.

The cycle is bumped whenever pending timers are abandoned and new ones may follow: a reopen,
an expired acknowledgement (`ACK_TIMEOUT`, which is how a snooze ends), a snooze, and a manual
escalation. Timers of one cycle are therefore never armed after that cycle was cancelled.

People's actions: `ACKNOWLEDGE` (with the policy's ack timeout, in a new cycle whose
`ACK_TIMEOUT` timer returns it to triggered if it is not resolved by then), `RESOLVE`, `SNOOZE`
(acknowledged now; at `until` an `ACK_TIMEOUT` timer returns it to triggered and escalation
starts over from the first level; a later snooze replaces it, a resolve cancels it),
`ESCALATE_NOW` (page the next step at once, then go on with the policy's delays; from
acknowledged it triggers again), `REASSIGN` (to a user, a schedule or another policy: triggered
again in a new cycle, escalation starts over there), `ADD_RESPONDER` (page one more person now,
without changing the policy) and `SET_COMMANDER` (name the incident commander).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from schemas import NotificationEvent

# The wait before a repeat pass when the policy gives none (every level has a zero delay).
DEFAULT_REPEAT_DELAY = timedelta(minutes=5)


class Status(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Action(StrEnum):
    ESCALATE = "escalate"  # an escalation timer fired
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    ACK_TIMEOUT = "ack_timeout"  # an acknowledgement (a snooze) expired: back to triggered
    REOPEN = "reopen"  # a resolved incident fires again
    SNOOZE = "snooze"  # a person: acknowledged until a time, then triggered again
    ESCALATE_NOW = "escalate_now"  # a person: page the next level now
    REASSIGN = "reassign"  # a person: escalation starts over with a user, schedule or policy
    ADD_RESPONDER = "add_responder"  # a person: page someone extra now
    SET_COMMANDER = "set_commander"  # a person: name the incident commander


TRANSITIONS: Mapping[tuple[Status, Action], Status] = {
    (Status.TRIGGERED, Action.ESCALATE): Status.TRIGGERED,
    (Status.TRIGGERED, Action.ACKNOWLEDGE): Status.ACKNOWLEDGED,
    (Status.TRIGGERED, Action.RESOLVE): Status.RESOLVED,
    (Status.TRIGGERED, Action.SNOOZE): Status.ACKNOWLEDGED,
    (Status.TRIGGERED, Action.ESCALATE_NOW): Status.TRIGGERED,
    (Status.TRIGGERED, Action.REASSIGN): Status.TRIGGERED,
    (Status.TRIGGERED, Action.ADD_RESPONDER): Status.TRIGGERED,
    (Status.TRIGGERED, Action.SET_COMMANDER): Status.TRIGGERED,
    (Status.ACKNOWLEDGED, Action.ACKNOWLEDGE): Status.ACKNOWLEDGED,
    (Status.ACKNOWLEDGED, Action.RESOLVE): Status.RESOLVED,
    (Status.ACKNOWLEDGED, Action.ACK_TIMEOUT): Status.TRIGGERED,
    (Status.ACKNOWLEDGED, Action.SNOOZE): Status.ACKNOWLEDGED,
    (Status.ACKNOWLEDGED, Action.ESCALATE_NOW): Status.TRIGGERED,
    (Status.ACKNOWLEDGED, Action.REASSIGN): Status.TRIGGERED,
    (Status.ACKNOWLEDGED, Action.ADD_RESPONDER): Status.ACKNOWLEDGED,
    (Status.ACKNOWLEDGED, Action.SET_COMMANDER): Status.ACKNOWLEDGED,
    (Status.RESOLVED, Action.RESOLVE): Status.RESOLVED,
    (Status.RESOLVED, Action.REOPEN): Status.TRIGGERED,
}


class Refused(Exception):
    """A person's action that cannot be applied to the incident as it is (HTTP 409)."""


class InvalidTransition(Refused):
    def __init__(self, status: Status, action: Action) -> None:
        super().__init__(f"cannot {action.value} an incident that is {status.value}")
        self.status = status
        self.action = action


class NoLevelLeft(Refused):
    def __init__(self) -> None:
        super().__init__("every level of the escalation policy has been paged already")


@dataclass(frozen=True)
class EscalationPlan:
    """The parts of an escalation policy the lifecycle needs."""

    delays: tuple[timedelta, ...]
    targets: tuple[tuple[str, ...], ...]  # user ids per level (schedules resolved already)
    repeat: int = 0
    repeat_delay: timedelta | None = None  # see `delay_before`; set by `all_at_once`
    ack_timeout: timedelta | None = None  # an acknowledgement lasts this long, if set

    @property
    def total_steps(self) -> int:
        return len(self.delays) * (self.repeat + 1)

    def level_of(self, step: int) -> int:
        return step % len(self.delays)

    def delay_before(self, step: int) -> timedelta:
        """How long step `step` waits after the trigger (step 0) or the previous page.

        A repeat pass starts at level 0 again; if level 0's delay is zero, it waits the last
        level's delay instead, so the last level gets as long to answer as the one before it
        rather than everyone being paged again at once; if that is zero too, it waits
        `DEFAULT_REPEAT_DELAY`.
        """
        level = self.level_of(step)
        delay = self.delays[level]
        if step >= len(self.delays) and level == 0 and delay == timedelta(0):
            return self.repeat_delay or self.delays[-1] or DEFAULT_REPEAT_DELAY
        return delay

    def all_at_once(self) -> EscalationPlan:
        """Every level pages at once (a SEV0 on a critical path); a repeat pass still waits as
        the policy's own repeat would before everyone is paged again."""
        if not self.delays:
            return self
        return replace(
            self,
            delays=(timedelta(0),) * len(self.delays),
            repeat_delay=self.delay_before(len(self.delays)),
        )


@dataclass(frozen=True)
class Responder:
    """A user paged in this cycle, and the level they were first paged at."""

    user: str
    level: int


@dataclass(frozen=True)
class Assignment:
    """Who escalation pages after a reassign: a user, a schedule, or another policy."""

    kind: Literal["user", "schedule", "policy"]
    id: str


@dataclass(frozen=True)
class Lifecycle:
    status: Status
    cycle: int = 0  # bumped when a resolved or acknowledged incident triggers again
    next_step: int = 0  # the step the pending escalation timer will page
    responders: tuple[Responder, ...] = ()  # users paged in this cycle, in paging order
    snoozed_until: datetime | None = None  # when a snoozed acknowledgement expires
    ack_timeout_at: datetime | None = None  # when an acknowledgement expires (ack timeout)
    assignment: Assignment | None = None  # None: the service's escalation policy
    commander: str | None = None  # the incident commander (a user id)
    requests: int = 0  # extra responders paged so far (numbers their pages)

    @property
    def responder_ids(self) -> tuple[str, ...]:
        return tuple(r.user for r in self.responders)


# Effects: what must happen after the new state is stored.
@dataclass(frozen=True)
class PageStep:
    step: int
    level: int
    cycle: int
    users: tuple[str, ...]
    event: NotificationEvent


@dataclass(frozen=True)
class ScheduleEscalation:
    step: int
    cycle: int
    due_at: datetime


@dataclass(frozen=True)
class PageResponder:
    """Page one extra person (`request` numbers the request within the incident)."""

    user: str
    level: int
    cycle: int
    request: int


@dataclass(frozen=True)
class CancelTimers:
    """Cancel the pending timers of `cycle` and earlier ones, never a later cycle's: a re-done
    outbox [cancel cycle n, arm cycle n+1] runs cancel, arm, cancel, arm, and the timer armed
    in between must survive (no cycle arms a timer after its own cancel, see the module doc)."""

    cycle: int


@dataclass(frozen=True)
class NotifyResponders:
    responders: tuple[Responder, ...]
    event: NotificationEvent
    cycle: int


@dataclass(frozen=True)
class ScheduleAckTimeout:
    """The acknowledgement expires at `due_at` (a snooze): back to triggered then."""

    cycle: int
    due_at: datetime


Effect = (
    PageStep
    | ScheduleEscalation
    | CancelTimers
    | NotifyResponders
    | ScheduleAckTimeout
    | PageResponder
)


@dataclass(frozen=True)
class Outcome:
    state: Lifecycle
    effects: tuple[Effect, ...]


def open_incident(plan: EscalationPlan, now: datetime) -> Outcome:
    """A new incident triggers: page the first level now, or schedule it after its delay."""
    return _advance(Lifecycle(status=Status.TRIGGERED), 0, plan, now, due=False)


def _advance(
    state: Lifecycle, step: int, plan: EscalationPlan, now: datetime, *, due: bool
) -> Outcome:
    effects: list[Effect] = []
    responders = list(state.responders)
    paged = {r.user for r in responders}
    waited = due  # the timer for this very step fired: its delay has passed
    while step < plan.total_steps:
        level = plan.level_of(step)
        delay = plan.delay_before(step)
        if delay > timedelta(0) and not waited:
            effects.append(ScheduleEscalation(step, state.cycle, now + delay))
            break
        users = plan.targets[level]
        event = NotificationEvent.TRIGGERED if step == 0 else NotificationEvent.ESCALATED
        effects.append(PageStep(step, level, state.cycle, users, event))
        for user in users:
            if user not in paged:
                paged.add(user)
                responders.append(Responder(user, level))
        step += 1
        # A level that reached nobody (its schedules had nobody on call) has nobody to wait
        # for: the next one pages now instead of after its delay.
        waited = not users
    return Outcome(replace(state, next_step=step, responders=tuple(responders)), tuple(effects))


def apply(
    state: Lifecycle,
    action: Action,
    plan: EscalationPlan,
    now: datetime,
    *,
    step: int | None = None,
    cycle: int | None = None,
    until: datetime | None = None,
    user: str | None = None,
    assignment: Assignment | None = None,
) -> Outcome:
    """Apply `action`; raise InvalidTransition when the table has no row for it (or
    NoLevelLeft when ESCALATE_NOW finds every level paged).

    For ESCALATE, `step` and `cycle` name the timer that fired; for ACK_TIMEOUT, `cycle` does:
    a timer that no longer matches the state (already paged, from an earlier cycle, a replaced
    snooze) yields the same state and no effects. SNOOZE needs `until`, later than `now`;
    ADD_RESPONDER and SET_COMMANDER need `user`; REASSIGN needs `assignment`, and `plan` is
    then the plan of that assignment.
    """
    target = TRANSITIONS.get((state.status, action))
    if target is None:
        raise InvalidTransition(state.status, action)
    if action is Action.ESCALATE:
        if step != state.next_step or cycle != state.cycle:
            return Outcome(state, ())
        return _advance(state, state.next_step, plan, now, due=True)
    if action is Action.SNOOZE:
        return _snooze(state, target, now, until)
    if action is Action.ESCALATE_NOW:
        if state.next_step >= plan.total_steps:
            raise NoLevelLeft()
        moved = replace(
            state, status=target, cycle=state.cycle + 1, snoozed_until=None, ack_timeout_at=None
        )
        advanced = _advance(moved, state.next_step, plan, now, due=True)
        return Outcome(advanced.state, (CancelTimers(state.cycle), *advanced.effects))
    if action is Action.ACKNOWLEDGE:
        return _acknowledge(state, target, plan, now)
    if action is Action.RESOLVE:
        if state.status is Status.RESOLVED:
            return Outcome(state, ())
        return Outcome(
            replace(state, status=target, snoozed_until=None, ack_timeout_at=None),
            (
                CancelTimers(state.cycle),
                NotifyResponders(state.responders, NotificationEvent.RESOLVED, state.cycle),
            ),
        )
    if action is Action.ADD_RESPONDER:
        return _add_responder(state, target, _needs(user, "a user to page"))
    if action is Action.SET_COMMANDER:
        commander = _needs(user, "a user to be the commander")
        return Outcome(replace(state, status=target, commander=commander), ())
    if action is Action.REASSIGN:
        if assignment is None:
            raise Refused("a reassign needs a user, a schedule or a policy")
        fresh = _next_cycle(replace(state, assignment=assignment), target)
        advanced = _advance(fresh, 0, plan, now, due=False)
        return Outcome(advanced.state, (CancelTimers(state.cycle), *advanced.effects))
    if action is Action.ACK_TIMEOUT and cycle != state.cycle:
        return Outcome(state, ())  # the timer of a snooze that was replaced since
    # ACK_TIMEOUT and REOPEN: trigger again from the first level in a new cycle.
    return _advance(_next_cycle(state, target), 0, plan, now, due=False)


def _next_cycle(state: Lifecycle, target: Status) -> Lifecycle:
    """Escalation starts over: a new cycle, nobody paged in it yet; who it is assigned to,
    the commander and the count of extra responders stay."""
    return Lifecycle(
        status=target,
        cycle=state.cycle + 1,
        assignment=state.assignment,
        commander=state.commander,
        requests=state.requests,
    )


def _needs(user: str | None, what: str) -> str:
    if not user:
        raise Refused(f"this action needs {what}")
    return user


def _acknowledge(state: Lifecycle, target: Status, plan: EscalationPlan, now: datetime) -> Outcome:
    if state.status is Status.ACKNOWLEDGED:
        return Outcome(state, ())  # the first acknowledgement (and its timeout) stands
    notify = NotifyResponders(state.responders, NotificationEvent.ACKNOWLEDGED, state.cycle)
    if plan.ack_timeout is None:
        return Outcome(replace(state, status=target), (CancelTimers(state.cycle), notify))
    # The timeout is a timer of a new cycle (a cancel never reaches a later cycle's timer).
    expires = now + plan.ack_timeout
    acknowledged = replace(
        state, status=target, cycle=state.cycle + 1, ack_timeout_at=expires, snoozed_until=None
    )
    return Outcome(
        acknowledged,
        (CancelTimers(state.cycle), notify, ScheduleAckTimeout(acknowledged.cycle, expires)),
    )


def _add_responder(state: Lifecycle, target: Status, user: str) -> Outcome:
    """Page `user` now, whatever the policy; they get the acknowledge and resolve notices of
    this cycle too (at the level of the latest page, or 0)."""
    responders = state.responders
    known = next((r for r in responders if r.user == user), None)
    if known is None:
        known = Responder(user, max((r.level for r in responders), default=0))
        responders = (*responders, known)
    changed = replace(state, status=target, responders=responders, requests=state.requests + 1)
    return Outcome(changed, (PageResponder(user, known.level, state.cycle, state.requests),))


def _snooze(state: Lifecycle, target: Status, now: datetime, until: datetime | None) -> Outcome:
    if until is None or until <= now:
        raise Refused("a snooze must end later than now")
    # A new cycle: the cancel below is for the old one, and the expiry timer is the new one's.
    snoozed = replace(
        state, status=target, cycle=state.cycle + 1, snoozed_until=until, ack_timeout_at=None
    )
    effects: list[Effect] = [CancelTimers(state.cycle)]
    if state.status is Status.TRIGGERED:
        effects.append(
            NotifyResponders(state.responders, NotificationEvent.ACKNOWLEDGED, state.cycle)
        )
    effects.append(ScheduleAckTimeout(snoozed.cycle, until))
    return Outcome(snoozed, tuple(effects))
