"""When the notifier tries a page again, and when it gives up (pure: time and randomness are
parameters).

A contact that fails in a way another attempt could fix (a timeout, a 5xx) is retried with
backoff for `period` from its first attempt: long enough to ride out a receiver's restart or a
short network outage, short enough that a responder accepts the wait before the next contact
method is tried. The last retry is due exactly when the period ends; `max_attempts` bounds the
attempts however the backoff is tuned.

An unexpected error (anything but the channel's `DeliveryFailed`: a bug, a malformed contact)
is no reason to wait minutes, nor to retry forever: it is tried `error_attempts` times, then
the notification is dead-lettered and reported failed, so the next contact method is tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.runtime.backoff import Random, backoff_delay


@dataclass(frozen=True)
class RetryPolicy:
    period: timedelta = timedelta(minutes=5)
    max_attempts: int = 30
    backoff_base: timedelta = timedelta(seconds=1)
    backoff_cap: timedelta = timedelta(seconds=30)
    error_attempts: int = 3

    def __post_init__(self) -> None:
        if self.period <= timedelta(0) or self.max_attempts < 1 or self.error_attempts < 1:
            raise ValueError("a retry policy needs a positive period and at least one attempt")
        if not timedelta(0) < self.backoff_base <= self.backoff_cap:
            raise ValueError("need 0 < backoff_base <= backoff_cap")


DEFAULT_RETRY = RetryPolicy()


def _delay(policy: RetryPolicy, attempt: int, random: Random) -> timedelta:
    seconds = backoff_delay(
        attempt,
        base=policy.backoff_base.total_seconds(),
        cap=policy.backoff_cap.total_seconds(),
        random=random,
    )
    return timedelta(seconds=seconds)


def retry_after_failure(
    policy: RetryPolicy, *, attempt: int, first_attempt_at: datetime, now: datetime, random: Random
) -> datetime | None:
    """When to try again after attempt `attempt` failed retryably; None: give up now."""
    deadline = first_attempt_at + policy.period
    if attempt >= policy.max_attempts or now >= deadline:
        return None
    return min(now + _delay(policy, attempt, random), deadline)


def retry_after_error(
    policy: RetryPolicy, *, errors: int, now: datetime, random: Random
) -> datetime | None:
    """When to try again after the `errors`-th unexpected error; None: dead-letter it now."""
    if errors >= policy.error_attempts:
        return None
    return now + _delay(policy, errors, random)
