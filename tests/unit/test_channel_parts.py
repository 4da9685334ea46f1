"""The pure parts of the SMS/voice/Slack/e-mail channels: phone numbers, SMS text, replies,
per-contact rate limit with bundling, and signatures."""

from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import NotificationEvent, Severity
from services.notifier.domain import bundling, replies, signing
from services.notifier.domain.e164 import InvalidPhoneNumber, is_e164, parse_e164
from services.notifier.domain.sms_text import (
    GSM7_SINGLE_SEGMENT,
    UCS2_SINGLE_SEGMENT,
    Encoding,
    PageFacts,
    bundle_sms_text,
    gsm7_length,
    is_gsm7,
    page_sms_text,
    short_incident_id,
    sms_length,
)
from tests.fakes.twilio_wire import sms_segments

INCIDENT = "6f1c1d2e-4b7a-4e49-9a43-1d0a8f5b2c11"
PAGE = PageFacts(
    event=NotificationEvent.TRIGGERED,
    severity=Severity.SEV1,
    service="checkout",
    title="Payment API 5xx above 5%",
    alert_count=3,
    incident_id=INCIDENT,
)

# --- E.164 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["+15551234567", "+442071838750", "+6831234", "+123456789012345"]
)
def test_e164_numbers_are_accepted_as_they_are(number: str) -> None:
    assert parse_e164(number) == number
    assert is_e164(number)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("", "empty"),
        (" +447700900123", "spaces around"),
        ("0015551234567", "starts with 00"),
        ("447700900123", "does not start with +"),
        ("+1 555 123 4567", "spaces or punctuation"),
        ("+1-555-123-4567", "spaces or punctuation"),
        ("+1(555)1234567", "spaces or punctuation"),
        ("+1555ABC4567", "other than digits"),
        ("+\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "other than digits"),
        ("+0123456789", "never starts with 0"),
        ("+1234567890123456", "at most 15"),
        ("+12345", "at least 7"),
    ],
)
def test_a_number_that_is_not_e164_is_refused_with_why_and_without_the_number(
    number: str, reason: str
) -> None:
    with pytest.raises(InvalidPhoneNumber, match=re.escape(reason)) as refused:
        parse_e164(number)
    assert not is_e164(number)
    if number.strip():
        assert number.strip() not in str(refused.value)
    assert "+15551234567" in str(refused.value)  # the example of how to write it


# --- SMS text -----------------------------------------------------------------------------------


def test_gsm7_alphabet_and_lengths() -> None:
    assert is_gsm7("Disk full on db-1: 95% (é, Ä, ñ, £, @)")
    assert not is_gsm7("\u2026")  # the ellipsis
    assert not is_gsm7("\u201cquoted\u201d")
    assert not is_gsm7("\U0001f525")
    assert gsm7_length("a€[]") == 7  # extension characters take two septets
    assert sms_length("\U0001f525 x") == (Encoding.UCS2, 4)  # an emoji is two UTF-16 units


def test_the_gsm7_alphabet_agrees_with_the_fake_twilio_on_every_bmp_character() -> None:
    # Two tables typed separately: a mistake in one shows up as a disagreement.
    for point in range(0x10000):
        char = chr(point)
        if 0xD800 <= point <= 0xDFFF:
            continue
        assert is_gsm7(char) == (sms_segments(char * 80) == 1), f"U+{point:04X}"


def test_a_short_page_says_everything() -> None:
    text = page_sms_text(PAGE, reply_code=4)
    assert text.text == (
        "SEV1 checkout: Payment API 5xx above 5% (3 alerts) #6f1c1d2e. "
        "Reply 4a ack, 4c resolve, 4e escalate"
    )
    assert (text.encoding, text.cut) == (Encoding.GSM7, False)
    assert text.length == len(text.text)


def test_one_alert_is_singular_and_whitespace_is_collapsed() -> None:
    page = dataclasses.replace(PAGE, alert_count=1, title="  Disk\nfull\t on  db-1 ")
    assert page_sms_text(page, reply_code=2).text.startswith(
        "SEV1 checkout: Disk full on db-1 (1 alert) #6f1c1d2e."
    )


def test_a_long_title_is_cut_with_a_gsm7_ellipsis_and_keeps_the_codes() -> None:
    page = dataclasses.replace(PAGE, title="Payment API error rate above threshold " * 10)
    text = page_sms_text(page, reply_code=12)
    assert text.encoding is Encoding.GSM7
    assert text.cut
    assert text.length <= GSM7_SINGLE_SEGMENT
    assert "...(3 alerts)" not in text.text
    assert "... (3 alerts) #6f1c1d2e. Reply 12a ack, 12c resolve, 12e escalate" in text.text
    assert "\u2026" not in text.text


def test_typographic_characters_and_emoji_do_not_turn_a_page_into_ucs2() -> None:
    page = dataclasses.replace(
        PAGE, title="\U0001f525 \u201cDisk\u201d full \u2013 95% in S\u00e3o Paulo\u2026"
    )
    text = page_sms_text(page, reply_code=3)
    assert text.encoding is Encoding.GSM7
    assert 'SEV1 checkout: "Disk" full - 95% in Sao Paulo... (3 alerts)' in text.text


def test_a_title_in_another_script_is_sent_as_ucs2_within_70_units() -> None:
    title = "Платёжный сервис недоступен " * 3
    text = page_sms_text(dataclasses.replace(PAGE, title=title), reply_code=4)
    assert text.encoding is Encoding.UCS2
    assert text.length <= UCS2_SINGLE_SEGMENT
    assert "\u2026" in text.text
    assert "#6f1c1d2e" in text.text
    assert "4a=ack" in text.text
    assert "4c=res" in text.text
    assert "4e=esc" in text.text


def test_an_emoji_is_never_cut_in_half_in_ucs2() -> None:
    title = "\u0434\U0001f525" * 60
    text = page_sms_text(dataclasses.replace(PAGE, title=title), reply_code=1)
    assert text.encoding is Encoding.UCS2
    text.text.encode("utf-8")  # a lone surrogate would not encode
    assert sms_length(text.text) == (Encoding.UCS2, text.length)
    assert text.length <= UCS2_SINGLE_SEGMENT


def test_extension_characters_count_twice_against_the_limit() -> None:
    text = page_sms_text(dataclasses.replace(PAGE, title="{[|]}" * 40), reply_code=4)
    assert text.encoding is Encoding.GSM7
    assert gsm7_length(text.text) == text.length <= GSM7_SINGLE_SEGMENT
    assert len(text.text) < GSM7_SINGLE_SEGMENT


def test_a_long_service_name_still_leaves_room_for_the_title() -> None:
    page = dataclasses.replace(PAGE, service="s" * 200, title="t" * 200)
    text = page_sms_text(page, reply_code=4).text
    assert len(text) <= GSM7_SINGLE_SEGMENT
    assert "t" * 20 in text
    assert "#6f1c1d2e 4a=ack 4c=res 4e=esc" in text


@pytest.mark.parametrize(
    ("event", "starts", "codes"),
    [
        (NotificationEvent.TRIGGERED, "SEV1", "Reply 7a ack, 7c resolve, 7e escalate"),
        (NotificationEvent.ESCALATED, "Escalated: SEV1", "Reply 7a ack, 7c resolve, 7e escalate"),
        (NotificationEvent.ACKNOWLEDGED, "Acked: SEV1", "Reply 7c resolve"),
        (NotificationEvent.RESOLVED, "Resolved: SEV1", None),
    ],
)
def test_each_event_says_what_happened_and_offers_the_codes_that_make_sense(
    event: NotificationEvent, starts: str, codes: str | None
) -> None:
    text = page_sms_text(dataclasses.replace(PAGE, event=event), reply_code=7).text
    assert text.startswith(starts)
    if codes is None:
        assert "Reply" not in text
    else:
        assert text.endswith(codes)


def test_a_page_without_a_reply_code_offers_none() -> None:
    assert "Reply" not in page_sms_text(PAGE, reply_code=None).text


_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
        st.sampled_from("\u2026\u201c\u2019\u2013\u20ac{}[]\U0001f525\u0434"),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(
    title=_text,
    service=_text.filter(bool),
    count=st.integers(0, 10_000),
    code=st.integers(1, replies.MAX_REPLY_CODE),
    event=st.sampled_from(NotificationEvent),
)
def test_any_page_is_one_sms_segment_and_keeps_its_short_id_and_codes(
    title: str, service: str, count: int, code: int, event: NotificationEvent
) -> None:
    page = dataclasses.replace(PAGE, title=title, service=service, alert_count=count, event=event)
    text = page_sms_text(page, reply_code=code)
    assert sms_length(text.text) == (text.encoding, text.length)
    assert sms_segments(text.text) == 1  # counted by the fake Twilio, independently
    assert "#6f1c1d2e" in text.text
    if event not in (NotificationEvent.RESOLVED, NotificationEvent.REMINDER):
        assert f"{code}c" in text.text  # a resolve notice and a reminder take no reply


def test_the_short_id_is_the_first_eight_letters_or_digits() -> None:
    assert short_incident_id(INCIDENT) == "6f1c1d2e"
    assert short_incident_id("AB-12_cd.34ef") == "ab12cd34"


def _pages(count: int, **changes: Any) -> list[PageFacts]:
    return [
        dataclasses.replace(PAGE, incident_id=f"{index:08x}-x", service=f"svc{index}", **changes)
        for index in range(count)
    ]


def test_a_bundle_lists_the_incidents_with_codes_for_all() -> None:
    text = bundle_sms_text(_pages(3), reply_code=9)
    assert text.text == (
        "3 incidents triggered: SEV1 svc0 #00000000, SEV1 svc1 #00000001, SEV1 svc2 #00000002."
        " Reply 9a ack all, 9c resolve all, 9e escalate all"
    )
    assert not text.cut


def test_a_big_bundle_stays_one_segment_and_counts_what_it_cannot_list() -> None:
    text = bundle_sms_text(_pages(20), reply_code=17)
    assert text.text.startswith("20 incidents triggered: ")
    assert text.length <= GSM7_SINGLE_SEGMENT
    assert text.cut
    listed = len(re.findall(r"#[0-9a-f]{8}", text.text))
    more = re.search(r"\+(\d+) more", text.text)
    assert more is not None
    assert listed + int(more.group(1)) == 20
    assert "17a=ack" in text.text


def test_a_bundle_of_mixed_events_and_one_of_resolutions() -> None:
    mixed = [*_pages(1), *_pages(1, event=NotificationEvent.ESCALATED)]
    assert bundle_sms_text(mixed, reply_code=2).text.startswith("2 incident updates: ")
    resolved = bundle_sms_text(_pages(2, event=NotificationEvent.RESOLVED), reply_code=2).text
    assert resolved.startswith("2 incidents resolved: ")
    assert "Reply" not in resolved


def test_a_bundle_of_one_is_the_page_itself() -> None:
    assert bundle_sms_text([PAGE], reply_code=4) == page_sms_text(PAGE, reply_code=4)
    with pytest.raises(ValueError, match="at least one"):
        bundle_sms_text([], reply_code=4)


# --- replies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "code", "action"),
    [
        ("4a", 4, replies.ReplyAction.ACKNOWLEDGE),
        ("4A", 4, replies.ReplyAction.ACKNOWLEDGE),
        ("  4 a \n", 4, replies.ReplyAction.ACKNOWLEDGE),
        ("'4a'", 4, replies.ReplyAction.ACKNOWLEDGE),
        ("\u20184a\u2019.", 4, replies.ReplyAction.ACKNOWLEDGE),
        ("4aa", 4, replies.ReplyAction.ACKNOWLEDGE),
        ("4 ack", 4, replies.ReplyAction.ACKNOWLEDGE),
        ("12c", 12, replies.ReplyAction.RESOLVE),
        ("12 resolve", 12, replies.ReplyAction.RESOLVE),
        ("12 close", 12, replies.ReplyAction.RESOLVE),
        ("3e", 3, replies.ReplyAction.ESCALATE),
        ("3 ESCALATE!", 3, replies.ReplyAction.ESCALATE),
    ],
)
def test_coded_replies_are_read_forgivingly(
    reply: str, code: int, action: replies.ReplyAction
) -> None:
    assert replies.parse_sms_reply(reply) == replies.CodedReply(code, action)


@pytest.mark.parametrize(
    ("reply", "action"),
    [
        ("ack", replies.ReplyAction.ACKNOWLEDGE),
        (" ACK ", replies.ReplyAction.ACKNOWLEDGE),
        ("Acknowledge.", replies.ReplyAction.ACKNOWLEDGE),
        ("resolve", replies.ReplyAction.RESOLVE),
    ],
)
def test_a_plain_word_acts_on_the_latest_page(reply: str, action: replies.ReplyAction) -> None:
    assert replies.parse_sms_reply(reply) == replies.LatestReply(action)


@pytest.mark.parametrize(
    "reply", ["", "ok", "thanks", "4", "a4", "4x", "4ac", "0a", "1000a", "4a please", "stop"]
)
def test_anything_else_gets_the_help_answer(reply: str) -> None:
    assert replies.parse_sms_reply(reply) == replies.UnknownReply(replies.HELP_TEXT)


def test_every_answer_is_one_gsm7_sms() -> None:
    answers = [
        replies.HELP_TEXT,
        replies.NO_PAGE_ANSWER,
        replies.unknown_code_answer(replies.MAX_REPLY_CODE),
        replies.done_answer(replies.ReplyAction.ACKNOWLEDGE, ["6f1c1d2e"] * 20),
    ]
    for answer in answers:
        assert is_gsm7(answer), answer
        assert gsm7_length(answer) <= GSM7_SINGLE_SEGMENT, answer


def test_the_done_answer_names_the_incidents() -> None:
    assert replies.done_answer(replies.ReplyAction.RESOLVE, ["aa", "bb"]) == "Resolved: #aa #bb."
    long = replies.done_answer(replies.ReplyAction.ESCALATE, [str(n) for n in range(10)])
    assert long.endswith("#7 and 2 more.")
    with pytest.raises(ValueError, match="at least one"):
        replies.done_answer(replies.ReplyAction.ACKNOWLEDGE, [])


@pytest.mark.parametrize(
    ("digits", "action"),
    [
        ("4", replies.ReplyAction.ACKNOWLEDGE),
        ("6", replies.ReplyAction.RESOLVE),
        ("8", replies.ReplyAction.ESCALATE),
        ("4#", replies.ReplyAction.ACKNOWLEDGE),
        (" 8 ", replies.ReplyAction.ESCALATE),
        ("", None),
        ("5", None),
        ("44", None),
        ("*", None),
    ],
)
def test_voice_keys(digits: str, action: replies.ReplyAction | None) -> None:
    assert replies.parse_voice_digits(digits) == action


def test_reply_codes_are_the_smallest_free_ones() -> None:
    assert replies.allocate_reply_code([]) == 1
    assert replies.allocate_reply_code({1, 2, 4}) == 3
    with pytest.raises(ValueError, match="in use"):
        replies.allocate_reply_code(range(1, replies.MAX_REPLY_CODE + 1))


# --- rate limit and bundling ----------------------------------------------------------------------

T0 = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
SMS = bundling.DEFAULT_INTERVALS["sms"]


def test_default_intervals() -> None:
    assert dict(bundling.DEFAULT_INTERVALS) == {
        "sms": timedelta(seconds=30),
        "voice": timedelta(minutes=2),
    }


def test_a_first_page_goes_at_once_and_later_ones_wait_and_go_together() -> None:
    state = bundling.ContactWindow()
    state, first = bundling.on_page(state, notification_id="n1", now=T0, interval=SMS)
    assert first == bundling.Decision(send=("n1",), wake_at=None)
    assert state.last_sent_at == T0

    later = T0 + timedelta(seconds=5)
    state, second = bundling.on_page(state, notification_id="n2", now=later, interval=SMS)
    assert second == bundling.Decision(send=(), wake_at=T0 + SMS)
    state, third = bundling.on_page(
        state, notification_id="n3", now=later + timedelta(seconds=1), interval=SMS
    )
    assert third == bundling.Decision(send=(), wake_at=T0 + SMS)

    state, early = bundling.on_timer(state, now=T0 + SMS - timedelta(seconds=1), interval=SMS)
    assert early == bundling.Decision(send=(), wake_at=T0 + SMS)
    state, due = bundling.on_timer(state, now=T0 + SMS, interval=SMS)
    assert due == bundling.Decision(send=("n2", "n3"), wake_at=None)
    assert state == bundling.ContactWindow(last_sent_at=T0 + SMS, pending=())


def test_a_page_after_a_missed_timer_takes_the_waiting_ones_along() -> None:
    state = bundling.ContactWindow(last_sent_at=T0, pending=("n1",))
    state, decision = bundling.on_page(
        state, notification_id="n2", now=T0 + timedelta(minutes=5), interval=SMS
    )
    assert decision.send == ("n1", "n2")
    assert state.pending == ()


def test_a_redelivered_page_is_not_bundled_twice() -> None:
    state = bundling.ContactWindow(last_sent_at=T0)
    for _ in range(3):
        state, _decision = bundling.on_page(
            state, notification_id="n1", now=T0 + timedelta(seconds=1), interval=SMS
        )
    assert state.pending == ("n1",)


def test_a_timer_with_nothing_waiting_does_nothing() -> None:
    state = bundling.ContactWindow(last_sent_at=T0)
    assert bundling.on_timer(state, now=T0 + SMS, interval=SMS) == (
        state,
        bundling.Decision(send=(), wake_at=None),
    )


def test_a_clock_that_stepped_back_delays_a_page_by_at_most_one_interval() -> None:
    state = bundling.ContactWindow(last_sent_at=T0 + timedelta(hours=1))
    state, decision = bundling.on_page(state, notification_id="n1", now=T0, interval=SMS)
    assert decision == bundling.Decision(send=(), wake_at=T0 + SMS)
    state, again = bundling.on_timer(state, now=T0 + timedelta(seconds=10), interval=SMS)
    assert again.wake_at == T0 + SMS  # not pushed further by each call
    _state, due = bundling.on_timer(state, now=T0 + SMS, interval=SMS)
    assert due.send == ("n1",)


def test_no_interval_means_no_limit() -> None:
    state = bundling.ContactWindow(last_sent_at=T0)
    _state, decision = bundling.on_page(state, notification_id="n1", now=T0, interval=timedelta(0))
    assert decision.send == ("n1",)


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 90_000), min_size=1, max_size=40),
    interval_s=st.integers(1, 180),
)
def test_nothing_is_dropped_sends_are_spaced_and_no_page_waits_longer_than_the_interval(
    gaps: list[int], interval_s: int
) -> None:
    interval = timedelta(seconds=interval_s)
    arrivals: dict[str, datetime] = {}
    now = T0
    for index, gap in enumerate(gaps):
        now += timedelta(milliseconds=gap)
        arrivals[f"n{index}"] = now
    state = bundling.ContactWindow()
    sends: list[tuple[datetime, tuple[str, ...]]] = []
    wake: datetime | None = None
    for notification_id, arrived in arrivals.items():
        while wake is not None and wake <= arrived:  # timers fire on time
            state, decision = bundling.on_timer(state, now=wake, interval=interval)
            if decision.send:
                sends.append((wake, decision.send))
            wake = decision.wake_at
        state, decision = bundling.on_page(
            state, notification_id=notification_id, now=arrived, interval=interval
        )
        if decision.send:
            sends.append((arrived, decision.send))
        wake = decision.wake_at or wake
    while wake is not None:
        state, decision = bundling.on_timer(state, now=wake, interval=interval)
        if decision.send:
            sends.append((wake, decision.send))
        wake = decision.wake_at
    sent = [notification_id for _at, batch in sends for notification_id in batch]
    assert sorted(sent) == sorted(arrivals)  # each page exactly once
    for (earlier, _a), (later, _b) in itertools.pairwise(sends):
        assert later - earlier >= interval
    for at, batch in sends:
        for notification_id in batch:
            assert at - arrivals[notification_id] <= interval


# --- signatures ---------------------------------------------------------------------------------

# Twilio's documented example (webhook security): this URL, these parameters, token 12345.
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
TWILIO_EXPECTED = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_signature_reproduces_twilios_documented_example() -> None:
    assert signing.twilio_signature("12345", TWILIO_URL, TWILIO_PARAMS) == TWILIO_EXPECTED
    signing.verify_twilio_signature("12345", TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED)


@pytest.mark.parametrize(
    ("token", "url", "params", "signature", "reason"),
    [
        ("12346", TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED, "does not match"),
        ("12345", TWILIO_URL + "&x=1", TWILIO_PARAMS, TWILIO_EXPECTED, "does not match"),
        ("12345", TWILIO_URL, {**TWILIO_PARAMS, "Digits": "4"}, TWILIO_EXPECTED, "does not match"),
        ("12345", TWILIO_URL, TWILIO_PARAMS, None, "no X-Twilio-Signature"),
        ("12345", TWILIO_URL, TWILIO_PARAMS, "", "no X-Twilio-Signature"),
        ("12345", TWILIO_URL, TWILIO_PARAMS, "\u00e9t\u00e9", "does not match"),
    ],
)
def test_a_twilio_request_with_a_wrong_or_missing_signature_is_refused(
    token: str, url: str, params: dict[str, str], signature: str | None, reason: str
) -> None:
    with pytest.raises(signing.InvalidSignature, match=reason) as refused:
        signing.verify_twilio_signature(token, url, params, signature)
    assert token not in str(refused.value)
    assert TWILIO_EXPECTED not in str(refused.value)


def test_twilio_signatures_with_and_without_the_default_port_are_both_accepted() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    signing.verify_twilio_signature("12345", with_port, TWILIO_PARAMS, TWILIO_EXPECTED)
    signed_with_port = signing.twilio_signature("12345", with_port, TWILIO_PARAMS)
    signing.verify_twilio_signature("12345", TWILIO_URL, TWILIO_PARAMS, signed_with_port)


def test_twilio_parameters_may_repeat_and_order_does_not_matter() -> None:
    pairs = [("b", "2"), ("a", "y"), ("a", "x")]
    signature = signing.twilio_signature("t0ken", "https://h/p", pairs)
    assert signature == signing.twilio_signature("t0ken", "https://h/p", list(reversed(pairs)))
    signing.verify_twilio_signature("t0ken", "https://h/p", pairs, signature)


@settings(max_examples=100, deadline=None)
@given(
    params=st.dictionaries(
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
        max_size=8,
    ),
    token=st.text(st.characters(codec="ascii"), min_size=1, max_size=40),
)
def test_twilio_signature_agrees_with_the_twilio_package(
    params: dict[str, str], token: str
) -> None:
    validator_module = pytest.importorskip("twilio.request_validator")
    validator = validator_module.RequestValidator(token)
    url = "https://tocsin.example.com/v1/twilio/sms?x=1"
    ours = signing.twilio_signature(token, url, params)
    assert ours == validator.compute_signature(url, params)
    assert validator.validate(url, params, ours)


# Slack's documented example (verifying requests from Slack).
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_EXPECTED = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK_NOW = datetime.fromtimestamp(int(SLACK_TIMESTAMP), UTC)


def _verify_slack(**changes: Any) -> None:
    arguments: dict[str, Any] = {
        "body": SLACK_BODY,
        "timestamp": SLACK_TIMESTAMP,
        "signature": SLACK_EXPECTED,
        "now": SLACK_NOW,
        "secret": SLACK_SECRET,
    }
    arguments.update(changes)
    secret = arguments.pop("secret")
    signing.verify_slack_signature(secret, **arguments)


def test_slack_signature_reproduces_slacks_documented_example() -> None:
    assert signing.slack_signature(SLACK_SECRET, SLACK_TIMESTAMP, SLACK_BODY) == SLACK_EXPECTED
    _verify_slack()
    _verify_slack(now=SLACK_NOW + timedelta(minutes=5))
    _verify_slack(now=SLACK_NOW - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"secret": SLACK_SECRET + "x"}, "does not match"),
        ({"body": SLACK_BODY + b"&x=1"}, "does not match"),
        ({"signature": "v0=" + "0" * 64}, "does not match"),
        ({"signature": "v0=\u00e9"}, "does not match"),
        ({"signature": None}, "no X-Slack-Signature"),
        ({"timestamp": None}, "no X-Slack-Request-Timestamp"),
        ({"timestamp": "soon"}, "not a Unix time"),
        ({"now": SLACK_NOW + timedelta(minutes=5, seconds=1)}, "more than 300 s"),
        ({"now": SLACK_NOW - timedelta(minutes=5, seconds=1)}, "more than 300 s"),
    ],
)
def test_a_slack_request_with_a_bad_stale_or_missing_signature_is_refused(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(signing.InvalidSignature, match=reason) as refused:
        _verify_slack(**changes)
    assert SLACK_SECRET not in str(refused.value)


def test_slack_signature_agrees_with_slack_sdk() -> None:
    signature_module = pytest.importorskip("slack_sdk.signature")

    class Clock:  # slack_sdk's clock interface
        def now(self) -> float:
            return SLACK_NOW.timestamp()

    verifier = signature_module.SignatureVerifier(SLACK_SECRET, clock=Clock())
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    ours = signing.slack_signature(SLACK_SECRET, SLACK_TIMESTAMP, body)
    assert verifier.is_valid(body=body, timestamp=SLACK_TIMESTAMP, signature=ours)


TOKEN_SECRET = b"k" * 32


def _issue(**changes: Any) -> str:
    arguments: dict[str, Any] = {
        "purpose": "email-ack",
        "subject": "notification-1",
        "expires_at": T0 + timedelta(hours=24),
    }
    arguments.update(changes)
    return signing.issue_token(TOKEN_SECRET, **arguments)


def test_a_token_reads_back_its_subject_until_it_expires() -> None:
    token = _issue()
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)  # safe in a URL path as it is
    assert signing.read_token(TOKEN_SECRET, token, purpose="email-ack", now=T0) == "notification-1"
    late = T0 + timedelta(hours=24)
    with pytest.raises(signing.InvalidToken, match="expired"):
        signing.read_token(TOKEN_SECRET, token, purpose="email-ack", now=late)


def test_a_token_is_bound_to_its_secret_and_purpose() -> None:
    token = _issue()
    with pytest.raises(signing.InvalidToken, match="signature"):
        signing.read_token(TOKEN_SECRET, token, purpose="status-unsubscribe", now=T0)
    with pytest.raises(signing.InvalidToken, match="signature"):
        signing.read_token(b"o" * 32, token, purpose="email-ack", now=T0)


def test_a_token_with_a_changed_subject_or_expiry_is_refused() -> None:
    token = _issue()
    other = _issue(subject="notification-2", expires_at=T0 + timedelta(days=365))
    forged = other.split(".")[0] + "." + token.split(".")[1]
    with pytest.raises(signing.InvalidToken, match="signature"):
        signing.read_token(TOKEN_SECRET, forged, purpose="email-ack", now=T0)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "x" * 44, "a b." + "A" * 43])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(signing.InvalidToken, match="malformed"):
        signing.read_token(TOKEN_SECRET, token, purpose="email-ack", now=T0)


def test_token_secrets_and_times_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes") as refused:
        signing.issue_token(b"short", purpose="email-ack", subject="s", expires_at=T0)
    assert "short" not in str(refused.value)
    with pytest.raises(ValueError, match="timezone-aware"):
        _issue(expires_at=datetime(2026, 1, 1))  # naive on purpose
    with pytest.raises(ValueError, match="purpose"):
        _issue(purpose="Email Ack")
