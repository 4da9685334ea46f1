"""A reminder (NotificationEvent.REMINDER) as each channel renders it: its text (the snapshot's
title) is said, and it offers no way to acknowledge (it is not a page)."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas import (
    IncidentSnapshot,
    NotificationEvent,
    NotificationRequested,
    Recipient,
    Severity,
)
from services.notifier.domain.cards import slack_blocks, slack_text, teams_message
from services.notifier.domain.email_text import email_subject, page_email
from services.notifier.domain.sms_text import PageFacts, bundle_sms_text, page_sms_text
from services.notifier.domain.voice_text import page_speech

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
TEXT = "Review due: Checkout down"


def reminder() -> NotificationRequested:
    return NotificationRequested(
        occurred_at=NOW,
        correlation_id="inc-42",
        notification_id="reminder:review/inc-42/1/alice-sms",
        event=NotificationEvent.REMINDER,
        incident=IncidentSnapshot(
            id="inc-42",
            title=TEXT,
            severity=Severity.SEV1,
            status="resolved",
            service="checkout",
            alert_count=1,
        ),
        recipient=Recipient(user_id="alice", contact_id="alice-sms"),
        escalation_level=0,
    )


def facts() -> PageFacts:
    return PageFacts(NotificationEvent.REMINDER, Severity.SEV1, "checkout", TEXT, 1, "inc-42")


def test_sms_says_reminder_and_offers_no_reply_codes() -> None:
    text = page_sms_text(facts(), reply_code=7).text
    assert text.startswith("Reminder: SEV1 checkout: Review due: Checkout down")
    assert "7a" not in text
    assert "7c" not in text
    bundled = bundle_sms_text([facts(), facts()], reply_code=7).text
    assert bundled.startswith("2 incidents with reminders:")
    assert "7a" not in bundled


def test_email_voice_and_chat_say_the_reminder() -> None:
    request = reminder()
    assert email_subject(request) == f"[SEV1] Reminder: checkout: {TEXT}"
    assert TEXT in page_email(request, ack=None).plain
    assert "reminder" in " ".join(page_speech([facts()]))
    assert TEXT in slack_text(request.event, request.incident)
    blocks = slack_blocks(request.event, request.incident)
    assert not any(block["type"] == "actions" for block in blocks)  # resolved: no buttons
    assert "Reminder" in str(teams_message(request))
