"""Sending SMS and calls exactly once (channels/twilio_pages.py) on the embedded store, with a
scripted Twilio side and a settable clock: what happens when Twilio accepts, refuses, fails,
or never answers; how a number's window holds and bundles pages; and the queue's defer/wake
that the receipts rely on (store.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import NotificationEvent, NotificationRequested
from services.notifier.channels.base import DeliveryFailed
from services.notifier.channels.deferred import Deferred
from services.notifier.channels.twilio_api import TwilioFailed
from services.notifier.channels.twilio_pages import CALLBACK_GRACE, CODE_LIFETIME, TwilioPager
from services.notifier.config import ContactConfig
from services.notifier.contact_store import MessageState, MongoContactStore, Outbound, PageEntry
from services.notifier.domain.receipts import Receipt
from services.notifier.store import MongoNotifierStore
from tests.integration.twilio_harness import ALICE, page_request
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=30)
RECEIPT_WAIT = timedelta(minutes=5)
CONTACT = ContactConfig(id="alice-sms", type="sms", address=ALICE)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


@dataclass
class ScriptedTwilio:
    """The Twilio side of an `Outgoing`: answers each `start` with the next scripted answer (a
    sid, or a `TwilioFailed` to raise); a sid once the script is used up."""

    script: list[str | TwilioFailed] = field(default_factory=list)
    started: list[Outbound] = field(default_factory=list)
    kind: str = "sms"
    interval: timedelta = INTERVAL
    receipt_wait: timedelta = RECEIPT_WAIT
    takes_codes: bool = True

    def compose(self, pages: Sequence[PageEntry], code: int | None) -> str:
        return f"{code}:" + ",".join(page.notification_id for page in pages)

    async def start(self, message: Outbound) -> str:
        self.started.append(message)
        answer = self.script.pop(0) if self.script else f"SM{len(self.started):032d}"
        if isinstance(answer, TwilioFailed):
            raise answer
        return answer


@dataclass
class Parts:
    pager: TwilioPager
    twilio: ScriptedTwilio
    store: MongoContactStore
    clock: Clock

    async def send(self, request: NotificationRequested) -> BaseException | None:
        """What the channel raised (None: delivered)."""
        try:
            await self.pager.send(CONTACT, request)
        except (Deferred, DeliveryFailed) as outcome:
            return outcome
        return None


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedDatabase]:
    file = SqliteFile(tmp_path / "store.sqlite")
    yield EmbeddedDatabase(file)
    file.close()


@pytest.fixture
def parts(database: EmbeddedDatabase) -> Parts:
    twilio, store, clock = ScriptedTwilio(), MongoContactStore(database), Clock()
    return Parts(TwilioPager(twilio, store, clock, random_source=lambda: 0.0), twilio, store, clock)


def page(notification_id: str, incident_id: str = "inc-1") -> NotificationRequested:
    return page_request(notification_id, "alice", "alice-sms", incident_id=incident_id)


def deferred_until(outcome: BaseException | None) -> datetime:
    assert isinstance(outcome, Deferred), outcome
    return outcome.until


async def test_an_accepted_message_is_never_sent_again_and_waits_for_its_receipt(
    parts: Parts,
) -> None:
    outcome = await parts.send(page("n-1"))
    assert deferred_until(outcome) == T0 + RECEIPT_WAIT
    (message,) = parts.twilio.started
    assert message.content == "1:n-1"
    # Claimed again (a redelivery, a retry, another replica): the same message, not a new one.
    parts.clock.advance(timedelta(minutes=1))
    assert deferred_until(await parts.send(page("n-1"))) == T0 + RECEIPT_WAIT
    # No receipt in time: Twilio's acceptance is the best news there is.
    parts.clock.advance(RECEIPT_WAIT)
    assert await parts.send(page("n-1")) is None
    assert len(parts.twilio.started) == 1


async def test_the_first_final_receipt_decides(parts: Parts) -> None:
    await parts.send(page("n-1"))
    (message,) = parts.twilio.started
    store = parts.store
    _, final = await store.record_status(
        message.key, sid="SMx", status="sent", receipt=Receipt.PENDING, detail=None, at=T0
    )
    assert not final
    _, final = await store.record_status(
        message.key, sid="SMx", status="undelivered", receipt=Receipt.FAILED, detail="no", at=T0
    )
    assert final
    _, final = await store.record_status(
        message.key, sid="SMx", status="delivered", receipt=Receipt.DELIVERED, detail=None, at=T0
    )
    assert not final
    outcome = await parts.send(page("n-1"))
    assert isinstance(outcome, DeliveryFailed)
    assert (str(outcome), outcome.retryable) == ("no", False)


async def test_without_an_answer_it_waits_for_twilios_callback_before_asking_again(
    parts: Parts,
) -> None:
    parts.twilio.script = [TwilioFailed("no answer from Twilio", retryable=True, ambiguous=True)]
    outcome = await parts.send(page("n-1"))
    assert isinstance(outcome, DeliveryFailed)
    assert outcome.retryable
    # Twilio may have taken it: within the grace period nobody asks again.
    parts.clock.advance(timedelta(seconds=5))
    assert deferred_until(await parts.send(page("n-1"))) == T0 + CALLBACK_GRACE
    # Its status callback names the message (the key is in the callback URL): it was taken.
    (message,) = parts.twilio.started
    await parts.store.record_status(
        message.key, sid="SM1", status="sent", receipt=Receipt.PENDING, detail=None, at=T0
    )
    parts.clock.advance(CALLBACK_GRACE)
    assert isinstance(await parts.send(page("n-1")), Deferred)
    assert len(parts.twilio.started) == 1
    stored = await parts.store.message(message.key)
    assert stored is not None
    assert (stored.state, stored.sid) == (MessageState.ACCEPTED, "SM1")


async def test_without_an_answer_nor_a_callback_it_asks_again_after_the_grace(
    parts: Parts,
) -> None:
    parts.twilio.script = [TwilioFailed("no answer from Twilio", retryable=True, ambiguous=True)]
    await parts.send(page("n-1"))
    parts.clock.advance(CALLBACK_GRACE)
    assert isinstance(await parts.send(page("n-1")), Deferred)  # accepted this time
    first, second = parts.twilio.started
    assert first.key == second.key  # the same message, asked twice


async def test_a_5xx_is_retried_after_a_backoff_whoever_carries_the_bundle(parts: Parts) -> None:
    await parts.send(page("n-0", "inc-0"))  # opens the window
    for n in (1, 2):
        await parts.send(page(f"n-{n}", f"inc-{n}"))
    parts.clock.advance(INTERVAL)
    parts.twilio.script = [TwilioFailed("Twilio refused the message: HTTP 503", retryable=True)]
    outcome = await parts.send(page("n-1", "inc-1"))
    assert isinstance(outcome, DeliveryFailed)
    assert outcome.retryable
    bundle = parts.twilio.started[-1]
    assert bundle.content == "2:n-1,n-2"
    # n-2 is in the same message: it waits for the message's backoff, then asks once.
    backoff_end = deferred_until(await parts.send(page("n-2", "inc-2")))
    assert backoff_end > parts.clock.now()
    parts.clock.at = backoff_end
    assert isinstance(await parts.send(page("n-2", "inc-2")), Deferred)
    assert isinstance(await parts.send(page("n-1", "inc-1")), Deferred)
    assert [m.content for m in parts.twilio.started] == ["1:n-0", "2:n-1,n-2", "2:n-1,n-2"]


async def test_a_refused_message_fails_every_page_it_carries(parts: Parts) -> None:
    await parts.send(page("n-0", "inc-0"))
    await parts.send(page("n-1", "inc-1"))
    await parts.send(page("n-2", "inc-2"))
    parts.clock.advance(INTERVAL)
    parts.twilio.script = [TwilioFailed("Twilio refused the message: HTTP 400", retryable=False)]
    for notification_id, incident_id in (("n-1", "inc-1"), ("n-2", "inc-2")):
        outcome = await parts.send(page(notification_id, incident_id))
        assert isinstance(outcome, DeliveryFailed)
        assert (str(outcome), outcome.retryable) == ("Twilio refused the message: HTTP 400", False)
    assert len(parts.twilio.started) == 2


async def test_the_window_holds_pages_and_sends_them_together_once(parts: Parts) -> None:
    await parts.send(page("n-0", "inc-0"))
    parts.clock.advance(timedelta(seconds=10))
    held = [await parts.send(page(f"n-{n}", f"inc-{n}")) for n in range(1, 6)]
    assert {deferred_until(outcome) for outcome in held} == {T0 + INTERVAL}
    assert len(parts.twilio.started) == 1
    # The window ends; every held page is claimed at once (16 workers, or replicas).
    parts.clock.at = T0 + INTERVAL
    await asyncio.gather(*(parts.send(page(f"n-{n}", f"inc-{n}")) for n in range(1, 6)))
    for n in range(1, 6):  # each comes back later and finds its message
        assert isinstance(await parts.send(page(f"n-{n}", f"inc-{n}")), Deferred)
    carried = [p.notification_id for m in parts.twilio.started for p in m.pages]
    assert sorted(carried) == [f"n-{n}" for n in range(6)]
    assert len(parts.twilio.started) == 2
    assert parts.twilio.started[1].code == 2


async def test_reply_codes_stay_short_and_are_reused_after_a_day(parts: Parts) -> None:
    await parts.send(page("n-1", "inc-1"))
    parts.clock.advance(INTERVAL)
    await parts.send(page("n-2", "inc-2"))
    parts.clock.advance(CODE_LIFETIME)
    await parts.send(page("n-3", "inc-3"))
    assert [m.code for m in parts.twilio.started] == [1, 2, 1]
    state = await parts.store.contact("sms", ALICE)
    assert [c.code for c in state.codes] == [1]  # the expired ones are gone
    assert state.latest == parts.twilio.started[-1].key


async def test_a_resolved_notice_gets_no_code(parts: Parts) -> None:
    notice = page_request("n-1", "alice", "alice-sms", event=NotificationEvent.RESOLVED)
    await parts.send(notice)
    (message,) = parts.twilio.started
    assert message.code is None
    assert (await parts.store.contact("sms", ALICE)).latest is None


# --- the queue: defer and wake -----------------------------------------------------------------


async def test_a_deferred_notification_is_due_later_and_its_attempt_does_not_count(
    database: EmbeddedDatabase,
) -> None:
    queue = MongoNotifierStore(database)
    await queue.record(page("n-1"), T0)
    claimed = await queue.claim_due(T0, "w1", timedelta(seconds=15))
    assert claimed is not None
    assert claimed.attempt == 1
    await queue.defer("n-1", "w1", T0 + INTERVAL, T0)
    assert await queue.claim_due(T0 + timedelta(seconds=29), "w1", timedelta(seconds=15)) is None
    again = await queue.claim_due(T0 + INTERVAL, "w1", timedelta(seconds=15))
    assert again is not None
    assert again.attempt == 1


async def test_a_wake_during_an_attempt_wins_over_its_deferral(database: EmbeddedDatabase) -> None:
    queue = MongoNotifierStore(database)
    await queue.record(page("n-1"), T0)
    assert await queue.claim_due(T0, "w1", timedelta(seconds=15)) is not None
    # The receipt comes while the attempt that got Twilio's answer is still recording it.
    await queue.wake(["n-1"], T0 + timedelta(seconds=1))
    await queue.defer("n-1", "w1", T0 + RECEIPT_WAIT, T0 + timedelta(seconds=2))
    due = await queue.claim_due(T0 + timedelta(seconds=2), "w1", timedelta(seconds=15))
    assert due is not None
    # The wake is used up: the next deferral holds.
    await queue.defer("n-1", "w1", T0 + RECEIPT_WAIT, T0 + timedelta(seconds=3))
    assert await queue.claim_due(T0 + timedelta(seconds=4), "w1", timedelta(seconds=15)) is None


async def test_a_page_already_carried_by_a_message_is_not_bundled_again(parts: Parts) -> None:
    # The race this covers: a worker that lost the window to the sender put its page back in
    # the window before the sender linked that page to its message.
    await parts.send(page("n-0", "inc-0"))
    await parts.send(page("n-1", "inc-1"))  # held
    await parts.store.link(["n-1"], parts.twilio.started[0].key, T0)
    parts.clock.advance(INTERVAL)
    await parts.send(page("n-2", "inc-2"))
    assert [m.content for m in parts.twilio.started] == ["1:n-0", "2:n-2"]
