"""Triage's collections: `triage_alerts` (one document per fingerprint), `triage_incidents`,
`triage_incident_alerts` (which alerts joined which incident) and `triage_open_groups` (one
document per group key with an open incident).

Opening or joining an incident is one atomic upsert on the open group's `_id`, so two triage
replicas racing on one group agree on a single incident. An incident's alert count is the
number of its membership documents, counted when read: joining is then one idempotent insert,
and no crash between two writes can leave the count behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from schemas import AlertReceived, AlertStatus, Label, Severity
from services.triage.domain import AlertContent, Occurrence
from services.triage.domain.flapping import NOT_FLAPPING, FlapState
from services.triage.domain.grouping import DEFAULT_GROUPING, GroupingRule, group_takes
from services.triage.domain.inhibition import SourceAlert
from services.triage.domain.recurrence import Recurrence, ResolvedIncident
from tocsin.runtime.mongo import Document, bulk_write
from tocsin.runtime.retention import Cascade, RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase, InsertRequest, UpdateRequest


@dataclass(frozen=True)
class AlertRecord:
    fingerprint: str
    status: AlertStatus
    incident_id: str | None
    group_key: str
    last_event_id: uuid.UUID | None
    occurrence_event_id: uuid.UUID | None
    count: int
    flap: FlapState = NOT_FLAPPING


@dataclass(frozen=True)
class IncidentRecord:
    id: str
    group_key: str
    service_id: str
    title: str
    severity: Severity
    severity_reasons: tuple[str, ...]
    status: str
    alert_count: int
    # The alert occurrence whose severity the incident has, if it was raised after opening.
    severity_event_id: uuid.UUID | None = None
    recurrence_checked: bool = False  # whether triage looked for earlier incidents of the group
    recurrence_of: str | None = None
    recurrence_count: int = 0
    flapping: bool = False  # an alert of the incident flaps (domain/flapping.py)


@dataclass(frozen=True)
class AlertFilter:
    """Equality filters of the operator's alert listing; `None` means any."""

    status: AlertStatus | None = None
    service_id: str | None = None
    source: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class StoredAlert:
    """An alert as operators see it (labels and annotations as ordered name/value pairs)."""

    fingerprint: str
    status: AlertStatus
    source: str
    integration_id: str
    service_id: str
    summary: str
    severity: str | None
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    count: int
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    incident_id: str | None
    decision: str | None = None
    flapping_since: datetime | None = None


@dataclass(frozen=True)
class HeldAlert:
    """A firing alert a silence held: what triage needs to triage it once the silence ended."""

    fingerprint: str
    held_by: str  # `silence:<id>` or `alert:<fingerprint>` (the inhibiting alert)
    last_event_id: uuid.UUID | None
    integration_id: str
    source: str
    service_id: str
    content: AlertContent


@dataclass(frozen=True)
class QuietFlapping:
    """A resolved alert still flagged flapping: what the quiet sweep needs to re-triage it."""

    fingerprint: str
    last_event_id: uuid.UUID | None
    last_change: datetime
    integration_id: str
    source: str
    service_id: str
    content: AlertContent


# What an alert says and where it comes from, as plain values (cheap to compare): a repeat
# that says the same is recorded without rewriting it.
ContentKey = tuple[object, ...]


def alert_content_key(alert: AlertReceived) -> ContentKey:
    return (
        alert.service_id,
        alert.integration_id,
        alert.source,
        alert.alertname,
        alert.summary,
        alert.severity,
        tuple((label.name, label.value) for label in alert.labels),
        tuple((label.name, label.value) for label in alert.annotations),
        alert.generator_url,
    )


@dataclass(frozen=True)
class StoredState:
    """An alert's state and what it says, read in bulk for a batch of its occurrences."""

    record: AlertRecord
    doc: Document  # as read: what it says is built only when asked (content, content_key)

    def content(self) -> AlertContent:
        return _content(self.doc)

    def says(self, alert: AlertReceived) -> bool:
        """Whether the stored alert says what `alert` says (content_key, compared in place)."""
        doc = self.doc
        return (
            doc.get("summary", "") == alert.summary
            and doc.get("alertname", "") == alert.alertname
            and doc.get("service_id") == alert.service_id
            and doc.get("integration_id") == alert.integration_id
            and doc.get("source") == alert.source
            and doc.get("severity") == alert.severity
            and doc.get("generator_url") == alert.generator_url
            and _same_pairs(doc.get("labels"), alert.labels)
            and _same_pairs(doc.get("annotations"), alert.annotations)
        )

    def content_key(self) -> ContentKey:
        doc = self.doc
        return (
            doc.get("service_id"),
            doc.get("integration_id"),
            doc.get("source"),
            doc.get("alertname", ""),
            doc.get("summary", ""),
            doc.get("severity"),
            _pairs(doc.get("labels")),
            _pairs(doc.get("annotations")),
            doc.get("generator_url"),
        )


@dataclass(frozen=True)
class AlertWrite:
    """One alert's occurrences of a batch step, recorded in one write: `alert` is the last of
    them (its fields are kept), `count` how many there were, `first_seen_at` the first's time
    (kept only if the alert is new)."""

    alert: AlertReceived
    occurrence: Occurrence
    group_key: str
    incident_id: str | None
    decision: str | None = None
    held_by: str | None = None
    inhibit_source: bool = False
    count: int = 1
    first_seen_at: datetime | None = None
    # The stored alert says what `alert` says already: leave that part of the document be.
    same_content: bool = False
    flap: FlapState | None = None  # None: flap detection is off for the alert's service


@dataclass(frozen=True)
class GroupJoin:
    incident_id: str
    opened: bool  # by this call (or an earlier delivery of the same occurrence)
    opened_at: datetime | None  # when the group's incident opened (its window starts)


@dataclass(frozen=True)
class NewIncident:
    candidate_id: str
    group_key: str
    service_id: str
    title: str
    severity: Severity
    severity_reasons: tuple[str, ...]
    opened_at: datetime


class TriageStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def get_alert(self, fingerprint: str) -> AlertRecord | None: ...

    async def get_content(self, fingerprint: str) -> AlertContent | None:
        """What the stored alert says (its summary, severity, labels and annotations)."""

    async def record_alert(
        self,
        alert: AlertReceived,
        occurrence: Occurrence,
        group_key: str,
        incident_id: str | None,
        decision: str | None = None,
        held_by: str | None = None,
        inhibit_source: bool = False,
    ) -> None:
        """Record this occurrence once per event id; a NEW one with the incident it joined,
        or the silence that holds it (incident None), and `decision`, what triage did with it
        and why."""

    async def get_alerts(self, fingerprints: Sequence[str]) -> dict[str, StoredState]:
        """The stored alerts among `fingerprints` (one bulk read), by fingerprint."""

    async def record_alerts(self, writes: Sequence[AlertWrite]) -> None:
        """Record each step (one bulk write). Unguarded: the caller read the alerts' last event
        ids (get_alerts) and writes only what they did not record yet."""

    async def add_members(self, members: Sequence[tuple[str, str]]) -> None:
        """(incident id, fingerprint) memberships, each inserted once (one bulk write)."""

    async def join_group(self, incident: NewIncident, rule: GroupingRule) -> GroupJoin:
        """open_or_join without the membership: the group's incident that takes an alert
        (or the next one, opened with `incident.candidate_id`), and when it opened."""

    async def firing_sources(self) -> list[SourceAlert]:
        """Firing alerts that match the source matchers of an inhibition rule."""

    async def open_group_incidents(self, group_keys: Sequence[str]) -> dict[str, str]:
        """The open incident of each of these groups that has one (group key -> incident id):
        one read of the groups by `_id`, one of their incidents."""

    async def quiet_flapping(
        self, changed_before: datetime, after: str | None, limit: int
    ) -> list[QuietFlapping]:
        """Resolved alerts still flagged flapping whose last change (firing <-> resolved) was
        at or before `changed_before`, in fingerprint order."""

    async def held_firing(self, after: str | None, limit: int) -> list[HeldAlert]:
        """Firing alerts a silence or an inhibition held (attached to no incident), in
        fingerprint order."""

    async def open_or_join(
        self, incident: NewIncident, fingerprint: str, rule: GroupingRule = ...
    ) -> tuple[str, bool]:
        """Return (incident id, whether this call opened it), joining the group's open
        incident if `rule` lets it take the alert, else opening the group's next one."""

    async def raise_severity(
        self,
        incident_id: str,
        expected: Severity,
        severity: Severity,
        reasons: tuple[str, ...],
        cause_event_id: uuid.UUID,
    ) -> bool:
        """Set severity and reasons together if the open incident still has `expected`."""

    async def firing_count(self, incident_id: str) -> int: ...

    async def close(self, incident_id: str, group_key: str, at: datetime) -> None: ...

    async def release(self, incident_id: str, at: datetime, actor: str | None) -> bool:
        """Resolve the incident for triage after escalation resolved it: it takes no more
        alerts, and its firing alerts are detached. False if triage does not know it."""

    async def get_incident(
        self, incident_id: str, *, with_count: bool = True
    ) -> IncidentRecord | None:
        """The incident; its `alert_count` is 0 unless `with_count` (counting costs a query)."""

    async def set_flapping(self, incident_id: str, flapping: bool) -> None:
        """Flag the incident while an alert of it flaps (unflag once it stopped)."""

    async def resolved_in_group(self, group_key: str, since: datetime) -> list[ResolvedIncident]:
        """The group's incidents resolved after `since`."""

    async def link_recurrence(self, incident_id: str, found: Recurrence | None) -> bool:
        """Record on the incident what the recurrence check found, once: False if it was
        recorded before (by an earlier delivery, or another replica)."""

    async def list_alerts(
        self, where: AlertFilter, after: str | None, limit: int
    ) -> list[StoredAlert]:
        """Up to `limit` alerts matching `where` in fingerprint order, after fingerprint `after`."""


# What triage needs to classify an occurrence (not the labels and annotations).
_ALERT_STATE = {
    "status": 1,
    "incident_id": 1,
    "group_key": 1,
    "last_event_id": 1,
    "occurrence_event_id": 1,
    "count": 1,
    "flap_changes": 1,
    "flap_last_change": 1,
    "flapping_since": 1,
}


_ALERT_CONTENT = {
    "alertname": 1,
    "summary": 1,
    "severity": 1,
    "labels": 1,
    "annotations": 1,
    "generator_url": 1,
}

_ALERT_SOURCE = {"service_id": 1, "integration_id": 1, "source": 1}
# What held a NEW occurrence back, and why: a redelivery publishes its `alert_held` again.
_ALERT_HELD = {"held_by": 1, "decision": 1}

_ATTEMPTS = 3
_FLAGS_MIGRATION = "held-and-flapping-flags"


def _uuid(value: object) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


class MongoTriageStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._alerts = database["triage_alerts"]
        self._incidents = database["triage_incidents"]
        self._open_groups = database["triage_open_groups"]
        self._members = database["triage_incident_alerts"]
        self._migrations = database["triage_migrations"]

    async def ensure_indexes(self) -> None:
        await self._alerts.create_index([("incident_id", 1), ("status", 1)])
        await self._incidents.create_index("group_key")
        await self._members.create_index("incident_id")
        await self._alerts.create_index([("status", 1), ("last_seen", 1)])
        await self._alerts.create_index([("inhibit_source", 1), ("status", 1)])
        # The unsilence sweep: firing alerts a silence, window or inhibition holds.
        await self._alerts.create_index([("held", 1), ("status", 1)])
        # The flapping sweep: resolved alerts still flagged flapping, by their last change.
        await self._alerts.create_index([("flapping", 1), ("status", 1), ("flap_last_change", 1)])
        await self._incidents.create_index([("status", 1), ("resolved_at", 1)])
        # Recurrence: a group's incidents resolved since a time.
        await self._incidents.create_index([("group_key", 1), ("status", 1), ("resolved_at", 1)])
        await self._flag_older_alerts()

    async def _flag_older_alerts(self) -> None:
        """Alerts stored before the `held` and `flapping` flags existed get them, once per
        database (a marker in `triage_migrations`): the unsilence and quiet sweeps read by these
        flags, and without them such an alert, held when its silence ended or still flagged
        flapping, would wait for its next occurrence. Several replicas may run it at once: it
        only sets what the flags would be, and later writes set them themselves."""
        if await self._migrations.find_one({"_id": _FLAGS_MIGRATION}) is not None:
            return
        await self._alerts.update_many(
            {"status": AlertStatus.FIRING.value, "incident_id": None, "held_by": {"$gt": ""}},
            {"$set": {"held": True}},
        )
        await self._alerts.update_many(
            {"flapping_since": {"$ne": None}}, {"$set": {"flapping": True}}
        )
        await self._migrations.update_one(
            {"_id": _FLAGS_MIGRATION}, {"$set": {"done": True}}, upsert=True
        )

    async def get_alert(self, fingerprint: str) -> AlertRecord | None:
        doc = await self._alerts.find_one({"_id": fingerprint}, projection=_ALERT_STATE)
        return _record(doc) if doc is not None else None

    async def get_content(self, fingerprint: str) -> AlertContent | None:
        doc = await self._alerts.find_one({"_id": fingerprint}, projection=_ALERT_CONTENT)
        return _content(doc) if doc is not None else None

    async def get_alerts(self, fingerprints: Sequence[str]) -> dict[str, StoredState]:
        wanted = list(dict.fromkeys(fingerprints))
        projection = {**_ALERT_STATE, **_ALERT_CONTENT, **_ALERT_SOURCE, **_ALERT_HELD}
        if len(wanted) == 1:
            # FerretDB looks up {_id: x} by index, but scans the collection for an $in.
            doc = await self._alerts.find_one({"_id": wanted[0]}, projection=projection)
            return {doc["_id"]: StoredState(_record(doc), doc)} if doc is not None else {}
        found = self._alerts.find({"_id": {"$in": wanted}}, projection=projection)
        return {doc["_id"]: StoredState(_record(doc), doc) async for doc in found}

    async def record_alert(
        self,
        alert: AlertReceived,
        occurrence: Occurrence,
        group_key: str,
        incident_id: str | None,
        decision: str | None = None,
        held_by: str | None = None,
        inhibit_source: bool = False,
    ) -> None:
        update = _alert_update(
            AlertWrite(alert, occurrence, group_key, incident_id, decision, held_by, inhibit_source)
        )
        try:
            await self._alerts.update_one(
                # The guard makes a redelivered message a no-op instead of a second count.
                {"_id": alert.fingerprint, "last_event_id": {"$ne": str(alert.event_id)}},
                update,
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # already recorded by an earlier delivery of this very message

    async def record_alerts(self, writes: Sequence[AlertWrite]) -> None:
        # Filtered on `_id` alone: FerretDB looks only such a filter up by index (any other
        # filter scans the collection), and the caller already skipped what was recorded.
        await bulk_write(
            self._alerts,
            [
                UpdateRequest({"_id": w.alert.fingerprint}, _alert_update(w), upsert=True)
                for w in writes
            ],
        )

    async def add_members(self, members: Sequence[tuple[str, str]]) -> None:
        # A duplicate is an alert that joined this incident before (it flapped, a redelivery).
        await bulk_write(
            self._members,
            [
                InsertRequest({"_id": f"{incident_id}/{fingerprint}", "incident_id": incident_id})
                for incident_id, fingerprint in dict.fromkeys(members)
            ],
        )

    async def open_group_incidents(self, group_keys: Sequence[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(group_keys))
        if not wanted:
            return {}
        if len(wanted) == 1:
            # FerretDB looks up {_id: x} by index, but scans the collection for an $in.
            one = await self._open_groups.find_one({"_id": wanted[0]})
            groups = {one["_id"]: one["incident_id"]} if one is not None else {}
        else:
            found = self._open_groups.find({"_id": {"$in": wanted}})
            groups = {doc["_id"]: doc["incident_id"] async for doc in found}
        ids = list(dict.fromkeys(groups.values()))
        if len(ids) == 1:
            doc = await self._incidents.find_one({"_id": ids[0]}, projection={"status": 1})
            docs = [doc] if doc is not None else []
        elif ids:
            incidents = self._incidents.find({"_id": {"$in": ids}}, projection={"status": 1})
            docs = [d async for d in incidents]
        else:
            return {}
        open_ids = {d["_id"] for d in docs if d.get("status") == "open"}
        return {key: i for key, i in groups.items() if i in open_ids}

    async def firing_sources(self) -> list[SourceAlert]:
        found = self._alerts.find(
            {"inhibit_source": True, "status": AlertStatus.FIRING.value},
            projection={"labels": 1},
        )
        return [SourceAlert(doc["_id"], dict(_pairs(doc.get("labels")))) async for doc in found]

    async def quiet_flapping(
        self, changed_before: datetime, after: str | None, limit: int
    ) -> list[QuietFlapping]:
        query: Document = {
            "flapping": True,
            "status": AlertStatus.RESOLVED.value,
            "flap_last_change": {"$lte": changed_before},
        }
        if after is not None:
            query["_id"] = {"$gt": after}
        found = self._alerts.find(query).sort("_id", 1).limit(limit)
        return [
            QuietFlapping(
                fingerprint=doc["_id"],
                last_event_id=_uuid(doc.get("last_event_id")),
                last_change=doc["flap_last_change"],
                integration_id=doc["integration_id"],
                source=doc["source"],
                service_id=doc["service_id"],
                content=_content(doc),
            )
            async for doc in found
        ]

    async def held_firing(self, after: str | None, limit: int) -> list[HeldAlert]:
        # Equalities only: FerretDB hands them to PostgreSQL, where `incident_id: null` and
        # `held_by: {$gt: ""}` made it decode every firing alert in Go, every sweep.
        query: Document = {"held": True, "status": AlertStatus.FIRING.value}
        if after is not None:
            query["_id"] = {"$gt": after}
        found = self._alerts.find(query).sort("_id", 1).limit(limit)
        return [
            HeldAlert(
                fingerprint=doc["_id"],
                held_by=doc["held_by"],
                last_event_id=_uuid(doc.get("last_event_id")),
                integration_id=doc["integration_id"],
                source=doc["source"],
                service_id=doc["service_id"],
                content=_content(doc),
            )
            async for doc in found
        ]

    async def open_or_join(
        self, incident: NewIncident, fingerprint: str, rule: GroupingRule = DEFAULT_GROUPING
    ) -> tuple[str, bool]:
        incident_id = (await self.join_group(incident, rule)).incident_id
        # Membership is a document per (incident, fingerprint), not an array in the incident:
        # an alert storm would otherwise grow one document without bound.
        try:
            await self._members.insert_one(
                {"_id": f"{incident_id}/{fingerprint}", "incident_id": incident_id}
            )
        except DuplicateKeyError:
            pass  # this alert joined this incident before (it flapped, or a redelivery)
        return incident_id, incident_id == incident.candidate_id

    async def join_group(self, incident: NewIncident, rule: GroupingRule) -> GroupJoin:
        for _ in range(_ATTEMPTS):
            incident_id, opened_at = await self._open_group(incident, rule)
            if await self._upsert_incident(incident_id, incident):
                opened = incident_id == incident.candidate_id
                return GroupJoin(incident_id, opened, opened_at)
            # The group still names an incident that was resolved (released while we read
            # it): free the group and open a new incident instead of joining a closed one.
            await self._open_groups.delete_one(
                {"_id": incident.group_key, "incident_id": incident_id}
            )
        raise RuntimeError(f"could not open or join group {incident.group_key!r}")

    async def _open_group(
        self, incident: NewIncident, rule: GroupingRule
    ) -> tuple[str, datetime | None]:
        """The id of the group's open incident that still takes this alert; this call's
        candidate if there was none, or if the group's incident is past its window or full
        (the group then moves on to the candidate, by compare-and-set on the incident id, so
        racing replicas agree on one next incident)."""
        fresh = {
            "incident_id": incident.candidate_id,
            "opened_at": incident.opened_at,
            "joined": 1,
        }
        # A storm makes many replicas contend on one group: retry more than a plain upsert.
        for _ in range(_ATTEMPTS * 10):
            try:
                group = await self._open_groups.find_one_and_update(
                    {"_id": incident.group_key},
                    {"$setOnInsert": fresh},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue  # another replica inserted the group first: read its incident
            if group is None:
                continue
            incident_id: str = group["incident_id"]
            opened_at: datetime | None = group.get("opened_at")
            if incident_id == incident.candidate_id:
                # Opened by this call (or an earlier delivery of it).
                return incident_id, opened_at
            if group_takes(rule, opened_at, incident.opened_at) and (
                await self._take_place(incident.group_key, incident_id, rule)
            ):
                return incident_id, opened_at
            # Past the window or full: this alert opens the group's next incident.
            await self._open_groups.update_one(
                {"_id": incident.group_key, "incident_id": incident_id}, {"$set": fresh}
            )
        raise RuntimeError(f"could not open or join group {incident.group_key!r}")

    async def _take_place(self, key: str, incident_id: str, rule: GroupingRule) -> bool:
        """One more alert in the group's incident, unless it holds `max_alerts` already."""
        if rule.max_alerts is None:
            return True
        taken = await self._open_groups.update_one(
            {"_id": key, "incident_id": incident_id, "joined": {"$lt": rule.max_alerts}},
            {"$inc": {"joined": 1}},
        )
        return taken.modified_count == 1

    async def _upsert_incident(self, incident_id: str, incident: NewIncident) -> bool:
        """Create the incident or join it; False if it exists but is no longer open."""
        is_open = {"_id": incident_id, "status": "open"}  # an insert takes its status from here
        # Severity is set here only by the insert: a more severe alert raises it, with its
        # reasons, through raise_severity (one compare-and-set on the severity).
        update = {
            "$setOnInsert": {
                "group_key": incident.group_key,
                "service_id": incident.service_id,
                "title": incident.title,
                "severity": incident.severity.value,
                "severity_reasons": list(incident.severity_reasons),
                "opened_at": incident.opened_at,
            },
        }
        try:
            await self._incidents.update_one(is_open, update, upsert=True)
        except DuplicateKeyError:
            # The incident exists but is resolved, or another worker inserted it just now.
            joined = await self._incidents.update_one(is_open, update)
            return joined.matched_count == 1
        return True

    async def raise_severity(
        self,
        incident_id: str,
        expected: Severity,
        severity: Severity,
        reasons: tuple[str, ...],
        cause_event_id: uuid.UUID,
    ) -> bool:
        raised = await self._incidents.update_one(
            {"_id": incident_id, "status": "open", "severity": expected.value},
            {
                "$set": {
                    "severity": severity.value,
                    "severity_reasons": list(reasons),
                    "severity_event_id": str(cause_event_id),
                }
            },
        )
        return raised.modified_count == 1

    async def firing_count(self, incident_id: str) -> int:
        return await self._alerts.count_documents(
            {"incident_id": incident_id, "status": AlertStatus.FIRING.value}
        )

    async def close(self, incident_id: str, group_key: str, at: datetime) -> None:
        await self._open_groups.delete_one({"_id": group_key, "incident_id": incident_id})
        await self._incidents.update_one(
            {"_id": incident_id, "status": "open"},
            {"$set": {"status": "resolved", "resolved_at": at}},
        )

    async def release(self, incident_id: str, at: datetime, actor: str | None) -> bool:
        incident = await self._incidents.find_one({"_id": incident_id}, projection={"group_key": 1})
        if incident is None:
            return False
        # Each step is idempotent and the order lets a redelivery finish the work: the incident
        # is closed first, so open_or_join refuses it even before the group is freed.
        await self._incidents.update_one(
            {"_id": incident_id, "status": "open"},
            {"$set": {"status": "resolved", "resolved_at": at, "resolved_by": actor}},
        )
        await self._open_groups.delete_one(
            {"_id": incident["group_key"], "incident_id": incident_id}
        )
        await self._alerts.update_many(
            {"incident_id": incident_id, "status": AlertStatus.FIRING.value},
            {"$set": {"incident_id": None}},
        )
        return True

    async def set_flapping(self, incident_id: str, flapping: bool) -> None:
        await self._incidents.update_one({"_id": incident_id}, {"$set": {"flapping": flapping}})

    async def resolved_in_group(self, group_key: str, since: datetime) -> list[ResolvedIncident]:
        found = self._incidents.find(
            {"group_key": group_key, "status": "resolved", "resolved_at": {"$gt": since}},
            projection={"resolved_at": 1},
        )
        return [ResolvedIncident(doc["_id"], doc["resolved_at"]) async for doc in found]

    async def link_recurrence(self, incident_id: str, found: Recurrence | None) -> bool:
        linked = await self._incidents.update_one(
            {"_id": incident_id, "recurrence_checked": {"$ne": True}},
            {
                "$set": {
                    "recurrence_checked": True,
                    "recurrence_of": found.of if found else None,
                    "recurrence_count": found.count if found else 0,
                }
            },
        )
        return linked.modified_count == 1

    async def get_incident(
        self, incident_id: str, *, with_count: bool = True
    ) -> IncidentRecord | None:
        doc = await self._incidents.find_one({"_id": incident_id})
        if doc is None:
            return None
        members = (
            await self._members.count_documents({"incident_id": incident_id}) if with_count else 0
        )
        return IncidentRecord(
            id=doc["_id"],
            group_key=doc["group_key"],
            service_id=doc["service_id"],
            title=doc["title"],
            severity=Severity(doc["severity"]),
            severity_reasons=tuple(doc.get("severity_reasons", ())),
            status=doc["status"],
            # Memberships written before the count was derived carry no `incident_id`; the
            # counter of that time (never written since) counts them.
            alert_count=doc.get("alert_count", 0) + members,
            severity_event_id=_uuid(doc.get("severity_event_id")),
            recurrence_checked=doc.get("recurrence_checked", False),
            recurrence_of=doc.get("recurrence_of"),
            recurrence_count=doc.get("recurrence_count", 0),
            flapping=doc.get("flapping", False),
        )

    async def list_alerts(
        self, where: AlertFilter, after: str | None, limit: int
    ) -> list[StoredAlert]:
        # Fingerprint (`_id`) order is stable while alerts keep changing, so a cursor on it
        # visits each alert once; equality, `$gt`, sort and limit are all FerretDB supports here.
        query: Document = {}
        by_id: Document = {}
        if where.fingerprint is not None:
            by_id["$eq"] = where.fingerprint
        if after is not None:
            by_id["$gt"] = after
        if by_id:
            query["_id"] = by_id
        if where.status is not None:
            query["status"] = where.status.value
        if where.service_id is not None:
            query["service_id"] = where.service_id
        if where.source is not None:
            query["source"] = where.source
        found = self._alerts.find(query).sort("_id", 1).limit(limit)
        return [_stored_alert(doc) async for doc in found]


_STATUSES = {status.value: status for status in AlertStatus}


def _record(doc: Document) -> AlertRecord:
    return AlertRecord(
        fingerprint=doc["_id"],
        status=_STATUSES.get(doc["status"]) or AlertStatus(doc["status"]),
        incident_id=doc.get("incident_id"),
        group_key=doc["group_key"],
        last_event_id=_uuid(doc.get("last_event_id")),
        occurrence_event_id=_uuid(doc.get("occurrence_event_id")),
        count=doc.get("count", 0),
        flap=FlapState(
            tuple(doc.get("flap_changes") or ()),
            doc.get("flap_last_change"),
            doc.get("flapping_since"),
        ),
    )


def _alert_update(write: AlertWrite) -> Document:
    alert = write.alert
    event_id = str(alert.event_id)
    fields: Document = {
        "status": alert.status.value,
        "last_event_id": event_id,
        "last_seen": alert.occurred_at,
        "group_key": write.group_key,
        "inhibit_source": write.inhibit_source,
    }
    if not write.same_content:
        fields.update(
            service_id=alert.service_id,
            integration_id=alert.integration_id,
            source=alert.source,
            alertname=alert.alertname,
            summary=alert.summary,
            severity=alert.severity,
            labels=[{"name": label.name, "value": label.value} for label in alert.labels],
            annotations=[{"name": a.name, "value": a.value} for a in alert.annotations],
            generator_url=alert.generator_url,
        )
    if write.occurrence is Occurrence.NEW:
        fields["occurrence_event_id"] = event_id
        fields["incident_id"] = write.incident_id
        fields["held_by"] = write.held_by
        # Firing, held and in no incident: what the unsilence sweep reads (by equality).
        fields["held"] = write.held_by is not None and write.incident_id is None
    elif alert.status is AlertStatus.RESOLVED:
        fields["held"] = False
    if write.decision is not None:
        fields["decision"] = write.decision
    if write.flap is not None:
        fields["flap_changes"] = list(write.flap.changes)
        fields["flap_last_change"] = write.flap.last_change
        fields["flapping_since"] = write.flap.since
        # An equality the quiet sweep finds flapping alerts by (FerretDB hands it down).
        fields["flapping"] = write.flap.since is not None
    if alert.status is AlertStatus.RESOLVED:
        fields["resolved_at"] = alert.ends_at or alert.occurred_at
    return {
        "$set": fields,
        "$inc": {"count": write.count},
        "$setOnInsert": {"first_seen": write.first_seen_at or alert.occurred_at},
    }


def _content(doc: Document) -> AlertContent:
    return AlertContent(
        alertname=doc.get("alertname", ""),
        summary=doc.get("summary", ""),
        severity=doc.get("severity"),
        labels=_labels(doc.get("labels")),
        annotations=_labels(doc.get("annotations")),
        generator_url=doc.get("generator_url"),
    )


def _labels(labels: list[Document] | None) -> tuple[Label, ...]:
    return tuple(Label(name=label["name"], value=label["value"]) for label in labels or ())


def _same_pairs(stored: list[Document] | None, labels: tuple[Label, ...]) -> bool:
    stored = stored or []
    if len(stored) != len(labels):
        return False
    return all(
        pair["name"] == label.name and pair["value"] == label.value
        for pair, label in zip(stored, labels, strict=True)
    )


def _pairs(labels: list[Document] | None) -> tuple[tuple[str, str], ...]:
    return tuple((label["name"], label["value"]) for label in labels or ())


def _stored_alert(doc: Document) -> StoredAlert:
    return StoredAlert(
        fingerprint=doc["_id"],
        status=AlertStatus(doc["status"]),
        source=doc["source"],
        integration_id=doc["integration_id"],
        service_id=doc["service_id"],
        summary=doc.get("summary", ""),
        severity=doc.get("severity"),
        labels=_pairs(doc.get("labels")),
        annotations=_pairs(doc.get("annotations")),
        count=doc.get("count", 0),
        first_seen=doc["first_seen"],
        last_seen=doc["last_seen"],
        resolved_at=doc.get("resolved_at"),
        incident_id=doc.get("incident_id"),
        decision=doc.get("decision"),
        flapping_since=doc.get("flapping_since"),
    )


def retention_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    """Resolved alerts and resolved incidents (with their memberships) past retention; open
    ones are never deleted. A deleted alert that fires again is simply new."""
    resolved = {"status": "resolved"}
    return [
        RetentionRule("triage_alerts", "last_seen", policy.resolved, resolved),
        RetentionRule(
            "triage_incidents",
            "resolved_at",
            policy.resolved,
            resolved,
            cascade=(Cascade("triage_incident_alerts", "incident_id"),),
        ),
        # Ended silences; the alerts they silenced keep the id in their decision.
        RetentionRule("triage_silences", "ends_at", policy.resolved),
    ]
