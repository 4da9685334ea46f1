"""The `voice` channel against the fake Twilio, on the served notifier: a page call reads the
incident and the keys, reads it again without a key, 4/6/8 act as the paged user (once), other
keys get the menu again; an answered call is delivered, an unanswered one fails the page at once;
calls inside `voice_interval` are bundled into one; status notices are not phoned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from schemas import CommandKind, DeliveryOutcome, NotificationEvent, Severity
from tests.fakes.twilio import FakeCall, FakeTwilio
from tests.integration.twilio_harness import (
    ALICE_VOICE,
    FROM,
    TwilioNotifier,
    free_port,
    page_request,
    running_notifier,
    twilio_config,
)

MENU = "Press 4 to acknowledge, 6 to resolve, 8 to escalate now."


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
async def notifier(tmp_path: Path, twilio: FakeTwilio) -> AsyncIterator[TwilioNotifier]:
    port = free_port()
    config = twilio_config(twilio, f"http://127.0.0.1:{port}", voice_interval="2s")
    async with running_notifier(tmp_path, port, twilio, config) as running:
        yield running


async def answered_call(twilio: FakeTwilio, count: int = 1) -> FakeCall:
    calls = await asyncio.to_thread(twilio.wait_for_calls, count)
    call = calls[count - 1]
    await asyncio.to_thread(twilio.wait_until, lambda: call.waiting_gather)
    return call


async def test_a_page_call_reads_the_incident_and_4_acknowledges_as_the_paged_user(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    await notifier.page(
        page_request("n-1", "alice", "alice-voice", title="Payments <failing> & slow")
    )
    call = await answered_call(twilio)
    assert (call.to, call.from_) == (ALICE_VOICE, FROM)
    assert call.said == [
        "This is Tocsin. severity 1 incident triggered on checkout: Payments failing & slow. "
        "2 alerts.",
        MENU,
    ]
    # Answered: the page reached alice.
    result = await notifier.result_of("n-1")
    assert result.outcome is DeliveryOutcome.DELIVERED

    answer = await asyncio.to_thread(twilio.press, call.sid, "4")
    assert answer.said == ("Acknowledged. Goodbye.",)
    await asyncio.to_thread(twilio.wait_for_status, call.sid, "completed")
    (command,) = await notifier.wait_for_commands(1)
    assert (command.command, command.incident_id, command.actor, command.via) == (
        CommandKind.ACKNOWLEDGE,
        "inc-7f3a9c21",
        "alice",
        "voice",
    )
    # Twilio posting the same digits again acts once (the same command id).
    again = await asyncio.to_thread(
        twilio.gather,
        answer_url(call),
        call_sid=call.sid,
        from_=FROM,
        to=ALICE_VOICE,
        digits="4",
    )
    assert again.status_code == 200
    commands = await notifier.wait_for_commands(2)
    assert commands[1].event_id == command.event_id
    assert len(twilio.calls()) == 1


def answer_url(call: FakeCall) -> str:
    gather = call.documents[0].gather
    assert gather is not None
    return gather.action


async def test_without_a_key_the_page_is_read_again_then_the_call_says_goodbye(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    await notifier.page(page_request("n-1", "alice", "alice-voice"))
    call = await answered_call(twilio)
    for repeat in range(1, 4):
        await asyncio.to_thread(twilio.no_input, call.sid)
        assert len(call.documents) == repeat + 1
        assert call.documents[-1].said == call.documents[0].said  # read again
    # The last reading goes on to goodbye and a hang-up, not to another reading.
    assert call.documents[-1].redirect_after_gather is None
    await asyncio.to_thread(twilio.no_input, call.sid)
    await asyncio.to_thread(twilio.wait_for_status, call.sid, "completed")
    assert len(call.documents) == 4
    assert notifier.commands == []


async def test_another_key_gets_the_menu_again_and_6_resolves(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    await notifier.page(page_request("n-1", "alice", "alice-voice"))
    call = await answered_call(twilio)
    wrong = await asyncio.to_thread(twilio.press, call.sid, "5")
    assert wrong.said == ("Sorry, that key does nothing. " + MENU,)
    await asyncio.sleep(0.2)
    assert notifier.commands == []
    resolved = await asyncio.to_thread(twilio.press, call.sid, "6")
    assert resolved.said == ("Resolved. Goodbye.",)
    (command,) = await notifier.wait_for_commands(1)
    assert command.command is CommandKind.RESOLVE


async def test_an_unanswered_call_fails_the_page_at_once(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    twilio.make_undeliverable(ALICE_VOICE, call_status="no-answer")
    await notifier.page(page_request("n-1", "alice", "alice-voice"))
    result = await notifier.result_of("n-1", timeout=5)
    assert result.outcome is DeliveryOutcome.FAILED
    assert result.error == "Twilio reported no-answer"


async def test_status_notices_are_not_phoned(notifier: TwilioNotifier, twilio: FakeTwilio) -> None:
    notice = page_request("n-1", "alice", "alice-voice", event=NotificationEvent.ACKNOWLEDGED)
    await notifier.page(notice)
    result = await notifier.result_of("n-1")
    assert result.outcome is DeliveryOutcome.FAILED
    assert result.error == "status notices are not phoned: sent to the next contact method"
    assert twilio.calls() == []


async def test_pages_inside_the_interval_are_one_call_whose_key_acts_on_all(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    await notifier.page(page_request("n-1", "alice", "alice-voice", incident_id="inc-1"))
    first = await answered_call(twilio)
    await notifier.page(
        page_request("n-2", "alice", "alice-voice", incident_id="inc-2", title="Disk full")
    )
    await notifier.page(
        page_request("n-3", "alice", "alice-voice", incident_id="inc-3", severity=Severity.SEV0)
    )
    bundle = await answered_call(twilio, 2)
    assert bundle.said[0] == "This is Tocsin with 2 incidents."
    # In the order the pages reached the window (both were claimed at once).
    read = sorted(bundle.said[1:3])
    assert read[0].startswith("Incident 1: severity ")
    assert read[1].startswith("Incident 2: severity ")
    assert any("severity 0 incident triggered on checkout: Checkout 5xx" in s for s in read)
    assert any("severity 1 incident triggered on checkout: Disk full. 2 alerts." in s for s in read)
    assert (
        bundle.said[-1]
        == "For all of them, press 4 to acknowledge, 6 to resolve, 8 to escalate now."
    )
    assert len(twilio.calls()) == 2
    answer = await asyncio.to_thread(twilio.press, bundle.sid, "8")
    assert answer.said == ("Escalated 2 incidents. Goodbye.",)
    commands = await notifier.wait_for_commands(2)
    assert {(c.incident_id, c.command) for c in commands} == {
        ("inc-2", CommandKind.ESCALATE),
        ("inc-3", CommandKind.ESCALATE),
    }
    await asyncio.to_thread(twilio.hang_up, first.sid)
    for notification_id in ("n-1", "n-2", "n-3"):
        assert (await notifier.result_of(notification_id)).outcome is DeliveryOutcome.DELIVERED


async def test_a_call_tocsin_does_not_know_hangs_up(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    answer = await asyncio.to_thread(
        twilio.gather,
        f"{notifier.url}/v1/twilio/voice?m=nope",
        call_sid="CA" + "0" * 32,
        from_=FROM,
        to=ALICE_VOICE,
        digits="4",
    )
    assert answer.status_code == 200
    assert answer.said == ("Sorry, Tocsin does not know this call any more. Goodbye.",)
    await asyncio.sleep(0.2)
    assert notifier.commands == []
