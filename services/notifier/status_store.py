"""The notifier's status page collections: `status_incidents` (its public record of each
incident, see status_domain.py; compare-and-set on `version`), `status_sent` (which subscriber
got which update: a redelivered message tells nobody twice) and `status_subscribers` (public
e-mail subscribers, pending until they confirm) and `status_maintenance_windows` (its copy of
the maintenance windows created through triage's API, from `maintenance.windows`; a deleted one
stays as a small tombstone so an older message redelivered later cannot bring it back).

Escalation's collections are never read: everything here comes from the topics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from schemas import ComponentStatus, MaintenanceWindowChanged, Severity, UpdateStatus
from services.notifier.status_domain import PublicUpdate, StatusIncident, WindowCopy
from tocsin.runtime.mongo import Document
from tocsin.runtime.retention import RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _doc(incident: StatusIncident) -> Document:
    return {
        "service_id": incident.service_id,
        "opened_at": incident.opened_at,
        "updated_at": incident.updated_at,
        "severity": incident.severity.value if incident.severity else None,
        "severity_at": [{"severity": s.value, "at": t} for s, t in incident.severity_at.items()],
        "resolved_at": incident.resolved_at,
        "open": incident.resolved_at is None,
        "updates": [
            {"id": u.id, "status": u.status.value, "body": u.body, "at": u.at}
            for u in incident.updates
        ],
        "manual": [{"component_id": c, "status": s.value} for c, s in incident.manual.items()],
        "event_ids": list(incident.event_ids),
    }


def _incident(doc: Document) -> StatusIncident:
    return StatusIncident(
        id=doc["_id"],
        service_id=doc["service_id"],
        opened_at=doc["opened_at"],
        updated_at=doc["updated_at"],
        severity=Severity(doc["severity"]) if doc.get("severity") else None,
        severity_at={Severity(p["severity"]): p["at"] for p in doc.get("severity_at") or ()},
        resolved_at=doc.get("resolved_at"),
        updates=tuple(
            PublicUpdate(u["id"], UpdateStatus(u["status"]), u["body"], u["at"])
            for u in doc.get("updates") or ()
        ),
        manual={m["component_id"]: ComponentStatus(m["status"]) for m in doc.get("manual") or ()},
        event_ids=tuple(doc.get("event_ids") or ()),
        version=int(doc.get("version", 0)),
    )


class StatusStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._incidents = database["status_incidents"]
        self._sent = database["status_sent"]
        self._subscribers = database["status_subscribers"]
        self._windows = database["status_maintenance_windows"]

    async def ensure_indexes(self) -> None:
        await self._incidents.create_index([("open", 1), ("resolved_at", 1)])
        await self._sent.create_index("at")
        await self._subscribers.create_index([("page_id", 1), ("confirmed", 1)])

    async def get(self, incident_id: str) -> StatusIncident | None:
        doc = await self._incidents.find_one({"_id": incident_id})
        return _incident(doc) if doc else None

    async def save(self, incident: StatusIncident) -> bool:
        """Compare-and-set: False when someone else changed it since it was read."""
        fields = _doc(incident)
        if incident.version == 0:
            try:
                await self._incidents.insert_one({"_id": incident.id, **fields, "version": 1})
            except DuplicateKeyError:
                return False
            return True
        outcome = await self._incidents.update_one(
            {"_id": incident.id, "version": incident.version},
            {"$set": {**fields, "version": incident.version + 1}},
        )
        return outcome.matched_count == 1

    async def shown(self, since: datetime) -> list[StatusIncident]:
        """Open incidents and those resolved since `since`: all a page can show."""
        open_ = self._incidents.find({"open": True})
        closed = self._incidents.find({"open": False, "resolved_at": {"$gt": since}})
        return [_incident(doc) async for doc in open_] + [_incident(doc) async for doc in closed]

    async def first_send(self, key: str, at: datetime) -> bool:
        """Mark `key` (an update to a subscriber) sent; False if it already was."""
        try:
            await self._sent.insert_one({"_id": key, "at": at})
        except DuplicateKeyError:
            return False
        return True

    async def unsend(self, key: str) -> None:
        """The send failed after all: let a redelivery try it again."""
        await self._sent.delete_one({"_id": key})

    # -- public e-mail subscribers ------------------------------------------------------------

    async def may_confirm(
        self, page_id: str, email: str, at: datetime, interval: timedelta
    ) -> bool:
        """Record a subscription request (pending until confirmed); False when a confirmation
        went to this address less than `interval` ago (send none now)."""
        key = {"_id": f"{page_id}/{email}"}
        await self._subscribers.update_one(
            key,
            {
                "$setOnInsert": {
                    "page_id": page_id,
                    "email": email,
                    "confirmed": False,
                    "created_at": at,
                    "asked_at": _EPOCH,
                }
            },
            upsert=True,
        )
        # Compare-and-set on the last request time: one of two racing requests sends.
        doc = await self._subscribers.find_one(key)
        last = doc.get("asked_at", _EPOCH) if doc else _EPOCH
        if last > at - interval:
            return False
        outcome = await self._subscribers.update_one(
            {**key, "asked_at": last}, {"$set": {"asked_at": at}}
        )
        return outcome.matched_count == 1

    async def confirm_subscriber(self, page_id: str, email: str, at: datetime) -> bool:
        outcome = await self._subscribers.update_one(
            {"_id": f"{page_id}/{email}"}, {"$set": {"confirmed": True, "confirmed_at": at}}
        )
        return outcome.matched_count == 1

    async def remove_subscriber(self, page_id: str, email: str) -> None:
        await self._subscribers.delete_one({"_id": f"{page_id}/{email}"})

    async def confirmed_subscribers(self, page_id: str) -> list[str]:
        cursor = self._subscribers.find({"page_id": page_id, "confirmed": True})
        return [doc["email"] async for doc in cursor]

    async def is_confirmed(self, page_id: str, email: str) -> bool:
        doc = await self._subscribers.find_one({"_id": f"{page_id}/{email}"})
        return bool(doc and doc.get("confirmed"))

    async def save_window(self, change: MaintenanceWindowChanged) -> bool:
        """Keep the window as the message says, unless a newer message already did (False)."""
        fields: Document = {
            "occurred_at": change.occurred_at,
            "deleted": change.deleted,
            "services": list(change.services),
            "starts_at": change.starts_at,
            "duration_seconds": change.duration_seconds,
            "rrule": change.rrule,
            "timezone": change.timezone,
        }
        try:
            outcome = await self._windows.update_one(
                {"_id": change.window_id, "occurred_at": {"$lte": change.occurred_at}},
                {"$set": fields},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the stored copy is newer
        return bool(outcome.matched_count or outcome.upserted_id is not None)

    async def windows(self) -> list[WindowCopy]:
        """The API's windows not deleted (few: people create them)."""
        return [
            WindowCopy(
                window_id=doc["_id"],
                services=tuple(doc["services"]),
                starts_at=_aware(doc["starts_at"]),
                duration=timedelta(seconds=doc["duration_seconds"]),
                rrule=doc.get("rrule"),
                timezone=doc.get("timezone") or "UTC",
            )
            async for doc in self._windows.find({"deleted": False}).sort("_id", 1)
            if doc.get("starts_at") is not None
        ]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def status_retention_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    return [
        RetentionRule("status_incidents", "resolved_at", policy.resolved, {"open": False}),
        RetentionRule("status_sent", "at", policy.notifications),
    ]
