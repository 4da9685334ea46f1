"""Action items of an incident (pure): what an item holds, its checks (the owner is a
configured user, the due date is not in the past), when it is overdue and when its owner is
reminded (the first moment it is overdue, then once a day)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from pydantic import Field

from schemas import Contract


class ActionItemStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    WONT_DO = "wont_do"

    @property
    def closed(self) -> bool:
        return self in (ActionItemStatus.DONE, ActionItemStatus.WONT_DO)


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


REMIND_EVERY = timedelta(days=1)


class ActionItemProblem(ValueError):
    """Bad input, naming the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ActionItem(Contract):
    id: str
    incident_id: str
    title: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=100)
    due: date
    priority: Priority = Priority.MEDIUM
    url: str | None = Field(default=None, max_length=2048)
    status: ActionItemStatus = ActionItemStatus.OPEN
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int = 1


def check_owner(owner: str, users: Collection[str]) -> None:
    if owner not in users:
        known = ", ".join(sorted(users)[:20]) or "none configured"
        raise ActionItemProblem("owner", f"no user {owner!r} (users: {known})")


def check_due(due: date, now: datetime) -> None:
    """A due date is a UTC day that has not ended yet."""
    if due < now.astimezone(UTC).date():
        raise ActionItemProblem("due", f"{due.isoformat()} is in the past")


def check_url(url: str | None) -> None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise ActionItemProblem("url", "must be an http:// or https:// link to the tracker")


def overdue_from(due: date) -> datetime:
    """The first moment an item due on `due` is overdue: the end of that UTC day."""
    return datetime.combine(due + timedelta(days=1), time(0), tzinfo=UTC)


def is_overdue(item: ActionItem, now: datetime) -> bool:
    return not item.status.closed and now >= overdue_from(item.due)


def reminder_text(item: ActionItem) -> str:
    return f"Action item overdue (due {item.due.isoformat()}): {item.title}"
