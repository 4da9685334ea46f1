"""What every channel is: a sender for one contact type that raises `DeliveryFailed`, with
`retryable` telling whether another attempt could succeed (timeouts, 5xx, 408, 429) or not
(other 4xx, an invalid number)."""

from __future__ import annotations

from typing import Protocol

from schemas import NotificationRequested
from services.notifier.config import ContactConfig


class DeliveryFailed(Exception):
    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class Channel(Protocol):
    async def send(self, contact: ContactConfig, request: NotificationRequested) -> None: ...
