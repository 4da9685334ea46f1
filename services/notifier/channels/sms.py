"""`sms`: a page as one SMS through Twilio's Messages API, with a reply code.

The text is one segment (domain/sms_text.py): severity, service, title, alert count, the
incident's short id and the reply codes, e.g. `Reply 4a ack, 4c resolve, 4e escalate`. The code
is the smallest one not given out on that number in the last day, so codes stay short; it names
the message (a page, or a bundle of pages: then it acts on all of them). Replies come back to
`POST /v1/twilio/sms` (inbound_twilio.py).

At most one SMS per `sms_interval` goes to a number; pages meanwhile are bundled into the next
one ("3 incidents triggered: ..."). The delivery status comes from Twilio's status callbacks to
`POST /v1/twilio/status`: delivered, or failed/undelivered (the page fails, escalation pages the
person's next contact). Sending once, whatever fails: channels/twilio_pages.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from services.notifier.channels.twilio_api import TwilioApi
from services.notifier.channels.twilio_pages import TwilioPager, callback_url
from services.notifier.contact_store import ContactStore, Outbound, PageEntry
from services.notifier.domain.sms_text import bundle_sms_text
from tocsin.runtime.clock import Clock

STATUS_PATH = "/v1/twilio/status"
RECEIPT_WAIT = timedelta(minutes=5)
"""How long an accepted SMS waits for Twilio's delivered/failed before it counts as delivered
(some carriers send no delivery receipts)."""


class SmsOutgoing:
    kind = "sms"
    takes_codes = True

    def __init__(
        self,
        api: TwilioApi,
        public_url: str | None,
        *,
        receipt_wait: timedelta = RECEIPT_WAIT,
    ) -> None:
        self._api = api
        self._public_url = public_url
        self.interval = api.config.sms_interval
        self.receipt_wait = receipt_wait

    def compose(self, pages: Sequence[PageEntry], code: int | None) -> str:
        return bundle_sms_text([page.facts() for page in pages], reply_code=code).text

    async def start(self, message: Outbound) -> str:
        return await self._api.create_message(
            to=message.number,
            body=message.content,
            status_callback=callback_url(self._public_url, STATUS_PATH, message.key),
        )


def sms_channel(
    api: TwilioApi,
    store: ContactStore,
    clock: Clock,
    public_url: str | None,
    *,
    receipt_wait: timedelta = RECEIPT_WAIT,
) -> TwilioPager:
    return TwilioPager(SmsOutgoing(api, public_url, receipt_wait=receipt_wait), store, clock)
