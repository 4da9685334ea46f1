"""`<topic>.dlq`: a message that failed validation or exhausted its retries, with the reason."""

from __future__ import annotations

from pydantic import Field

from schemas.envelope import Envelope


class DeadLetter(Envelope):
    topic: str = Field(min_length=1, max_length=249)
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    error: str = Field(max_length=8192)
    attempts: int = Field(ge=0)
    payload: str = Field(
        description="The original message bytes, decoded as UTF-8 with replacement."
    )
