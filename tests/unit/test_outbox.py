"""Lifecycle effects → concrete outbox items with deterministic ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

from schemas import LifecycleStatus, NotificationEvent
from services.escalation.domain.lifecycle import (
    Action,
    CancelTimers,
    Effect,
    EscalationPlan,
    NotifyResponders,
    PageResponder,
    PageStep,
    Responder,
    ScheduleAckTimeout,
    ScheduleEscalation,
    apply,
    open_incident,
)
from services.escalation.domain.outbox import (
    ArmTimer,
    CancelPendingTimers,
    NotificationRule,
    OutboxItem,
    PublishLifecycle,
    SendNotification,
    lifecycle_item,
    outbox_items,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
ZERO = timedelta(0)
INCIDENT = "inc-1"

RULES: Mapping[str, Sequence[NotificationRule]] = {
    # alice: webhook at once, then SMS after 2 minutes.
    "alice": (NotificationRule("alice-hook", ZERO), NotificationRule("alice-sms", 2 * MIN)),
    "bob": (NotificationRule("bob-hook", ZERO),),
    # carol only has a delayed rule.
    "carol": (NotificationRule("carol-phone", 3 * MIN), NotificationRule("carol-sms", 9 * MIN)),
}


def _items(effects: Sequence[Effect], cause: str = "cause-1") -> list[OutboxItem]:
    return outbox_items(INCIDENT, effects, RULES, T0, cause)


def _who(*users: str) -> tuple[Responder, ...]:
    """Responders first paged at level 0."""
    return tuple(Responder(user, 0) for user in users)


def _page(
    step: int = 0,
    users: tuple[str, ...] = ("alice",),
    cycle: int = 0,
    level: int = 0,
    event: NotificationEvent = NotificationEvent.TRIGGERED,
) -> PageStep:
    return PageStep(step=step, level=level, cycle=cycle, users=users, event=event)


def test_page_step_sends_immediate_rules_and_arms_timers_for_delayed_ones() -> None:
    items = _items([_page(users=("alice",))])
    assert items == [
        SendNotification(
            id="send:inc-1/c0/s0/alice/alice-hook",
            notification_id="inc-1/c0/s0/alice/alice-hook",
            user_id="alice",
            contact_id="alice-hook",
            event=NotificationEvent.TRIGGERED,
            escalation_level=0,
        ),
        ArmTimer(
            id="timer:inc-1/c0/s0/alice/alice-sms",
            timer_id="notify:inc-1/c0/s0/alice/alice-sms",
            kind="notify",
            due_at=T0 + 2 * MIN,
            step=0,
            cycle=0,
            notification=SendNotification(
                id="send:inc-1/c0/s0/alice/alice-sms",
                notification_id="inc-1/c0/s0/alice/alice-sms",
                user_id="alice",
                contact_id="alice-sms",
                event=NotificationEvent.TRIGGERED,
                escalation_level=0,
            ),
        ),
    ]


def test_page_step_covers_every_user_and_rule_in_order() -> None:
    items = _items(
        [_page(step=1, level=1, users=("bob", "carol"), event=NotificationEvent.ESCALATED)]
    )
    summary = [
        (type(i).__name__, getattr(i, "kind", None), getattr(i, "due_at", None)) for i in items
    ]
    assert summary == [
        ("SendNotification", None, None),
        ("ArmTimer", "notify", T0 + 3 * MIN),
        ("ArmTimer", "notify", T0 + 9 * MIN),
    ]
    send = items[0]
    assert isinstance(send, SendNotification)
    assert (send.user_id, send.contact_id, send.escalation_level, send.event) == (
        "bob",
        "bob-hook",
        1,
        NotificationEvent.ESCALATED,
    )
    timer = items[1]
    assert isinstance(timer, ArmTimer)
    assert timer.notification is not None
    assert timer.notification.escalation_level == 1
    assert (timer.step, timer.cycle) == (1, 0)


def test_negative_after_counts_as_immediate() -> None:
    rules = {"eve": (NotificationRule("eve-hook", -MIN),)}
    items = outbox_items(INCIDENT, [_page(users=("eve",))], rules, T0, "c")
    assert [type(i) for i in items] == [SendNotification]


def test_user_without_rules_gets_no_items() -> None:
    assert _items([_page(users=("nobody",))]) == []


def test_schedule_escalation_arms_an_escalate_timer() -> None:
    due = T0 + 5 * MIN
    items = _items([ScheduleEscalation(step=1, cycle=2, due_at=due)])
    assert items == [
        ArmTimer(
            id="timer:escalate:inc-1/c2/s1",
            timer_id="escalate:inc-1/c2/s1",
            kind="escalate",
            due_at=due,
            step=1,
            cycle=2,
        )
    ]


def test_cancel_timers_item_id_is_unique_to_its_cause_and_names_its_cycle() -> None:
    first = _items([CancelTimers(0)], cause="ack-1")
    second = _items([CancelTimers(2)], cause="ack-2")
    assert first == [CancelPendingTimers(id="cancel:inc-1/ack-1", cycle=0)]
    assert second == [CancelPendingTimers(id="cancel:inc-1/ack-2", cycle=2)]


def test_a_cancel_stored_before_cycles_were_named_cancels_every_cycle() -> None:
    adapter: TypeAdapter[list[OutboxItem]] = TypeAdapter(list[OutboxItem])
    (legacy,) = adapter.validate_python([{"type": "cancel_timers", "id": "cancel:inc-1/x"}])
    assert legacy == CancelPendingTimers(id="cancel:inc-1/x", cycle=None)


def test_notify_responders_uses_immediate_contacts_and_the_level_each_was_paged_at() -> None:
    responders = (Responder("alice", 0), Responder("bob", 1))
    items = _items([NotifyResponders(responders, NotificationEvent.ACKNOWLEDGED, 0)])
    assert items == [
        SendNotification(
            id="send:inc-1/c0/incident.acknowledged/alice/alice-hook",
            notification_id="inc-1/c0/incident.acknowledged/alice/alice-hook",
            user_id="alice",
            contact_id="alice-hook",
            event=NotificationEvent.ACKNOWLEDGED,
            escalation_level=0,
        ),
        SendNotification(
            id="send:inc-1/c0/incident.acknowledged/bob/bob-hook",
            notification_id="inc-1/c0/incident.acknowledged/bob/bob-hook",
            user_id="bob",
            contact_id="bob-hook",
            event=NotificationEvent.ACKNOWLEDGED,
            escalation_level=1,
        ),
    ]


def test_notify_responders_falls_back_to_first_rule_when_none_is_immediate() -> None:
    items = _items([NotifyResponders(_who("carol"), NotificationEvent.RESOLVED, 1)])
    assert [
        (i.user_id, i.contact_id, i.event) for i in items if isinstance(i, SendNotification)
    ] == [("carol", "carol-phone", NotificationEvent.RESOLVED)]
    assert len(items) == 1
    assert items[0].id == "send:inc-1/c1/incident.resolved/carol/carol-phone"


def test_notify_responders_sends_every_immediate_contact() -> None:
    rules = {
        "dan": (
            NotificationRule("a", ZERO),
            NotificationRule("b", ZERO),
            NotificationRule("c", MIN),
        )
    }
    effect = NotifyResponders(_who("dan"), NotificationEvent.RESOLVED, 0)
    items = outbox_items(INCIDENT, [effect], rules, T0, "x")
    assert [i.contact_id for i in items if isinstance(i, SendNotification)] == ["a", "b"]
    assert len(items) == 2


def test_notify_responders_without_users_or_rules_gives_nothing() -> None:
    assert _items([NotifyResponders(_who(), NotificationEvent.RESOLVED, 0)]) == []
    assert _items([NotifyResponders(_who("nobody"), NotificationEvent.RESOLVED, 0)]) == []


def test_items_follow_effect_order() -> None:
    effects: list[Effect] = [
        CancelTimers(0),
        NotifyResponders(_who("bob"), NotificationEvent.RESOLVED, 0),
        _page(users=("bob",)),
        ScheduleEscalation(1, 0, T0 + MIN),
    ]
    items = _items(effects)
    assert [i.type for i in items] == ["cancel_timers", "send", "send", "timer"]


def test_notification_ids_are_deterministic() -> None:
    effects = open_incident(
        EscalationPlan(delays=(ZERO, 5 * MIN), targets=(("alice", "carol"), ("bob",))), T0
    ).effects
    first = outbox_items(INCIDENT, effects, RULES, T0, "open")
    second = outbox_items(INCIDENT, effects, RULES, T0, "open")
    assert first == second
    assert [i.id for i in first] == [i.id for i in second]


def _notification_ids(items: Sequence[OutboxItem]) -> list[str]:
    ids = []
    for item in items:
        if isinstance(item, SendNotification):
            ids.append(item.notification_id)
        elif isinstance(item, ArmTimer) and item.notification is not None:
            ids.append(item.notification.notification_id)
    return ids


def test_notification_ids_are_distinct_per_step_user_contact_and_cycle() -> None:
    effects: list[Effect] = [
        _page(step=0, users=("alice", "bob")),
        _page(step=1, level=1, users=("alice",), event=NotificationEvent.ESCALATED),
        _page(step=0, users=("alice",), cycle=1),
        NotifyResponders(_who("alice", "bob"), NotificationEvent.ACKNOWLEDGED, 0),
        NotifyResponders(_who("alice", "bob"), NotificationEvent.RESOLVED, 0),
        NotifyResponders(_who("alice"), NotificationEvent.ACKNOWLEDGED, 1),
    ]
    items = _items(effects)
    ids = _notification_ids(items)
    # pages: 3 + 2 + 2; status updates: 2 + 2 + 1
    assert len(ids) == 12
    assert len(set(ids)) == len(ids)
    item_ids = [i.id for i in items]
    assert len(set(item_ids)) == len(item_ids)


def test_outbox_of_a_full_repeat_policy_has_no_duplicate_ids() -> None:
    plan = EscalationPlan(delays=(ZERO, 5 * MIN), targets=(("alice",), ("alice", "bob")), repeat=2)
    outcome = open_incident(plan, T0)
    items = outbox_items(INCIDENT, outcome.effects, RULES, T0, "open")
    state = outcome.state
    for step in range(1, plan.total_steps):
        outcome = apply(state, Action.ESCALATE, plan, T0, step=step, cycle=0)
        state = outcome.state
        items += outbox_items(INCIDENT, outcome.effects, RULES, T0, f"t{step}")
    item_ids = [i.id for i in items]
    assert len(set(item_ids)) == len(item_ids)
    # alice: 2 rules x 6 steps; bob: 1 rule x 3 steps; 5 escalate timers.
    assert len(_notification_ids(items)) == 2 * 6 + 3
    assert sum(1 for i in items if isinstance(i, ArmTimer) and i.kind == "escalate") == 5


def test_outbox_items_round_trip_through_json() -> None:
    adapter: TypeAdapter[list[OutboxItem]] = TypeAdapter(list[OutboxItem])
    items = _items(
        [
            _page(users=("alice", "carol")),
            ScheduleEscalation(1, 0, T0 + 5 * MIN),
            CancelTimers(0),
            NotifyResponders(_who("bob"), NotificationEvent.ACKNOWLEDGED, 0),
        ]
    )
    assert adapter.validate_json(adapter.dump_json(items)) == items


def test_lifecycle_item_id_is_unique_to_its_cause_and_round_trips() -> None:
    first = lifecycle_item(INCIDENT, LifecycleStatus.RESOLVED, "api:ops", T0, "v3")
    assert first == PublishLifecycle(
        id="lifecycle:inc-1/v3", status=LifecycleStatus.RESOLVED, actor="api:ops", at=T0
    )
    assert lifecycle_item(INCIDENT, LifecycleStatus.RESOLVED, None, T0, "v4").id != first.id
    adapter: TypeAdapter[list[OutboxItem]] = TypeAdapter(list[OutboxItem])
    assert adapter.validate_json(adapter.dump_json([first])) == [first]


def test_schedule_ack_timeout_arms_a_timer_per_cycle() -> None:
    due = T0 + 30 * MIN
    items = _items([ScheduleAckTimeout(cycle=3, due_at=due)])
    assert items == [
        ArmTimer(
            id="timer:ack_timeout:inc-1/c3",
            timer_id="ack_timeout:inc-1/c3",
            kind="ack_timeout",
            due_at=due,
            step=0,
            cycle=3,
        )
    ]


def test_an_extra_responder_is_paged_by_their_rules_under_ids_of_their_own() -> None:
    items = _items([PageResponder("alice", level=1, cycle=2, request=3)])
    assert [type(item).__name__ for item in items] == ["SendNotification", "ArmTimer"]
    send, timer = items
    assert isinstance(send, SendNotification)
    assert isinstance(timer, ArmTimer)
    assert send.notification_id == "inc-1/c2/r3/alice/alice-hook"
    assert (send.event, send.escalation_level) == (NotificationEvent.TRIGGERED, 1)
    assert timer.timer_id == "notify:inc-1/c2/r3/alice/alice-sms"
    assert (timer.kind, timer.due_at, timer.cycle) == ("notify", T0 + 2 * MIN, 2)
    # Never the id of a step's page.
    step_ids = {i.id for i in _items([_page(step=3, cycle=2)])}
    assert not step_ids & {i.id for i in items}
