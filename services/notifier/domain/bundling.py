"""Per-contact rate limit with bundling (pure: time is a parameter, the state is a value).

A phone number gets at most one SMS per 30 s and one call per 2 minutes (configurable). A page
that arrives inside that window is not dropped and not sent alone later: it waits, with any
other page that arrives meanwhile, and they all go out together as one message ("3 incidents
triggered: ...") as soon as the window ends, as GoAlert does. The state is small enough to live
in one document per contact (channel + address), next to the pages it names by notification id.

Two inputs, one shape of answer:
- `on_page`: a page for this contact; send it now (alone, or with pages already waiting), or
  hold it and say when the contact can be sent to next.
- `on_timer`: the time given earlier has come; send what waits.

Each answer is the new state and a `Decision`: the notification ids to send now as one message
(in arrival order; empty for none) and when to call `on_timer` (None: nothing waits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

DEFAULT_INTERVALS: Mapping[str, timedelta] = MappingProxyType(
    {"sms": timedelta(seconds=30), "voice": timedelta(minutes=2)}
)
"""Minimum time between two messages to one contact, by contact type; other types have none."""


@dataclass(frozen=True)
class ContactWindow:
    """Rate-limit state of one contact."""

    last_sent_at: datetime | None = None
    pending: tuple[str, ...] = ()
    """Notification ids waiting for the window to end, in arrival order."""


@dataclass(frozen=True)
class Decision:
    send: tuple[str, ...]
    """Notification ids to send now, as one message (a bundle when more than one)."""
    wake_at: datetime | None
    """When to call `on_timer` for this contact; None when nothing waits."""


def next_send_at(state: ContactWindow, interval: timedelta) -> datetime | None:
    """The earliest time the contact may be sent to; None: at once."""
    if state.last_sent_at is None or interval <= timedelta(0):
        return None
    return state.last_sent_at + interval


def on_page(
    state: ContactWindow, *, notification_id: str, now: datetime, interval: timedelta
) -> tuple[ContactWindow, Decision]:
    """A page for this contact arrived. A page already waiting (a redelivery) is not added
    twice."""
    pending = state.pending
    if notification_id not in pending:
        pending = (*pending, notification_id)
    return _step(ContactWindow(state.last_sent_at, pending), now, interval)


def on_timer(
    state: ContactWindow, *, now: datetime, interval: timedelta
) -> tuple[ContactWindow, Decision]:
    """The time from an earlier `Decision.wake_at` came (early or late calls are harmless)."""
    return _step(state, now, interval)


def _step(
    state: ContactWindow, now: datetime, interval: timedelta
) -> tuple[ContactWindow, Decision]:
    if state.last_sent_at is not None and state.last_sent_at > now:
        # The clock stepped back: count the window from now, so that a page waits at most one
        # interval (the clamp is kept in the state, or every call would push the wait again).
        state = ContactWindow(last_sent_at=now, pending=state.pending)
    if not state.pending:
        return state, Decision(send=(), wake_at=None)
    due = next_send_at(state, interval)
    if due is not None and now < due:
        return state, Decision(send=(), wake_at=due)
    return ContactWindow(last_sent_at=now, pending=()), Decision(send=state.pending, wake_at=None)
