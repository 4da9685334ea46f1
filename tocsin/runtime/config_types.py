"""Building blocks of the configuration file's models, shared by every service's `config.py`:
identifiers, durations written with a unit, secrets (literal, `${ENV}` or `file:PATH`), the
strict frozen base, non-empty lists."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
)

from tocsin.runtime.config_problems import IDENTIFIER_PATTERN
from tocsin.runtime.durations import format_duration, parse_duration

Identifier = Annotated[str, Field(min_length=1, max_length=100, pattern=IDENTIFIER_PATTERN)]


def _to_timedelta(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float):  # bool too: YAML's `yes` is not a duration
        raise ValueError("write durations with a unit, e.g. '30s' or '5m'")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(format_duration, return_type=str),
]


def non_empty(what: str) -> AfterValidator:
    # Not `Field(min_length=1)`: pydantic then also reports a filled-in tuple whose items are
    # all invalid as empty, a second, false problem.
    def check(items: tuple[object, ...]) -> tuple[object, ...]:
        if not items:
            raise ValueError(f"needs at least one {what}")
        return items

    return AfterValidator(check)


class StrictModel(BaseModel):
    """Frozen, and an unknown key is an error (a typo must not be silently ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _resolve_secret(value: object) -> object:
    """`${VAR}` reads the environment, `file:PATH` reads a file (trailing newline dropped, as
    Docker and Kubernetes secrets are written); anything else is the literal secret. Errors
    name the variable or the path, never a value."""
    if not isinstance(value, str):
        return value
    if value.startswith("${") and value.endswith("}"):
        name = value[2:-1]
        if not name:
            raise ValueError("write ${VARIABLE_NAME}")
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    if value.startswith("file:"):
        path = Path(value[len("file:") :])
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error.strerror}") from None
    return value


Secret = Annotated[SecretStr, BeforeValidator(_resolve_secret)]
"""A secret written as a literal, `${ENV_VAR}` or `file:PATH`; never logged or repeated."""
