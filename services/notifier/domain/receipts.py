"""What a Twilio status says about a page's delivery (pure).

Twilio reports a message's progress to its `StatusCallback` (queued, sending, sent, then
delivered, undelivered or failed) and a call's (queued, initiated, ringing, in-progress, then
completed, busy, no-answer, failed or canceled). The notifier waits for a final one before it
reports the page's outcome: delivered, or failed so that escalation pages the person's next
contact method at once. A call counts as delivered when it is answered (in-progress): the
person heard the page, whether or not they pressed a key.

Twilio's callbacks can arrive out of order and more than once; only the first final status
counts (the caller keeps it).
"""

from __future__ import annotations

from enum import StrEnum


class Receipt(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


MESSAGE_STATUSES = frozenset(
    {
        "accepted",
        "scheduled",
        "queued",
        "sending",
        "sent",
        "delivered",
        "read",
        "undelivered",
        "failed",
        "canceled",
        "receiving",
        "received",
    }
)
CALL_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "no-answer",
        "failed",
        "canceled",
    }
)

_MESSAGE_RECEIPTS = {
    "delivered": Receipt.DELIVERED,
    "read": Receipt.DELIVERED,
    "undelivered": Receipt.FAILED,
    "failed": Receipt.FAILED,
    "canceled": Receipt.FAILED,
}
_CALL_RECEIPTS = {
    "in-progress": Receipt.DELIVERED,
    "completed": Receipt.DELIVERED,
    "busy": Receipt.FAILED,
    "no-answer": Receipt.FAILED,
    "failed": Receipt.FAILED,
    "canceled": Receipt.FAILED,
}


def message_receipt(status: str) -> Receipt:
    return _MESSAGE_RECEIPTS.get(status, Receipt.PENDING)


def call_receipt(status: str) -> Receipt:
    return _CALL_RECEIPTS.get(status, Receipt.PENDING)


def known_status(status: str) -> str:
    """The status itself if Twilio documents it, else "other" (a bounded metric label)."""
    return status if status in MESSAGE_STATUSES or status in CALL_STATUSES else "other"


def failure_detail(status: str, error_code: str | None) -> str:
    """A timeline-safe reason for a failed receipt: the status and Twilio's error code (whose
    documentation page explains it), never the message Twilio may attach (it can quote the
    number)."""
    if error_code and error_code.isdigit():
        return f"Twilio reported {status} (error {error_code})"
    return f"Twilio reported {status}"
