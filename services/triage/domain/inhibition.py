"""Inhibition as Alertmanager has it (`inhibit_rules`): while a source alert fires, an alert
that matches a rule's target matchers and has the same values for the rule's `equal` labels
(a label missing on both sides counts as equal) is inhibited: recorded, paging nothing. As in
Alertmanager, an alert never inhibits itself, and when the target also matches the source
matchers, source alerts that also match the target matchers are ignored (two alerts matching
both sides must not inhibit each other)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.triage.domain.matchers import Matcher, matches_all


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceAlert:
    """A firing alert that matches the source matchers of some rule."""

    fingerprint: str
    labels: Mapping[str, str]


def is_source(rules: Iterable[InhibitRule], labels: Mapping[str, str]) -> bool:
    return any(matches_all(rule.source, labels) for rule in rules)


def inhibited_by(
    rules: Sequence[InhibitRule],
    fingerprint: str,
    labels: Mapping[str, str],
    sources: Iterable[SourceAlert],
) -> tuple[SourceAlert, int] | None:
    """The firing source alert that inhibits this alert and the index of the rule, or None."""
    candidates = [source for source in sources if source.fingerprint != fingerprint]
    for n, rule in enumerate(rules):
        if not matches_all(rule.target, labels):
            continue
        two_sided = matches_all(rule.source, labels)
        for source in candidates:
            if not matches_all(rule.source, source.labels):
                continue
            if two_sided and matches_all(rule.target, source.labels):
                continue
            if all(source.labels.get(name, "") == labels.get(name, "") for name in rule.equal):
                return source, n
    return None
