"""What the notifier keeps per phone number and per Twilio message or call (the queue of
notifications itself is store.py's):

- `notifier_contacts`: one document per channel and number (`sms:+15551234567`,
  `voice:+1...`): the rate-limit window (when it was last sent to, the pages waiting for the
  window to end, each with what the message will say about it), the SMS reply codes given out
  on the number (code -> message, for a day) and the latest message a plain `ack` acts on.
  Changed by compare-and-set on `version`, so replicas sending to one number at once never
  both send, nor give out one code twice.
- `notifier_outbound`: one document per SMS or call (a page, or a bundle of pages): the
  notifications it carries, its text, its state towards Twilio (prepared, calling, retry,
  accepted, refused), Twilio's sid, every status Twilio reported and the final receipt.
- `notifier_outbound_pages`: notification id -> the message that carries it, so a retried or
  re-claimed notification finds its message and never becomes a second SMS.

Phone numbers are stored (the configuration holds them too); they never go to logs or metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from schemas import NotificationEvent, NotificationRequested, Severity
from services.notifier.domain.bundling import ContactWindow
from services.notifier.domain.change_lines import changes_text
from services.notifier.domain.receipts import Receipt
from services.notifier.domain.sms_text import PageFacts
from tocsin.runtime.retention import RetentionPolicy, RetentionRule
from tocsin.runtime.store import Document, DocumentDatabase


@dataclass(frozen=True)
class PageEntry:
    """One notification in a message: what the message says about it and who it was for."""

    notification_id: str
    user_id: str
    incident_id: str
    event: NotificationEvent
    severity: Severity
    service: str
    title: str
    alert_count: int
    change: str | None = None  # the last change before the incident, as a page line

    @classmethod
    def of(cls, request: NotificationRequested) -> PageEntry:
        incident = request.incident
        opened_at = incident.opened_at or request.occurred_at
        return cls(
            notification_id=request.notification_id,
            user_id=request.recipient.user_id,
            incident_id=incident.id,
            event=request.event,
            severity=incident.severity,
            service=incident.service,
            title=incident.title[:512],
            alert_count=incident.alert_count,
            change=changes_text(incident.changes[:1], opened_at),
        )

    def facts(self) -> PageFacts:
        return PageFacts(
            self.event,
            self.severity,
            self.service,
            self.title,
            self.alert_count,
            self.incident_id,
            self.change,
        )

    def document(self) -> Document:
        return {
            "id": self.notification_id,
            "user_id": self.user_id,
            "incident_id": self.incident_id,
            "event": self.event.value,
            "severity": self.severity.value,
            "service": self.service,
            "title": self.title,
            "alert_count": self.alert_count,
            "change": self.change,
        }

    @classmethod
    def from_document(cls, doc: Document) -> PageEntry:
        return cls(
            notification_id=str(doc["id"]),
            user_id=str(doc["user_id"]),
            incident_id=str(doc["incident_id"]),
            event=NotificationEvent(doc["event"]),
            severity=Severity(doc["severity"]),
            service=str(doc["service"]),
            title=str(doc["title"]),
            alert_count=int(doc["alert_count"]),
            change=doc.get("change"),
        )


@dataclass(frozen=True)
class ReplyCode:
    code: int
    message: str
    at: datetime


@dataclass(frozen=True)
class ContactState:
    """A number's document; `version` 0 when there is none yet."""

    version: int
    window: ContactWindow
    waiting: tuple[PageEntry, ...]
    """The pages in `window.pending`, in the same order."""
    codes: tuple[ReplyCode, ...] = ()
    latest: str | None = None
    """The latest message with reply codes: what a plain `ack` acts on."""


class MessageState(StrEnum):
    PREPARED = "prepared"  # stored, Twilio not asked yet
    CALLING = "calling"  # Twilio asked; no answer yet (or none will come: a crash, a timeout)
    RETRY = "retry"  # Twilio answered with an error another attempt may fix
    ACCEPTED = "accepted"  # Twilio took it (sid known): never sent again
    REFUSED = "refused"  # Twilio refused it for good


@dataclass(frozen=True)
class Outbound:
    key: str
    kind: str  # sms | voice
    number: str
    pages: tuple[PageEntry, ...]
    content: str
    """The SMS body, or the call's sentences joined by newlines."""
    code: int | None
    created_at: datetime
    state: MessageState = MessageState.PREPARED
    attempts: int = 0
    attempt_started_at: datetime | None = None
    next_attempt_at: datetime | None = None
    sid: str | None = None
    accepted_at: datetime | None = None
    error: str | None = None
    receipt: Receipt = Receipt.PENDING
    receipt_detail: str | None = None
    statuses: tuple[str, ...] = ()

    @property
    def notification_ids(self) -> tuple[str, ...]:
        return tuple(page.notification_id for page in self.pages)


class ContactStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def contact(self, kind: str, number: str) -> ContactState: ...

    async def save_contact(
        self, kind: str, number: str, expected: int, state: ContactState, at: datetime
    ) -> bool:
        """Write `state` if the document is still at version `expected`; False otherwise."""

    async def prepare(self, message: Outbound) -> None: ...

    async def discard(self, key: str) -> None:
        """Forget a prepared message that lost the race for its number."""

    async def link(self, notification_ids: Sequence[str], key: str, at: datetime) -> None: ...

    async def linked(self, notification_ids: Sequence[str]) -> set[str]:
        """Which of these notifications a message carries already."""

    async def message(self, key: str) -> Outbound | None: ...

    async def message_of(self, notification_id: str) -> Outbound | None: ...

    async def start_attempt(
        self,
        key: str,
        expected: MessageState,
        at: datetime,
        *,
        started_at: datetime | None = None,
    ) -> bool:
        """Take the right to ask Twilio (compare-and-set on the state, and on the previous
        attempt's start for a stale `calling`); False if someone else took it."""

    async def accepted(self, key: str, sid: str, at: datetime) -> None: ...

    async def attempt_failed(
        self, key: str, *, refused: bool, error: str, next_attempt_at: datetime | None
    ) -> None: ...

    async def record_status(
        self,
        key: str,
        *,
        sid: str | None,
        status: str,
        receipt: Receipt,
        detail: str | None,
        at: datetime,
    ) -> tuple[Outbound | None, bool]:
        """Record a status Twilio reported; the message, and True if it made the receipt final
        just now (the first final status counts)."""


def _window(doc: Document | None) -> ContactState:
    if doc is None:
        return ContactState(0, ContactWindow(), ())
    waiting = tuple(PageEntry.from_document(entry) for entry in doc.get("pending", []))
    last = doc.get("last_sent_at")
    codes = tuple(
        ReplyCode(int(entry["code"]), str(entry["message"]), entry["at"])
        for entry in doc.get("codes", [])
    )
    latest = doc.get("latest")
    return ContactState(
        int(doc["version"]),
        ContactWindow(
            last if isinstance(last, datetime) else None,
            tuple(page.notification_id for page in waiting),
        ),
        waiting,
        codes,
        str(latest) if latest else None,
    )


def _optional_datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _outbound(doc: Document) -> Outbound:
    return Outbound(
        key=str(doc["_id"]),
        kind=str(doc["kind"]),
        number=str(doc["number"]),
        pages=tuple(PageEntry.from_document(entry) for entry in doc["pages"]),
        content=str(doc["content"]),
        code=int(doc["code"]) if doc.get("code") is not None else None,
        created_at=doc["created_at"],
        state=MessageState(doc["state"]),
        attempts=int(doc.get("attempts", 0)),
        attempt_started_at=_optional_datetime(doc.get("attempt_started_at")),
        next_attempt_at=_optional_datetime(doc.get("next_attempt_at")),
        sid=str(doc["sid"]) if doc.get("sid") else None,
        accepted_at=_optional_datetime(doc.get("accepted_at")),
        error=str(doc["error"]) if doc.get("error") else None,
        receipt=Receipt(doc.get("receipt", Receipt.PENDING.value)),
        receipt_detail=str(doc["receipt_detail"]) if doc.get("receipt_detail") else None,
        statuses=tuple(str(entry["status"]) for entry in doc.get("statuses", [])),
    )


class MongoContactStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._contacts = database["notifier_contacts"]
        self._outbound = database["notifier_outbound"]
        self._links = database["notifier_outbound_pages"]

    async def ensure_indexes(self) -> None:
        await self._contacts.create_index("updated_at")
        await self._outbound.create_index("created_at")
        await self._links.create_index("at")

    async def contact(self, kind: str, number: str) -> ContactState:
        return _window(await self._contacts.find_one({"_id": f"{kind}:{number}"}))

    async def save_contact(
        self, kind: str, number: str, expected: int, state: ContactState, at: datetime
    ) -> bool:
        fields: Document = {
            "kind": kind,
            "number": number,
            "version": expected + 1,
            "last_sent_at": state.window.last_sent_at,
            "pending": [page.document() for page in state.waiting],
            "codes": [
                {"code": code.code, "message": code.message, "at": code.at} for code in state.codes
            ],
            "latest": state.latest,
            "updated_at": at,
        }
        key = f"{kind}:{number}"
        if expected == 0:
            try:
                await self._contacts.insert_one({"_id": key, **fields})
            except DuplicateKeyError:
                return False
            return True
        outcome = await self._contacts.update_one(
            {"_id": key, "version": expected}, {"$set": fields}
        )
        return outcome.matched_count == 1

    async def prepare(self, message: Outbound) -> None:
        await self._outbound.insert_one(
            {
                "_id": message.key,
                "kind": message.kind,
                "number": message.number,
                "pages": [page.document() for page in message.pages],
                "content": message.content,
                "code": message.code,
                "created_at": message.created_at,
                "state": message.state.value,
                "attempts": 0,
                "receipt": Receipt.PENDING.value,
                "statuses": [],
            }
        )

    async def discard(self, key: str) -> None:
        await self._outbound.delete_one({"_id": key, "state": MessageState.PREPARED.value})

    async def link(self, notification_ids: Sequence[str], key: str, at: datetime) -> None:
        for notification_id in notification_ids:
            await self._links.update_one(
                {"_id": notification_id},
                {"$setOnInsert": {"message": key, "at": at}},
                upsert=True,
            )

    async def linked(self, notification_ids: Sequence[str]) -> set[str]:
        if not notification_ids:
            return set()
        cursor = self._links.find({"_id": {"$in": list(notification_ids)}})
        return {str(doc["_id"]) async for doc in cursor}

    async def message(self, key: str) -> Outbound | None:
        doc = await self._outbound.find_one({"_id": key})
        return _outbound(doc) if doc else None

    async def message_of(self, notification_id: str) -> Outbound | None:
        link = await self._links.find_one({"_id": notification_id})
        return await self.message(str(link["message"])) if link else None

    async def start_attempt(
        self,
        key: str,
        expected: MessageState,
        at: datetime,
        *,
        started_at: datetime | None = None,
    ) -> bool:
        query: Document = {"_id": key, "state": expected.value}
        if started_at is not None:
            query["attempt_started_at"] = started_at
        outcome = await self._outbound.update_one(
            query,
            {
                "$set": {"state": MessageState.CALLING.value, "attempt_started_at": at},
                "$inc": {"attempts": 1},
            },
        )
        return outcome.matched_count == 1

    async def accepted(self, key: str, sid: str, at: datetime) -> None:
        # A status callback may have recorded the acceptance first: only a message not yet
        # accepted changes (its sid and acceptance time stay the first ones).
        await self._outbound.update_one(
            {"_id": key, "state": {"$ne": MessageState.ACCEPTED.value}},
            {"$set": {"state": MessageState.ACCEPTED.value, "sid": sid, "accepted_at": at}},
        )

    async def attempt_failed(
        self, key: str, *, refused: bool, error: str, next_attempt_at: datetime | None
    ) -> None:
        state = MessageState.REFUSED if refused else MessageState.RETRY
        await self._outbound.update_one(
            {"_id": key, "state": MessageState.CALLING.value},
            {"$set": {"state": state.value, "error": error, "next_attempt_at": next_attempt_at}},
        )

    async def record_status(
        self,
        key: str,
        *,
        sid: str | None,
        status: str,
        receipt: Receipt,
        detail: str | None,
        at: datetime,
    ) -> tuple[Outbound | None, bool]:
        doc = await self._outbound.find_one_and_update(
            {"_id": key},
            {"$push": {"statuses": {"status": status, "at": at}}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None, False
        if sid and doc.get("state") != MessageState.ACCEPTED.value:
            # Twilio reports on it, so Twilio took it, whatever our attempt saw (a timeout, a
            # crash before the answer was stored): it is never sent again.
            await self.accepted(key, sid, at)
        final = False
        if receipt is not Receipt.PENDING:
            outcome = await self._outbound.update_one(
                {"_id": key, "receipt": Receipt.PENDING.value},
                {"$set": {"receipt": receipt.value, "receipt_detail": detail, "receipt_at": at}},
            )
            final = outcome.matched_count == 1
        fresh = await self._outbound.find_one({"_id": key})
        return (_outbound(fresh) if fresh else None), final


def contact_retention_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    """Messages and their links live as long as notifications do; a number's window and codes
    go once it has not been sent to for that long (its codes expired a day after they were
    given out anyway)."""
    return [
        RetentionRule("notifier_outbound", "created_at", policy.notifications),
        RetentionRule("notifier_outbound_pages", "at", policy.notifications),
        RetentionRule("notifier_contacts", "updated_at", policy.notifications),
    ]
