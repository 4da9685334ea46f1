"""The `slack` channel against the fake Slack Web API, and `teams` against a local HTTP receiver.

Slack: a page is a Block Kit message with Acknowledge / Resolve buttons; a click signed as Slack
signs becomes an `IncidentCommand` (actor: the Tocsin user whose slack contact is the clicking
Slack user, else `slack:<id>`); acknowledged and resolved notices update that message instead of
posting another; a forged, stale or missing signature gets 403 and publishes nothing. Slack's
answers are the delivery status (`channel_not_found` fails at once, `ratelimited` is retried).
Teams: the page is an Adaptive Card in the Workflows webhook envelope; a 503 is retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from schemas import CommandKind, DeliveryOutcome, NotificationEvent, NotificationRequested
from services.notifier.domain.cards import ACKNOWLEDGE_ACTION, RESOLVE_ACTION
from tests.e2e.harness import WebhookReceiver
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.integration.notifier_harness import (
    Notifier,
    free_port,
    page_request,
    running_notifier,
    wait_for,
)


@dataclass
class Stack:
    notifier: Notifier
    slack: FakeSlack
    teams: WebhookReceiver

    @property
    def actions_url(self) -> str:
        return f"{self.notifier.url}/v1/slack/actions"

    def page(
        self,
        notification_id: str,
        contact: str,
        event: NotificationEvent = NotificationEvent.TRIGGERED,
        status: str = "triggered",
    ) -> NotificationRequested:
        return page_request(
            notification_id,
            "alice",
            contact,
            public_url=self.notifier.url,
            event=event,
            status=status,
        )


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def teams() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
async def stack(tmp_path: Path, slack: FakeSlack, teams: WebhookReceiver) -> AsyncIterator[Stack]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {
        "public_url": url,
        "providers": {
            "slack": {
                "bot_token": slack.bot_token,
                "signing_secret": slack.signing_secret,
                "base_url": slack.base_url,
            }
        },
        "users": [
            {
                "id": "alice",
                "name": "Alice",
                "contacts": [
                    {"id": "alice-slack", "type": "slack", "address": "U0ALICE"},
                    {"id": "alice-channel", "type": "slack", "address": "C0ONCALL"},
                    {"id": "alice-teams", "type": "teams", "address": teams.url("/teams")},
                ],
            }
        ],
    }
    async with running_notifier(tmp_path, port, config) as notifier:
        yield Stack(notifier, slack, teams)


def _buttons(message: SlackMessage) -> list[str]:
    return [
        str(element.get("action_id"))
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def _click(stack: Stack, message: SlackMessage, action: str, **kwargs: Any) -> int:
    answer = await asyncio.to_thread(
        stack.slack.click, stack.actions_url, message, action_id=action, **kwargs
    )
    return answer.status_code


async def test_a_slack_page_click_acknowledges_and_notices_update_the_message(
    stack: Stack,
) -> None:
    notifier, slack = stack.notifier, stack.slack
    await notifier.page(stack.page("n-slack-1", "alice-slack"))
    (message,) = await asyncio.to_thread(slack.wait_for_messages, 1)
    assert message.channel == "D0ALICE"  # a direct message from the bot to the user
    # The text is mrkdwn: a title cannot mention <!channel> or make a link.
    assert message.text.startswith("[SEV1] Triggered: checkout: Checkout 5xx above 5% &lt;script")
    assert _buttons(message) == [ACKNOWLEDGE_ACTION, RESOLVE_ACTION, "tocsin_open"]
    assert (await notifier.result_of("n-slack-1")).outcome is DeliveryOutcome.DELIVERED

    # Alice clicks Acknowledge: her Slack user id is her contact, so she is the actor.
    assert await _click(stack, message, ACKNOWLEDGE_ACTION, user_id="U0ALICE") == 200
    (command,) = await notifier.wait_for_commands(1)
    assert (command.command, command.incident_id, command.actor, command.via) == (
        CommandKind.ACKNOWLEDGE,
        "inc-7f3a9c21",
        "alice",
        "slack",
    )
    # The same click again is the same command (escalation applies it once).
    assert await _click(stack, message, ACKNOWLEDGE_ACTION, user_id="U0ALICE") == 200
    first, second = await notifier.wait_for_commands(2)
    assert first.event_id == second.event_id

    # Escalation's acknowledged notice updates the message: no new message, Resolve only.
    notice = stack.page(
        "n-slack-2", "alice-slack", event=NotificationEvent.ACKNOWLEDGED, status="acknowledged"
    )
    await notifier.page(notice)
    assert (await notifier.result_of("n-slack-2")).outcome is DeliveryOutcome.DELIVERED
    assert len(slack.messages()) == 1
    (updated,) = slack.messages()
    assert len(updated.updates) == 1
    assert updated.text.startswith("[SEV1] Acknowledged:")
    assert _buttons(updated) == [RESOLVE_ACTION, "tocsin_open"]

    # Someone Tocsin does not know clicks Resolve: the actor names their Slack id.
    assert await _click(stack, updated, RESOLVE_ACTION, user_id="U0STRANGER") == 200
    commands = await notifier.wait_for_commands(3)
    assert (commands[-1].command, commands[-1].actor) == (CommandKind.RESOLVE, "slack:U0STRANGER")

    resolved = stack.page(
        "n-slack-3", "alice-slack", event=NotificationEvent.RESOLVED, status="resolved"
    )
    await notifier.page(resolved)
    await notifier.result_of("n-slack-3")
    (final,) = slack.messages()
    assert len(final.updates) == 2
    assert _buttons(final) == ["tocsin_open"]


async def test_a_bad_slack_signature_is_refused_and_changes_nothing(stack: Stack) -> None:
    notifier, slack = stack.notifier, stack.slack
    await notifier.page(stack.page("n-slack-4", "alice-channel"))
    (message,) = await asyncio.to_thread(slack.wait_for_messages, 1)
    assert message.channel == "C0ONCALL"
    stale = int(time.time()) - 6 * 60
    forgeries: list[dict[str, Any]] = [
        {"signing_secret": "not-the-signing-secret"},
        {"timestamp": stale},  # signed correctly, but a replay from six minutes ago
        {"signed": False},
    ]
    for forgery in forgeries:
        assert await _click(stack, message, ACKNOWLEDGE_ACTION, **forgery) == 403, forgery
    await asyncio.sleep(0.5)
    assert notifier.commands == []
    # The link button is reported by Slack too; it is not a command.
    assert await _click(stack, message, "tocsin_open") == 200
    await asyncio.sleep(0.3)
    assert notifier.commands == []


async def test_slack_answers_are_the_delivery_status(stack: Stack) -> None:
    notifier, slack = stack.notifier, stack.slack
    slack.fail_next(error="channel_not_found")
    await notifier.page(stack.page("n-slack-5", "alice-slack"))
    failed = await notifier.result_of("n-slack-5")
    assert (failed.outcome, failed.attempt, failed.error) == (
        DeliveryOutcome.FAILED,
        1,
        "Slack answered channel_not_found",
    )
    slack.fail_next(2, error="ratelimited")
    await notifier.page(stack.page("n-slack-6", "alice-slack"))
    delivered = await notifier.result_of("n-slack-6")
    assert (delivered.outcome, delivered.attempt) == (DeliveryOutcome.DELIVERED, 3)
    assert len(slack.messages()) == 1


async def test_a_teams_page_is_an_adaptive_card_and_a_503_is_retried(stack: Stack) -> None:
    notifier, teams = stack.notifier, stack.teams
    teams.fail_next = 1
    await notifier.page(stack.page("n-teams-1", "alice-teams"))
    result = await notifier.result_of("n-teams-1")
    assert (result.outcome, result.attempt) == (DeliveryOutcome.DELIVERED, 2)
    first, second = await wait_for(lambda: teams.snapshot() if len(teams.snapshot()) >= 2 else None)
    assert (first.status, second.status) == (503, 200)
    body = second.body
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open incident",
            "url": f"{notifier.url}/api/v1/incidents/inc-7f3a9c21",
        }
    ]
    texts = [block.get("text") for block in card["body"]]
    assert "Checkout 5xx above 5% <script>" in texts
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts == {
        "Service": "checkout",
        "Status": "triggered",
        "Alerts": "2",
        "Incident": "#inc7f3a9",
    }
