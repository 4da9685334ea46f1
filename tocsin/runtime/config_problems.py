"""How problems in the configuration file are worded: in the terms of someone editing the YAML,
each with the exact path of the bad key (`users[1].notification_rules[0].contact: unknown
contact 'x' (user 'bob' has: a, b)`), never in pydantic's words and never repeating a secret.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any, get_args

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
IDENTIFIER_RULE = "must start with a letter or digit and hold only letters, digits, '_', '.', '-'"

Loc = tuple[int | str, ...]


class ConfigProblems(ValueError):
    """Raised by a model validator: problems at paths relative to the model, so that the
    report names the exact key (`notification_rules[0].contact`), not just the model."""

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{path(at)}: {problem}" for at, problem in problems))
        self.problems = list(problems)


def path(loc: Loc) -> str:
    """`("users", 1, "contacts", 0, "id")` -> `users[1].contacts[0].id`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "value_error")):
            continue
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def duplicates(ids: Sequence[str]) -> Iterable[tuple[int, int, str]]:
    """(position, position of the first, id) of every repeated id."""
    first: dict[str, int] = {}
    for n, entry_id in enumerate(ids):
        if first.setdefault(entry_id, n) != n:
            yield n, first[entry_id], entry_id


def unknown(kind: str, name: str, known: Sequence[str]) -> str:
    """`unknown user 'carol' (defined: alice, bob)`."""
    if not known:
        return f"unknown {kind} {name!r} (none is defined)"
    shown = ", ".join(sorted(known)[:20]) + (", ..." if len(known) > 20 else "")
    return f"unknown {kind} {name!r} (defined: {shown})"


def problems_of(error: ValidationError, root: type[BaseModel]) -> list[str]:
    """One `path: problem` line per error of validating a document as `root`."""
    problems: list[str] = []
    for detail in error.errors(include_url=False):
        loc: Loc = tuple(detail["loc"])
        raised = (detail.get("ctx") or {}).get("error")
        if isinstance(raised, ConfigProblems):
            problems.extend(f"{path(loc + at)}: {problem}" for at, problem in raised.problems)
        else:
            problems.append(f"{path(loc)}: {describe(detail, root)}")
    return problems


_COMPARISONS = {
    "greater_than_equal": ("at least", "ge"),
    "less_than_equal": ("at most", "le"),
    "greater_than": ("more than", "gt"),
    "less_than": ("less than", "lt"),
}


def describe(error: ErrorDetails, root: type[BaseModel]) -> str:
    """Pydantic's error in the user's terms. Repeats no input but a literal's (a value given
    for a token or a webhook address may be a secret)."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    loc: Loc = tuple(error["loc"])
    given = error.get("input")
    if kind == "missing":
        return "missing (required)"
    if kind == "extra_forbidden":
        return _unknown_key(loc, root)
    if kind == "string_type":
        return "must be text (put it in quotes)"
    if kind == "string_too_short" and ctx["min_length"] == 1:
        return "must not be empty"
    if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        # A SecretStr's length is checked as a sequence's: count characters for text.
        unit = (
            "character"
            if kind.startswith("string") or isinstance(given, str | SecretStr)
            else "item"
        )
        least = "at least" if kind.endswith("short") else "at most"
        bound = ctx["min_length"] if kind.endswith("short") else ctx["max_length"]
        return f"must be {least} {bound} {unit}{'' if bound == 1 else 's'}"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == IDENTIFIER_PATTERN:
            return IDENTIFIER_RULE
        return f"must match the pattern {ctx.get('pattern')}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        got = f" (got {given!r})" if isinstance(given, str) and len(given) <= 100 else ""
        return f"must be one of: {', '.join(choices)}{got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        between = _bounds(loc, root)
        return "must be a whole number" + (f" {between}" if between else "")
    if kind in _COMPARISONS:
        between = _bounds(loc, root)
        phrase, key = _COMPARISONS[kind]
        return f"must be {between}" if between else f"must be {phrase} {ctx[key]}"
    if kind in ("tuple_type", "list_type"):
        return "must be a list (one `- item` per line, or [a, b])"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping (key: value lines)"
    if kind in ("time_delta_type", "time_delta_parsing"):
        return "must be a duration with a unit, e.g. '30s' or '5m'"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _model_at(loc: Loc, root: type[BaseModel]) -> type[BaseModel] | None:
    """The model whose keys are at `loc` (`users[1].contacts[0]` -> ContactConfig)."""
    model = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            return None
        model = inner
    return model


def _bounds(loc: Loc, root: type[BaseModel]) -> str | None:
    """`between 0 and 3` for a number field with both bounds."""
    model = _model_at(loc[:-1], root)
    field = model.model_fields.get(str(loc[-1])) if model is not None else None
    if field is None:
        return None
    low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    return f"between {low} and {high}" if low is not None and high is not None else None


def _unknown_key(loc: Loc, root: type[BaseModel]) -> str:
    model = _model_at(loc[:-1], root)
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}known keys here: {', '.join(known)})"
