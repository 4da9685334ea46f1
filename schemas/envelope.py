"""The envelope every Tocsin message carries, and the base config all contracts share.

Messages are frozen and reject unknown fields so that a producer and a consumer that disagree
about a contract fail loudly at the boundary instead of silently dropping data.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a time zone (UTC)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


class Contract(BaseModel):
    """Base of every message model and every nested value in one."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Envelope(Contract):
    """Fields common to every message on every topic."""

    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Idempotency key of this message."
    )
    schema_version: int = Field(default=1, ge=1)
    occurred_at: UtcDatetime = Field(description="When the fact happened (UTC).")
    correlation_id: str = Field(
        min_length=1, max_length=200, description="Ties every message of one alert flow together."
    )


class Label(Contract):
    """One label or annotation. Stored as a pair, never as a document key (see DESIGN §5)."""

    name: str = Field(min_length=1, max_length=1024)
    value: str = Field(max_length=16384)
