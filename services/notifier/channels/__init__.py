"""Notification channels, declared as data: a contact type maps to a sender (Keep-style
registry). One module per channel; `channels()` builds the senders of the types this
deployment can reach (a provider-backed type needs its provider configured)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from services.notifier.ack_links import AckLinks
from services.notifier.channels.base import Channel, DeliveryFailed
from services.notifier.channels.deferred import Deferred
from services.notifier.channels.email import EmailChannel
from services.notifier.channels.log import LogChannel
from services.notifier.channels.slack import SlackChannel, slack_client
from services.notifier.channels.sms import sms_channel
from services.notifier.channels.teams import TeamsChannel
from services.notifier.channels.twilio_api import TwilioApi
from services.notifier.channels.voice import voice_channel
from services.notifier.channels.webhook import WebhookChannel, webhook_body
from services.notifier.config import NotifierConfig
from services.notifier.contact_store import ContactStore
from services.notifier.message_store import MessageStore
from tocsin.runtime.clock import Clock, SystemClock


def channels(
    client: httpx.AsyncClient,
    config: NotifierConfig,
    *,
    messages: MessageStore | None = None,  # e-mail link keys and Slack messages
    clock: Clock | None = None,
    contact_store: ContactStore | None = None,  # SMS and call windows, messages, reply codes
) -> Mapping[str, Channel]:
    clock = clock or SystemClock()
    registry: dict[str, Channel] = {
        "webhook": WebhookChannel(client),
        "log": LogChannel(),
        "teams": TeamsChannel(client),
    }
    providers = config.providers
    if providers.smtp is not None and messages is not None:
        links = AckLinks(messages, clock, config.public_url)
        registry["email"] = EmailChannel(providers.smtp, links)
    if providers.slack is not None and messages is not None:
        registry["slack"] = SlackChannel(slack_client(providers.slack), messages, clock)
    if providers.twilio is not None and contact_store is not None:
        twilio = TwilioApi(client, providers.twilio)
        registry["sms"] = sms_channel(twilio, contact_store, clock, config.public_url)
        registry["voice"] = voice_channel(twilio, contact_store, clock, config.public_url)
    return registry


__all__ = ["Channel", "Deferred", "DeliveryFailed", "channels", "webhook_body"]
