"""`teams`: the page as an Adaptive Card (domain/cards.py) POSTed to the channel's incoming
webhook, a Power Automate Workflows URL (the old Office 365 connectors are retired). The card
links to the incident; Teams has no acknowledge route back to Tocsin.

The webhook's answer is the delivery status: 2xx (Workflows answers 202) is delivered; 408, 429
and 5xx are retried; any other 4xx fails at once. The URL carries a signature (`sig=`): it is
never logged or put in an error.
"""

from __future__ import annotations

import httpx

from schemas import NotificationRequested
from services.notifier.channels.base import DeliveryFailed
from services.notifier.config import ContactConfig
from services.notifier.domain.cards import teams_message


class TeamsChannel:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, contact: ContactConfig, request: NotificationRequested) -> None:
        if contact.address is None:
            raise DeliveryFailed("teams contact without an address", retryable=False)
        try:
            response = await self._client.post(contact.address, json=teams_message(request))
        except httpx.HTTPError as error:
            raise DeliveryFailed(
                f"Teams webhook unreachable: {type(error).__name__}", retryable=True
            ) from None
        if response.is_success:
            return
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        raise DeliveryFailed(f"Teams webhook answered {response.status_code}", retryable=retryable)
