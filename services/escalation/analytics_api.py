"""Operator routes for response analytics: `GET /api/v1/analytics/incidents` (figures per day
or week) and `GET /api/v1/analytics/responders` (figures per person paged), both over the
incidents opened in `[from, to)`, optionally of one service and one severity.

The figures are computed in Python (services/escalation/analytics.py) over a bounded window:
one range query on the `listing_key` index of `escalation_incidents` (open time first) with a
projection of the fields the figures need. A window longer than `MAX_RANGE`, or holding more
than `MAX_INCIDENTS` incidents, is refused with 400 and asks for a narrower one. The share of
recurrences whose previous incident had a published review reads those incidents' recurrence
links and the previous incidents' reviews by `_id`, in chunks.
"""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from schemas import Severity
from services.escalation.analytics import (
    MAX_INCIDENTS,
    MAX_RANGE,
    Durations,
    Figures,
    IncidentFacts,
    Interval,
    by_interval,
    by_responder,
    figures,
)
from services.escalation.store import listing_key
from tocsin.runtime.clock import Clock
from tocsin.runtime.store import DocumentDatabase

DEFAULT_RANGE = timedelta(days=30)

_FIELDS = {
    "service_id": 1,
    "severity": 1,
    "opened_at": 1,
    "acknowledged_at": 1,
    "acknowledged_by": 1,
    "resolved_at": 1,
    "responders": 1,
}


class WindowTooBusy(Exception):
    pass


class AnalyticsReader:
    """Reads the facts of the incidents opened in a window from `escalation_incidents` (the
    escalation store's collection; read only)."""

    def __init__(self, database: DocumentDatabase) -> None:
        self._incidents = database["escalation_incidents"]
        # Read only too: the recurrence links and reviews (review_store.py) of the incidents.
        self._recurrences = database["escalation_recurrences"]
        self._reviews = database["escalation_reviews"]

    async def opened_between(
        self,
        start: datetime,
        end: datetime,
        service: str | None = None,
        severity: Severity | None = None,
    ) -> list[IncidentFacts]:
        # A listing key is `<open time>/<id>`: every key of an incident opened at or after
        # `start` sorts after the bare time prefix, every one opened before `end` before its.
        query: dict[str, Any] = {
            "listing_key": {"$gt": _prefix(start), "$lt": _prefix(end)},
        }
        if service is not None:
            query["service_id"] = service
        if severity is not None:
            query["severity"] = severity.value
        found: list[tuple[str, IncidentFacts]] = []
        async for doc in self._incidents.find(query, projection=_FIELDS).limit(MAX_INCIDENTS + 1):
            if len(found) == MAX_INCIDENTS:
                raise WindowTooBusy
            found.append((str(doc["_id"]), _facts(doc)))
        links = await self._recurrence_links([incident_id for incident_id, _ in found])
        published = await self._published_reviews(sorted(set(links.values())))
        return [
            replace(
                facts,
                recurrence_of=links.get(incident_id),
                previous_review_published=links.get(incident_id) in published,
            )
            if incident_id in links
            else facts
            for incident_id, facts in found
        ]

    async def _recurrence_links(self, incident_ids: list[str]) -> dict[str, str]:
        """Incident id -> the previous incident it recurs, by `_id` in bounded chunks."""
        links: dict[str, str] = {}
        for start in range(0, len(incident_ids), _CHUNK):
            chunk = incident_ids[start : start + _CHUNK]
            async for doc in self._recurrences.find({"_id": {"$in": chunk}}):
                links[str(doc["_id"])] = str(doc["recurrence_of"])
        return links

    async def _published_reviews(self, incident_ids: list[str]) -> set[str]:
        published: set[str] = set()
        for start in range(0, len(incident_ids), _CHUNK):
            chunk = incident_ids[start : start + _CHUNK]
            query = {"_id": {"$in": chunk}, "status": "published"}
            async for doc in self._reviews.find(query, projection={"status": 1}):
                published.add(str(doc["_id"]))
        return published


_CHUNK = 500


def _prefix(at: datetime) -> str:
    return listing_key(at, "")[:-1]  # the time part, without the `/`


def _facts(doc: dict[str, Any]) -> IncidentFacts:
    responders = []
    escalated = False
    for stored in doc.get("responders", ()):
        # Documents written before levels were kept hold bare user ids (level 0).
        user, level = (stored, 0) if isinstance(stored, str) else (stored["user"], stored["level"])
        responders.append(user)
        escalated = escalated or level > 0
    return IncidentFacts(
        service_id=doc["service_id"],
        severity=Severity(doc["severity"]),
        opened_at=doc["opened_at"],
        acknowledged_at=doc.get("acknowledged_at"),
        acknowledged_by=doc.get("acknowledged_by"),
        resolved_at=doc.get("resolved_at"),
        responders=tuple(responders),
        escalated=escalated,
    )


class DurationsView(BaseModel):
    """Seconds; null when no incident counts."""

    mean: float | None
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, durations: Durations) -> "DurationsView":
        return cls(mean=durations.mean, median=durations.median, p90=durations.p90)


class FiguresView(BaseModel):
    incidents: int = Field(description="Incidents opened (per responder: that paged them).")
    acknowledged: int
    resolved: int
    escalated: int = Field(description="Incidents that paged a level past the first.")
    mtta: DurationsView = Field(description="Time to acknowledge, in seconds.")
    mttr: DurationsView = Field(description="Time to resolve, in seconds.")
    acknowledged_within_5m: float | None = Field(
        description="Share (0..1) of the incidents acknowledged within 5 minutes."
    )
    escalation_rate: float | None = Field(description="Share (0..1) of incidents escalated.")
    recurrences: int = Field(
        description="Incidents linked as a recurrence of an earlier incident of their group."
    )
    recurrences_with_published_review: float | None = Field(
        description="Share (0..1) of those recurrences whose previous incident had a published "
        "post-incident review; null without recurrences."
    )

    @classmethod
    def of(cls, figures: Figures) -> "FiguresView":
        return cls(
            incidents=figures.incidents,
            acknowledged=figures.acknowledged,
            resolved=figures.resolved,
            escalated=figures.escalated,
            mtta=DurationsView.of(figures.mtta),
            mttr=DurationsView.of(figures.mttr),
            acknowledged_within_5m=figures.acknowledged_within_5m,
            escalation_rate=figures.escalation_rate,
            recurrences=figures.recurrences,
            recurrences_with_published_review=figures.recurrences_with_published_review,
        )


class IntervalView(FiguresView):
    start: datetime
    end: datetime


class IncidentAnalytics(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    interval: Interval
    service: str | None
    severity: Severity | None
    total: FiguresView
    intervals: list[IntervalView]


class ResponderView(FiguresView):
    responder: str = Field(description="The user id of the person paged.")


class ResponderAnalytics(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    service: str | None
    severity: Severity | None
    responders: list[ResponderView]


def _window(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    end = _utc(end) if end is not None else now
    start = _utc(start) if start is not None else end - DEFAULT_RANGE
    if start >= end:
        raise HTTPException(400, "`from` must be before `to`")
    if end - start > MAX_RANGE:
        raise HTTPException(
            400, f"the window is longer than {MAX_RANGE.days} days; ask for a shorter one"
        )
    return start, end


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def router(reader: AnalyticsReader, clock: Clock, require_api_key: Callable[..., str]) -> APIRouter:
    api = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
    ApiKey = Annotated[str, Depends(require_api_key)]
    From = Annotated[
        datetime | None,
        Query(alias="from", description="Start (inclusive); default: 30 days before `to`."),
    ]
    To = Annotated[datetime | None, Query(description="End (exclusive); default: now.")]

    async def read(
        start: datetime, end: datetime, service: str | None, severity: Severity | None
    ) -> list[IncidentFacts]:
        try:
            return await reader.opened_between(start, end, service, severity)
        except WindowTooBusy:
            raise HTTPException(
                400,
                f"more than {MAX_INCIDENTS} incidents in the window; ask for a shorter one "
                "or one service",
            ) from None

    @api.get("/incidents", response_model=IncidentAnalytics, responses={400: {}, 401: {}})
    async def incidents(
        _: ApiKey,
        start: From = None,
        to: To = None,
        service: str | None = None,
        severity: Severity | None = None,
        interval: Interval = "day",
    ) -> IncidentAnalytics:
        """Counts, MTTA and MTTR (mean, median, p90), the share acknowledged within 5 minutes
        and the escalation rate of the incidents opened in `[from, to)`, per UTC day or ISO
        week (`interval`), and over the whole window (`total`)."""
        start, end = _window(start, to, clock.now())
        facts = await read(start, end, service, severity)
        return IncidentAnalytics(
            **{"from": start},
            to=end,
            interval=interval,
            service=service,
            severity=severity,
            total=FiguresView.of(figures(facts)),
            intervals=[
                IntervalView(start=i.start, end=i.end, **FiguresView.of(i.figures).model_dump())
                for i in by_interval(facts, start, end, interval)
            ],
        )

    @api.get("/responders", response_model=ResponderAnalytics, responses={400: {}, 401: {}})
    async def responders(
        _: ApiKey,
        start: From = None,
        to: To = None,
        service: str | None = None,
        severity: Severity | None = None,
    ) -> ResponderAnalytics:
        """The same figures per person paged in the incidents opened in `[from, to)`: how many
        incidents paged them; MTTA, MTTR and the share within 5 minutes over the ones they
        acknowledged themselves; the escalation rate of the incidents that paged them."""
        start, end = _window(start, to, clock.now())
        facts = await read(start, end, service, severity)
        return ResponderAnalytics(
            **{"from": start},
            to=end,
            service=service,
            severity=severity,
            responders=[
                ResponderView(responder=r.responder, **FiguresView.of(r.figures).model_dump())
                for r in by_responder(facts)
            ],
        )

    return api
