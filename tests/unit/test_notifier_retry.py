"""The notifier's retry policy: retry for the period from the first attempt, the last retry due
exactly when it ends, at most `max_attempts`, then give up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.domain.retry import (
    DEFAULT_RETRY,
    RetryPolicy,
    retry_after_error,
    retry_after_failure,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    period=timedelta(minutes=5),
    max_attempts=30,
    backoff_base=timedelta(seconds=1),
    backoff_cap=timedelta(seconds=30),
)


def lowest() -> float:
    return 0.0


def highest() -> float:
    return 1.0 - 1e-12


def test_the_first_retry_comes_after_the_first_backoff_step() -> None:
    due = retry_after_failure(POLICY, attempt=1, first_attempt_at=T0, now=T0, random=lowest)
    assert due == T0 + timedelta(seconds=0.5)


def test_retries_back_off_up_to_the_cap() -> None:
    now = T0 + timedelta(seconds=60)
    due = retry_after_failure(POLICY, attempt=12, first_attempt_at=T0, now=now, random=highest)
    assert due is not None
    assert due - now == pytest.approx(timedelta(seconds=30), abs=timedelta(milliseconds=1))


def test_the_last_retry_is_due_when_the_period_ends() -> None:
    now = T0 + timedelta(seconds=290)
    due = retry_after_failure(POLICY, attempt=15, first_attempt_at=T0, now=now, random=highest)
    assert due == T0 + timedelta(minutes=5)


def test_a_failure_at_the_end_of_the_period_gives_up() -> None:
    now = T0 + timedelta(minutes=5)
    due = retry_after_failure(POLICY, attempt=16, first_attempt_at=T0, now=now, random=lowest)
    assert due is None


def test_max_attempts_bounds_the_retries_within_the_period() -> None:
    policy = RetryPolicy(period=timedelta(hours=1), max_attempts=3)
    now = T0 + timedelta(seconds=5)
    for attempt, retried in ((2, True), (3, False)):
        due = retry_after_failure(
            policy, attempt=attempt, first_attempt_at=T0, now=now, random=lowest
        )
        assert (due is not None) is retried


def simulate(policy: RetryPolicy, draw: float) -> tuple[int, timedelta]:
    """Attempts made, and when the last one failed, for a contact that always fails."""
    now, attempt = T0, 1
    while (
        due := retry_after_failure(
            policy, attempt=attempt, first_attempt_at=T0, now=now, random=lambda: draw
        )
    ) is not None:
        now, attempt = due, attempt + 1
    return attempt, now - T0


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_by_default_a_dead_contact_is_given_up_after_five_minutes_not_seconds(draw: float) -> None:
    attempts, gave_up_after = simulate(DEFAULT_RETRY, draw)
    # The period governs, not the attempt bound: the last attempt is at the five minutes.
    assert gave_up_after == timedelta(minutes=5)
    assert attempts < DEFAULT_RETRY.max_attempts


def test_an_unexpected_error_is_retried_soon_and_a_bounded_number_of_times() -> None:
    policy = RetryPolicy(error_attempts=3)
    first = retry_after_error(policy, errors=1, now=T0, random=lowest)
    second = retry_after_error(policy, errors=2, now=T0, random=lowest)
    assert (first, second) == (T0 + timedelta(seconds=0.5), T0 + timedelta(seconds=1))
    assert retry_after_error(policy, errors=3, now=T0, random=lowest) is None


def test_a_policy_without_time_or_attempts_is_refused() -> None:
    with pytest.raises(ValueError, match="positive period"):
        RetryPolicy(period=timedelta(0))
    with pytest.raises(ValueError, match="at least one attempt"):
        RetryPolicy(error_attempts=0)
    with pytest.raises(ValueError, match="backoff_base"):
        RetryPolicy(backoff_base=timedelta(seconds=60), backoff_cap=timedelta(seconds=30))
