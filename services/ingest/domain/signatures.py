"""Request signatures (pure): Grafana's HMAC and Tocsin's own for generic senders.

Grafana: hex HMAC-SHA256 of the body in `X-Grafana-Alerting-Signature` (older releases:
`X-Grafana-Alert-Signature`); when a timestamp header is configured, of `timestamp:body`, and
the timestamp (Unix seconds) must be within `max_skew` of now, so a captured request cannot be
replayed later. Generic: `X-Tocsin-Signature: sha256=<hex HMAC-SHA256 of the body>`.
Comparisons take constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta

GRAFANA_HEADERS = ("x-grafana-alerting-signature", "x-grafana-alert-signature")
TOCSIN_HEADER = "x-tocsin-signature"


def sign(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given.strip().lower())


def verify_grafana(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timestamp_header: str | None,
    max_skew: timedelta,
    now: datetime,
) -> str | None:
    """None when the request is signed by the secret's holder; otherwise why not."""
    message = body
    if timestamp_header is not None:
        stamp = headers.get(timestamp_header.lower())
        if stamp is None:
            return f"missing {timestamp_header}"
        try:
            sent_at = int(stamp.strip())
        except ValueError:
            return f"{timestamp_header} is not Unix seconds"
        if abs(now.timestamp() - sent_at) > max_skew.total_seconds():
            return f"{timestamp_header} is too old or in the future"
        message = stamp.strip().encode() + b":" + body
    expected = sign(secret, message)
    if not any(_matches(expected, headers.get(name)) for name in GRAFANA_HEADERS):
        return "missing or wrong X-Grafana-Alerting-Signature"
    return None


def verify_tocsin(secret: str, body: bytes, headers: Mapping[str, str]) -> str | None:
    given = headers.get(TOCSIN_HEADER)
    if given is None or not given.startswith("sha256="):
        return "missing X-Tocsin-Signature: sha256=<hex>"
    if not _matches(sign(secret, body), given.removeprefix("sha256=")):
        return "wrong X-Tocsin-Signature"
    return None
