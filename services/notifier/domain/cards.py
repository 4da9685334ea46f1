"""What a page looks like in chat: a Slack Block Kit message with Acknowledge / Resolve buttons,
and a Microsoft Teams Adaptive Card in the envelope Teams' Workflows incoming webhooks take.

The same function draws a Slack message when it is first posted and every time it is updated:
the buttons shown follow the incident's status (an acknowledged incident offers Resolve only; a
resolved one offers nothing but the link). A button's value is the incident id, which the
interactive endpoint reads back; its action id says what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas import CommandKind, IncidentSnapshot, NotificationEvent, NotificationRequested
from services.notifier.domain.change_lines import change_line, changes_text
from services.notifier.domain.email_text import one_line
from services.notifier.domain.sms_text import short_incident_id

ACKNOWLEDGE_ACTION = "tocsin_acknowledge"
RESOLVE_ACTION = "tocsin_resolve"
OPEN_ACTION = "tocsin_open"  # a link button: Slack reports its click too, and it is ignored
BUTTON_COMMANDS: Mapping[str, CommandKind] = {
    ACKNOWLEDGE_ACTION: CommandKind.ACKNOWLEDGE,
    RESOLVE_ACTION: CommandKind.RESOLVE,
}

MAX_HEADER = 150  # Slack: a header block's plain_text
MAX_SECTION = 3000  # Slack: a section's text
MAX_FALLBACK = 3000  # the notification text (what a phone's lock screen shows)

_SEVERITY_MARK = {"SEV0": "🔴", "SEV1": "🟠", "SEV2": "🟡", "SEV3": "🔵"}
_TEAMS_COLOR = {"SEV0": "attention", "SEV1": "attention", "SEV2": "warning", "SEV3": "accent"}
_EVENT_WORD = {
    NotificationEvent.TRIGGERED: "Triggered",
    NotificationEvent.ESCALATED: "Escalated",
    NotificationEvent.ACKNOWLEDGED: "Acknowledged",
    NotificationEvent.RESOLVED: "Resolved",
    NotificationEvent.REMINDER: "Reminder",
}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def slack_escape(text: str) -> str:
    """Text for Slack's mrkdwn: `&`, `<` and `>` escaped, so an alert's title cannot mention
    `<!channel>` or make a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _alerts(count: int) -> str:
    return f"{count} alert" if count == 1 else f"{count} alerts"


def slack_text(event: NotificationEvent, incident: IncidentSnapshot) -> str:
    """The message's text, what notifications and screen readers show (mrkdwn, escaped)."""
    return slack_escape(_summary(event, incident))


def _summary(event: NotificationEvent, incident: IncidentSnapshot) -> str:
    title = one_line(incident.title) or "(no title)"
    text = (
        f"[{incident.severity.value}] {_EVENT_WORD[event]}: {one_line(incident.service)}: "
        f"{title} ({_alerts(incident.alert_count)}, #{short_incident_id(incident.id)})"
    )
    return _cut(text, MAX_FALLBACK)


def slack_blocks(event: NotificationEvent, incident: IncidentSnapshot) -> list[dict[str, Any]]:
    """The Block Kit blocks of a page or notice, with the buttons the incident's status allows."""
    severity = incident.severity.value
    title = one_line(incident.title) or "(no title)"
    status = incident.status
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(f"{_SEVERITY_MARK.get(severity, '')} {severity} {title}", MAX_HEADER),
                "emoji": True,
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{severity}"},
                {
                    "type": "mrkdwn",
                    "text": _cut(f"*Service*\n{slack_escape(one_line(incident.service))}", 2000),
                },
                {"type": "mrkdwn", "text": f"*Status*\n{slack_escape(status)}"},
                {"type": "mrkdwn", "text": f"*Alerts*\n{incident.alert_count}"},
            ],
        },
    ]
    summaries = [one_line(a.summary) for a in incident.alerts if one_line(a.summary)]
    if summaries:
        text = "\n".join(f"• {slack_escape(s)}" for s in summaries)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, 3000)}})
    if incident.changes and incident.opened_at is not None:
        lines = [change_line(change, incident.opened_at) for change in incident.changes[:3]]
        text = "*Changes before it opened*\n" + "\n".join(f"• {slack_escape(x)}" for x in lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, 3000)}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{_EVENT_WORD[event]} · incident #{short_incident_id(incident.id)}",
                }
            ],
        }
    )
    buttons: list[dict[str, Any]] = []
    if status == "triggered":
        buttons.append(_button("Acknowledge", ACKNOWLEDGE_ACTION, incident.id, "primary"))
    if status in ("triggered", "acknowledged"):
        buttons.append(_button("Resolve", RESOLVE_ACTION, incident.id, "danger"))
    if incident.url and incident.url.startswith(("http://", "https://")):
        buttons.append(
            {
                "type": "button",
                "action_id": OPEN_ACTION,
                "text": {"type": "plain_text", "text": "Open incident"},
                "url": incident.url,
            }
        )
    if buttons:
        blocks.append({"type": "actions", "block_id": "tocsin_actions", "elements": buttons})
    return blocks


def _button(label: str, action_id: str, incident_id: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "value": incident_id,
        "style": style,
    }


def teams_message(request: NotificationRequested) -> dict[str, Any]:
    """An Adaptive Card (1.4) in the `{"type": "message", "attachments": [...]}` envelope that
    Teams' Workflows "post to a channel when a webhook request is received" template takes."""
    incident = request.incident
    severity = incident.severity.value
    title = one_line(incident.title) or "(no title)"
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": f"{severity} · {_EVENT_WORD[request.event]}",
            "weight": "Bolder",
            "color": _TEAMS_COLOR.get(severity, "default"),
        },
        {"type": "TextBlock", "text": title, "size": "Large", "weight": "Bolder", "wrap": True},
        {
            "type": "FactSet",
            "facts": [
                {"title": "Service", "value": one_line(incident.service)},
                {"title": "Status", "value": incident.status},
                {"title": "Alerts", "value": str(incident.alert_count)},
                {"title": "Incident", "value": f"#{short_incident_id(incident.id)}"},
            ],
        },
    ]
    summaries = [one_line(a.summary) for a in incident.alerts if one_line(a.summary)]
    body.extend({"type": "TextBlock", "text": f"- {s}", "wrap": True} for s in summaries)
    changed = changes_text(incident.changes, incident.opened_at or request.occurred_at, shown=3)
    if changed is not None:
        body.append({"type": "TextBlock", "text": f"Changes before: {changed}", "wrap": True})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if incident.url and incident.url.startswith(("http://", "https://")):
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open incident", "url": incident.url}
        ]
    return {
        "type": "message",
        "summary": _summary(request.event, incident),
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }
