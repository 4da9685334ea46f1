"""The incident lifecycle: one test per transition-table row, the invalid pairs, and
escalation timing driven by injected `now` values."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from schemas import NotificationEvent
from services.escalation.domain.lifecycle import (
    TRANSITIONS,
    Action,
    Assignment,
    CancelTimers,
    EscalationPlan,
    InvalidTransition,
    Lifecycle,
    NoLevelLeft,
    NotifyResponders,
    Outcome,
    PageResponder,
    PageStep,
    Refused,
    Responder,
    ScheduleAckTimeout,
    ScheduleEscalation,
    Status,
    apply,
    open_incident,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
ZERO = timedelta(0)

# Level 0 at once, level 1 five minutes later, level 2 ten minutes after that.
PLAN = EscalationPlan(
    delays=(ZERO, 5 * MIN, 10 * MIN),
    targets=(("alice",), ("bob", "carol"), ("dave",)),
)


def _pages(outcome: Outcome) -> list[PageStep]:
    return [e for e in outcome.effects if isinstance(e, PageStep)]


def _schedules(outcome: Outcome) -> list[ScheduleEscalation]:
    return [e for e in outcome.effects if isinstance(e, ScheduleEscalation)]


def _triggered_after_first_page() -> Lifecycle:
    """PLAN opened at T0: alice paged, step 1 pending."""
    return open_incident(PLAN, T0).state


# -- the table itself ------------------------------------------------------------------------

EXPECTED_ROWS = {
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


def test_transition_table_has_exactly_the_tested_rows() -> None:
    # A row added or changed without a test of its own fails here.
    assert dict(TRANSITIONS) == EXPECTED_ROWS


# -- one test per row ------------------------------------------------------------------------


def test_row_triggered_escalate_pages_due_step_and_schedules_next() -> None:
    state = _triggered_after_first_page()
    assert state.next_step == 1
    now = T0 + 5 * MIN
    outcome = apply(state, Action.ESCALATE, PLAN, now, step=1, cycle=0)
    assert outcome.state.status is Status.TRIGGERED
    assert outcome.state.next_step == 2
    assert outcome.state.responders == (
        Responder("alice", 0),
        Responder("bob", 1),
        Responder("carol", 1),
    )
    assert outcome.effects == (
        PageStep(1, 1, 0, ("bob", "carol"), NotificationEvent.ESCALATED),
        ScheduleEscalation(step=2, cycle=0, due_at=now + 10 * MIN),
    )


def test_row_triggered_acknowledge_cancels_timers_and_tells_responders() -> None:
    state = _triggered_after_first_page()
    outcome = apply(state, Action.ACKNOWLEDGE, PLAN, T0 + MIN)
    assert outcome.state.status is Status.ACKNOWLEDGED
    assert outcome.state.cycle == 0
    assert outcome.state.responder_ids == ("alice",)
    assert outcome.effects == (
        CancelTimers(0),
        NotifyResponders((Responder("alice", 0),), NotificationEvent.ACKNOWLEDGED, 0),
    )


def test_row_triggered_resolve_cancels_timers_and_tells_responders() -> None:
    state = _triggered_after_first_page()
    outcome = apply(state, Action.RESOLVE, PLAN, T0 + MIN)
    assert outcome.state.status is Status.RESOLVED
    assert outcome.state.responder_ids == ("alice",)
    assert outcome.effects == (
        CancelTimers(0),
        NotifyResponders((Responder("alice", 0),), NotificationEvent.RESOLVED, 0),
    )


def test_row_acknowledged_acknowledge_is_a_no_op() -> None:
    acked = apply(_triggered_after_first_page(), Action.ACKNOWLEDGE, PLAN, T0 + MIN).state
    outcome = apply(acked, Action.ACKNOWLEDGE, PLAN, T0 + 2 * MIN)
    assert outcome.state.status is Status.ACKNOWLEDGED
    assert outcome.state == acked
    assert outcome.effects == ()


def test_row_acknowledged_resolve_cancels_timers_and_tells_responders() -> None:
    acked = apply(_triggered_after_first_page(), Action.ACKNOWLEDGE, PLAN, T0 + MIN).state
    outcome = apply(acked, Action.RESOLVE, PLAN, T0 + 2 * MIN)
    assert outcome.state.status is Status.RESOLVED
    assert outcome.state.cycle == 0
    assert outcome.effects == (
        CancelTimers(0),
        NotifyResponders((Responder("alice", 0),), NotificationEvent.RESOLVED, 0),
    )


def test_row_acknowledged_ack_timeout_triggers_a_new_cycle_from_step_0() -> None:
    state = apply(
        _triggered_after_first_page(), Action.ESCALATE, PLAN, T0 + 5 * MIN, step=1, cycle=0
    ).state
    acked = apply(state, Action.ACKNOWLEDGE, PLAN, T0 + 6 * MIN).state
    now = T0 + 36 * MIN
    outcome = apply(acked, Action.ACK_TIMEOUT, PLAN, now, cycle=0)
    assert outcome.state == Lifecycle(
        status=Status.TRIGGERED, cycle=1, next_step=1, responders=(Responder("alice", 0),)
    )
    assert outcome.effects == (
        PageStep(0, 0, 1, ("alice",), NotificationEvent.TRIGGERED),
        ScheduleEscalation(step=1, cycle=1, due_at=now + 5 * MIN),
    )


def test_ack_timeout_of_another_cycle_changes_nothing() -> None:
    acked = apply(_triggered_after_first_page(), Action.ACKNOWLEDGE, PLAN, T0 + MIN).state
    for stale in (None, 1, -1):
        outcome = apply(acked, Action.ACK_TIMEOUT, PLAN, T0 + 9 * MIN, cycle=stale)
        assert outcome == Outcome(acked, ())


def test_row_triggered_snooze_acknowledges_in_a_new_cycle_until_then() -> None:
    state = _triggered_after_first_page()
    until = T0 + 31 * MIN
    outcome = apply(state, Action.SNOOZE, PLAN, T0 + MIN, until=until)
    assert outcome.state == replace(state, status=Status.ACKNOWLEDGED, cycle=1, snoozed_until=until)
    assert outcome.effects == (
        CancelTimers(0),
        NotifyResponders((Responder("alice", 0),), NotificationEvent.ACKNOWLEDGED, 0),
        ScheduleAckTimeout(cycle=1, due_at=until),
    )


def test_row_acknowledged_snooze_replaces_the_pending_one_without_a_new_notice() -> None:
    first = apply(
        _triggered_after_first_page(), Action.SNOOZE, PLAN, T0 + MIN, until=T0 + 31 * MIN
    ).state
    outcome = apply(first, Action.SNOOZE, PLAN, T0 + 10 * MIN, until=T0 + 70 * MIN)
    assert (outcome.state.status, outcome.state.cycle) == (Status.ACKNOWLEDGED, 2)
    assert outcome.state.snoozed_until == T0 + 70 * MIN
    assert outcome.effects == (CancelTimers(1), ScheduleAckTimeout(2, T0 + 70 * MIN))
    # The first snooze's timer (cycle 1) is stale now; the second one's triggers again.
    stale = apply(outcome.state, Action.ACK_TIMEOUT, PLAN, T0 + 31 * MIN, cycle=1)
    assert stale == Outcome(outcome.state, ())
    woken = apply(outcome.state, Action.ACK_TIMEOUT, PLAN, T0 + 70 * MIN, cycle=2)
    assert woken.state == Lifecycle(
        status=Status.TRIGGERED, cycle=3, next_step=1, responders=(Responder("alice", 0),)
    )
    assert woken.effects == (
        PageStep(0, 0, 3, ("alice",), NotificationEvent.TRIGGERED),
        ScheduleEscalation(step=1, cycle=3, due_at=T0 + 75 * MIN),
    )


@pytest.mark.parametrize("until", [None, T0 + MIN, T0])
def test_snooze_must_end_later_than_now(until: datetime | None) -> None:
    with pytest.raises(Refused, match="later than now"):
        apply(_triggered_after_first_page(), Action.SNOOZE, PLAN, T0 + MIN, until=until)


def test_acknowledge_while_snoozed_keeps_the_snooze() -> None:
    snoozed = apply(
        _triggered_after_first_page(), Action.SNOOZE, PLAN, T0 + MIN, until=T0 + 31 * MIN
    ).state
    assert apply(snoozed, Action.ACKNOWLEDGE, PLAN, T0 + 2 * MIN) == Outcome(snoozed, ())


def test_resolve_ends_a_snooze() -> None:
    snoozed = apply(
        _triggered_after_first_page(), Action.SNOOZE, PLAN, T0 + MIN, until=T0 + 31 * MIN
    ).state
    resolved = apply(snoozed, Action.RESOLVE, PLAN, T0 + 2 * MIN).state
    assert (resolved.status, resolved.snoozed_until) == (Status.RESOLVED, None)
    with pytest.raises(InvalidTransition):
        apply(resolved, Action.ACK_TIMEOUT, PLAN, T0 + 31 * MIN, cycle=1)


def test_row_triggered_escalate_now_pages_the_next_level_at_once() -> None:
    state = _triggered_after_first_page()  # bob and carol (level 1) are due at T0+5m
    now = T0 + MIN
    outcome = apply(state, Action.ESCALATE_NOW, PLAN, now)
    assert outcome.state == Lifecycle(
        status=Status.TRIGGERED,
        cycle=1,
        next_step=2,
        responders=(Responder("alice", 0), Responder("bob", 1), Responder("carol", 1)),
    )
    assert outcome.effects == (
        CancelTimers(0),
        PageStep(1, 1, 1, ("bob", "carol"), NotificationEvent.ESCALATED),
        ScheduleEscalation(step=2, cycle=1, due_at=now + 10 * MIN),
    )
    # The level-1 timer of cycle 0 is stale: it pages nobody a second time.
    assert apply(outcome.state, Action.ESCALATE, PLAN, T0 + 5 * MIN, step=1, cycle=0) == Outcome(
        outcome.state, ()
    )


def test_row_acknowledged_escalate_now_triggers_again_and_pages_the_next_level() -> None:
    snoozed = apply(
        _triggered_after_first_page(), Action.SNOOZE, PLAN, T0 + MIN, until=T0 + 31 * MIN
    ).state
    outcome = apply(snoozed, Action.ESCALATE_NOW, PLAN, T0 + 2 * MIN)
    assert (outcome.state.status, outcome.state.cycle, outcome.state.next_step) == (
        Status.TRIGGERED,
        2,
        2,
    )
    assert outcome.state.snoozed_until is None
    assert [type(e) for e in outcome.effects] == [CancelTimers, PageStep, ScheduleEscalation]


def test_escalate_now_after_the_last_level_is_refused() -> None:
    state = _triggered_after_first_page()
    state = apply(state, Action.ESCALATE_NOW, PLAN, T0 + MIN).state
    state = apply(state, Action.ESCALATE_NOW, PLAN, T0 + 2 * MIN).state
    assert state.next_step == PLAN.total_steps
    with pytest.raises(NoLevelLeft, match="every level"):
        apply(state, Action.ESCALATE_NOW, PLAN, T0 + 3 * MIN)


def test_escalate_now_with_a_delayed_first_level_pages_it_as_triggered() -> None:
    plan = EscalationPlan(delays=(2 * MIN, 5 * MIN), targets=(("alice",), ("bob",)))
    outcome = apply(open_incident(plan, T0).state, Action.ESCALATE_NOW, plan, T0 + MIN)
    assert outcome.effects == (
        CancelTimers(0),
        PageStep(0, 0, 1, ("alice",), NotificationEvent.TRIGGERED),
        ScheduleEscalation(step=1, cycle=1, due_at=T0 + 6 * MIN),
    )


def test_row_resolved_resolve_is_a_no_op() -> None:
    resolved = apply(_triggered_after_first_page(), Action.RESOLVE, PLAN, T0 + MIN).state
    outcome = apply(resolved, Action.RESOLVE, PLAN, T0 + 2 * MIN)
    assert outcome.state.status is Status.RESOLVED
    assert outcome.state == resolved
    assert outcome.effects == ()


def test_row_resolved_reopen_triggers_a_new_cycle_from_step_0() -> None:
    resolved = apply(_triggered_after_first_page(), Action.RESOLVE, PLAN, T0 + MIN).state
    now = T0 + 60 * MIN
    outcome = apply(resolved, Action.REOPEN, PLAN, now)
    assert outcome.state == Lifecycle(
        status=Status.TRIGGERED, cycle=1, next_step=1, responders=(Responder("alice", 0),)
    )
    assert outcome.effects == (
        PageStep(0, 0, 1, ("alice",), NotificationEvent.TRIGGERED),
        ScheduleEscalation(step=1, cycle=1, due_at=now + 5 * MIN),
    )


# -- pairs that are not in the table ---------------------------------------------------------

INVALID_PAIRS = [pair for pair in itertools.product(Status, Action) if pair not in EXPECTED_ROWS]


def test_there_are_twelve_invalid_pairs() -> None:
    assert sorted(INVALID_PAIRS) == sorted(
        [
            (Status.TRIGGERED, Action.ACK_TIMEOUT),
            (Status.TRIGGERED, Action.REOPEN),
            (Status.ACKNOWLEDGED, Action.ESCALATE),
            (Status.ACKNOWLEDGED, Action.REOPEN),
            (Status.RESOLVED, Action.ESCALATE),
            (Status.RESOLVED, Action.ACKNOWLEDGE),
            (Status.RESOLVED, Action.ACK_TIMEOUT),
            (Status.RESOLVED, Action.SNOOZE),
            (Status.RESOLVED, Action.ESCALATE_NOW),
            (Status.RESOLVED, Action.REASSIGN),
            (Status.RESOLVED, Action.ADD_RESPONDER),
            (Status.RESOLVED, Action.SET_COMMANDER),
        ]
    )


@pytest.mark.parametrize(("status", "action"), INVALID_PAIRS, ids=lambda v: str(v))
def test_pair_not_in_table_raises_invalid_transition(status: Status, action: Action) -> None:
    state = Lifecycle(status=status, next_step=1, responders=(Responder("alice", 0),))
    with pytest.raises(InvalidTransition) as caught:
        apply(
            state,
            action,
            PLAN,
            T0,
            step=1,
            cycle=0,
            until=T0 + MIN,
            user="bob",
            assignment=Assignment("user", "bob"),
        )
    assert caught.value.status is status
    assert caught.value.action is action
    assert str(caught.value) == f"cannot {action.value} an incident that is {status.value}"


# -- opening and escalation timing -----------------------------------------------------------


def test_open_with_zero_delay_pages_level_0_now_and_schedules_level_1() -> None:
    outcome = open_incident(PLAN, T0)
    assert outcome.state == Lifecycle(
        status=Status.TRIGGERED, cycle=0, next_step=1, responders=(Responder("alice", 0),)
    )
    assert outcome.effects == (
        PageStep(0, 0, 0, ("alice",), NotificationEvent.TRIGGERED),
        ScheduleEscalation(step=1, cycle=0, due_at=T0 + 5 * MIN),
    )


def test_open_with_delayed_level_0_only_schedules() -> None:
    plan = EscalationPlan(delays=(2 * MIN, 5 * MIN), targets=(("alice",), ("bob",)))
    outcome = open_incident(plan, T0)
    assert outcome.state == Lifecycle(status=Status.TRIGGERED, next_step=0, responders=())
    assert outcome.effects == (ScheduleEscalation(step=0, cycle=0, due_at=T0 + 2 * MIN),)


def test_delayed_level_0_pages_as_triggered_when_its_timer_fires() -> None:
    plan = EscalationPlan(delays=(2 * MIN, 5 * MIN), targets=(("alice",), ("bob",)))
    state = open_incident(plan, T0).state
    outcome = apply(state, Action.ESCALATE, plan, T0 + 2 * MIN, step=0, cycle=0)
    assert outcome.effects == (
        PageStep(0, 0, 0, ("alice",), NotificationEvent.TRIGGERED),
        ScheduleEscalation(step=1, cycle=0, due_at=T0 + 7 * MIN),
    )
    assert outcome.state.next_step == 1


def test_timer_for_last_step_pages_and_schedules_nothing() -> None:
    state = _triggered_after_first_page()
    state = apply(state, Action.ESCALATE, PLAN, T0 + 5 * MIN, step=1, cycle=0).state
    outcome = apply(state, Action.ESCALATE, PLAN, T0 + 15 * MIN, step=2, cycle=0)
    assert outcome.effects == (PageStep(2, 2, 0, ("dave",), NotificationEvent.ESCALATED),)
    assert outcome.state.next_step == 3
    assert outcome.state.status is Status.TRIGGERED


def test_timer_delay_counts_from_when_it_fired_not_when_it_was_due() -> None:
    late = T0 + 7 * MIN  # the step-1 timer fired two minutes late
    outcome = apply(_triggered_after_first_page(), Action.ESCALATE, PLAN, late, step=1, cycle=0)
    assert _schedules(outcome) == [ScheduleEscalation(2, 0, late + 10 * MIN)]


@pytest.mark.parametrize(
    ("step", "cycle"),
    [(0, 0), (2, 0), (1, 1), (1, -1), (None, 0), (1, None), (None, None)],
    ids=[
        "already-paged",
        "future-step",
        "later-cycle",
        "earlier-cycle",
        "no-step",
        "no-cycle",
        "neither",
    ],
)
def test_stale_timer_changes_nothing(step: int | None, cycle: int | None) -> None:
    state = _triggered_after_first_page()
    outcome = apply(state, Action.ESCALATE, PLAN, T0 + 5 * MIN, step=step, cycle=cycle)
    assert outcome.state == state
    assert outcome.effects == ()


def test_timer_from_an_earlier_cycle_is_ignored_after_ack_timeout() -> None:
    state = _triggered_after_first_page()  # cycle 0, step 1 pending
    acked = apply(state, Action.ACKNOWLEDGE, PLAN, T0 + MIN).state
    cycle1 = apply(acked, Action.ACK_TIMEOUT, PLAN, T0 + 2 * MIN, cycle=0).state
    assert cycle1.next_step == 1
    outcome = apply(cycle1, Action.ESCALATE, PLAN, T0 + 5 * MIN, step=1, cycle=0)
    assert outcome.state == cycle1
    assert outcome.effects == ()


def test_consecutive_zero_delay_levels_page_together() -> None:
    plan = EscalationPlan(delays=(ZERO, ZERO, 3 * MIN), targets=(("alice",), ("bob",), ("carol",)))
    outcome = open_incident(plan, T0)
    assert outcome.effects == (
        PageStep(0, 0, 0, ("alice",), NotificationEvent.TRIGGERED),
        PageStep(1, 1, 0, ("bob",), NotificationEvent.ESCALATED),
        ScheduleEscalation(step=2, cycle=0, due_at=T0 + 3 * MIN),
    )
    assert outcome.state.responder_ids == ("alice", "bob")
    assert outcome.state.next_step == 2


def test_zero_delay_level_after_a_timer_pages_with_it() -> None:
    plan = EscalationPlan(delays=(ZERO, 5 * MIN, ZERO), targets=(("alice",), ("bob",), ("carol",)))
    state = open_incident(plan, T0).state
    outcome = apply(state, Action.ESCALATE, plan, T0 + 5 * MIN, step=1, cycle=0)
    assert outcome.effects == (
        PageStep(1, 1, 0, ("bob",), NotificationEvent.ESCALATED),
        PageStep(2, 2, 0, ("carol",), NotificationEvent.ESCALATED),
    )
    assert outcome.state.next_step == 3


def test_all_zero_delays_without_repeat_page_everyone_at_open() -> None:
    plan = EscalationPlan(delays=(ZERO, ZERO), targets=(("alice",), ("bob",)))
    outcome = open_incident(plan, T0)
    assert [(p.step, p.users) for p in _pages(outcome)] == [(0, ("alice",)), (1, ("bob",))]
    assert _schedules(outcome) == []


def test_plan_without_levels_pages_nobody() -> None:
    outcome = open_incident(EscalationPlan((), ()), T0)
    assert outcome.effects == ()
    assert outcome.state == Lifecycle(status=Status.TRIGGERED)


# -- repeat passes ---------------------------------------------------------------------------

REPEAT_PLAN = EscalationPlan(delays=(ZERO, 5 * MIN), targets=(("alice",), ("bob",)), repeat=2)


def test_total_steps_counts_every_pass() -> None:
    assert REPEAT_PLAN.total_steps == 6
    assert PLAN.total_steps == 3


@pytest.mark.parametrize(("step", "level"), [(0, 0), (1, 1), (2, 0), (3, 1), (4, 0), (5, 1)])
def test_step_k_is_level_k_mod_n(step: int, level: int) -> None:
    assert REPEAT_PLAN.level_of(step) == level


@pytest.mark.parametrize(
    ("step", "delay"),
    [(0, ZERO), (1, 5 * MIN), (2, 5 * MIN), (3, 5 * MIN), (4, 5 * MIN), (5, 5 * MIN)],
)
def test_delay_before_repeat_pass_level_0_is_last_levels_delay(step: int, delay: timedelta) -> None:
    assert REPEAT_PLAN.delay_before(step) == delay


def test_delay_before_repeat_pass_keeps_a_nonzero_level_0_delay() -> None:
    plan = EscalationPlan(delays=(2 * MIN, 7 * MIN), targets=(("a",), ("b",)), repeat=1)
    assert [plan.delay_before(s) for s in range(4)] == [2 * MIN, 7 * MIN, 2 * MIN, 7 * MIN]


def test_repeat_passes_page_each_level_again_and_stop_after_the_last_step() -> None:
    outcome = open_incident(REPEAT_PLAN, T0)
    state = outcome.state
    paged: list[tuple[int, int, tuple[str, ...], NotificationEvent]] = [
        (p.step, p.level, p.users, p.event) for p in _pages(outcome)
    ]
    due = _schedules(outcome)
    now = T0
    while due:
        (timer,) = due
        assert timer.due_at == now + 5 * MIN  # every later step waits 5 minutes
        now = timer.due_at
        outcome = apply(state, Action.ESCALATE, REPEAT_PLAN, now, step=timer.step, cycle=0)
        state = outcome.state
        paged.extend((p.step, p.level, p.users, p.event) for p in _pages(outcome))
        due = _schedules(outcome)
    trig, esc = NotificationEvent.TRIGGERED, NotificationEvent.ESCALATED
    assert paged == [
        (0, 0, ("alice",), trig),
        (1, 1, ("bob",), esc),
        (2, 0, ("alice",), esc),
        (3, 1, ("bob",), esc),
        (4, 0, ("alice",), esc),
        (5, 1, ("bob",), esc),
    ]
    assert now == T0 + 25 * MIN
    assert state.next_step == 6
    assert state.responder_ids == ("alice", "bob")


def test_repeat_pass_level_0_with_zero_delay_waits_last_levels_delay() -> None:
    state = open_incident(REPEAT_PLAN, T0).state
    at = T0 + 5 * MIN
    outcome = apply(state, Action.ESCALATE, REPEAT_PLAN, at, step=1, cycle=0)
    assert outcome.effects == (
        PageStep(1, 1, 0, ("bob",), NotificationEvent.ESCALATED),
        ScheduleEscalation(step=2, cycle=0, due_at=at + 5 * MIN),
    )


def test_repeat_pass_never_pages_at_the_same_instant_as_the_first_pass() -> None:
    plan = EscalationPlan(delays=(ZERO,), targets=(("alice",),), repeat=2)
    outcome = open_incident(plan, T0)
    assert [p.step for p in _pages(outcome)] == [0]


# -- acknowledge / resolve / responders ------------------------------------------------------


def test_acknowledge_notifies_every_responder_of_the_cycle_in_paging_order() -> None:
    state = _triggered_after_first_page()
    state = apply(state, Action.ESCALATE, PLAN, T0 + 5 * MIN, step=1, cycle=0).state
    outcome = apply(state, Action.ACKNOWLEDGE, PLAN, T0 + 6 * MIN)
    assert outcome.effects == (
        CancelTimers(0),
        NotifyResponders(
            (Responder("alice", 0), Responder("bob", 1), Responder("carol", 1)),
            NotificationEvent.ACKNOWLEDGED,
            0,
        ),
    )


def test_acknowledge_before_anyone_was_paged_notifies_nobody() -> None:
    plan = EscalationPlan(delays=(2 * MIN,), targets=(("alice",),))
    state = open_incident(plan, T0).state
    outcome = apply(state, Action.ACKNOWLEDGE, plan, T0 + MIN)
    assert outcome.effects == (
        CancelTimers(0),
        NotifyResponders((), NotificationEvent.ACKNOWLEDGED, 0),
    )


def test_acknowledge_keeps_cycle_and_next_step() -> None:
    state = _triggered_after_first_page()
    acked = apply(state, Action.ACKNOWLEDGE, PLAN, T0 + MIN).state
    assert (acked.cycle, acked.next_step, acked.responder_ids) == (0, 1, ("alice",))


def test_resolve_in_a_later_cycle_notifies_with_that_cycle() -> None:
    resolved = apply(_triggered_after_first_page(), Action.RESOLVE, PLAN, T0 + MIN).state
    reopened = apply(resolved, Action.REOPEN, PLAN, T0 + 2 * MIN).state
    outcome = apply(reopened, Action.RESOLVE, PLAN, T0 + 3 * MIN)
    assert outcome.effects == (
        CancelTimers(1),
        NotifyResponders((Responder("alice", 0),), NotificationEvent.RESOLVED, 1),
    )
    assert outcome.state.cycle == 1


def test_each_reopen_starts_a_new_cycle() -> None:
    state = _triggered_after_first_page()
    for expected_cycle in (1, 2, 3):
        state = apply(state, Action.RESOLVE, PLAN, T0).state
        state = apply(state, Action.REOPEN, PLAN, T0).state
        assert state.cycle == expected_cycle
        assert state.next_step == 1


def test_new_cycle_forgets_the_previous_cycles_responders() -> None:
    state = _triggered_after_first_page()
    state = apply(state, Action.ESCALATE, PLAN, T0 + 5 * MIN, step=1, cycle=0).state
    assert state.responder_ids == ("alice", "bob", "carol")
    acked = apply(state, Action.ACKNOWLEDGE, PLAN, T0 + 6 * MIN).state
    again = apply(acked, Action.ACK_TIMEOUT, PLAN, T0 + 30 * MIN, cycle=0).state
    assert again.responder_ids == ("alice",)


def test_responders_accumulate_without_duplicates() -> None:
    plan = EscalationPlan(
        delays=(ZERO, ZERO, 5 * MIN),
        targets=(("alice", "bob"), ("bob", "carol"), ("alice", "dave")),
        repeat=1,
    )
    outcome = open_incident(plan, T0)
    assert outcome.state.responder_ids == ("alice", "bob", "carol")
    state, due = outcome.state, _schedules(outcome)
    while due:
        (timer,) = due
        outcome = apply(state, Action.ESCALATE, plan, timer.due_at, step=timer.step, cycle=0)
        state, due = outcome.state, _schedules(outcome)
    assert state.next_step == plan.total_steps
    # Each keeps the level they were first paged at.
    assert state.responders == (
        Responder("alice", 0),
        Responder("bob", 0),
        Responder("carol", 1),
        Responder("dave", 2),
    )


# -- a full simulated scenario ---------------------------------------------------------------


def test_simulated_incident_pages_on_schedule_and_stops_after_ack() -> None:
    """Open at T0, fire every timer when it is due, acknowledge at T0+7m."""
    plan = EscalationPlan(
        delays=(ZERO, 5 * MIN, 10 * MIN),
        targets=(("alice",), ("bob",), ("carol", "dave")),
        repeat=1,
    )
    ack_at = T0 + 7 * MIN
    timeline: list[tuple[datetime, int, tuple[str, ...]]] = []
    pending: list[ScheduleEscalation] = []

    def record(outcome: Outcome, at: datetime) -> Lifecycle:
        for effect in outcome.effects:
            if isinstance(effect, PageStep):
                timeline.append((at, effect.step, effect.users))
            elif isinstance(effect, ScheduleEscalation):
                pending.append(effect)
            elif isinstance(effect, CancelTimers):
                pending.clear()
        return outcome.state

    state = record(open_incident(plan, T0), T0)
    acked = False
    # Run the clock until no timer is left, firing each one exactly when due.
    for _ in range(20):
        if not pending:
            break
        timer = min(pending, key=lambda t: t.due_at)
        if not acked and ack_at <= timer.due_at:
            state = record(apply(state, Action.ACKNOWLEDGE, plan, ack_at), ack_at)
            acked = True
            continue
        pending.remove(timer)
        state = record(
            apply(state, Action.ESCALATE, plan, timer.due_at, step=timer.step, cycle=timer.cycle),
            timer.due_at,
        )
    assert timeline == [(T0, 0, ("alice",)), (T0 + 5 * MIN, 1, ("bob",))]
    assert state.status is Status.ACKNOWLEDGED
    assert pending == []
    # A timer that raced the ack (the step-2 one, due at T0+15m) must not page anyone.
    with pytest.raises(InvalidTransition):
        apply(state, Action.ESCALATE, plan, T0 + 15 * MIN, step=2, cycle=0)


def test_simulated_incident_without_ack_pages_every_step_at_its_due_time() -> None:
    plan = EscalationPlan(
        delays=(ZERO, 5 * MIN, 10 * MIN),
        targets=(("alice",), ("bob",), ("carol", "dave")),
        repeat=1,
    )
    outcome = open_incident(plan, T0)
    state = outcome.state
    timeline = [(T0, p.step, p.users) for p in _pages(outcome)]
    due = _schedules(outcome)
    while due:
        (timer,) = due
        outcome = apply(state, Action.ESCALATE, plan, timer.due_at, step=timer.step, cycle=0)
        state = outcome.state
        timeline.extend((timer.due_at, p.step, p.users) for p in _pages(outcome))
        due = _schedules(outcome)
    assert timeline == [
        (T0, 0, ("alice",)),
        (T0 + 5 * MIN, 1, ("bob",)),
        (T0 + 15 * MIN, 2, ("carol", "dave")),
        (T0 + 25 * MIN, 3, ("alice",)),  # repeat pass: level 0 waits the last level's 10m
        (T0 + 30 * MIN, 4, ("bob",)),
        (T0 + 40 * MIN, 5, ("carol", "dave")),
    ]
    assert state.next_step == plan.total_steps


def test_a_level_that_reaches_nobody_lets_the_next_level_page_at_once() -> None:
    # Level 0's schedule had nobody on call: level 1 pages now, level 2 after its own delay.
    plan = EscalationPlan(delays=(ZERO, 5 * MIN, 10 * MIN), targets=((), ("bob",), ("dave",)))
    outcome = open_incident(plan, T0)
    assert [(p.step, p.users) for p in _pages(outcome)] == [(0, ()), (1, ("bob",))]
    assert _schedules(outcome) == [ScheduleEscalation(step=2, cycle=0, due_at=T0 + 10 * MIN)]


def test_an_empty_level_reached_by_its_timer_lets_the_next_page_too() -> None:
    plan = EscalationPlan(delays=(ZERO, 5 * MIN, 10 * MIN), targets=(("alice",), (), ("dave",)))
    opened = open_incident(plan, T0)
    fired = apply(opened.state, Action.ESCALATE, plan, T0 + 5 * MIN, step=1, cycle=0)
    assert [(p.step, p.users) for p in _pages(fired)] == [(1, ()), (2, ("dave",))]
    assert fired.state.next_step == 3


# -- responder actions (issue 9) ---------------------------------------------------------------

ONE_LEVEL_BOB = EscalationPlan(delays=(ZERO,), targets=(("bob",),))


def test_row_triggered_reassign_starts_over_with_the_new_plan_in_a_new_cycle() -> None:
    state = _triggered_after_first_page()
    outcome = apply(
        state, Action.REASSIGN, ONE_LEVEL_BOB, T0 + MIN, assignment=Assignment("user", "bob")
    )
    assert outcome.state == Lifecycle(
        status=Status.TRIGGERED,
        cycle=1,
        next_step=1,
        responders=(Responder("bob", 0),),
        assignment=Assignment("user", "bob"),
    )
    assert outcome.effects == (
        CancelTimers(0),
        PageStep(0, 0, 1, ("bob",), NotificationEvent.TRIGGERED),
    )


def test_row_acknowledged_reassign_triggers_again_and_keeps_the_commander() -> None:
    state = replace(
        apply(_triggered_after_first_page(), Action.ACKNOWLEDGE, PLAN, T0 + MIN).state,
        commander="carol",
    )
    outcome = apply(
        state, Action.REASSIGN, PLAN, T0 + 2 * MIN, assignment=Assignment("policy", "p2")
    )
    assert outcome.state.status is Status.TRIGGERED
    assert outcome.state.commander == "carol"
    assert outcome.state.assignment == Assignment("policy", "p2")
    assert _pages(outcome) == [PageStep(0, 0, 1, ("alice",), NotificationEvent.TRIGGERED)]


def test_reassign_without_an_assignment_is_refused() -> None:
    with pytest.raises(Refused, match="a reassign needs a user, a schedule or a policy"):
        apply(_triggered_after_first_page(), Action.REASSIGN, PLAN, T0)


def test_a_later_cycle_keeps_the_assignment() -> None:
    reassigned = apply(
        _triggered_after_first_page(),
        Action.REASSIGN,
        ONE_LEVEL_BOB,
        T0,
        assignment=Assignment("schedule", "s"),
    ).state
    resolved = apply(reassigned, Action.RESOLVE, ONE_LEVEL_BOB, T0 + MIN).state
    reopened = apply(resolved, Action.REOPEN, ONE_LEVEL_BOB, T0 + 2 * MIN).state
    assert reopened.assignment == Assignment("schedule", "s")


def test_row_triggered_add_responder_pages_them_now_and_keeps_escalating() -> None:
    state = _triggered_after_first_page()
    outcome = apply(state, Action.ADD_RESPONDER, PLAN, T0 + MIN, user="erin")
    assert outcome.state == replace(
        state, responders=(Responder("alice", 0), Responder("erin", 0)), requests=1
    )
    assert outcome.effects == (PageResponder("erin", 0, 0, 0),)
    again = apply(outcome.state, Action.ADD_RESPONDER, PLAN, T0 + 2 * MIN, user="erin")
    assert again.state.responders == outcome.state.responders  # once in the list
    assert again.effects == (PageResponder("erin", 0, 0, 1),)  # but paged again


def test_row_acknowledged_add_responder_pages_them_and_stays_acknowledged() -> None:
    acked = apply(_triggered_after_first_page(), Action.ACKNOWLEDGE, PLAN, T0 + MIN).state
    outcome = apply(acked, Action.ADD_RESPONDER, PLAN, T0 + 2 * MIN, user="erin")
    assert outcome.state.status is Status.ACKNOWLEDGED
    assert outcome.effects == (PageResponder("erin", 0, 0, 0),)


def test_an_added_responder_gets_the_level_of_the_latest_page() -> None:
    state = _triggered_after_first_page()
    escalated = apply(state, Action.ESCALATE, PLAN, T0 + 5 * MIN, step=1, cycle=0).state
    outcome = apply(escalated, Action.ADD_RESPONDER, PLAN, T0 + 6 * MIN, user="erin")
    assert outcome.effects == (PageResponder("erin", 1, 0, 0),)


@pytest.mark.parametrize("status", [Status.TRIGGERED, Status.ACKNOWLEDGED])
def test_rows_set_commander_names_them_and_changes_nothing_else(status: Status) -> None:
    state = replace(_triggered_after_first_page(), status=status)
    outcome = apply(state, Action.SET_COMMANDER, PLAN, T0, user="carol")
    assert outcome.state == replace(state, commander="carol")
    assert outcome.effects == ()


@pytest.mark.parametrize("action", [Action.ADD_RESPONDER, Action.SET_COMMANDER])
def test_actions_naming_a_user_need_one(action: Action) -> None:
    with pytest.raises(Refused, match="this action needs a user"):
        apply(_triggered_after_first_page(), action, PLAN, T0)


# -- the ack timeout ---------------------------------------------------------------------------

WITH_ACK_TIMEOUT = replace(PLAN, ack_timeout=30 * MIN)


def test_acknowledge_with_an_ack_timeout_arms_it_in_a_new_cycle() -> None:
    state = _triggered_after_first_page()
    outcome = apply(state, Action.ACKNOWLEDGE, WITH_ACK_TIMEOUT, T0 + MIN)
    assert outcome.state == replace(
        state, status=Status.ACKNOWLEDGED, cycle=1, ack_timeout_at=T0 + 31 * MIN
    )
    assert outcome.effects == (
        CancelTimers(0),
        NotifyResponders((Responder("alice", 0),), NotificationEvent.ACKNOWLEDGED, 0),
        ScheduleAckTimeout(cycle=1, due_at=T0 + 31 * MIN),
    )


def test_the_ack_timeout_triggers_again_from_the_first_level() -> None:
    acked = apply(_triggered_after_first_page(), Action.ACKNOWLEDGE, WITH_ACK_TIMEOUT, T0).state
    outcome = apply(acked, Action.ACK_TIMEOUT, WITH_ACK_TIMEOUT, T0 + 30 * MIN, cycle=1)
    assert outcome.state.status is Status.TRIGGERED
    assert outcome.state.cycle == 2
    assert outcome.state.ack_timeout_at is None
    assert _pages(outcome) == [PageStep(0, 0, 2, ("alice",), NotificationEvent.TRIGGERED)]


def test_a_second_acknowledge_keeps_the_first_timeout() -> None:
    acked = apply(_triggered_after_first_page(), Action.ACKNOWLEDGE, WITH_ACK_TIMEOUT, T0).state
    assert apply(acked, Action.ACKNOWLEDGE, WITH_ACK_TIMEOUT, T0 + MIN) == Outcome(acked, ())


def test_a_snooze_replaces_the_ack_timeout_and_resolve_clears_it() -> None:
    acked = apply(_triggered_after_first_page(), Action.ACKNOWLEDGE, WITH_ACK_TIMEOUT, T0).state
    snoozed = apply(acked, Action.SNOOZE, WITH_ACK_TIMEOUT, T0, until=T0 + 60 * MIN)
    assert snoozed.state.ack_timeout_at is None
    assert snoozed.state.snoozed_until == T0 + 60 * MIN
    assert CancelTimers(1) in snoozed.effects
    resolved = apply(acked, Action.RESOLVE, WITH_ACK_TIMEOUT, T0 + MIN).state
    assert resolved.ack_timeout_at is None
