"""The fake Twilio and fake Slack speak the documented APIs and sign what they send as the real
ones do: checked against Tocsin's verifiers, and against the providers' own SDKs when those are
installed. A small receiver app stands in for Tocsin's inbound routes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.notifier.domain import signing
from tests.fakes.server import BackgroundServer
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_wire import form_pairs, twilio_signature

ALICE = "+15551234567"
FROM = "+15550001111"

VOICE_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Gather numDigits="1" action="/v1/twilio/voice/gather" method="POST">'
    "<Say>SEV1 incident on checkout: payments failing.</Say>"
    "<Say>Press 4 to acknowledge.</Say></Gather>"
    "<Redirect>/v1/twilio/voice</Redirect></Response>"
)


@dataclass
class Received:
    path: str
    params: dict[str, str]
    verified: bool


@dataclass
class Receiver:
    """Tocsin's inbound routes, reduced to: verify the signature (403 if bad), record, answer."""

    twilio_token: str
    slack_secret: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: BackgroundServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/twilio/{kind:path}", self._twilio, methods=["POST"]),
                Route("/v1/slack/actions", self._slack, methods=["POST"]),
            ]
        )

    def record(self, path: str, params: dict[str, str], verified: bool) -> None:
        with self.lock:
            self.received.append(Received(path, params, verified))

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.path == path]

    async def _twilio(self, request: Request) -> Response:
        params = dict(await form_pairs(request))
        try:
            signing.verify_twilio_signature(
                self.twilio_token,
                str(request.url),
                params,
                request.headers.get(signing.TWILIO_SIGNATURE_HEADER),
            )
        except signing.InvalidSignature:
            self.record(request.url.path, params, verified=False)
            return Response(status_code=403)
        self.record(request.url.path, params, verified=True)
        kind = request.path_params["kind"]
        if kind == "sms":
            return _twiml(f"<Message>Got {params['Body']}</Message>")
        if kind == "voice":
            return _twiml(VOICE_TWIML, whole=True)
        if kind == "voice/gather":
            return _twiml(f"<Say>Pressed {params['Digits']}.</Say><Hangup/>")
        return Response(status_code=204)

    async def _slack(self, request: Request) -> Response:
        body = await request.body()
        try:
            signing.verify_slack_signature(
                self.slack_secret,
                body=body,
                timestamp=request.headers.get(signing.SLACK_TIMESTAMP_HEADER),
                signature=request.headers.get(signing.SLACK_SIGNATURE_HEADER),
                now=datetime.now(UTC),
            )
        except signing.InvalidSignature:
            self.record("/v1/slack/actions", {}, verified=False)
            return Response(status_code=403)
        payload = parse_qs(body.decode())["payload"][0]
        self.record("/v1/slack/actions", {"payload": payload}, verified=True)
        return Response(status_code=200)


def _twiml(inner: str, *, whole: bool = False) -> Response:
    text = inner if whole else f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'
    return Response(text, media_type="application/xml")


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def receiver(twilio: FakeTwilio, slack: FakeSlack) -> Iterator[Receiver]:
    receiver = Receiver(twilio.auth_token, slack.signing_secret)
    receiver.server = BackgroundServer(receiver.app())
    receiver.server.start()
    yield receiver
    receiver.server.stop()


def _api(twilio: FakeTwilio, resource: str) -> str:
    return f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/{resource}.json"


def _send_sms(
    twilio: FakeTwilio, receiver: Receiver, *, to: str = ALICE, auth: tuple[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        _api(twilio, "Messages"),
        data={
            "To": to,
            "From": FROM,
            "Body": "SEV1 checkout: payments failing. Reply 4a ack",
            "StatusCallback": f"{receiver.url}/v1/twilio/status",
        },
        auth=auth or (twilio.account_sid, twilio.auth_token),
    )


# --- Twilio -----------------------------------------------------------------------------------


def test_an_sms_is_accepted_like_twilio_and_its_signed_callbacks_follow(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    response = _send_sms(twilio, receiver)
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("SM")
    assert len(body["sid"]) == 34
    assert body["status"] == "queued"
    assert (body["to"], body["from"], body["num_segments"]) == (ALICE, FROM, "1")
    assert body["account_sid"] == twilio.account_sid
    assert body["body"].startswith("SEV1 checkout")

    twilio.wait_for_status(body["sid"], "delivered")
    callbacks = twilio.wait_until(lambda: c if len(c := twilio.callbacks()) == 3 else None)
    assert [c.params["MessageStatus"] for c in callbacks] == ["queued", "sent", "delivered"]
    assert all(c.status_code == 204 for c in callbacks)
    statuses = receiver.at("/v1/twilio/status")
    assert all(item.verified for item in statuses)
    assert statuses[0].params["MessageSid"] == body["sid"]
    assert twilio.messages(to=ALICE)[0].statuses == ["queued", "sent", "delivered"]


def test_the_twilio_package_verifies_the_fakes_callbacks(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    validator_module = pytest.importorskip("twilio.request_validator")
    sid = _send_sms(twilio, receiver).json()["sid"]
    twilio.wait_for_status(sid, "delivered")
    callbacks = twilio.wait_until(lambda: c if len(c := twilio.callbacks()) == 3 else None)
    validator = validator_module.RequestValidator(twilio.auth_token)
    for callback in callbacks:
        signature = twilio_signature(twilio.auth_token, callback.url, callback.params)
        assert validator.validate(callback.url, callback.params, signature)


def test_bad_credentials_get_twilios_401(twilio: FakeTwilio, receiver: Receiver) -> None:
    response = _send_sms(twilio, receiver, auth=(twilio.account_sid, "wrong"))
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert twilio.messages() == []


def test_a_to_that_is_not_e164_gets_21211(twilio: FakeTwilio, receiver: Receiver) -> None:
    response = _send_sms(twilio, receiver, to="5551234567")
    assert response.status_code == 400
    assert response.json()["code"] == 21211
    assert twilio.messages() == []


def test_the_fake_fails_the_next_requests_when_told(twilio: FakeTwilio, receiver: Receiver) -> None:
    twilio.fail_next(2, status=503)
    twilio.fail_next(1, status=400, code=21610)
    statuses = [_send_sms(twilio, receiver).status_code for _ in range(4)]
    assert statuses == [503, 503, 400, 201]
    assert [r.status_code for r in twilio.requests()] == statuses
    assert len(twilio.messages()) == 1


def test_an_undeliverable_number_ends_undelivered_with_an_error_code(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    twilio.make_undeliverable(ALICE)
    sid = _send_sms(twilio, receiver).json()["sid"]
    twilio.wait_for_status(sid, "undelivered")
    last = twilio.wait_until(lambda: c if len(c := twilio.callbacks()) == 3 else None)[-1]
    assert (last.params["MessageStatus"], last.params["ErrorCode"]) == ("undelivered", "30003")


def test_an_sms_reply_reaches_tocsin_signed_and_a_forged_one_is_refused(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    _send_sms(twilio, receiver)
    answer = twilio.reply_sms(f"{receiver.url}/v1/twilio/sms", from_=ALICE, body="4a")
    assert answer.status_code == 200
    assert answer.messages == ("Got 4a",)
    reply = receiver.at("/v1/twilio/sms")[0]
    assert reply.verified
    assert (reply.params["From"], reply.params["To"], reply.params["Body"]) == (ALICE, FROM, "4a")

    forged = twilio.reply_sms(
        f"{receiver.url}/v1/twilio/sms", from_=ALICE, body="4a", auth_token="not-the-token"
    )
    unsigned = twilio.reply_sms(
        f"{receiver.url}/v1/twilio/sms", from_=ALICE, body="4a", signed=False
    )
    assert (forged.status_code, unsigned.status_code) == (403, 403)


def test_a_call_reads_the_twiml_and_the_pressed_key_goes_to_the_gather_action(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    response = httpx.post(
        _api(twilio, "Calls"),
        content=urlencode(
            [
                ("To", ALICE),
                ("From", FROM),
                ("Url", f"{receiver.url}/v1/twilio/voice"),
                ("StatusCallback", f"{receiver.url}/v1/twilio/status"),
                ("StatusCallbackEvent", "initiated"),
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "completed"),
            ]
        ),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(twilio.account_sid, twilio.auth_token),
    )
    assert response.status_code == 201
    sid = response.json()["sid"]
    assert sid.startswith("CA")
    call = twilio.wait_until(lambda: next((c for c in twilio.calls() if c.waiting_gather), None))
    assert call.said == ["SEV1 incident on checkout: payments failing.", "Press 4 to acknowledge."]

    answer = twilio.press(sid, "4")
    assert answer.said == ("Pressed 4.",)
    twilio.wait_for_status(sid, "completed")
    gathered = receiver.at("/v1/twilio/voice/gather")[0]
    assert gathered.verified
    assert gathered.params["Digits"] == "4"
    assert gathered.params["CallSid"] == sid
    events = [item.params["CallStatus"] for item in receiver.at("/v1/twilio/status")]
    assert events == ["initiated", "in-progress", "completed"]  # no "ringing": not asked for
    assert all(item.verified for item in receiver.received)


def test_a_call_without_input_follows_the_redirect(twilio: FakeTwilio, receiver: Receiver) -> None:
    response = httpx.post(
        _api(twilio, "Calls"),
        data={"To": ALICE, "From": FROM, "Url": f"{receiver.url}/v1/twilio/voice"},
        auth=(twilio.account_sid, twilio.auth_token),
    )
    sid = response.json()["sid"]
    twilio.wait_until(lambda: twilio.calls()[0].waiting_gather)
    twilio.no_input(sid)
    call = twilio.calls()[0]
    assert len(call.documents) == 2  # the menu again
    assert call.waiting_gather is not None
    twilio.hang_up(sid)
    assert twilio.calls()[0].status == "completed"


def test_a_call_to_an_unreachable_number_is_not_answered(
    twilio: FakeTwilio, receiver: Receiver
) -> None:
    twilio.make_undeliverable(ALICE, call_status="no-answer")
    response = httpx.post(
        _api(twilio, "Calls"),
        data={
            "To": ALICE,
            "From": FROM,
            "Url": f"{receiver.url}/v1/twilio/voice",
            "StatusCallback": f"{receiver.url}/v1/twilio/status",
        },
        auth=(twilio.account_sid, twilio.auth_token),
    )
    twilio.wait_for_status(response.json()["sid"], "no-answer")
    assert receiver.at("/v1/twilio/voice") == []
    statuses = twilio.wait_until(lambda: receiver.at("/v1/twilio/status"))
    assert [item.params["CallStatus"] for item in statuses] == ["no-answer"]


def test_the_twilio_package_talks_to_the_fake(twilio: FakeTwilio, receiver: Receiver) -> None:
    rest = pytest.importorskip("twilio.rest")
    client = rest.Client(twilio.account_sid, twilio.auth_token)
    client.api.base_url = twilio.base_url
    message = client.messages.create(
        to=ALICE, from_=FROM, body="hello", status_callback=f"{receiver.url}/v1/twilio/status"
    )
    assert message.sid.startswith("SM")
    assert message.status == "queued"
    twilio.wait_for_status(message.sid, "delivered")
    call = client.calls.create(
        to=ALICE,
        from_=FROM,
        url=f"{receiver.url}/v1/twilio/voice",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        status_callback=f"{receiver.url}/v1/twilio/status",
    )
    twilio.wait_until(lambda: twilio.calls()[0].waiting_gather)
    assert twilio.calls()[0].callback_events == {"initiated", "ringing", "answered", "completed"}
    exceptions = pytest.importorskip("twilio.base.exceptions")
    with pytest.raises(exceptions.TwilioRestException) as refused:
        client.messages.create(to="12", from_=FROM, body="x")
    assert refused.value.code == 21211
    twilio.hang_up(call.sid)


# --- Slack ------------------------------------------------------------------------------------


def _slack_api(slack: FakeSlack, method: str, token: str | None, **args: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(slack.base_url + method, json=args, headers=headers)


BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*SEV1* checkout"}},
    {
        "type": "actions",
        "block_id": "incident-6f1c1d2e",
        "elements": [
            {
                "type": "button",
                "action_id": "acknowledge",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "value": "6f1c1d2e",
                "style": "primary",
            },
            {
                "type": "button",
                "action_id": "resolve",
                "text": {"type": "plain_text", "text": "Resolve"},
                "value": "6f1c1d2e",
            },
        ],
    },
]


def test_slack_posts_and_updates_messages_with_the_bot_token(slack: FakeSlack) -> None:
    posted = _slack_api(
        slack, "chat.postMessage", slack.bot_token, channel="U0ALICE", text="SEV1", blocks=BLOCKS
    ).json()
    assert posted["ok"] is True
    assert posted["channel"] == "D0ALICE"
    updated = _slack_api(
        slack,
        "chat.update",
        slack.bot_token,
        channel=posted["channel"],
        ts=posted["ts"],
        text="Acknowledged by alice",
        blocks=BLOCKS[:1],
    ).json()
    assert updated["ok"] is True
    (message,) = slack.messages()
    assert (message.text, message.blocks) == ("Acknowledged by alice", BLOCKS[:1])
    assert len(message.updates) == 1


@pytest.mark.parametrize(
    ("token", "method", "args", "error"),
    [
        (None, "chat.postMessage", {"channel": "C1ALERTS", "text": "x"}, "not_authed"),
        ("xoxb-wrong", "chat.postMessage", {"channel": "C1ALERTS", "text": "x"}, "invalid_auth"),
        ("good", "chat.postMessage", {"channel": "#alerts", "text": "x"}, "channel_not_found"),
        ("good", "chat.postMessage", {"channel": "C1ALERTS"}, "no_text"),
        (
            "good",
            "chat.update",
            {"channel": "C1ALERTS", "ts": "1.2", "text": "x"},
            "message_not_found",
        ),
    ],
)
def test_slack_errors_have_slacks_shape(
    slack: FakeSlack, token: str | None, method: str, args: dict[str, Any], error: str
) -> None:
    response = _slack_api(slack, method, slack.bot_token if token == "good" else token, **args)
    assert response.status_code == 200
    assert response.json() == {"ok": False, "error": error}
    assert slack.calls(method)[-1].error == error


def test_slack_rate_limits_when_told(slack: FakeSlack) -> None:
    slack.fail_next(1, error="ratelimited")
    limited = _slack_api(slack, "chat.postMessage", slack.bot_token, channel="C1A", text="x")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    assert limited.json() == {"ok": False, "error": "ratelimited"}
    again = _slack_api(slack, "chat.postMessage", slack.bot_token, channel="C1A", text="x")
    assert again.json()["ok"] is True


def _posted(slack: FakeSlack) -> SlackMessage:
    _slack_api(
        slack, "chat.postMessage", slack.bot_token, channel="C1ALERTS", text="SEV1", blocks=BLOCKS
    )
    return slack.messages()[0]


def test_a_button_click_reaches_tocsin_signed_as_slack_signs(
    slack: FakeSlack, receiver: Receiver
) -> None:
    message = _posted(slack)
    answer = slack.click(f"{receiver.url}/v1/slack/actions", message, action_id="acknowledge")
    assert answer.status_code == 200
    (click,) = receiver.at("/v1/slack/actions")
    payload = json.loads(click.params["payload"])
    assert payload["type"] == "block_actions"
    assert payload["container"] == {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": "C1ALERTS",
        "is_ephemeral": False,
    }
    (action,) = payload["actions"]
    assert (action["action_id"], action["value"], action["block_id"]) == (
        "acknowledge",
        "6f1c1d2e",
        "incident-6f1c1d2e",
    )
    assert payload["user"]["id"] == "U0RESPONDER"


def test_forged_stale_and_unsigned_clicks_are_refused(slack: FakeSlack, receiver: Receiver) -> None:
    message = _posted(slack)
    url = f"{receiver.url}/v1/slack/actions"
    forged = slack.click(url, message, action_id="resolve", signing_secret="not-the-secret")
    stale_at = int(datetime.now(UTC).timestamp()) - 301
    stale = slack.click(url, message, action_id="resolve", timestamp=stale_at)
    unsigned = slack.click(url, message, action_id="resolve", signed=False)
    assert [forged.status_code, stale.status_code, unsigned.status_code] == [403, 403, 403]
    assert all(not item.verified for item in receiver.received)


def test_slack_sdk_talks_to_the_fake_and_verifies_its_clicks(slack: FakeSlack) -> None:
    web = pytest.importorskip("slack_sdk.web")
    errors = pytest.importorskip("slack_sdk.errors")
    signature_module = pytest.importorskip("slack_sdk.signature")
    client = web.WebClient(token=slack.bot_token, base_url=slack.base_url)
    posted = client.chat_postMessage(channel="C1ALERTS", text="SEV1", blocks=BLOCKS)
    assert posted["ok"]

    catcher = _Catcher()
    catcher.server.start()
    try:
        slack.click(f"{catcher.server.url}/", slack.messages()[0], action_id="acknowledge")
    finally:
        catcher.server.stop()
    (click,) = catcher.requests
    verifier = signature_module.SignatureVerifier(slack.signing_secret)
    assert verifier.is_valid_request(body=click["body"], headers=click["headers"])

    client.chat_update(channel=posted["channel"], ts=posted["ts"], text="Resolved", blocks=[])
    assert slack.messages()[0].text == "Resolved"
    with pytest.raises(errors.SlackApiError) as refused:
        web.WebClient(token="xoxb-wrong", base_url=slack.base_url).chat_postMessage(
            channel="C1ALERTS", text="x"
        )
    assert refused.value.response["error"] == "invalid_auth"


class _Catcher:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.server = BackgroundServer(
            Starlette(routes=[Route("/", self._catch, methods=["POST"])])
        )

    async def _catch(self, request: Request) -> Response:
        self.requests.append({"body": await request.body(), "headers": dict(request.headers)})
        return Response(status_code=200)
