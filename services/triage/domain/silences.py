"""Silences as Alertmanager has them: matchers (`{name, value, isRegex, isEqual}`) and a time
range. A firing alert that a silence in force matches is recorded with the silence's id and
opens or pages nothing; its next occurrence after the silence ended is triaged as new."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from services.triage.domain.matchers import Matcher, MatchOp


class SilenceState(Enum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime

    def state(self, at: datetime) -> SilenceState:
        if at < self.starts_at:
            return SilenceState.PENDING
        return SilenceState.ACTIVE if at < self.ends_at else SilenceState.EXPIRED

    def silences(self, labels: Mapping[str, str], at: datetime) -> bool:
        return self.state(at) is SilenceState.ACTIVE and all(
            matcher.matches(labels) for matcher in self.matchers
        )


def matcher_op(is_regex: bool, is_equal: bool) -> MatchOp:
    """Alertmanager v2's `isRegex`/`isEqual` pair as an operator."""
    if is_regex:
        return MatchOp.REGEX if is_equal else MatchOp.NOT_REGEX
    return MatchOp.EQUAL if is_equal else MatchOp.NOT_EQUAL


def matches_everything(matchers: Iterable[Matcher]) -> bool:
    """Alertmanager refuses a silence whose matchers all match the empty label set: it would
    silence every alert."""
    return all(matcher.matches({}) for matcher in matchers)


def silenced_by(
    silences: Iterable[Silence], labels: Mapping[str, str], at: datetime
) -> Silence | None:
    """The silence in force at `at` that matches, the one ending last if several do (so the
    alert's record names the silence that will hold it longest)."""
    found = [silence for silence in silences if silence.silences(labels, at)]
    return max(found, key=lambda s: (s.ends_at, s.id)) if found else None
