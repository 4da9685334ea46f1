"""`POST /v1/slack/actions`: the Slack app's interactivity request URL (a responder clicked
Acknowledge or Resolve on a page, channels/slack.py).

The request is checked first, on the raw body: `X-Slack-Signature` (v0, HMAC-SHA256 with the
app's signing secret) and `X-Slack-Request-Timestamp` within 5 minutes of now. A bad, missing or
stale signature gets 403 and changes nothing. A click then becomes an `IncidentCommand` on
`incidents.commands` (via = slack). The actor is the Tocsin user whose `slack` contact is the
clicking Slack user's id, else `slack:<Slack user id>`. The command's `event_id` comes from the
message, the button and the user, so a repeated click or a replayed request acts once.

The message itself changes when the incident does: escalation sends the acknowledged or
resolved notice, and the Slack channel updates the paged message with it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from schemas import INCIDENTS_COMMANDS, IncidentCommand
from services.notifier.config import ContactConfig, SlackConfig
from services.notifier.domain.cards import BUTTON_COMMANDS
from services.notifier.domain.signing import (
    SLACK_SIGNATURE_HEADER,
    SLACK_TIMESTAMP_HEADER,
    InvalidSignature,
    verify_slack_signature,
)
from tocsin.runtime.bus import Bus, PublishError
from tocsin.runtime.clock import Clock

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("c4e1a7b2-6d3f-4a85-b90e-2f7d5c1a9e36")
MAX_BODY = 512 * 1024


class BadPayload(ValueError):
    pass


def slack_users(contacts: Mapping[str, tuple[ContactConfig, ...]]) -> dict[str, str]:
    """Slack user id -> Tocsin user id, from `slack` contacts addressed to a user (U... or W...)."""
    users: dict[str, str] = {}
    for user_id, user_contacts in contacts.items():
        for contact in user_contacts:
            address = contact.address or ""
            if contact.type == "slack" and address[:1] in ("U", "W"):
                users.setdefault(address, user_id)
    return users


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def commands_of(payload: Any, users: Mapping[str, str], clock: Clock) -> list[IncidentCommand]:
    """The commands of a `block_actions` payload: one per Tocsin button in it."""
    if not isinstance(payload, dict):
        raise BadPayload("the payload is not a JSON object")
    if payload.get("type") != "block_actions":
        return []  # view submissions, shortcuts...: not Tocsin's
    user = payload.get("user")
    actions = payload.get("actions")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        raise BadPayload("the payload names no user")
    if not isinstance(actions, list):
        raise BadPayload("the payload has no actions")
    slack_user = str(user["id"])
    team = _object(payload.get("team"))
    container = _object(payload.get("container"))
    actor = users.get(slack_user, f"slack:{slack_user}")[:200]
    commands: list[IncidentCommand] = []
    for action in actions:
        if not isinstance(action, dict):
            raise BadPayload("an action is not an object")
        kind = BUTTON_COMMANDS.get(str(action.get("action_id")))
        if kind is None:
            continue  # the link button, or another app's
        incident_id = action.get("value")
        if not isinstance(incident_id, str) or not 0 < len(incident_id) <= 200:
            raise BadPayload("a Tocsin button carries no incident id")
        message = container.get("message_ts") or action.get("action_ts")
        click = "/".join(
            str(part)
            for part in (
                team.get("id"),
                container.get("channel_id"),
                message,
                action.get("action_id"),
                slack_user,
            )
        )
        commands.append(
            IncidentCommand(
                event_id=uuid.uuid5(_NAMESPACE, f"slack/{click}"),
                occurred_at=clock.now(),
                correlation_id=incident_id,
                command=kind,
                incident_id=incident_id,
                actor=actor,
                via="slack",
            )
        )
    return commands


def router(
    config: SlackConfig,
    contacts: Mapping[str, tuple[ContactConfig, ...]],
    bus: Bus,
    clock: Clock,
) -> APIRouter:
    api = APIRouter(tags=["slack"])
    users = slack_users(contacts)

    @api.post("/v1/slack/actions")
    async def actions(request: Request) -> Response:
        """Slack's interactivity request URL: Acknowledge / Resolve clicks on pages."""
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"detail": "request body too large"}, status_code=413)
        try:
            verify_slack_signature(
                config.signing_secret.get_secret_value(),
                body=body,
                timestamp=request.headers.get(SLACK_TIMESTAMP_HEADER),
                signature=request.headers.get(SLACK_SIGNATURE_HEADER),
                now=clock.now(),
            )
        except InvalidSignature as error:
            log.warning("Slack action refused: %s", error)
            return JSONResponse({"detail": str(error)}, status_code=403)
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            payload = json.loads(form["payload"])
            commands = commands_of(payload, users, clock)
        except (UnicodeDecodeError, KeyError, ValueError) as error:
            reason = str(error) if isinstance(error, BadPayload) else "no JSON payload field"
            return JSONResponse({"detail": f"not a Slack interaction: {reason}"}, status_code=400)
        try:
            for command in commands:
                await bus.publish(INCIDENTS_COMMANDS, command.incident_id, command)
        except PublishError as error:
            log.warning("Slack action not published: %s", error)
            return JSONResponse({"detail": "try again in a minute"}, status_code=503)
        for command in commands:
            # A Slack user id is a contact address: only a Tocsin user id is logged.
            by = "a Slack user" if command.actor.startswith("slack:") else command.actor
            log.info("Slack %s of %s by %s", command.command.value, command.incident_id, by)
        return Response(status_code=200)

    return api
