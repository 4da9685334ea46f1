"""Where queued work is stored (pending or parked) and when a process promotes parked work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tocsin.runtime.parking import EVERY, NEAR, PARKED, PENDING, promotion_due, state_for

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_before_any_promotion_everything_is_pending() -> None:
    assert state_for(T0 + timedelta(days=30), None) == PENDING


def test_work_within_the_horizon_is_pending_and_beyond_it_parked() -> None:
    assert state_for(T0 + NEAR, T0) == PENDING
    assert state_for(T0 - timedelta(hours=1), T0) == PENDING  # overdue already
    assert state_for(T0 + NEAR + timedelta(microseconds=1), T0) == PARKED


def test_a_process_promotes_at_its_first_claim_then_at_most_every_interval() -> None:
    assert promotion_due(T0, None)
    assert not promotion_due(T0 + EVERY - timedelta(seconds=1), T0)
    assert promotion_due(T0 + EVERY, T0)


def test_a_clock_that_went_back_promotes_again() -> None:
    assert promotion_due(T0 - timedelta(seconds=1), T0)


def test_parked_work_is_promoted_well_before_it_is_due() -> None:
    # The horizon's margin: a promotion comes at most EVERY (plus a poll's sleep, at most
    # 5 s) after the last, and takes what is due within NEAR of it.
    assert NEAR - EVERY - timedelta(seconds=5) >= timedelta(seconds=30)
