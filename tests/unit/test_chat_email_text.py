"""What e-mail, Slack and Teams pages say (domain/email_text.py, domain/cards.py), and how a
Slack click becomes a command (inbound_slack.commands_of)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import (
    AlertDetails,
    CommandKind,
    IncidentSnapshot,
    NotificationEvent,
    NotificationRequested,
    Recipient,
    Severity,
)
from services.notifier.config import ContactConfig
from services.notifier.domain.cards import (
    ACKNOWLEDGE_ACTION,
    OPEN_ACTION,
    RESOLVE_ACTION,
    slack_blocks,
    slack_escape,
    slack_text,
    teams_message,
)
from services.notifier.domain.email_text import (
    MAX_SUBJECT,
    AckLink,
    email_subject,
    page_email,
)
from services.notifier.inbound_slack import BadPayload, commands_of, slack_users

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return NOW


def request(
    *,
    event: NotificationEvent = NotificationEvent.TRIGGERED,
    status: str = "triggered",
    title: str = "Checkout 5xx above 5%",
    url: str | None = "https://tocsin.example.com/api/v1/incidents/inc-42",
    alerts: tuple[AlertDetails, ...] = (),
) -> NotificationRequested:
    return NotificationRequested(
        occurred_at=NOW,
        correlation_id="inc-42",
        notification_id="inc-42/c1/s0/alice/alice-mail",
        event=event,
        incident=IncidentSnapshot(
            id="inc-42",
            title=title,
            severity=Severity.SEV0,
            status=status,
            service="payments",
            alert_count=3,
            url=url,
            alerts=alerts,
        ),
        recipient=Recipient(user_id="alice", contact_id="alice-mail"),
        escalation_level=1,
    )


ACK = AckLink("https://tocsin.example.com/v1/email/ack/tok.en", datetime(2026, 12, 2, tzinfo=UTC))


# --- e-mail ---------------------------------------------------------------------------------


def test_a_page_email_says_what_and_where_in_both_parts() -> None:
    text = page_email(request(), ack=ACK)
    assert text.subject == "[SEV0] Triggered: payments: Checkout 5xx above 5%"
    for part in (text.plain, text.html):
        assert "SEV0 incident triggered on payments" in part
        assert "Checkout 5xx above 5%" in part
        assert "#inc42" in part
        assert ACK.url in part
        assert "https://tocsin.example.com/api/v1/incidents/inc-42" in part
        assert "2026-12-02 00:00 UTC" in part
    assert "Alerts: 3" in text.plain


def test_a_notice_email_has_no_acknowledge_link_when_none_is_given() -> None:
    text = page_email(request(event=NotificationEvent.RESOLVED, status="resolved"), ack=None)
    assert text.subject.startswith("[SEV0] Resolved: ")
    assert "Acknowledge" not in text.plain
    assert "Acknowledge" not in text.html


def test_the_subject_is_one_line_and_cut() -> None:
    subject = email_subject(request(title="line one\r\nBcc: everyone@example.com " + "x" * 300))
    assert "\n" not in subject
    assert "\r" not in subject
    assert len(subject) == MAX_SUBJECT
    assert subject.endswith("…")


def test_alert_text_is_escaped_and_only_web_links_are_links() -> None:
    alert = AlertDetails(
        fingerprint="f1",
        summary="<img src=x onerror=alert(1)>",
        runbook_url="javascript:alert(1)",
        generator_url="https://prometheus.example/graph?g0.expr=up",
    )
    text = page_email(request(title="<b>bold</b>", alerts=(alert,)), ack=ACK)
    assert "<img" not in text.html
    assert "<b>bold" not in text.html
    assert "&lt;b&gt;bold&lt;/b&gt;" in text.html
    assert "javascript:" not in text.html
    assert "href='https://prometheus.example/graph?g0.expr=up'" in text.html


# --- Slack ----------------------------------------------------------------------------------


def _actions(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        str(element["action_id"])
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        ("triggered", [ACKNOWLEDGE_ACTION, RESOLVE_ACTION, OPEN_ACTION]),
        ("acknowledged", [RESOLVE_ACTION, OPEN_ACTION]),
        ("resolved", [OPEN_ACTION]),
    ],
)
def test_slack_buttons_follow_the_incident_status(status: str, buttons: list[str]) -> None:
    incident = request(status=status).incident
    assert _actions(slack_blocks(NotificationEvent.TRIGGERED, incident)) == buttons


def test_slack_buttons_carry_the_incident_id_and_no_link_without_a_url() -> None:
    blocks = slack_blocks(NotificationEvent.TRIGGERED, request(url=None).incident)
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert [e["value"] for e in actions["elements"]] == ["inc-42", "inc-42"]


def test_slack_text_and_mrkdwn_are_escaped() -> None:
    alert = AlertDetails(fingerprint="f", summary="<!channel> & <https://evil|click>")
    incident = request(title="<!here> down", alerts=(alert,)).incident
    text = slack_text(NotificationEvent.TRIGGERED, incident)
    assert "<" not in text
    assert "&lt;!here&gt; down" in text
    mrkdwn = [
        item["text"]
        for block in slack_blocks(NotificationEvent.TRIGGERED, incident)
        for item in [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]
        if isinstance(item, dict) and item.get("type") == "mrkdwn"
    ]
    assert mrkdwn
    assert all("<" not in piece for piece in mrkdwn)
    assert slack_escape("a & <b>") == "a &amp; &lt;b&gt;"


def test_slack_header_fits_slacks_limit() -> None:
    blocks = slack_blocks(NotificationEvent.TRIGGERED, request(title="x" * 500).incident)
    assert len(blocks[0]["text"]["text"]) <= 150


# --- Teams ----------------------------------------------------------------------------------


def test_teams_message_is_an_adaptive_card_in_the_workflows_envelope() -> None:
    message = teams_message(request())
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["actions"][0]["url"] == "https://tocsin.example.com/api/v1/incidents/inc-42"
    assert "actions" not in teams_message(request(url=None))["attachments"][0]["content"]


# --- Slack clicks -------------------------------------------------------------------------------


def payload(action_id: str = ACKNOWLEDGE_ACTION, user: str = "U0ALICE") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0"},
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0"},
        "actions": [{"action_id": action_id, "value": "inc-42", "action_ts": "1700000001.1"}],
    }


USERS = slack_users(
    {
        "alice": (
            ContactConfig(id="a-slack", type="slack", address="U0ALICE"),
            ContactConfig(id="a-room", type="slack", address="C0ROOM"),
        ),
        "bob": (ContactConfig(id="b-mail", type="email", address="bob@example.com"),),
    }
)


def test_slack_users_maps_user_ids_not_channels() -> None:
    assert USERS == {"U0ALICE": "alice"}


def test_a_click_is_a_command_by_the_mapped_user_or_the_slack_id() -> None:
    (ack,) = commands_of(payload(), USERS, Clock())
    assert (ack.command, ack.incident_id, ack.actor, ack.via) == (
        CommandKind.ACKNOWLEDGE,
        "inc-42",
        "alice",
        "slack",
    )
    (resolve,) = commands_of(payload(RESOLVE_ACTION, "U0BOB"), USERS, Clock())
    assert (resolve.command, resolve.actor) == (CommandKind.RESOLVE, "slack:U0BOB")


def test_the_same_click_is_the_same_command_and_another_is_not() -> None:
    (first,) = commands_of(payload(), USERS, Clock())
    (again,) = commands_of(payload(), USERS, Clock())
    (other,) = commands_of(payload(RESOLVE_ACTION), USERS, Clock())
    (someone_else,) = commands_of(payload(user="U0CAROL"), USERS, Clock())
    assert first.event_id == again.event_id
    assert len({first.event_id, other.event_id, someone_else.event_id}) == 3
    assert isinstance(first.event_id, uuid.UUID)


def test_other_interactions_are_not_commands() -> None:
    assert commands_of({"type": "view_submission"}, USERS, Clock()) == []
    assert commands_of(payload(OPEN_ACTION), USERS, Clock()) == []


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"type": "block_actions"},
        {"type": "block_actions", "user": {"id": "U1"}},
        {**payload(), "actions": [{"action_id": ACKNOWLEDGE_ACTION}]},
        {**payload(), "actions": [{"action_id": ACKNOWLEDGE_ACTION, "value": "x" * 201}]},
    ],
)
def test_a_malformed_payload_is_refused(bad: Any) -> None:
    with pytest.raises(BadPayload):
        commands_of(bad, USERS, Clock())
