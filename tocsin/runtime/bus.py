"""The message bus port: what services need from Kafka (or the embedded bus).

Delivery is at-least-once. A consumer's offset advances only after its handler returned, so a
handler must be idempotent on the message's `event_id` and must have made its effects durable
before it returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from schemas import Envelope


class PublishError(Exception):
    """The bus could not durably accept a message (broker down, timeout)."""


M = TypeVar("M", bound=Envelope)


@dataclass(frozen=True)
class Subscription(Generic[M]):
    topic: str
    group: str
    model: type[M]
    handler: Callable[[M], Awaitable[None]]
    # Set, the adapter hands it each fetched batch of valid messages in log order (per key,
    # the order they were published) instead of calling `handler` once per message; a batch
    # that keeps failing is retried one message at a time, so only a message at fault is
    # dead-lettered. Same contract as `handler`: idempotent, effects durable on return.
    batch_handler: Callable[[Sequence[M]], Awaitable[None]] | None = None


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, topic: str, key: str, message: Envelope) -> None:
        """Return only once the message is durable; raise PublishError otherwise."""

    async def publish_many(self, topic: str, messages: Sequence[tuple[str, Envelope]]) -> None:
        """Publish several (key, message) pairs; return once all are durable."""

    async def consume(self, subscription: Subscription[M]) -> None:
        """Run the subscription's loop until cancelled; raise if the loop cannot go on."""

    async def ready(self) -> bool: ...
