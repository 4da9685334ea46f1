"""Page text for the changes before an incident (services/notifier/domain/change_lines.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import (
    ChangeLink,
    ChangeSummary,
    IncidentSnapshot,
    NotificationEvent,
    NotificationRequested,
    Recipient,
    Severity,
)
from services.notifier.channels.webhook import webhook_body
from services.notifier.contact_store import PageEntry
from services.notifier.domain.cards import slack_blocks, teams_message
from services.notifier.domain.change_lines import change_line, changes_text
from services.notifier.domain.email_text import page_email
from services.notifier.domain.sms_text import PageFacts, page_sms_text
from services.notifier.domain.voice_text import page_speech

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def change(summary: str, before: timedelta, version: str | None = None) -> ChangeSummary:
    return ChangeSummary(summary=summary, at=OPENED - before, version=version)


@pytest.mark.parametrize(
    ("summary", "version", "before", "line"),
    [
        (
            "deployed checkout",
            "v2.3.1",
            timedelta(minutes=4),
            "deployed checkout v2.3.1 4 min before",
        ),
        (
            "deployed checkout v2.3.1",
            "v2.3.1",
            timedelta(minutes=4, seconds=59),
            "deployed checkout v2.3.1 4 min before",
        ),
        ("flag  new-cart\non", None, timedelta(seconds=20), "flag new-cart on just before"),
        ("config push", None, timedelta(minutes=29), "config push 29 min before"),
        ("migration", None, timedelta(hours=3), "migration 3 h before"),
    ],
)
def test_change_line(summary: str, version: str | None, before: timedelta, line: str) -> None:
    assert change_line(change(summary, before, version), OPENED) == line


def test_changes_text_shows_the_newest_and_counts_the_rest() -> None:
    older = change("flag on", timedelta(minutes=12))
    newest = change("deployed checkout", timedelta(minutes=4), "v2.3.1")
    assert (
        changes_text([older, newest], OPENED) == "deployed checkout v2.3.1 4 min before (+1 more)"
    )
    assert changes_text([older, newest], OPENED, shown=2) == (
        "deployed checkout v2.3.1 4 min before; flag on 12 min before"
    )
    assert changes_text([], OPENED) is None


def test_the_webhook_page_carries_the_changes_with_their_line() -> None:
    deploy = ChangeSummary(
        summary="deployed checkout",
        at=OPENED - timedelta(minutes=4),
        version="v2.3.1",
        links=(ChangeLink(href="https://ci.example/runs/42"),),
    )
    request = NotificationRequested(
        occurred_at=OPENED,
        correlation_id="inc-1",
        notification_id="inc-1/c0/s0/alice/hook",
        event=NotificationEvent.TRIGGERED,
        incident=IncidentSnapshot(
            id="inc-1",
            title="slow",
            severity=Severity.SEV1,
            status="triggered",
            service="checkout",
            alert_count=1,
            opened_at=OPENED,
            changes=(deploy,),
        ),
        recipient=Recipient(user_id="alice", contact_id="hook"),
        escalation_level=0,
    )
    assert webhook_body(request)["incident"]["changes"] == [
        {
            "summary": "deployed checkout",
            "at": "2026-03-02T08:56:00+00:00",
            "source": None,
            "version": "v2.3.1",
            "links": [{"href": "https://ci.example/runs/42", "text": None}],
            "text": "deployed checkout v2.3.1 4 min before",
        }
    ]


def test_the_page_email_lists_the_changes() -> None:
    deploy = ChangeSummary(
        summary="deployed checkout", at=OPENED - timedelta(minutes=4), version="v2.3.1"
    )
    request = NotificationRequested(
        occurred_at=OPENED + timedelta(seconds=3),
        correlation_id="inc-1",
        notification_id="inc-1/c0/s0/alice/mail",
        event=NotificationEvent.TRIGGERED,
        incident=IncidentSnapshot(
            id="inc-1",
            title="slow",
            severity=Severity.SEV1,
            status="triggered",
            service="checkout",
            alert_count=1,
            opened_at=OPENED,
            changes=(deploy,),
        ),
        recipient=Recipient(user_id="alice", contact_id="mail"),
        escalation_level=0,
    )
    email = page_email(request, ack=None)
    assert "Changes: deployed checkout v2.3.1 4 min before\n" in email.plain
    assert "<td>deployed checkout v2.3.1 4 min before</td>" in email.html
    without = request.model_copy(
        update={"incident": request.incident.model_copy(update={"changes": ()})}
    )
    assert "Changes" not in page_email(without, ack=None).plain


def test_the_slack_page_lists_the_changes() -> None:
    deploy = ChangeSummary(
        summary="deployed <checkout>", at=OPENED - timedelta(minutes=4), version="v2.3.1"
    )
    incident = IncidentSnapshot(
        id="inc-1",
        title="slow",
        severity=Severity.SEV1,
        status="triggered",
        service="checkout",
        alert_count=1,
        opened_at=OPENED,
        changes=(deploy,),
    )
    texts = [
        block["text"]["text"]
        for block in slack_blocks(NotificationEvent.TRIGGERED, incident)
        if block["type"] == "section" and "text" in block
    ]
    assert texts == ["*Changes before it opened*\n• deployed &lt;checkout&gt; v2.3.1 4 min before"]
    plain = incident.model_copy(update={"changes": ()})
    blocks = slack_blocks(NotificationEvent.TRIGGERED, plain)
    assert not any("Changes" in str(block) for block in blocks)


def _facts(title: str, change: str | None) -> PageFacts:
    return PageFacts(
        NotificationEvent.TRIGGERED, Severity.SEV1, "checkout", title, 3, "a1b2c3d4-e5f6", change
    )


def test_the_sms_page_says_the_last_change_when_it_fits_whole() -> None:
    line = "deployed checkout v2.3.1 4 min before"
    sms = page_sms_text(_facts("Checkout 5xx above 5%", line), reply_code=7)
    assert sms.text == (
        "SEV1 checkout: Checkout 5xx above 5% (3 alerts) #a1b2c3d4. "
        "deployed checkout v2.3.1 4 min before. Reply 7a ack, 7c resolve, 7e escalate"
    )
    assert not sms.cut
    # A title that needs the room keeps it: the page is as without a change.
    long_title = "x" * 150
    assert page_sms_text(_facts(long_title, line), reply_code=7) == page_sms_text(
        _facts(long_title, None), reply_code=7
    )


def test_a_queued_sms_page_keeps_its_change_line() -> None:
    deploy = ChangeSummary(
        summary="deployed checkout", at=OPENED - timedelta(minutes=4), version="v2.3.1"
    )
    older = ChangeSummary(summary="flag on", at=OPENED - timedelta(minutes=9))
    request = NotificationRequested(
        occurred_at=OPENED,
        correlation_id="inc-1",
        notification_id="inc-1/c0/s0/alice/sms",
        event=NotificationEvent.TRIGGERED,
        incident=IncidentSnapshot(
            id="inc-1",
            title="slow",
            severity=Severity.SEV1,
            status="triggered",
            service="checkout",
            alert_count=1,
            opened_at=OPENED,
            changes=(deploy, older),
        ),
        recipient=Recipient(user_id="alice", contact_id="sms"),
        escalation_level=0,
    )
    entry = PageEntry.of(request)
    assert entry.change == "deployed checkout v2.3.1 4 min before"
    assert PageEntry.from_document(entry.document()) == entry
    assert entry.facts().change == entry.change
    # Stored before the change line existed: none.
    legacy = {k: v for k, v in entry.document().items() if k != "change"}
    assert PageEntry.from_document(legacy).change is None


def test_the_teams_card_lists_the_changes() -> None:
    deploy = ChangeSummary(
        summary="deployed checkout", at=OPENED - timedelta(minutes=4), version="v2.3.1"
    )
    request = NotificationRequested(
        occurred_at=OPENED,
        correlation_id="inc-1",
        notification_id="inc-1/c0/s0/alice/teams",
        event=NotificationEvent.TRIGGERED,
        incident=IncidentSnapshot(
            id="inc-1",
            title="slow",
            severity=Severity.SEV1,
            status="triggered",
            service="checkout",
            alert_count=1,
            opened_at=OPENED,
            changes=(deploy,),
        ),
        recipient=Recipient(user_id="alice", contact_id="teams"),
        escalation_level=0,
    )
    body = teams_message(request)["attachments"][0]["content"]["body"]
    assert body[-1] == {
        "type": "TextBlock",
        "text": "Changes before: deployed checkout v2.3.1 4 min before",
        "wrap": True,
    }


def test_a_one_page_call_says_the_last_change() -> None:
    said = page_speech([_facts("Checkout 5xx above 5%", "deployed checkout v2.3.1 4 min before")])
    assert said[0] == (
        "This is Tocsin. severity 1 incident triggered on checkout: Checkout 5xx above 5%. "
        "3 alerts. Last change: deployed checkout v2.3.1 4 minutes before."
    )
    assert "Last change" not in page_speech([_facts("Checkout 5xx above 5%", None)])[0]
