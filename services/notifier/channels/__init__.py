"""Notification channels, declared as data: a contact type maps to a sender (Keep-style
registry). One module per channel; `channels()` builds the senders of the types this
deployment can reach (a provider-backed type needs its provider configured)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from services.notifier.channels.base import Channel, DeliveryFailed
from services.notifier.channels.log import LogChannel
from services.notifier.channels.webhook import WebhookChannel, webhook_body
from services.notifier.config import NotifierConfig


def channels(client: httpx.AsyncClient, config: NotifierConfig) -> Mapping[str, Channel]:
    registry: dict[str, Channel] = {"webhook": WebhookChannel(client), "log": LogChannel()}
    del config  # provider-backed channels (sms, voice, email, slack, teams) register here
    return registry


__all__ = ["Channel", "DeliveryFailed", "channels", "webhook_body"]
