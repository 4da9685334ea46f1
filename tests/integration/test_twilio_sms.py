"""The `sms` channel and the Twilio routes against the fake Twilio, on the served notifier:

a page is one SMS with a reply code; Twilio's status callbacks are its delivery status
(queued and sent before it, then delivered, or undelivered/failed: the page fails at once),
each page of a bundle with its own statuses; a reply `1a` acknowledges as the paged user, the
same reply twice acts once, `ack` acts on the latest page; an unknown code or
number gets a helpful answer and changes nothing; a bad or missing signature on every route
gets 403 and changes nothing; Twilio's errors fail (4xx) or retry (5xx) without a second SMS;
pages inside `sms_interval` are bundled, none lost, and the bundle's code acts on all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from schemas import CommandKind, DeliveryOutcome, NotificationEvent, NotificationResult
from tests.fakes.twilio import FakeTwilio, WebhookAnswer, twilio_signature
from tests.integration.twilio_harness import (
    ALICE,
    BOB,
    FROM,
    TwilioNotifier,
    free_port,
    page_request,
    running_notifier,
    twilio_config,
    wait_for,
)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
async def notifier(tmp_path: Path, twilio: FakeTwilio) -> AsyncIterator[TwilioNotifier]:
    port = free_port()
    config = twilio_config(twilio, f"http://127.0.0.1:{port}", sms_interval="2s")
    async with running_notifier(tmp_path, port, twilio, config) as running:
        yield running


def sms_url(notifier: TwilioNotifier) -> str:
    return f"{notifier.url}/v1/twilio/sms"


async def reply(
    notifier: TwilioNotifier,
    body: str,
    *,
    from_: str = ALICE,
    auth_token: str | None = None,
    signed: bool = True,
) -> WebhookAnswer:
    return await asyncio.to_thread(
        notifier.twilio.reply_sms,
        sms_url(notifier),
        from_=from_,
        body=body,
        to=FROM,
        auth_token=auth_token,
        signed=signed,
    )


async def test_a_page_is_one_sms_with_a_reply_code_and_delivered_when_twilio_says_so(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    await notifier.page(page_request("n-1", "alice", "alice-sms"))
    (message,) = await asyncio.to_thread(twilio.wait_for_messages, 1)
    assert message.to == ALICE
    assert message.from_ == FROM
    assert message.num_segments == 1
    assert message.body == (
        "SEV1 checkout: Checkout 5xx above 5% (2 alerts) #inc7f3a9. "
        "Reply 1a ack, 1c resolve, 1e escalate"
    )
    assert message.status_callback is not None
    assert message.status_callback.startswith(f"{notifier.url}/v1/twilio/status?m=")
    result = await notifier.result_of("n-1")
    assert result.outcome is DeliveryOutcome.DELIVERED
    assert result.attempt == 1  # waiting for the receipt is not an attempt
    (outbound,) = await notifier.outbound()
    assert [s["status"] for s in outbound["statuses"]] == ["queued", "sent", "delivered"]
    assert outbound["sid"] == message.sid
    # Every callback was accepted (signed as Twilio signs).
    assert {c.status_code for c in twilio.callbacks()} == {204}
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{notifier.url}/metrics")).text
    assert 'tocsin_notifications_total{channel="sms",outcome="delivered"}' in metrics
    assert 'tocsin_notification_delivery_latency_seconds_count{channel="sms"}' in metrics
    assert 'tocsin_notifier_provider_statuses_total{channel="sms",status="delivered"}' in metrics
    # Phone numbers never in labels (whole numbers: a 4-digit fragment also matches timestamps).
    for number in (ALICE, BOB, FROM):
        assert number.lstrip("+") not in metrics

    # Before the outcome, its statuses: queued (Twilio took it), sent, each once by event id
    # (Twilio's `queued` callback and its 201 are one status), in the order they happened.
    statuses = [r for r in notifier.statuses if r.notification_id == "n-1"]
    first: dict[object, NotificationResult] = {}
    for status in statuses:
        first.setdefault(status.event_id, status)  # what escalation keeps
    assert [r.outcome for r in sorted(first.values(), key=lambda r: r.occurred_at)] == [
        DeliveryOutcome.QUEUED,
        DeliveryOutcome.SENT,
        DeliveryOutcome.DELIVERED,
    ]
    assert all(
        (r.recipient.contact_id, r.escalation_level, r.incident_id)
        == ("alice-sms", 0, result.incident_id)
        for r in statuses
    )
    # A late `sent` (Twilio retrying its callback) after the outcome is not reported again.
    seen = len(notifier.statuses)
    params = {"MessageSid": message.sid, "MessageStatus": "sent", "To": ALICE}
    signature = twilio_signature(twilio.auth_token, message.status_callback, params)
    async with httpx.AsyncClient() as client:
        late = await client.post(
            message.status_callback, data=params, headers={"X-Twilio-Signature": signature}
        )
    assert late.status_code == 204
    await asyncio.sleep(0.3)
    assert len(notifier.statuses) == seen


async def test_a_reply_acknowledges_once_as_the_paged_user(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    await notifier.page(page_request("n-1", "alice", "alice-sms"))
    await notifier.result_of("n-1")

    answer = await reply(notifier, "1a")
    assert answer.status_code == 200
    assert answer.messages == ("Acknowledged: #inc7f3a9.",)
    (command,) = await notifier.wait_for_commands(1)
    assert (command.command, command.incident_id, command.actor, command.via) == (
        CommandKind.ACKNOWLEDGE,
        "inc-7f3a9c21",
        "alice",
        "sms",
    )
    # The same reply again, and a plain `ack` (the latest page): the same command, which
    # escalation applies once (its event id is its idempotency key).
    await reply(notifier, " 1A ")
    await reply(notifier, "ack")
    commands = await notifier.wait_for_commands(3)
    assert {c.event_id for c in commands} == {command.event_id}

    # Resolve and escalate are other commands.
    await reply(notifier, "1c")
    await reply(notifier, "1 escalate")
    commands = await notifier.wait_for_commands(5)
    assert [c.command for c in commands[3:]] == [CommandKind.RESOLVE, CommandKind.ESCALATE]
    assert len({c.event_id for c in commands}) == 3


async def test_unknown_codes_numbers_and_words_get_help_and_change_nothing(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    await notifier.page(page_request("n-1", "alice", "alice-sms"))
    await notifier.result_of("n-1")

    unknown_code = await reply(notifier, "7a")
    assert unknown_code.status_code == 200
    assert unknown_code.messages[0].startswith("Tocsin: no open page has code 7 on this number")
    words = await reply(notifier, "what is this")
    assert "reply with the code from a page" in words.messages[0]
    stranger = await reply(notifier, "1a", from_="+15559990000")  # never paged
    assert stranger.messages == ("Tocsin: there is no open page to this number to act on.",)
    bob = await reply(notifier, "ack", from_=BOB)
    assert bob.messages == ("Tocsin: there is no open page to this number to act on.",)
    await asyncio.sleep(0.3)
    assert notifier.commands == []


async def test_a_bad_or_missing_signature_gets_403_and_changes_nothing(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    twilio.make_undeliverable(BOB)  # bob's SMS would fail, were the forged callback believed
    await notifier.page(page_request("n-1", "alice", "alice-sms"))
    (message,) = await asyncio.to_thread(twilio.wait_for_messages, 1)
    await notifier.result_of("n-1")

    forged = await reply(notifier, "1a", auth_token="not-the-token")
    unsigned = await reply(notifier, "1a", signed=False)
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert forged.messages == ()

    status_url = message.status_callback
    assert status_url is not None
    voice_url = f"{notifier.url}/v1/twilio/voice?m=x"
    for url in (status_url, voice_url):
        for token, signed in (("not-the-token", True), (None, False)):
            answer = await asyncio.to_thread(
                twilio.gather,
                url,
                call_sid="CA" + "0" * 32,
                from_=FROM,
                to=ALICE,
                digits="4",
                auth_token=token,
                signed=signed,
            )
            assert answer.status_code == 403, url
    # What is signed is the URL Twilio was given (public_url): the right token over another
    # URL (what a proxy in front of Tocsin sees, say) does not do.
    params = {"From": ALICE, "To": FROM, "Body": "1a", "MessageSid": "SM" + "1" * 32}
    elsewhere = twilio_signature(twilio.auth_token, "http://proxy.internal/v1/twilio/sms", params)
    async with httpx.AsyncClient() as client:
        moved = await client.post(
            sms_url(notifier), data=params, headers={"X-Twilio-Signature": elsewhere}
        )
    assert moved.status_code == 403
    await asyncio.sleep(0.3)
    assert notifier.commands == []


async def test_an_undelivered_sms_fails_the_page_at_once_with_twilios_reason(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    twilio.make_undeliverable(ALICE, message_status="undelivered", error_code=30003)
    await notifier.page(page_request("n-1", "alice", "alice-sms"))
    result = await notifier.result_of("n-1", timeout=5)
    assert result.outcome is DeliveryOutcome.FAILED
    assert result.error == "Twilio reported undelivered (error 30003)"
    assert ALICE not in (result.error or "")
    assert len(twilio.messages()) == 1


async def test_twilio_refusing_a_number_fails_at_once_and_a_5xx_is_retried_without_a_second_sms(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    twilio.fail_next(status=400, code=21610)  # unsubscribed recipient
    await notifier.page(page_request("n-1", "alice", "alice-sms"))
    refused = await notifier.result_of("n-1")
    assert refused.outcome is DeliveryOutcome.FAILED
    assert refused.error == "Twilio refused the message: HTTP 400, error 21610"
    assert twilio.messages() == []

    twilio.fail_next(2, status=503)
    await notifier.page(page_request("n-2", "bob", "bob-sms"))
    delivered = await notifier.result_of("n-2")
    assert delivered.outcome is DeliveryOutcome.DELIVERED
    assert len(twilio.messages(to=BOB)) == 1
    assert [r.status_code for r in twilio.requests() if r.form.get("To") == BOB] == [
        503,
        503,
        201,
    ]


async def test_pages_inside_the_interval_are_bundled_and_the_bundles_code_acts_on_all(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    count = 20
    for n in range(count):
        await notifier.page(
            page_request(f"n-{n}", "alice", "alice-sms", incident_id=f"inc-{n:02d}aaaaaa")
        )
    # The first goes at once; the others wait for the 2 s window and go together.
    messages = await asyncio.to_thread(twilio.wait_for_messages, 2, timeout=15)
    results = await wait_for(
        lambda: notifier.results if len(notifier.results) >= count else None, timeout=15
    )
    assert {r.notification_id for r in results} == {f"n-{n}" for n in range(count)}
    assert {r.outcome for r in results} == {DeliveryOutcome.DELIVERED}
    # Each page of a bundle has its own statuses, not only the one whose worker sent it.
    for outcome in (DeliveryOutcome.QUEUED, DeliveryOutcome.SENT):
        assert {r.notification_id for r in notifier.statuses if r.outcome is outcome} == {
            f"n-{n}" for n in range(count)
        }
    await asyncio.sleep(2.5)  # no third SMS comes
    messages = twilio.messages(to=ALICE)
    assert len(messages) == 2
    first, bundle = messages
    assert "Reply 1a ack" in first.body
    assert bundle.body.startswith("19 incidents triggered: ")
    assert bundle.body.endswith("All: 2a=ack 2c=res 2e=esc")
    assert bundle.num_segments == 1
    outbound = await notifier.outbound()
    carried = sorted(page["id"] for doc in outbound for page in doc["pages"])
    assert carried == sorted(f"n-{n}" for n in range(count))

    (alone,) = [doc["pages"][0]["incident_id"] for doc in outbound if len(doc["pages"]) == 1]
    answer = await reply(notifier, "2a")
    assert answer.messages[0].startswith("Acknowledged: #inc")
    assert answer.messages[0].endswith(" and 11 more.")  # 8 named, 11 counted
    commands = await notifier.wait_for_commands(19)
    bundled = {f"inc-{n:02d}aaaaaa" for n in range(count)} - {alone}
    assert {c.incident_id for c in commands} == bundled
    assert {c.command for c in commands} == {CommandKind.ACKNOWLEDGE}


async def test_a_resolved_notice_carries_no_code_and_ack_still_names_the_latest_page(
    notifier: TwilioNotifier, twilio: FakeTwilio
) -> None:
    await notifier.page(page_request("n-1", "bob", "bob-sms"))
    await notifier.result_of("n-1")
    notice = page_request("n-2", "bob", "bob-sms", event=NotificationEvent.RESOLVED)
    await notifier.page(notice)
    await notifier.result_of("n-2", timeout=10)
    _, second = twilio.messages(to=BOB)
    assert second.body.startswith("Resolved: SEV1 checkout")
    assert "Reply" not in second.body
    answer = await reply(notifier, "ack", from_=BOB)
    assert answer.messages == ("Acknowledged: #inc7f3a9.",)


async def test_a_forged_status_callback_changes_nothing(tmp_path: Path) -> None:
    port = free_port()
    with FakeTwilio(callback_delay=1.0) as slow:
        config = twilio_config(slow, f"http://127.0.0.1:{port}")
        async with running_notifier(tmp_path, port, slow, config) as notifier:
            await notifier.page(page_request("n-1", "alice", "alice-sms"))
            (message,) = await asyncio.to_thread(slow.wait_for_messages, 1)
            assert message.status_callback is not None
            params = {"MessageSid": message.sid, "MessageStatus": "undelivered", "To": ALICE}
            forged = twilio_signature("not-the-token", message.status_callback, params)
            async with httpx.AsyncClient() as client:
                for headers in ({"X-Twilio-Signature": forged}, {}):
                    answer = await client.post(
                        message.status_callback, data=params, headers=headers
                    )
                    assert answer.status_code == 403
            # Twilio's own callbacks come a second later: delivered, not failed.
            result = await notifier.result_of("n-1")
            assert result.outcome is DeliveryOutcome.DELIVERED
            (outbound,) = await notifier.outbound()
            assert "undelivered" not in [s["status"] for s in outbound["statuses"]]
