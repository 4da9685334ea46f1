"""What Twilio posts to Tocsin: SMS replies, the TwiML of page calls with the keys pressed, and
delivery statuses.

- `POST /v1/twilio/sms` (the Twilio number's "A message comes in" webhook): `4a` / `4c` / `4e`
  acknowledges, resolves or escalates the page (or every page of the bundle) that got code 4 on
  the sender's number; a plain `ack` or `resolve` acts on the latest page to that number. The
  answer is TwiML with one SMS back: what was done, or how to reply (an unknown code or number
  changes nothing).
- `POST /v1/twilio/voice?m=<message>`: the page call's TwiML (read the page, `<Gather>` one key,
  read it again without one), and the key pressed: 4 acknowledges, 6 resolves, 8 escalates.
- `POST /v1/twilio/status?m=<message>`: message and call statuses. Each is kept with the message;
  the first final one (delivered; failed, undelivered; answered; busy, no-answer...) makes its
  pages due, and the delivery loop reports their outcome (channels/twilio_pages.py). Before
  it, `queued` and `sent` (a call: `ringing`) are reported as each page's non-final status
  (statuses.py).

Every request must carry Twilio's `X-Twilio-Signature` over `public_url` + path + query and the
form parameters, with the account's auth token: a bad or missing one gets 403 and changes
nothing. Replies and key presses become `IncidentCommand`s on `incidents.commands` (via sms or
voice; the actor is the user the page was for). Their `event_id` comes from the message, the
incident and the action, so the same reply twice, or Twilio retrying its webhook, acts once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from schemas import INCIDENTS_COMMANDS, CommandKind, IncidentCommand
from services.notifier.channels.twilio_pages import CODE_LIFETIME
from services.notifier.config import TwilioConfig
from services.notifier.contact_store import ContactStore, Outbound, PageEntry
from services.notifier.domain.receipts import (
    Receipt,
    call_receipt,
    failure_detail,
    known_status,
    message_receipt,
)
from services.notifier.domain.replies import (
    HELP_TEXT,
    NO_PAGE_ANSWER,
    VOICE_UNKNOWN,
    CodedReply,
    LatestReply,
    ReplyAction,
    UnknownReply,
    done_answer,
    parse_sms_reply,
    parse_voice_digits,
    unknown_code_answer,
)
from services.notifier.domain.signing import (
    TWILIO_SIGNATURE_HEADER,
    InvalidSignature,
    verify_twilio_signature,
)
from services.notifier.domain.sms_text import short_incident_id
from services.notifier.domain.twiml import (
    CONTENT_TYPE,
    gather_response,
    hangup_response,
    message_response,
)
from services.notifier.metrics import INBOUND, PROVIDER_STATUSES
from services.notifier.statuses import StatusReporter, progress
from services.notifier.store import NotifierStore
from tocsin.runtime.bus import Bus, PublishError
from tocsin.runtime.clock import Clock

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f0c2b8e-3a41-4d9a-9c57-e1b4a2d80f13")
MAX_BODY = 64 * 1024
MAX_REPEATS = 3
"""How many times a page call reads the page again when no key is pressed."""

_COMMANDS = {
    ReplyAction.ACKNOWLEDGE: CommandKind.ACKNOWLEDGE,
    ReplyAction.RESOLVE: CommandKind.RESOLVE,
    ReplyAction.ESCALATE: CommandKind.ESCALATE,
}
_DONE_SAID = {
    ReplyAction.ACKNOWLEDGE: "Acknowledged",
    ReplyAction.RESOLVE: "Resolved",
    ReplyAction.ESCALATE: "Escalated",
}
_UNKNOWN_CALL = "Sorry, Tocsin does not know this call any more. Goodbye."
_TRY_AGAIN_SMS = "Tocsin could not act on your reply just now. Please reply again in a minute."
_TRY_AGAIN_CALL = "Sorry, Tocsin could not do that just now. Please try again."


class _Refused(Exception):
    """The request is not Twilio's: answered 403."""


def _twiml(text: str) -> Response:
    return Response(text, media_type=CONTENT_TYPE)


def _incidents(message: Outbound) -> list[PageEntry]:
    """One page per incident in the message (a bundle may hold two pages of one incident)."""
    seen: dict[str, PageEntry] = {}
    for page in message.pages:
        seen.setdefault(page.incident_id, page)
    return list(seen.values())


def router(
    config: TwilioConfig,
    public_url: str | None,
    contacts: ContactStore,
    queue: NotifierStore,
    bus: Bus,
    clock: Clock,
    woken: Callable[[], None] = lambda: None,
) -> APIRouter:
    """`woken` tells this process's delivery loop that a page a final status made due again is
    waiting (else it would sleep until its next due time, up to a few seconds)."""
    api = APIRouter(tags=["twilio"])
    token = config.auth_token.get_secret_value()
    statuses = StatusReporter(bus, queue)
    base = public_url.rstrip("/") if public_url else None

    async def verified(request: Request, route: str) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise _Refused("request body too large")
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        # What Twilio signed: the URL it was given, i.e. public_url, not what a proxy passed on.
        url = (
            base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if base is not None
            else str(request.url)
        )
        try:
            verify_twilio_signature(token, url, pairs, request.headers.get(TWILIO_SIGNATURE_HEADER))
        except InvalidSignature as error:
            INBOUND.labels(route, "forbidden").inc()
            log.warning("Twilio %s request refused: %s", route, error)
            raise _Refused(str(error)) from None
        return dict(pairs)

    def forbidden(error: _Refused) -> Response:
        return Response(str(error), status_code=403, media_type="text/plain")

    async def act(message: Outbound, action: ReplyAction, via: str) -> list[PageEntry]:
        """Publish the action on every incident of the message; the pages acted on."""
        pages = _incidents(message)
        for page in pages:
            command = IncidentCommand(
                event_id=uuid.uuid5(
                    _NAMESPACE, f"twilio/{message.key}/{page.incident_id}/{action.value}"
                ),
                occurred_at=clock.now(),
                correlation_id=page.incident_id,
                command=_COMMANDS[action],
                incident_id=page.incident_id,
                actor=page.user_id,
                via=via,
            )
            await bus.publish(INCIDENTS_COMMANDS, page.incident_id, command)
            log.info("%s %s of %s by %s", via, action.value, page.incident_id, page.user_id)
        return pages

    # --- SMS replies ---------------------------------------------------------------------------

    async def reply_target(number: str, reply: CodedReply | LatestReply) -> Outbound | str:
        """The message a reply acts on, or the answer saying why there is none."""
        state = await contacts.contact("sms", number)
        if state.version == 0:
            return NO_PAGE_ANSWER  # a number Tocsin never paged
        if isinstance(reply, CodedReply):
            oldest = clock.now() - CODE_LIFETIME
            key = next(
                (
                    c.message
                    for c in reversed(state.codes)
                    if c.code == reply.code and c.at > oldest
                ),
                None,
            )
            missing = unknown_code_answer(reply.code)
        else:
            key, missing = state.latest, NO_PAGE_ANSWER
        message = await contacts.message(key) if key else None
        return message if message is not None else missing

    @api.post("/v1/twilio/sms")
    async def sms_reply(request: Request) -> Response:
        """An SMS to the Twilio number: a reply to a page."""
        try:
            params = await verified(request, "sms")
        except _Refused as error:
            return forbidden(error)
        reply = parse_sms_reply(params.get("Body", ""))
        if isinstance(reply, UnknownReply):
            INBOUND.labels("sms", "help").inc()
            return _twiml(message_response(HELP_TEXT))
        target = await reply_target(params.get("From", ""), reply)
        if isinstance(target, str):
            INBOUND.labels("sms", "unknown").inc()
            return _twiml(message_response(target))
        try:
            pages = await act(target, reply.action, "sms")
        except PublishError as error:
            log.warning("SMS reply not published: %s", error)
            INBOUND.labels("sms", "unavailable").inc()
            return _twiml(message_response(_TRY_AGAIN_SMS))
        INBOUND.labels("sms", "acted").inc()
        shorts = [short_incident_id(page.incident_id) for page in pages]
        return _twiml(message_response(done_answer(reply.action, shorts)))

    # --- page calls ----------------------------------------------------------------------------

    def voice_url(key: str, repeat: int | None = None) -> str:
        path = f"/v1/twilio/voice?m={key}" + (f"&r={repeat}" if repeat is not None else "")
        return (base or "") + path

    @api.post("/v1/twilio/voice")
    async def voice(request: Request) -> Response:
        """A page call's TwiML, and the key pressed on it."""
        try:
            params = await verified(request, "voice")
        except _Refused as error:
            return forbidden(error)
        key = request.query_params.get("m", "")
        message = await contacts.message(key) if key else None
        if message is None or message.kind != "voice":
            INBOUND.labels("voice", "unknown").inc()
            return _twiml(hangup_response([_UNKNOWN_CALL]))
        digits = params.get("Digits")
        if digits is None:
            repeat = _int(request.query_params.get("r"))
            if repeat == 0:
                # Twilio fetches the page when the call is answered: the page reached them.
                await record(key, "voice", params.get("CallSid") or None, "in-progress", None)
            INBOUND.labels("voice", "page").inc()
            then = voice_url(key, repeat + 1) if repeat < MAX_REPEATS else None
            said = message.content.split("\n")
            return _twiml(gather_response(said, action=voice_url(key), then=then))
        action = parse_voice_digits(digits)
        if action is None:
            INBOUND.labels("voice", "unknown_key").inc()
            return _twiml(
                gather_response([VOICE_UNKNOWN], action=voice_url(key), then=voice_url(key, 1))
            )
        try:
            pages = await act(message, action, "voice")
        except PublishError as error:
            log.warning("key press not published: %s", error)
            INBOUND.labels("voice", "unavailable").inc()
            return _twiml(
                gather_response([_TRY_AGAIN_CALL], action=voice_url(key), then=voice_url(key, 1))
            )
        INBOUND.labels("voice", "acted").inc()
        count = "" if len(pages) == 1 else f" {len(pages)} incidents"
        return _twiml(hangup_response([f"{_DONE_SAID[action]}{count}. Goodbye."]))

    # --- delivery statuses ---------------------------------------------------------------------

    async def record(
        key: str, kind: str, sid: str | None, status: str, error_code: str | None
    ) -> None:
        receipt = call_receipt(status) if kind == "voice" else message_receipt(status)
        detail = failure_detail(status, error_code) if receipt is Receipt.FAILED else None
        now = clock.now()
        message, final = await contacts.record_status(
            key, sid=sid, status=status, receipt=receipt, detail=detail, at=now
        )
        if message is None:
            return
        PROVIDER_STATUSES.labels(message.kind, known_status(status)).inc()
        if final:
            await queue.wake(message.notification_ids, now)
            woken()
            return
        outcome = progress(message.kind, status)
        if outcome is not None and message.receipt is Receipt.PENDING:
            # queued, sent: on each page's timeline; only the final status decides anything.
            await statuses.report(message.notification_ids, outcome, now)

    @api.post("/v1/twilio/status", status_code=204)
    async def status(request: Request) -> Response:
        """Twilio's status callback for a page's SMS or call."""
        try:
            params = await verified(request, "status")
        except _Refused as error:
            return forbidden(error)
        key = request.query_params.get("m", "")
        call_status = params.get("CallStatus")
        reported = call_status or params.get("MessageStatus") or params.get("SmsStatus")
        if not key or not reported:
            INBOUND.labels("status", "unknown").inc()
            return Response(status_code=204)
        kind = "voice" if call_status else "sms"
        sid = params.get("CallSid") if call_status else params.get("MessageSid")
        await record(key, kind, sid or None, reported, params.get("ErrorCode"))
        INBOUND.labels("status", "recorded").inc()
        return Response(status_code=204)

    return api


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
