"""A fake Slack: the Web API methods Tocsin calls, and a responder's button clicks sent to
Tocsin signed as Slack signs them, on 127.0.0.1.

What it speaks (Slack's documented Web API):
- `POST /api/chat.postMessage`, `/api/chat.update`, `/api/auth.test`, JSON or form-encoded, the
  bot token as `Authorization: Bearer xoxb-...` (or a `token` form field). Answers as Slack does:
  HTTP 200 with `{"ok": true, ...}` or `{"ok": false, "error": "invalid_auth"}` (also
  `not_authed`, `channel_not_found`, `no_text`, `msg_too_long`, `invalid_blocks`,
  `message_not_found`), and 429 with `Retry-After` for `ratelimited`. `base_url` ends with `/`,
  as `slack_sdk`'s `base_url` must.
- `click()`: a `block_actions` payload for a button of a message the bot posted, sent to Tocsin's
  interactivity URL as `payload=<json>` form data with `X-Slack-Request-Timestamp` and
  `X-Slack-Signature: v0=HMAC-SHA256(signing secret, "v0:<timestamp>:<body>")`, computed here
  independently of Tocsin's code.

Controls: `fail_next()`, and `calls()`, `messages()`, `responses()` to see what happened. From
async tests, call the blocking helpers through `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

T = TypeVar("T")

_CHANNEL = re.compile(r"[CGDUW][A-Z0-9]{2,}")
_MAX_TEXT = 40_000
_MAX_BLOCKS = 50
_MAX_ACTION_ID = 255
_MAX_BUTTON_VALUE = 2000


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature, v0: hex HMAC-SHA256 over `v0:<timestamp>:<body>`."""
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class SlackCall:
    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None


@dataclass
class SlackMessage:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    updates: list[dict[str, Any]] = field(default_factory=list)
    """The arguments of every `chat.update` of this message, in order."""


@dataclass(frozen=True)
class ClickAnswer:
    status_code: int
    body: str


class SlackError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class FakeSlack:
    def __init__(
        self,
        *,
        bot_token: str | None = None,
        signing_secret: str | None = None,
        team_id: str = "T0TOCSIN",
    ) -> None:
        self.bot_token = bot_token or "xoxb-" + secrets.token_hex(12)
        self.signing_secret = signing_secret or secrets.token_hex(16)
        self.team_id = team_id
        self._lock = threading.Lock()
        self._calls: list[SlackCall] = []
        self._messages: list[SlackMessage] = []
        self._responses: list[dict[str, Any]] = []
        self._failures: list[tuple[int, str]] = []
        self._sequence = 0
        app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["POST"]),
                Route("/actions/{token}", self._response_url, methods=["POST"]),
            ]
        )
        self._server = BackgroundServer(app)
        self._methods: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
        }

    @property
    def base_url(self) -> str:
        """What Tocsin's `providers.slack.base_url` should be."""
        return f"{self._server.url}/api/"

    def start(self) -> FakeSlack:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- controls ----------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, error: str = "fatal_error", status: int = 200) -> None:
        """The next `count` API calls answer `{"ok": false, "error": error}` with HTTP `status`
        (`error="ratelimited"` answers 429 with `Retry-After: 1`)."""
        status = 429 if error == "ratelimited" else status
        with self._lock:
            self._failures.extend([(status, error)] * count)

    def calls(self, method: str | None = None) -> list[SlackCall]:
        with self._lock:
            return [call for call in self._calls if method is None or call.method == method]

    def messages(self, *, channel: str | None = None) -> list[SlackMessage]:
        with self._lock:
            return [m for m in self._messages if channel is None or m.channel == channel]

    def responses(self) -> list[dict[str, Any]]:
        """What Tocsin posted to the `response_url` of a click."""
        with self._lock:
            return list(self._responses)

    def wait_until(self, condition: Callable[[], T | None], timeout: float = 10.0) -> T:
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError("the fake Slack did not see what the test waited for")
            time.sleep(0.02)

    def wait_for_messages(self, count: int, *, timeout: float = 10.0) -> list[SlackMessage]:
        return self.wait_until(
            lambda: found if len(found := self.messages()) >= count else None, timeout
        )

    # --- a responder clicks a button (Slack -> Tocsin) -------------------------------------------

    def click(
        self,
        url: str,
        message: SlackMessage,
        *,
        action_id: str,
        user_id: str = "U0RESPONDER",
        user_name: str = "responder",
        signing_secret: str | None = None,
        timestamp: int | None = None,
        signed: bool = True,
    ) -> ClickAnswer:
        """Click the button `action_id` of `message`, as Slack tells Tocsin at `url`.
        `signing_secret` signs with another secret (a forgery), `timestamp` sets the request
        time (a stale one is a replay), `signed=False` sends no signature headers."""
        current = self._find(message.channel, message.ts)
        block_id, button = _find_button(current.blocks, action_id)
        now = time.time()
        payload = block_actions_payload(
            team_id=self.team_id,
            user_id=user_id,
            user_name=user_name,
            channel=current.channel,
            message={
                "type": "message",
                "ts": current.ts,
                "text": current.text,
                "blocks": current.blocks,
                "bot_id": "B0TOCSIN",
            },
            block_id=block_id,
            button=button,
            action_ts=f"{now:.6f}",
            response_url=f"{self._server.url}/actions/{uuid.uuid4().hex}",
        )
        body = block_actions_body(payload)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signed:
            stamp = str(timestamp if timestamp is not None else int(now))
            headers["X-Slack-Request-Timestamp"] = stamp
            headers["X-Slack-Signature"] = slack_signature(
                signing_secret or self.signing_secret, stamp, body
            )
        with httpx.Client(timeout=10.0) as client:
            response = client.post(url, content=body, headers=headers)
        return ClickAnswer(response.status_code, response.text)

    # --- the Web API ---------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        args = await _arguments(request)
        token = _bearer(request.headers.get("authorization", "")) or args.pop("token", None)
        handler = self._methods.get(method)
        with self._lock:
            failure = self._failures.pop(0) if self._failures and handler else None
        try:
            if handler is None:
                return self._answer(method, args, {"ok": False, "error": "unknown_method"}, 404)
            if not token:
                raise SlackError("not_authed")
            if not hmac.compare_digest(str(token), self.bot_token):
                raise SlackError("invalid_auth")
            if failure is not None:
                status, error = failure
                headers = {"Retry-After": "1"} if status == 429 else None
                return self._answer(method, args, {"ok": False, "error": error}, status, headers)
            return self._answer(method, args, handler(args))
        except SlackError as failed:
            return self._answer(method, args, {"ok": False, "error": failed.error})

    def _answer(
        self,
        method: str,
        args: dict[str, Any],
        body: dict[str, Any],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        with self._lock:
            self._calls.append(SlackCall(method, args, bool(body["ok"]), body.get("error")))
        return JSONResponse(body, status_code=status, headers=headers)

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://tocsin-test.slack.com/",
            "team": "Tocsin test",
            "user": "tocsin",
            "team_id": self.team_id,
            "user_id": "U0TOCSINBOT",
            "bot_id": "B0TOCSIN",
        }

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not _CHANNEL.fullmatch(channel):
            raise SlackError("channel_not_found")
        if channel[0] in "UW":
            channel = "D" + channel[1:]  # a user id: the bot's direct-message channel with them
        text, blocks = _content(args)
        with self._lock:
            self._sequence += 1
            ts = f"{int(time.time())}.{self._sequence:06d}"
            message = SlackMessage(channel, ts, text, blocks)
            self._messages.append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": self._message_json(message)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        if not _CHANNEL.fullmatch(channel):
            raise SlackError("channel_not_found")
        try:
            message = self._find(channel, ts)
        except KeyError:
            raise SlackError("message_not_found") from None
        text, blocks = _content(args)
        with self._lock:
            message.text, message.blocks = text, blocks
            message.updates.append(args)
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": text,
            "message": self._message_json(message),
        }

    def _message_json(self, message: SlackMessage) -> dict[str, Any]:
        return {
            "type": "message",
            "subtype": "bot_message",
            "text": message.text,
            "blocks": message.blocks,
            "ts": message.ts,
            "bot_id": "B0TOCSIN",
            "team": self.team_id,
        }

    def _find(self, channel: str, ts: str) -> SlackMessage:
        with self._lock:
            for message in self._messages:
                if message.channel == channel and message.ts == ts:
                    return message
        raise KeyError(f"no message {ts} in {channel}")

    async def _response_url(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self._responses.append(body)
        return Response("ok")


async def _arguments(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        parsed = await request.json()
        if not isinstance(parsed, dict):
            raise SlackError("invalid_json")
        return parsed
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _content(args: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The text and blocks of a message, checked as Slack checks them."""
    text = str(args.get("text") or "")
    blocks = args.get("blocks") or []
    if isinstance(blocks, str):  # form-encoded: blocks are a JSON string
        try:
            blocks = json.loads(blocks)
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    if not text and not blocks:
        raise SlackError("no_text")
    if len(text) > _MAX_TEXT:
        raise SlackError("msg_too_long")
    if not isinstance(blocks, list) or len(blocks) > _MAX_BLOCKS:
        raise SlackError("invalid_blocks")
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise SlackError("invalid_blocks")
        for element in _buttons(block):
            action_id, value = element.get("action_id", ""), element.get("value", "")
            if len(str(action_id)) > _MAX_ACTION_ID or len(str(value)) > _MAX_BUTTON_VALUE:
                raise SlackError("invalid_blocks")
    return text, blocks


def _buttons(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
    accessory = block.get("accessory")
    if isinstance(accessory, dict):
        elements.append(accessory)
    return [e for e in elements if isinstance(e, dict) and e.get("type") == "button"]


def _find_button(blocks: list[dict[str, Any]], action_id: str) -> tuple[str, dict[str, Any]]:
    for block in blocks:
        for button in _buttons(block):
            if button.get("action_id") == action_id:
                return str(block.get("block_id") or uuid.uuid4().hex[:5]), button
    raise KeyError(f"the message has no button with action_id {action_id!r}")


def block_actions_payload(
    *,
    team_id: str,
    user_id: str,
    user_name: str,
    channel: str,
    message: dict[str, Any],
    block_id: str,
    button: Mapping[str, Any],
    action_ts: str,
    response_url: str,
) -> dict[str, Any]:
    """The `block_actions` interaction payload Slack sends when a button is clicked."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": "A0TOCSIN",
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"{int(float(action_ts))}.{uuid.uuid4().hex[:12]}",
        "team": {"id": team_id, "domain": "tocsin-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "directmessage" if channel[0] == "D" else "alerts"},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": button.get("action_id"),
                "block_id": block_id,
                "text": button.get("text"),
                "value": button.get("value"),
                "style": button.get("style"),
                "type": "button",
                "action_ts": action_ts,
            }
        ],
    }


def block_actions_body(payload: Mapping[str, Any]) -> bytes:
    """The request body Slack sends: the payload as JSON in a `payload` form field."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
