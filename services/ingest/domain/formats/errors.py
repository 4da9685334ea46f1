"""A body that does not fit its format, said in the sender's terms (pure).

pydantic's messages name Python types ("Input should be a valid dictionary or instance of
AlertmanagerWebhook"); a sender wrote JSON. Each error becomes a JSON path and a short message
about JSON values: `$.alerts: field required`, `$: expected a JSON object`.
"""

from __future__ import annotations

import re

from pydantic_core import ErrorDetails

from services.ingest.domain.formats.common import json_path

_EXPECTED_BY_TYPE = {
    "missing": "field required",
    "model_type": "expected a JSON object",
    "model_attributes_type": "expected a JSON object",
    "dict_type": "expected a JSON object",
    "list_type": "expected a JSON array",
    "tuple_type": "expected a JSON array",
    "string_type": "expected a string",
    "string_unicode": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "none_required": "expected null",
}
_DATETIME = "expected an RFC 3339 date-time, e.g. 2026-05-01T12:00:00Z"
_PYTHON_CLASS = re.compile(r" or instance of \w+")


def _size_of(value: object) -> str:
    if isinstance(value, str):
        return "characters"
    return "entries" if isinstance(value, dict) else "items"


def describe(error: ErrorDetails) -> str:
    """One validation error as a message about the JSON the sender wrote (no Python names)."""
    try:
        return _specific(error)
    except KeyError:  # a context without the expected key: say it the generic way
        return _generic(error)


def _generic(error: ErrorDetails) -> str:
    message = _PYTHON_CLASS.sub("", error["msg"]).replace("Input should be", "expected", 1)
    return message[:1].lower() + message[1:]


def _specific(error: ErrorDetails) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind in _EXPECTED_BY_TYPE:
        return _EXPECTED_BY_TYPE[kind]
    if kind.startswith(("datetime", "date_", "time_")):
        return _DATETIME
    if kind in ("enum", "literal_error"):
        return f"expected {context['expected']}"
    if kind == "string_too_short":
        limit = context["min_length"]
        return "must not be empty" if limit == 1 else f"at least {limit} characters"
    if kind == "string_too_long":
        return f"at most {context['max_length']} characters"
    if kind in ("too_long", "too_short"):
        # Constrained text (see common.Text) reports its length as a collection's would.
        size = _size_of(error.get("input"))
        if kind == "too_long":
            return f"at most {context['max_length']} {size}, not {context['actual_length']}"
        if context["min_length"] == 1:
            return "must not be empty"
        return f"at least {context['min_length']} {size}, not {context['actual_length']}"
    if kind == "value_error":
        cause = context.get("error")
        if isinstance(cause, UnicodeError):
            return "not Unicode text (a lone surrogate such as \\ud800)"
        return str(cause) if cause is not None else _generic(error)
    return _generic(error)


def problems(errors: list[ErrorDetails]) -> list[dict[str, object]]:
    """The 422 body's `detail`: where (`path`, `loc`), what (`msg`), and pydantic's `type`."""
    return [
        {
            "path": json_path(item["loc"]),
            "loc": list(item["loc"]),
            "msg": describe(item),
            "type": item["type"],
        }
        for item in errors
    ]
