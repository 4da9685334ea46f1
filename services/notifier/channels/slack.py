"""`slack`: the page as a Block Kit message (`chat.postMessage`) to a user (a direct message
from the bot) or a channel, with Acknowledge / Resolve buttons (domain/cards.py). The buttons
come back to `POST /v1/slack/actions` (inbound_slack.py).

An acknowledged or resolved notice to a contact that was paged on Slack about the incident
updates those messages (`chat.update`: the status changes and the buttons follow it) instead of
posting a new one; if none of them can be updated any more (deleted), it is posted.

Slack's answer is the delivery status: `ok` is delivered; `ratelimited`, a 5xx or a Slack-side
error is retried; any other error (`channel_not_found`, `invalid_auth`, `not_in_channel`, ...)
fails at once so escalation tries the next contact. Errors name Slack's error code only.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from schemas import NotificationEvent, NotificationRequested
from services.notifier.channels.base import DeliveryFailed
from services.notifier.config import ContactConfig, SlackConfig
from services.notifier.domain.cards import slack_blocks, slack_text
from services.notifier.message_store import MessageStore, PostedMessage
from tocsin.runtime.clock import Clock

SLACK_TIMEOUT_SECONDS = 10
# Errors on Slack's side: another attempt may succeed.
_RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# A message that cannot be updated any more: post a new one instead.
_GONE = frozenset({"message_not_found", "cant_update_message", "channel_not_found"})
_NOTICES = frozenset({NotificationEvent.ACKNOWLEDGED, NotificationEvent.RESOLVED})


def slack_client(config: SlackConfig, *, timeout: int = SLACK_TIMEOUT_SECONDS) -> AsyncWebClient:
    base_url = config.base_url if config.base_url.endswith("/") else config.base_url + "/"
    return AsyncWebClient(
        token=config.bot_token.get_secret_value(), base_url=base_url, timeout=timeout
    )


class _SlackError(Exception):
    def __init__(self, error: str, *, retryable: bool) -> None:
        super().__init__(error)
        self.error = error
        self.retryable = retryable


async def _call(request: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    try:
        return await request
    except SlackApiError as failed:
        status = failed.response.status_code
        data: Any = failed.response.data
        error = str(data.get("error") or f"HTTP {status}") if isinstance(data, dict) else ""
        error = error or f"HTTP {status}"
        retryable = status == 429 or status >= 500 or error in _RETRYABLE_ERRORS
        raise _SlackError(error, retryable=retryable) from None
    except (aiohttp.ClientError, TimeoutError) as failed:
        raise _SlackError(f"unreachable: {type(failed).__name__}", retryable=True) from None
    except SlackClientError as failed:
        raise _SlackError(type(failed).__name__, retryable=False) from None


class SlackChannel:
    def __init__(self, client: AsyncWebClient, messages: MessageStore, clock: Clock) -> None:
        self._client = client
        self._messages = messages
        self._clock = clock

    async def send(self, contact: ContactConfig, request: NotificationRequested) -> None:
        if contact.address is None:
            raise DeliveryFailed("slack contact without an address", retryable=False)
        try:
            if request.event in _NOTICES and await self._update(contact, request):
                return
            await self._post(contact.address, contact, request)
        except _SlackError as failed:
            raise DeliveryFailed(
                f"Slack answered {failed.error}", retryable=failed.retryable
            ) from None

    async def _update(self, contact: ContactConfig, request: NotificationRequested) -> bool:
        """Update the messages posted about the incident to this contact; False if none was."""
        posted = await self._messages.slack_messages(
            request.incident.id, request.recipient.user_id, contact.id
        )
        text = slack_text(request.event, request.incident)
        blocks = slack_blocks(request.event, request.incident)
        updated = False
        for message in posted:
            try:
                await _call(
                    self._client.chat_update(
                        channel=message.channel, ts=message.ts, text=text, blocks=blocks
                    )
                )
            except _SlackError as failed:
                if failed.error in _GONE:
                    continue
                raise
            updated = True
        return updated

    async def _post(
        self, address: str, contact: ContactConfig, request: NotificationRequested
    ) -> None:
        response = await _call(
            self._client.chat_postMessage(
                channel=address,
                text=slack_text(request.event, request.incident),
                blocks=slack_blocks(request.event, request.incident),
                unfurl_links=False,
                unfurl_media=False,
            )
        )
        channel, ts = response.get("channel"), response.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            raise _SlackError("no channel or ts in the answer", retryable=False)
        await self._messages.slack_posted(
            request.notification_id,
            incident_id=request.incident.id,
            user_id=request.recipient.user_id,
            contact_id=contact.id,
            message=PostedMessage(channel, ts),
            at=self._clock.now(),
        )
