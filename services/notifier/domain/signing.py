"""Signatures on what providers send to Tocsin, and the signed links in page e-mails.

- Twilio signs each webhook with `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the
  account's auth token, over the full URL Twilio requested followed by every POST parameter's
  name and value, sorted by name (Twilio's "webhook security" documentation; the same algorithm as
  the `twilio` package's `RequestValidator`, including its tolerance of a default port written
  or left out in the URL).
- Slack signs each request with `X-Slack-Signature: v0=<hex HMAC-SHA256>` over
  `v0:<X-Slack-Request-Timestamp>:<raw body>`, keyed with the app's signing secret; a timestamp
  more than 5 minutes from now is refused, so a captured request cannot be replayed later.
- An e-mail page carries a link with a token: an HMAC-SHA256 over the subject (which page) and
  an expiry, bound to a purpose so a token made for one use is worthless for another.

All comparisons are constant-time. Errors say what failed, never a secret or a signature.
Time is a parameter: nothing here reads the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
SLACK_SIGNATURE_HEADER = "X-Slack-Signature"
SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SLACK_MAX_SKEW = timedelta(minutes=5)
MIN_TOKEN_SECRET_BYTES = 16

FormParams = Mapping[str, str] | Iterable[tuple[str, str]]
"""POST parameters: a mapping, or (name, value) pairs when a name may repeat."""


class InvalidSignature(Exception):
    """A request's signature does not check out; the message says why, with no secret in it."""


class InvalidToken(Exception):
    """A signed token is malformed, forged, made for another purpose, or expired."""


def _same(left: str, right: str) -> bool:
    # compare_digest refuses non-ASCII str; a header may hold anything, so compare bytes.
    return hmac.compare_digest(left.encode("utf-8", "replace"), right.encode("utf-8", "replace"))


# --- Twilio -----------------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: FormParams) -> str:
    """The `X-Twilio-Signature` Twilio sends with a form POST of `params` to `url`."""
    pairs = params.items() if isinstance(params, Mapping) else params
    by_name: dict[str, set[str]] = {}
    for name, value in pairs:
        by_name.setdefault(name, set()).add(value)
    signed = url + "".join(
        name + value for name in sorted(by_name) for value in sorted(by_name[name])
    )
    digest = hmac.new(auth_token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio_signature(
    auth_token: str, url: str, params: FormParams, signature: str | None
) -> None:
    """Raise `InvalidSignature` unless `signature` is Twilio's for a POST of `params` to `url`.

    `url` is the public URL Twilio was given (`public_url` + path + query), not what the proxy
    in front of Tocsin passed on. Twilio has signed with and without a default port in the URL,
    so both spellings are accepted, as its own validator does."""
    if not signature:
        raise InvalidSignature(f"no {TWILIO_SIGNATURE_HEADER} header")
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    matches = [
        _same(twilio_signature(auth_token, variant, pairs), signature)
        for variant in _port_variants(url)
    ]
    if not any(matches):
        raise InvalidSignature(
            f"{TWILIO_SIGNATURE_HEADER} does not match: check that public_url is the address "
            "Twilio calls and that the auth token is the account's"
        )


def _port_variants(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return url, url
    if port is not None:
        without = parts.netloc.rsplit(":", 1)[0]
        return url, urlunsplit(parts._replace(netloc=without))
    default = 443 if parts.scheme == "https" else 80
    return url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))


# --- Slack ------------------------------------------------------------------------------------


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` Slack sends with `body` at `timestamp` (Unix seconds)."""
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def verify_slack_signature(
    signing_secret: str,
    *,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    max_skew: timedelta = SLACK_MAX_SKEW,
) -> None:
    """Raise `InvalidSignature` unless Slack signed `body` at `timestamp`, within `max_skew` of
    `now` either way. `body` is the raw request body, before any form or JSON parsing."""
    if not timestamp:
        raise InvalidSignature(f"no {SLACK_TIMESTAMP_HEADER} header")
    if not signature:
        raise InvalidSignature(f"no {SLACK_SIGNATURE_HEADER} header")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise InvalidSignature(f"{SLACK_TIMESTAMP_HEADER} is not a Unix time")
    skew = abs(now.timestamp() - int(timestamp))
    if skew > max_skew.total_seconds():
        raise InvalidSignature(
            f"{SLACK_TIMESTAMP_HEADER} is {int(skew)} s away from now, more than "
            f"{int(max_skew.total_seconds())} s: a replay, or this host's clock is wrong"
        )
    if not _same(slack_signature(signing_secret, timestamp, body), signature):
        raise InvalidSignature(f"{SLACK_SIGNATURE_HEADER} does not match the signing secret")


# --- signed, expiring tokens (e-mail acknowledge links) ---------------------------------------

_PURPOSE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_TOKEN = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})")


def issue_token(secret: bytes, *, purpose: str, subject: str, expires_at: datetime) -> str:
    """A URL-safe token saying `subject` (e.g. a notification id) for `purpose` (e.g.
    "email-ack") until `expires_at`. The subject is readable by whoever holds the token; it is
    signed, not encrypted."""
    _check_key(secret, purpose)
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    payload = json.dumps(
        {"s": subject, "e": int(expires_at.timestamp())}, separators=(",", ":")
    ).encode("utf-8")
    body = _b64(payload)
    return f"{body}.{_token_mac(secret, purpose, body)}"


def read_token(secret: bytes, token: str, *, purpose: str, now: datetime) -> str:
    """The subject of a token made by `issue_token` with this secret and purpose; raises
    `InvalidToken` if it is malformed, forged, made for another purpose or expired at `now`."""
    _check_key(secret, purpose)
    shape = _TOKEN.fullmatch(token)
    if shape is None:
        raise InvalidToken("the token is malformed")
    body, mac = shape.groups()
    if not _same(_token_mac(secret, purpose, body), mac):
        raise InvalidToken("the token's signature does not match")
    try:
        claims = json.loads(_unb64(body))
        subject, expires = claims["s"], claims["e"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidToken("the token is malformed") from None
    if not isinstance(subject, str) or not isinstance(expires, int):
        raise InvalidToken("the token is malformed")
    if now.timestamp() >= expires:
        raise InvalidToken("the token has expired")
    return subject


def _check_key(secret: bytes, purpose: str) -> None:
    if len(secret) < MIN_TOKEN_SECRET_BYTES:
        raise ValueError(f"a token secret needs at least {MIN_TOKEN_SECRET_BYTES} bytes")
    if _PURPOSE.fullmatch(purpose) is None:
        raise ValueError("a token purpose is a short lowercase name, e.g. email-ack")


def _token_mac(secret: bytes, purpose: str, body: str) -> str:
    # The purpose is in the MAC input, separated by a byte no purpose or body can contain.
    message = b"tocsin-token-v1\x00" + purpose.encode("ascii") + b"\x00" + body.encode("ascii")
    return _b64(hmac.new(secret, message, hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
