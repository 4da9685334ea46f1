"""Building blocks of the configuration file's models, shared by every service's `config.py`:
identifiers, durations written with a unit, the strict frozen base, non-empty lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

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
