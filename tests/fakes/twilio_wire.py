"""Twilio's REST API on the wire, for the fake Twilio: resource JSON, error codes and bodies,
the webhook signature and SMS segment counting, each as Twilio documents it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from tests.fakes.twilio import FakeCall, FakeMessage

API_VERSION = "2010-04-01"
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
MAX_BODY = 1600

# GSM 03.38, typed out here separately from services.notifier.domain.sms_text so that the two can be
# checked against each other.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

ERRORS: Mapping[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    20503: (503, "Service Unavailable"),
    21201: (400, "No 'To' number is specified"),
    21205: (400, "Url parameter is required."),
    21211: (400, "The 'To' number is not a valid phone number."),
    21213: (400, "No 'From' number is specified"),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
}


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's webhook signature: base64(HMAC-SHA1(token, url + name1 + value1 + ...)), the
    parameters sorted by name."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def sms_segments(body: str) -> int:
    """How many SMS segments Twilio bills `body` as (GSM-7: 160, then 153 each; UCS-2: 70, then
    67 each, counting UTF-16 units)."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in body):
        septets = sum(2 if char in _GSM7_EXTENSION else 1 for char in body)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


async def form_pairs(request: Request) -> list[tuple[str, str]]:
    """The fields of a form-encoded body, in order, repeated names kept (parsed here rather than
    by Starlette, which needs python-multipart for it)."""
    return parse_qsl((await request.body()).decode(), keep_blank_values=True)


def error_response(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def message_error(form: Mapping[str, str]) -> int | None:
    """The Twilio error code of an invalid Messages request, in the order Twilio checks."""
    to, body = form.get("To"), form.get("Body")
    if not to:
        return 21604
    if not E164.fullmatch(to):
        return 21211
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return 21603
    if not body and not form.get("MediaUrl"):
        return 21602
    if body and len(body) > MAX_BODY:
        return 21617
    return None


def call_error(form: Mapping[str, str]) -> int | None:
    to = form.get("To")
    if not to:
        return 21201
    if not E164.fullmatch(to):
        return 21211
    if not form.get("From"):
        return 21213
    if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
        return 21205
    return None


def message_json(account_sid: str, message: FakeMessage) -> dict[str, Any]:
    now = format_datetime(datetime.now(UTC))
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{message.sid}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": str(message.num_segments),
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def call_json(account_sid: str, call: FakeCall) -> dict[str, Any]:
    now = format_datetime(datetime.now(UTC))
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Calls/{call.sid}"
    return {
        "account_sid": account_sid,
        "answered_by": None,
        "api_version": API_VERSION,
        "caller_name": None,
        "date_created": now,
        "date_updated": now,
        "direction": "outbound-api",
        "duration": None,
        "end_time": None,
        "from": call.from_,
        "from_formatted": call.from_,
        "parent_call_sid": None,
        "price": None,
        "price_unit": "USD",
        "sid": call.sid,
        "start_time": None,
        "status": "queued",
        "subresource_uris": {"notifications": f"{uri}/Notifications.json"},
        "to": call.to,
        "to_formatted": call.to,
        "uri": f"{uri}.json",
    }
