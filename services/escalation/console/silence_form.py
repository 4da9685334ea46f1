"""The silence form's text, both ways: matchers one per line as amtool writes them
(`alertname="CheckoutDown"`, `instance=~"db-.*"`, `env!="dev"`, `job!~"x|y"`), pre-filled from an
alert's labels as `=` matchers; the duration (`2h`, `30m`, `1d`) or an end time. Pure: the
console turns the form into the body of triage's `POST /api/v1/silences` here, and triage checks
it again (regex syntax, a silence that matches everything)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_MATCHERS = 64
MAX_DURATION = timedelta(days=365)
# name, operator, then a double-quoted value (with \" \\ \n escapes) or the bare rest.
_LINE = re.compile(
    r'^\s*(?P<name>"(?:[^"\\]|\\.)*"|[^\s=!~"]+)\s*(?P<op>=~|!~|!=|=)\s*'
    r'(?P<value>"(?:[^"\\]|\\.)*"?|[^"=~\s][^"]*?|)\s*$'
)
_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*$")
OPERATORS = {"=": (False, True), "!=": (False, False), "=~": (True, True), "!~": (True, False)}


class FormProblem(ValueError):
    """What is wrong with the form, in the person's terms."""


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def line(self) -> str:
        op = {v: k for k, v in OPERATORS.items()}[(self.is_regex, self.is_equal)]
        return f"{_quote_name(self.name)}{op}{_quote(self.value)}"

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }


def lines_of(labels: Iterable[tuple[str, str]]) -> str:
    """An alert's labels as `=` matchers, one per line (the form's pre-filled text)."""
    return "\n".join(Matcher(name, value).line() for name, value in labels)


def parse_matchers(text: str) -> list[Matcher]:
    matchers = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        found = _LINE.match(raw)
        if found is None:
            raise FormProblem(f'matcher line {number}: write name="value" (or !=, =~, !~)')
        name = found["name"]
        if name.startswith('"'):
            name = _unquote(name, number)
        value = found["value"]
        if value.startswith('"'):
            value = _unquote(value, number)
        is_regex, is_equal = OPERATORS[found["op"]]
        matchers.append(Matcher(name, value, is_regex, is_equal))
    if not matchers:
        raise FormProblem("a silence needs at least one matcher")
    if len(matchers) > MAX_MATCHERS:
        raise FormProblem(f"at most {MAX_MATCHERS} matchers")
    return matchers


def parse_duration(text: str) -> timedelta:
    found = _DURATION.match(text)
    if found is None or not text.strip():
        raise FormProblem("duration: like 30m, 2h, 1d or 1d12h")
    days, hours, minutes = (int(part or 0) for part in found.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes)
    if not timedelta(0) < duration <= MAX_DURATION:
        raise FormProblem("duration: more than 0 and at most 365 days")
    return duration


def ends_at(duration: str, end: str, now: datetime) -> datetime:
    """The end: `end` (a UTC date and time, as an `<input type=datetime-local>` sends it) if
    given, else now plus `duration`."""
    if end.strip():
        try:
            when = datetime.fromisoformat(end.strip())
        except ValueError:
            raise FormProblem("ends at: a date and time like 2026-12-03T18:30") from None
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        if when <= now:
            raise FormProblem("ends at: must be in the future")
        return when
    return now + parse_duration(duration)


def silence_body(
    matchers: list[Matcher], now: datetime, end: datetime, created_by: str, comment: str
) -> dict[str, Any]:
    """The body of triage's POST /api/v1/silences (Alertmanager's PostableSilence)."""
    if not comment.strip():
        raise FormProblem("a comment is needed: why is this silenced?")
    return {
        "matchers": [m.body() for m in matchers],
        "startsAt": now.isoformat(),
        "endsAt": end.isoformat(),
        "createdBy": created_by,
        "comment": comment.strip()[:4096],
    }


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _quote_name(name: str) -> str:
    return name if re.fullmatch(r'[^\s=!~"]+', name) else _quote(name)


def _unquote(text: str, number: int) -> str:
    if len(text) < 2 or not text.endswith('"'):
        raise FormProblem(f"matcher line {number}: a quoted value must end with a quote")
    out, chars = [], iter(text[1:-1])
    for char in chars:
        if char == "\\":
            escaped = next(chars, "\\")
            out.append("\n" if escaped == "n" else escaped)
        elif char == '"':
            raise FormProblem(f'matcher line {number}: escape a quote inside a value as \\"')
        else:
            out.append(char)
    return "".join(out)
