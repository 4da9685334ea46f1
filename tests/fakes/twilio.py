"""A fake Twilio: the Messages and Calls REST API, status callbacks and inbound webhooks, signed
as Twilio signs them, on 127.0.0.1.

What it speaks (Twilio's documented API, 2010-04-01):
- `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` and `.../Calls.json`, form-encoded,
  HTTP basic auth with the account SID and auth token. Answers 201 with the resource as JSON
  (`sid` "SM..."/"CA...", `status` "queued", `to`, `from`, `body`, `num_segments`, ...), or
  Twilio's error shape `{"code", "message", "more_info", "status"}` (401/20003 for bad
  credentials, 400/21211 for a `To` that is not E.164, 21602/21603/21604/21201/21213/21205 for
  missing fields).
- Message status callbacks to `StatusCallback`: queued, sent, delivered; or queued, sent,
  undelivered/failed (with `ErrorCode`) for a number made undeliverable.
- Calls: status callbacks for the `StatusCallbackEvent`s asked for (only `completed` if none,
  as Twilio does); when answered, the TwiML is fetched from `Url` (or taken from `Twiml`), its
  `<Say>` texts are recorded, and `press()` posts digits to the `<Gather>` action; `no_input()`
  goes on after the `<Gather>` (a `<Redirect>` is followed) and `hang_up()` ends the call.
- Inbound webhooks to Tocsin: `reply_sms()` (an SMS from a responder) and `gather()`.

Every request the fake sends carries `X-Twilio-Signature`, computed here independently of
Tocsin's code (HMAC-SHA1 of the URL and the sorted form parameters, base64).

Controls: `fail_next()` (5xx, 429 or a 4xx with a Twilio error code), `make_undeliverable()`,
and `messages()`, `calls()`, `callbacks()`, `requests()` to see what happened. The blocking
helpers can be called from async tests through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer
from tests.fakes.twilio_wire import (
    API_VERSION,
    ERRORS,
    call_error,
    call_json,
    error_response,
    form_pairs,
    message_error,
    message_json,
    sms_segments,
    twilio_signature,
)
from tests.fakes.twiml import Gather, TwimlDocument, parse_twiml

__all__ = [
    "FakeCall",
    "FakeMessage",
    "FakeTwilio",
    "form_pairs",
    "sms_segments",
    "twilio_signature",
]

_MAX_REDIRECTS = 10

T = TypeVar("T")


@dataclass
class Callback:
    """A request the fake sent to Tocsin (status callback, TwiML fetch, inbound webhook)."""

    url: str
    params: dict[str, str]
    status_code: int | None
    """What Tocsin answered; None when it could not be reached."""
    body: str


@dataclass
class ApiRequest:
    path: str
    form: dict[str, str]
    """The form fields (the last value of a repeated one)."""
    status_code: int


@dataclass
class FakeMessage:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    num_segments: int
    statuses: list[str] = field(default_factory=lambda: ["queued"])

    @property
    def status(self) -> str:
        return self.statuses[-1]


@dataclass
class FakeCall:
    sid: str
    to: str
    from_: str
    url: str | None
    status_callback: str | None
    callback_events: frozenset[str]
    statuses: list[str] = field(default_factory=lambda: ["queued"])
    documents: list[TwimlDocument] = field(default_factory=list)
    """Every TwiML document the call ran, in order."""
    digits: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    """Every `<Say>` text, in order."""

    @property
    def status(self) -> str:
        return self.statuses[-1]

    @property
    def waiting_gather(self) -> Gather | None:
        if self.status != "in-progress" or not self.documents:
            return None
        return self.documents[-1].gather


@dataclass(frozen=True)
class WebhookAnswer:
    status_code: int
    body: str
    messages: tuple[str, ...]
    """`<Message>` texts of a TwiML answer (an SMS reply Twilio would send back)."""
    said: tuple[str, ...]


@dataclass(frozen=True)
class _Undeliverable:
    message_status: str
    error_code: int
    call_status: str


class FakeTwilio:
    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        callback_delay: float = 0.0,
    ) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.callback_delay = callback_delay
        self._lock = threading.Lock()
        self._messages: list[FakeMessage] = []
        self._calls: list[FakeCall] = []
        self._callbacks: list[Callback] = []
        self._requests: list[ApiRequest] = []
        self._failures: list[tuple[int, int, str]] = []
        self._undeliverable: dict[str, _Undeliverable] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        base = f"/{API_VERSION}/Accounts/{{sid}}"
        app = Starlette(
            routes=[
                Route(f"{base}/Messages.json", self._create_message, methods=["POST"]),
                Route(f"{base}/Calls.json", self._create_call, methods=["POST"]),
            ]
        )
        self._server = BackgroundServer(app)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What Tocsin's `providers.twilio.base_url` should be."""
        return self._server.url

    def start(self) -> FakeTwilio:
        self._server.start()
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._server.call(self._client.aclose())
        self._server.stop()

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- controls ----------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 503, code: int | None = None) -> None:
        """The next `count` API requests (after authentication) fail: `status` with Twilio's
        error body, `code` naming the Twilio error (e.g. 21211 with status 400)."""
        code = code or {500: 20500, 503: 20503, 429: 20429}.get(status, 20500)
        message = ERRORS.get(code, (status, "Error"))[1]
        with self._lock:
            self._failures.extend([(status, code, message)] * count)

    def make_undeliverable(
        self,
        number: str,
        *,
        message_status: str = "undelivered",
        error_code: int = 30003,
        call_status: str = "no-answer",
    ) -> None:
        """Messages to `number` end `message_status` (undelivered or failed) with `ErrorCode`;
        calls end `call_status` (no-answer, busy or failed) without being answered."""
        with self._lock:
            self._undeliverable[number] = _Undeliverable(message_status, error_code, call_status)

    def messages(self, *, to: str | None = None) -> list[FakeMessage]:
        with self._lock:
            return [m for m in self._messages if to is None or m.to == to]

    def calls(self, *, to: str | None = None) -> list[FakeCall]:
        with self._lock:
            return [c for c in self._calls if to is None or c.to == to]

    def callbacks(self) -> list[Callback]:
        with self._lock:
            return list(self._callbacks)

    def requests(self) -> list[ApiRequest]:
        with self._lock:
            return list(self._requests)

    def wait_until(self, condition: Callable[[], T | None], timeout: float = 10.0) -> T:
        """Poll `condition` until it returns something truthy; return it."""
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError("the fake Twilio did not see what the test waited for")
            time.sleep(0.02)

    def wait_for_messages(
        self, count: int, *, to: str | None = None, timeout: float = 10.0
    ) -> list[FakeMessage]:
        return self.wait_until(
            lambda: found if len(found := self.messages(to=to)) >= count else None, timeout
        )

    def wait_for_calls(
        self, count: int, *, to: str | None = None, timeout: float = 10.0
    ) -> list[FakeCall]:
        return self.wait_until(
            lambda: found if len(found := self.calls(to=to)) >= count else None, timeout
        )

    def wait_for_status(self, sid: str, status: str, timeout: float = 10.0) -> None:
        def reached() -> bool:
            with self._lock:
                items: list[FakeMessage | FakeCall] = [*self._messages, *self._calls]
                return any(item.sid == sid and status in item.statuses for item in items)

        self.wait_until(reached, timeout)

    # --- inbound webhooks (Twilio -> Tocsin) ---------------------------------------------------

    def reply_sms(
        self,
        url: str,
        *,
        from_: str,
        body: str,
        to: str | None = None,
        auth_token: str | None = None,
        signed: bool = True,
    ) -> WebhookAnswer:
        """A responder's SMS from `from_` to `to` (default: the number the latest message to
        `from_` came from), posted to Tocsin's `url` as Twilio does. `auth_token` signs with
        another token (a forged request); `signed=False` sends no signature."""
        if to is None:
            sent = self.messages(to=from_)
            if not sent:
                raise ValueError("no message went to that number: give `to`")
            to = sent[-1].from_
        sid = "SM" + uuid.uuid4().hex
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": from_,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(sms_segments(body)),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
        }
        return self._server.call(self._webhook(url, params, auth_token, signed))

    def gather(
        self,
        url: str,
        *,
        call_sid: str,
        from_: str,
        to: str,
        digits: str,
        auth_token: str | None = None,
        signed: bool = True,
    ) -> WebhookAnswer:
        """A `<Gather>` result (the digits pressed on call `call_sid`) posted to `url`."""
        params = {**self._call_params(call_sid, from_, to, "in-progress"), "Digits": digits}
        return self._server.call(self._webhook(url, params, auth_token, signed))

    def press(self, call_sid: str, digits: str) -> WebhookAnswer:
        """On a live call waiting in a `<Gather>`: press `digits`; the answer's TwiML runs."""
        return self._server.call(self._press(call_sid, digits))

    def no_input(self, call_sid: str) -> None:
        """The `<Gather>` times out: the call goes on with the verbs after it."""
        self._server.call(self._no_input(call_sid))

    def hang_up(self, call_sid: str) -> None:
        self._server.call(self._complete(self._call(call_sid), "completed"))

    # --- the REST API --------------------------------------------------------------------------

    async def _create_message(self, request: Request) -> Response:
        refused, form = await self._admit(request)
        if refused is not None:
            return refused
        error = message_error(form)
        if error is not None:
            return self._refuse(request, form, error)
        body = form.get("Body", "")
        message = FakeMessage(
            sid="SM" + uuid.uuid4().hex,
            to=form["To"],
            from_=form.get("From", ""),
            body=body,
            status_callback=form.get("StatusCallback"),
            num_segments=sms_segments(body),
        )
        self._record(request, form, 201, message=message)
        self._spawn(self._deliver_message(message))
        return JSONResponse(message_json(self.account_sid, message), status_code=201)

    async def _create_call(self, request: Request) -> Response:
        refused, form = await self._admit(request)
        if refused is not None:
            return refused
        error = call_error(form)
        if error is not None:
            return self._refuse(request, form, error)
        pairs = await form_pairs(request)
        events = frozenset(
            event
            for name, value in pairs
            if name == "StatusCallbackEvent"
            for event in value.split()
        )
        call = FakeCall(
            sid="CA" + uuid.uuid4().hex,
            to=form["To"],
            from_=form["From"],
            url=form.get("Url"),
            status_callback=form.get("StatusCallback"),
            callback_events=events or frozenset({"completed"}),
        )
        self._record(request, form, 201, call=call)
        self._spawn(self._run_call(call, inline_twiml=form.get("Twiml")))
        return JSONResponse(call_json(self.account_sid, call), status_code=201)

    async def _admit(self, request: Request) -> tuple[Response | None, dict[str, str]]:
        form = dict(await form_pairs(request))
        if not self._authenticated(request.headers.get("authorization", "")):
            return self._refuse(request, form, 20003), form
        if request.path_params["sid"] != self.account_sid:
            return self._refuse(request, form, 20404), form
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            status, code, message = failure
            self._record(request, form, status)
            return error_response(status, code, message), form
        return None, form

    def _authenticated(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(
            password, self.auth_token
        )

    def _refuse(self, request: Request, form: dict[str, str], code: int) -> Response:
        status, message = ERRORS[code]
        self._record(request, form, status)
        return error_response(status, code, message)

    def _record(
        self,
        request: Request,
        form: dict[str, str],
        status: int,
        *,
        message: FakeMessage | None = None,
        call: FakeCall | None = None,
    ) -> None:
        with self._lock:
            self._requests.append(ApiRequest(request.url.path, dict(form), status))
            if message is not None:
                self._messages.append(message)
            if call is not None:
                self._calls.append(call)

    # --- what happens after the API answered ---------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_message(self, message: FakeMessage) -> None:
        with self._lock:
            undeliverable = self._undeliverable.get(message.to)
        if undeliverable is None:
            steps = ["queued", "sent", "delivered"]
        elif undeliverable.message_status == "failed":
            steps = ["queued", "failed"]
        else:
            steps = ["queued", "sent", undeliverable.message_status]
        for status in steps:
            await asyncio.sleep(self.callback_delay)
            with self._lock:
                if message.statuses[-1] != status:
                    message.statuses.append(status)
            if message.status_callback is None:
                continue
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "From": message.from_,
                "MessageSid": message.sid,
                "MessageStatus": status,
                "SmsSid": message.sid,
                "SmsStatus": status,
                "To": message.to,
            }
            if status in ("failed", "undelivered") and undeliverable is not None:
                params["ErrorCode"] = str(undeliverable.error_code)
            await self._post_signed(message.status_callback, params)

    def _call(self, sid: str) -> FakeCall:
        with self._lock:
            for call in self._calls:
                if call.sid == sid:
                    return call
        raise KeyError(f"no call {sid}")

    def _call_params(self, sid: str, from_: str, to: str, status: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": sid,
            "CallStatus": status,
            "Called": to,
            "Caller": from_,
            "Direction": "outbound-api",
            "From": from_,
            "To": to,
        }

    async def _call_status(self, call: FakeCall, status: str, event: str) -> None:
        await asyncio.sleep(self.callback_delay)
        with self._lock:
            call.statuses.append(status)
        if call.status_callback is None or event not in call.callback_events:
            return
        params = self._call_params(call.sid, call.from_, call.to, status)
        params.update(
            {
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(len(call.statuses) - 2),
                "Timestamp": format_datetime(datetime.now(UTC)),
            }
        )
        if event == "completed":
            params["CallDuration"] = params["Duration"] = "1"
        await self._post_signed(call.status_callback, params)

    async def _run_call(self, call: FakeCall, *, inline_twiml: str | None) -> None:
        with self._lock:
            undeliverable = self._undeliverable.get(call.to)
        await self._call_status(call, "initiated", "initiated")
        await self._call_status(call, "ringing", "ringing")
        if undeliverable is not None:
            await self._call_status(call, undeliverable.call_status, "completed")
            return
        await self._call_status(call, "in-progress", "answered")
        if inline_twiml is not None:
            await self._run_document(call, parse_twiml(inline_twiml, url=call.url or ""))
        elif call.url is not None:
            await self._fetch_and_run(call, call.url, {})

    async def _fetch_and_run(
        self, call: FakeCall, url: str, extra: Mapping[str, str], hops: int = 0
    ) -> WebhookAnswer:
        params = {**self._call_params(call.sid, call.from_, call.to, "in-progress"), **extra}
        answer = await self._webhook(url, params, None, True)
        if answer.status_code != 200:
            # Twilio says "an application error has occurred" and hangs up.
            await self._complete(call, "completed")
            return answer
        await self._run_document(call, parse_twiml(answer.body, url=url), hops)
        return answer

    async def _run_document(self, call: FakeCall, document: TwimlDocument, hops: int = 0) -> None:
        with self._lock:
            call.documents.append(document)
            call.said.extend(document.said)
        if document.gather is not None:
            return  # waits for press(), no_input() or hang_up()
        await self._after(call, document.redirect, hops)

    async def _after(self, call: FakeCall, redirect: str | None, hops: int) -> None:
        if redirect is not None and hops < _MAX_REDIRECTS:
            await self._fetch_and_run(call, redirect, {}, hops + 1)
        else:
            await self._complete(call, "completed")

    async def _press(self, sid: str, digits: str) -> WebhookAnswer:
        call = self._call(sid)
        gather = call.waiting_gather
        if gather is None:
            raise RuntimeError(f"call {sid} is not waiting for digits (status {call.status})")
        with self._lock:
            call.digits.append(digits)
        return await self._fetch_and_run(call, gather.action, {"Digits": digits})

    async def _no_input(self, sid: str) -> None:
        call = self._call(sid)
        if call.waiting_gather is None:
            raise RuntimeError(f"call {sid} is not waiting for digits (status {call.status})")
        await self._after(call, call.documents[-1].redirect_after_gather, 0)

    async def _complete(self, call: FakeCall, status: str) -> None:
        if call.status not in ("completed", "busy", "failed", "no-answer", "canceled"):
            await self._call_status(call, status, "completed")

    # --- sending to Tocsin ------------------------------------------------------------------------

    async def _webhook(
        self, url: str, params: dict[str, str], auth_token: str | None, signed: bool
    ) -> WebhookAnswer:
        response = await self._post_signed(url, params, auth_token=auth_token, signed=signed)
        if response is None:
            return WebhookAnswer(0, "", (), ())
        document = (
            parse_twiml(response.text, url=url)
            if "xml" in response.headers.get("content-type", "") and response.text.strip()
            else None
        )
        return WebhookAnswer(
            response.status_code,
            response.text,
            document.messages if document else (),
            document.said if document else (),
        )

    async def _post_signed(
        self,
        url: str,
        params: dict[str, str],
        *,
        auth_token: str | None = None,
        signed: bool = True,
    ) -> httpx.Response | None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0)
        headers = {
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        if signed:
            headers["X-Twilio-Signature"] = twilio_signature(
                auth_token or self.auth_token, url, params
            )
        try:
            response = await self._client.post(url, data=params, headers=headers)
        except httpx.HTTPError:
            response = None
        with self._lock:
            self._callbacks.append(
                Callback(
                    url,
                    params,
                    response.status_code if response is not None else None,
                    response.text if response is not None else "",
                )
            )
        return response
