"""Alertmanager's label matchers (`name="value"`, `!=`, `=~`, `!~`), parsed once and compiled.

The grammar follows Alertmanager's own (the classic parser of `pkg/labels`): a label name
(`[a-zA-Z_:][a-zA-Z0-9_:]*`), an operator, then a value that may be wrapped in double quotes;
whitespace around each token is dropped. Inside the value OpenMetrics escapes apply (`\\"`,
`\\n`, `\\\\`); any other backslash is literal; an unescaped `"` may only open and close the
value. Regexes are fully anchored (`^(?:re)$`), as in Alertmanager, so `env=~"prod"` does not
match `preprod`. A label the alert lacks has the empty value (`team=""` matches it,
`team!=""` does not). Regexes use Python's `re`, which accepts RE2's common syntax; the
RE2-only parts (`\\C`, `\\pN` without braces) are refused at load with the error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

_MATCHER = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL)


class MatcherError(ValueError):
    """A matcher that does not parse or whose regex does not compile; says which and why."""


class MatchOp(Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True)
class Matcher:
    name: str
    op: MatchOp
    value: str
    _compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, op: MatchOp, value: str) -> Matcher:
        if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
            raise MatcherError(f"bad label name {name!r}")
        compiled = None
        if op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            try:
                compiled = re.compile(f"^(?:{value})$")
            except re.error as error:
                raise MatcherError(f"{name}{op.value}{value!r}: bad regex: {error}") from None
        return cls(name, op, value, compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op is MatchOp.EQUAL:
            return value == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return value != self.value
        assert self._compiled is not None
        found = self._compiled.match(value) is not None
        return found if self.op is MatchOp.REGEX else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op.value}"{escaped}"'


def _unquote(raw: str, whole: str) -> str:
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    closed = False
    for position, char in enumerate(raw):
        if escaped:
            escaped = False
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(char, "\\" + char))
        elif char == "\\":
            if position < len(raw) - 1:
                escaped = True
            else:
                out.append("\\")  # a last lone backslash is literal
        elif char == '"':
            if not quoted or position < len(raw) - 1:
                raise MatcherError(f"{whole!r}: unescaped double quote in the value")
            closed = True
        else:
            out.append(char)
    if quoted and not closed:
        raise MatcherError(f"{whole!r}: the value's opening quote is never closed")
    return "".join(out)


def parse_matcher(text: str) -> Matcher:
    """One matcher, e.g. `env=~"prod|live"` or `team = payments`."""
    found = _MATCHER.match(text)
    if found is None:
        raise MatcherError(f"{text!r}: expected <label><op><value> with op one of = != =~ !~")
    name, op, raw = found.groups()
    return Matcher.of(name, MatchOp(op), _unquote(raw, text))


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    return tuple(parse_matcher(text) for text in texts)


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """All matchers hold (an empty list matches every alert, as in Alertmanager's routes)."""
    return all(matcher.matches(labels) for matcher in matchers)
