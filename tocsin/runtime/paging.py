"""The opaque cursor every listing of the operator API pages with (`?cursor=`, `next_cursor`):
the sort key of the last item returned, so paging visits every item once while items change."""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import HTTPException


def encode_cursor(after: str) -> str:
    raw = json.dumps({"after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The sort key in `cursor`; a cursor we did not make is a 400 naming it."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise HTTPException(400, "invalid cursor") from None
    if not isinstance(after, str):
        raise HTTPException(400, "invalid cursor")
    return after
