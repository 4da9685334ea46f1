"""`voice`: a page as a phone call through Twilio's Calls API. When the call is answered
Twilio fetches its TwiML from `POST /v1/twilio/voice` (inbound_twilio.py): the incident's
severity, service, title and alert count are read out, then "Press 4 to acknowledge, 6 to
resolve, 8 to escalate now"; without a key the page is read again (a few times), then the call
says goodbye.

At most one call per `voice_interval` goes to a number; pages meanwhile are bundled into the
next call, whose keys act on all of them. The call's status callbacks are its delivery status:
answered is delivered; busy, no-answer, failed or canceled fails the page so escalation pages
the person's next contact at once.

Status notices (acknowledged, resolved) are not worth a phone call: they fail at once with that
reason, so the notice goes to the person's next contact method (an SMS, an e-mail) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from schemas import NotificationEvent, NotificationRequested
from services.notifier.channels.base import DeliveryFailed
from services.notifier.channels.twilio_api import TwilioApi, TwilioFailed
from services.notifier.channels.twilio_pages import TwilioPager, callback_url
from services.notifier.config import ContactConfig
from services.notifier.contact_store import ContactStore, Outbound, PageEntry
from services.notifier.domain.voice_text import page_speech
from tocsin.runtime.clock import Clock

VOICE_PATH = "/v1/twilio/voice"
STATUS_PATH = "/v1/twilio/status"
RECEIPT_WAIT = timedelta(minutes=3)
"""How long an accepted call waits for Twilio's answered/no-answer before it counts as
delivered (a call rings for 30 s at most)."""
_PAGES = (NotificationEvent.TRIGGERED, NotificationEvent.ESCALATED)


class VoiceOutgoing:
    kind = "voice"
    takes_codes = False

    def __init__(
        self,
        api: TwilioApi,
        public_url: str | None,
        *,
        receipt_wait: timedelta = RECEIPT_WAIT,
    ) -> None:
        self._api = api
        self._public_url = public_url
        self.interval = api.config.voice_interval
        self.receipt_wait = receipt_wait

    def compose(self, pages: Sequence[PageEntry], code: int | None) -> str:
        return "\n".join(page_speech([page.facts() for page in pages]))

    async def start(self, message: Outbound) -> str:
        url = callback_url(self._public_url, VOICE_PATH, message.key)
        status = callback_url(self._public_url, STATUS_PATH, message.key)
        if url is None or status is None:
            raise TwilioFailed(
                "a call needs public_url: Twilio fetches the page from it", retryable=False
            )
        return await self._api.create_call(to=message.number, url=url, status_callback=status)


class VoiceChannel:
    def __init__(self, pager: TwilioPager) -> None:
        self._pager = pager

    async def send(self, contact: ContactConfig, request: NotificationRequested) -> None:
        if request.event not in _PAGES:
            raise DeliveryFailed(
                "status notices are not phoned: sent to the next contact method",
                retryable=False,
            )
        await self._pager.send(contact, request)


def voice_channel(
    api: TwilioApi,
    store: ContactStore,
    clock: Clock,
    public_url: str | None,
    *,
    receipt_wait: timedelta = RECEIPT_WAIT,
) -> VoiceChannel:
    return VoiceChannel(
        TwilioPager(VoiceOutgoing(api, public_url, receipt_wait=receipt_wait), store, clock)
    )
