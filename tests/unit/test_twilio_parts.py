"""The pure parts of the Twilio channels: the TwiML Tocsin answers with (parsed back the way the
fake Twilio runs it), what a page call says, and what Twilio's statuses mean for a page."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from schemas import NotificationEvent, Severity
from services.notifier.domain.receipts import (
    Receipt,
    call_receipt,
    failure_detail,
    known_status,
    message_receipt,
)
from services.notifier.domain.sms_text import PageFacts
from services.notifier.domain.twiml import gather_response, hangup_response, message_response
from services.notifier.domain.voice_text import MAX_READ, page_speech, speakable
from tests.fakes.twiml import parse_twiml

URL = "https://tocsin.example.com/v1/twilio/voice?m=k1"


def facts(title: str = "Checkout down", *, severity: Severity = Severity.SEV1) -> PageFacts:
    return PageFacts(NotificationEvent.TRIGGERED, severity, "checkout", title, 3, "inc-1")


def test_an_sms_answer_is_one_escaped_message() -> None:
    text = message_response('Done: <b> & "x"')
    document = parse_twiml(text, url=URL)
    assert document.messages == ('Done: <b> & "x"',)
    assert message_response(None).endswith("<Response></Response>")


def test_a_page_call_gathers_one_key_and_reads_again_without_one() -> None:
    text = gather_response(
        ["Title with <tags> & 'quotes'", "Press 4."], action=URL, then=URL + "&r=1"
    )
    document = parse_twiml(text, url=URL)
    assert document.said == ("Title with <tags> & 'quotes'", "Press 4.")
    assert document.gather is not None
    assert (document.gather.action, document.gather.num_digits) == (URL, 1)
    assert document.redirect_after_gather == URL + "&r=1"  # the & survived escaping


def test_the_last_reading_says_goodbye_and_hangs_up() -> None:
    text = gather_response(["Page."], action=URL, then=None)
    root = ElementTree.fromstring(text)
    assert [verb.tag for verb in root] == ["Gather", "Say", "Hangup"]
    assert root[1].text == "Goodbye."
    assert parse_twiml(hangup_response(["Acknowledged."]), url=URL).said == ("Acknowledged.",)


def test_a_page_call_says_severity_service_title_alerts_then_the_menu() -> None:
    said = page_speech([facts("Payments_failing **now** <b>")])
    assert said == [
        "This is Tocsin. severity 1 incident triggered on checkout: Payments failing now b. "
        "3 alerts.",
        "Press 4 to acknowledge, 6 to resolve, 8 to escalate now.",
    ]


def test_a_bundled_call_reads_a_few_and_counts_the_rest() -> None:
    said = page_speech([facts(f"Incident {n}") for n in range(MAX_READ + 2)])
    assert said[0] == f"This is Tocsin with {MAX_READ + 2} incidents."
    assert len(said) == 1 + MAX_READ + 2
    assert said[-2] == "And 2 more."
    assert said[-1].startswith("For all of them, press 4")
    with pytest.raises(ValueError, match="at least one page"):
        page_speech([])


def test_a_long_title_is_cut_at_a_word() -> None:
    spoken = speakable("word " * 100, limit=30)
    assert spoken.endswith(", and so on")
    assert len(spoken) <= 30 + len(", and so on")


@pytest.mark.parametrize(
    ("status", "receipt"),
    [
        ("queued", Receipt.PENDING),
        ("sent", Receipt.PENDING),
        ("delivered", Receipt.DELIVERED),
        ("undelivered", Receipt.FAILED),
        ("failed", Receipt.FAILED),
    ],
)
def test_message_statuses(status: str, receipt: Receipt) -> None:
    assert message_receipt(status) is receipt


@pytest.mark.parametrize(
    ("status", "receipt"),
    [
        ("ringing", Receipt.PENDING),
        ("in-progress", Receipt.DELIVERED),
        ("completed", Receipt.DELIVERED),
        ("busy", Receipt.FAILED),
        ("no-answer", Receipt.FAILED),
        ("failed", Receipt.FAILED),
        ("canceled", Receipt.FAILED),
    ],
)
def test_call_statuses(status: str, receipt: Receipt) -> None:
    assert call_receipt(status) is receipt


def test_failure_details_and_labels_stay_bounded() -> None:
    assert failure_detail("undelivered", "30003") == "Twilio reported undelivered (error 30003)"
    assert failure_detail("failed", "+15551234567 is bad") == "Twilio reported failed"
    assert known_status("delivered") == "delivered"
    assert known_status("+15551234567") == "other"
