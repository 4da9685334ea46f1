"""Flapping: more than N changes between firing and resolved within the window make an alert
flap; it clears once the alert was quiet (no change) for the quiet period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.triage.domain.flapping import FlappingRule, FlapState, track

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RULE = FlappingRule(transitions=3, window=timedelta(minutes=10), quiet=timedelta(minutes=5))


def changes(times: list[float]) -> FlapState:
    state = FlapState()
    for minute in times:
        state = track(RULE, state, True, T0 + timedelta(minutes=minute))
    return state


def test_n_changes_in_the_window_are_not_flapping_one_more_is() -> None:
    assert not changes([0, 1, 2]).flapping
    state = changes([0, 1, 2, 3])
    assert state.flapping
    assert state.since == T0 + timedelta(minutes=3)


def test_changes_spread_wider_than_the_window_are_not_flapping() -> None:
    assert not changes([0, 4, 8, 12, 16, 20]).flapping


def test_repeats_are_not_changes() -> None:
    state = changes([0, 1, 2])
    state = track(RULE, state, False, T0 + timedelta(minutes=2, seconds=30))
    assert not state.flapping
    assert state.last_change == T0 + timedelta(minutes=2)


def test_flapping_clears_after_the_quiet_period_and_not_before() -> None:
    state = changes([0, 1, 2, 3])
    assert track(RULE, state, False, T0 + timedelta(minutes=7, seconds=59)).flapping
    assert not track(RULE, state, False, T0 + timedelta(minutes=8)).flapping


def test_a_change_after_the_quiet_period_starts_over() -> None:
    state = changes([0, 1, 2, 3, 9])
    assert not state.flapping
    assert state.changes == (T0 + timedelta(minutes=9),)


def test_the_state_stays_bounded() -> None:
    state = changes([n / 10 for n in range(100)])
    assert state.flapping
    assert len(state.changes) == RULE.transitions + 1
