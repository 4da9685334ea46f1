"""What the `sms` and `voice` channels share: a number's rate limit with bundling, and sending
each message to Twilio exactly once.

A page for a number first meets the number's window (domain/bundling.py, state in
contact_store.py): at most one message per interval (`sms_interval`, `voice_interval`). A page
inside the window is held (`Deferred` to the window's end) and goes out with every other page
that waited, as one message whose reply code or keys act on all of them. Nothing is dropped.

The message is stored before Twilio is asked, and each notification it carries is linked to
it, so a retried or re-claimed notification finds its message instead of making another:
- prepared: Twilio not asked yet (a crash came first): ask now;
- calling: asked, no answer stored. If Twilio took it, its status callback names the message
  (the callback URL carries the message's key) and marks it accepted. Without a callback within
  `CALLBACK_GRACE`, Twilio did not take it (or cannot call Tocsin back): ask again;
- retry: Twilio answered with an error worth another attempt (after a backoff);
- accepted: never asked again. Every page of the message is reported `queued` (`Accepted`),
  then `sent` when Twilio says so (inbound_twilio.py). The page waits for Twilio's final
  status (delivered, or failed/undelivered: the page fails at once and escalation pages the
  person's next contact),
  up to `receipt_wait`; without one, Twilio's acceptance is the best news there is: delivered;
- refused: the page fails at once.

Twilio's Messages and Calls APIs take no idempotency key, so this is as far as one can go: the
only way to a second SMS is a crash or a lost answer after Twilio took the first, with Twilio
then unable to call Tocsin back for `CALLBACK_GRACE`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from schemas import NotificationEvent, NotificationRequested
from services.notifier.channels.accepted import Accepted
from services.notifier.channels.base import DeliveryFailed
from services.notifier.channels.deferred import Deferred
from services.notifier.channels.twilio_api import TwilioFailed
from services.notifier.config import ContactConfig
from services.notifier.contact_store import (
    ContactState,
    ContactStore,
    MessageState,
    Outbound,
    PageEntry,
    ReplyCode,
)
from services.notifier.domain.bundling import on_page
from services.notifier.domain.receipts import Receipt
from services.notifier.domain.replies import allocate_reply_code
from tocsin.runtime.backoff import Random, backoff_delay
from tocsin.runtime.clock import Clock

CODE_LIFETIME = timedelta(days=1)
"""A reply code names its message for this long; a later page may reuse it."""
CALLBACK_GRACE = timedelta(seconds=60)
BUSY_RETRY = timedelta(seconds=1)
_MAX_RACES = 16


class Outgoing(Protocol):
    """What differs between an SMS and a call."""

    kind: str
    interval: timedelta
    receipt_wait: timedelta
    takes_codes: bool

    def compose(self, pages: Sequence[PageEntry], code: int | None) -> str: ...

    async def start(self, message: Outbound) -> str:
        """Ask Twilio; the sid it gave. Raises `TwilioFailed`."""


def callback_url(public_url: str | None, path: str, key: str) -> str | None:
    """Where Twilio reports on message `key`; the key in the query ties the report to the
    message even when Twilio's answer (with the sid) never reached Tocsin."""
    if public_url is None:
        return None
    return f"{public_url.rstrip('/')}{path}?m={key}"


class TwilioPager:
    def __init__(
        self,
        outgoing: Outgoing,
        store: ContactStore,
        clock: Clock,
        *,
        random_source: Random = random.random,
    ) -> None:
        self._outgoing = outgoing
        self._store = store
        self._clock = clock
        self._random = random_source

    async def send(self, contact: ContactConfig, request: NotificationRequested) -> None:
        if contact.address is None:
            raise DeliveryFailed(f"{contact.type} contact without a number", retryable=False)
        message = await self._store.message_of(request.notification_id)
        if message is None:
            message = await self._queue(contact.address, request)
        await self._progress(message)

    # --- the window ------------------------------------------------------------------------

    async def _queue(self, number: str, request: NotificationRequested) -> Outbound:
        """The message that carries this page, to send now; or `Deferred` to the window's
        end, the page waiting in it."""
        kind, entry = self._outgoing.kind, PageEntry.of(request)
        for _ in range(_MAX_RACES):
            now = self._clock.now()
            state = await self._store.contact(kind, number)
            window, decision = on_page(
                state.window,
                notification_id=entry.notification_id,
                now=now,
                interval=self._outgoing.interval,
            )
            waiting = state.waiting
            if entry.notification_id not in state.window.pending:
                waiting = (*waiting, entry)
            if not decision.send:
                held = ContactState(state.version, window, waiting, state.codes, state.latest)
                if await self._store.save_contact(kind, number, state.version, held, now):
                    assert decision.wake_at is not None
                    raise Deferred(
                        decision.wake_at,
                        f"{kind} rate limit: bundled into the number's next message",
                    )
                continue
            sent = ContactState(state.version, window, (), state.codes, state.latest)
            message = await self._claim_window(number, state, sent, waiting, decision.send, now)
            if message is not None:
                return message
            # Another worker changed the number meanwhile; it may have sent this page too.
            linked = await self._store.message_of(entry.notification_id)
            if linked is not None:
                return linked
        raise DeliveryFailed(
            f"{kind}: the number's window kept changing; trying again", retryable=True
        )

    async def _claim_window(
        self,
        number: str,
        state: ContactState,
        sent: ContactState,
        waiting: tuple[PageEntry, ...],
        send: tuple[str, ...],
        now: datetime,
    ) -> Outbound | None:
        """Store the message for the pages in `send` and take them out of the window (`sent`
        is the window after sending); None if the window changed first, or every page in
        `send` has its message already (nothing is sent then)."""
        kind = self._outgoing.kind
        by_id = {page.notification_id: page for page in waiting}
        # A page already carried by a message (its worker lost a race with the sender and
        # waited in the window again) is not sent again.
        already = await self._store.linked(list(send))
        pages = tuple(by_id[i] for i in send if i in by_id and i not in already)
        if not pages:
            return None
        codes = tuple(code for code in state.codes if code.at > now - CODE_LIFETIME)
        code = None
        if self._outgoing.takes_codes and any(
            page.event is not NotificationEvent.RESOLVED for page in pages
        ):
            try:
                code = allocate_reply_code({existing.code for existing in codes})
            except ValueError:
                code = None  # a thousand pages in a day: plain `ack` still works
        key = uuid.uuid4().hex
        message = Outbound(
            key=key,
            kind=kind,
            number=number,
            pages=pages,
            content=self._outgoing.compose(pages, code),
            code=code,
            created_at=now,
        )
        await self._store.prepare(message)
        sent = ContactState(
            state.version,
            sent.window,
            (),
            (*codes, ReplyCode(code, key, now)) if code is not None else codes,
            key if code is not None else state.latest,
        )
        if not await self._store.save_contact(kind, number, state.version, sent, now):
            await self._store.discard(key)
            return None
        await self._store.link(message.notification_ids, key, now)
        return message

    # --- the message ------------------------------------------------------------------------

    async def _progress(self, message: Outbound) -> None:
        now = self._clock.now()
        if message.state is MessageState.ACCEPTED:
            self._receipt(message, now)
            return
        if message.state is MessageState.REFUSED:
            raise DeliveryFailed(message.error or "Twilio refused it", retryable=False)
        started_at: datetime | None = None
        if message.state is MessageState.CALLING:
            started_at = message.attempt_started_at or message.created_at
            if now < started_at + CALLBACK_GRACE:
                raise Deferred(
                    started_at + CALLBACK_GRACE,
                    "no answer from Twilio yet: waiting for its status callback before asking "
                    "again",
                )
        elif (
            message.state is MessageState.RETRY
            and message.next_attempt_at is not None
            and now < message.next_attempt_at
        ):
            raise Deferred(message.next_attempt_at, message.error or "asking Twilio again")
        if not await self._store.start_attempt(
            message.key, message.state, now, started_at=started_at
        ):
            raise Deferred(now + BUSY_RETRY, "another worker is asking Twilio")
        await self._call(message, now, attempt=message.attempts + 1)

    async def _call(self, message: Outbound, now: datetime, *, attempt: int) -> None:
        try:
            sid = await self._outgoing.start(message)
        except TwilioFailed as failed:
            if not failed.ambiguous:
                delay = backoff_delay(attempt, base=1.0, cap=30.0, random=self._random)
                await self._store.attempt_failed(
                    message.key,
                    refused=not failed.retryable,
                    error=str(failed),
                    next_attempt_at=now + timedelta(seconds=delay) if failed.retryable else None,
                )
            raise DeliveryFailed(str(failed), retryable=failed.retryable) from None
        accepted_at = self._clock.now()
        await self._store.accepted(message.key, sid, accepted_at)
        raise Accepted(
            accepted_at + self._outgoing.receipt_wait,
            "accepted by Twilio: waiting for its delivery status",
            notification_ids=message.notification_ids,
            at=accepted_at,
        )

    def _receipt(self, message: Outbound, now: datetime) -> None:
        if message.receipt is Receipt.DELIVERED:
            return
        if message.receipt is Receipt.FAILED:
            raise DeliveryFailed(
                message.receipt_detail or "Twilio reported a failure", retryable=False
            )
        due = (message.accepted_at or now) + self._outgoing.receipt_wait
        if now < due:
            raise Deferred(due, "accepted by Twilio: waiting for its delivery status")
        # Twilio took it and reported no failure in time: delivered, as far as anyone can tell.
