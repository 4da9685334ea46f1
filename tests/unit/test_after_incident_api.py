"""After the incident, through the escalation service's routes on the embedded bus and store
(consumers running, clock moved by the test): notes, the post-incident review (pre-filled,
compare-and-set, statuses, Markdown), action items (checks naming the field, listing, the
overdue reminder once a day) and the review reminder after a resolve."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from schemas import (
    INCIDENTS_EVENTS,
    NOTIFICATIONS_REQUESTED,
    IncidentEventKind,
    NotificationEvent,
    NotificationRequested,
    Severity,
)
from services.escalation.app import build
from services.escalation.reminders import Reminders
from tests.unit.escalation_harness import T0, Rig, alert, config, incident_event, rig
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.service import Service

DAY = timedelta(days=1)


@dataclass
class Api:
    rig: Rig
    client: httpx.AsyncClient
    reminders: Reminders

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(path, json=body)

    async def patch(self, path: str, body: Any) -> httpx.Response:
        return await self.client.patch(path, json=body)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params)

    def reminded(self) -> list[NotificationRequested]:
        return [
            m
            for m in self.rig.bus.of(NOTIFICATIONS_REQUESTED, NotificationRequested)
            if m.event is NotificationEvent.REMINDER
        ]


def reminders_of(service: Service) -> Reminders:
    """The service's reminders (its loop's owner), to fire them at the test's clock."""
    owners = [getattr(loop, "__self__", None) for loop in service.loops]
    [reminders] = [owner for owner in owners if isinstance(owner, Reminders)]
    return reminders


@contextlib.asynccontextmanager
async def serving(r: Rig) -> AsyncIterator[Api]:
    service = build(
        r.bus,
        r.store,
        r.live.view(TocsinConfig.escalation),
        r.clock,
        lambda: "ops",
        instance_id="api",
        oncall=r.oncall,
        database=r.database,
    )
    for start in service.on_start:
        await start()
    app = FastAPI()
    app.include_router(service.router)
    tasks = [asyncio.create_task(r.bus.consume(s)) for s in service.subscriptions]
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
            yield Api(r, client, reminders_of(service))
    finally:
        # Let the consumers take what was just published before cancelling them: on Python
        # 3.11 the embedded bus's `asyncio.wait_for(wakeup.wait(), 1.0)` swallows a cancel that
        # arrives while its wakeup has fired but it has not run yet, and gather never returns.
        await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with rig(tmp_path, config()) as r, serving(r) as served:
        yield served


async def eventually(check: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


# -- notes ---------------------------------------------------------------------------------


async def test_a_note_lands_on_the_timeline_with_its_author(api: Api) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    created = await api.post("/api/v1/incidents/inc-1/notes", {"text": "rolled back v2.3.1"})
    assert created.status_code == 201, created.text
    timeline = (await api.get("/api/v1/incidents/inc-1/timeline")).json()
    entries = timeline["timeline"]
    notes = [e for e in entries if e["action"] == "note"]
    assert [(n["actor"], n["detail"]) for n in notes] == [("api:ops", "rolled back v2.3.1")]


async def test_bad_notes_are_refused(api: Api) -> None:
    missing = await api.post("/api/v1/incidents/nope/notes", {"text": "x"})
    assert missing.status_code == 404
    assert missing.json()["detail"].startswith("incident:")
    await api.rig.engine.on_incident_event(incident_event())
    empty = await api.post("/api/v1/incidents/inc-1/notes", {"text": ""})
    assert empty.status_code == 422
    assert "text" in str(empty.json()["detail"])


# -- reviews -------------------------------------------------------------------------------


async def resolved_incident(api: Api, severity: Severity = Severity.SEV1) -> None:
    await api.rig.engine.on_incident_event(incident_event(severity=severity))
    api.rig.clock.advance(timedelta(minutes=30))
    resolved = await api.post("/api/v1/incidents/inc-1/resolve")
    assert resolved.status_code == 200, resolved.text


async def test_a_review_is_prefilled_edited_published_and_exported(api: Api) -> None:
    await resolved_incident(api)
    created = await api.post("/api/v1/incidents/inc-1/review", {"symptoms": "5xx on checkout"})
    assert created.status_code == 201, created.text
    review = created.json()
    assert review["status"] == "draft"
    assert review["version"] == 1
    assert review["impact"]["start"] == T0.isoformat().replace("+00:00", "Z")
    assert review["impact"]["end"] is not None
    assert review["impact"]["components"] == ["checkout"]
    assert review["original_report"].startswith("CheckoutErrors (SEV1 on checkout)")
    assert [item["text"].split(":")[0] for item in review["timeline"]][:2] == [
        "triggered",
        "paged alice via alice-hook",
    ]
    again = await api.post("/api/v1/incidents/inc-1/review", {})
    assert again.status_code == 409

    edit = {
        "version": 1,
        "root_causes": ["connection pool too small after the v2.3.1 deploy"],
        "five_whys": [
            {"question": "Why did checkout fail?", "answer": "the DB pool was exhausted"},
            {"question": "Why was it exhausted?", "answer": "v2.3.1 halved the pool size"},
        ],
        "symptom_fix": "rolled back",
        "root_cause_fix": "pool size from config, checked in CI",
        "prevention": "load test before deploy",
        "lessons": "alert on pool saturation",
        "impact": {"start": T0.isoformat(), "end": (T0 + DAY).isoformat(), "customers": "EU"},
        "status": "in_review",
    }
    patched = await api.patch("/api/v1/incidents/inc-1/review", edit)
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    assert patched.json()["status"] == "in_review"
    stale = await api.patch("/api/v1/incidents/inc-1/review", {**edit, "lessons": "x"})
    assert stale.status_code == 409
    assert stale.json()["detail"].startswith("version:")
    published = await api.patch(
        "/api/v1/incidents/inc-1/review", {"version": 2, "status": "published"}
    )
    assert published.status_code == 200, published.text

    # The one SEV1 incident has a published review.
    assert REGISTRY.get_sample_value("tocsin_escalation_reviews_published_ratio") == 1.0
    assert REGISTRY.get_sample_value("tocsin_escalation_review_required_incidents") == 1.0

    md = await api.get("/api/v1/incidents/inc-1/review.md")
    assert md.status_code == 200
    assert md.headers["content-type"].startswith("text/markdown")
    text = md.text
    for heading in (
        "## Original report",
        "## Symptoms",
        "## Impact",
        "## Timeline",
        "## Root causes",
        "## Five whys",
        "## Symptom fix",
        "## Root cause fix",
        "## Prevention",
        "## Lessons learned",
    ):
        assert heading in text
    assert "1. **Why did checkout fail?**" in text
    assert "- Customers: EU" in text
    timeline = (await api.get("/api/v1/incidents/inc-1/timeline")).json()
    entries = timeline["timeline"]
    assert [e["detail"] for e in entries if e["action"] == "review"] == [
        "post-incident review started (draft)",
        "post-incident review submitted for review",
        "post-incident review published",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": 1, "status": "published"}, "status"),  # draft cannot publish directly
        ({"version": 1, "five_whys": [{"question": " ", "answer": "x"}]}, "five_whys[0].question"),
        (
            {
                "version": 1,
                "impact": {"start": "2026-11-25T10:00:00Z", "end": "2026-11-24T10:00:00Z"},
            },
            "impact.end",
        ),
        ({"version": 1, "root_causes": "one"}, "root_causes"),
    ],
)
async def test_bad_review_edits_name_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    await resolved_incident(api)
    assert (await api.post("/api/v1/incidents/inc-1/review")).status_code == 201
    response = await api.patch("/api/v1/incidents/inc-1/review", body)
    assert response.status_code == 422, response.text
    assert field in str(response.json()["detail"])
    assert (await api.get("/api/v1/incidents/inc-1/review")).json()["version"] == 1


async def test_publishing_needs_a_root_cause(api: Api) -> None:
    await resolved_incident(api)
    await api.post("/api/v1/incidents/inc-1/review")
    await api.patch("/api/v1/incidents/inc-1/review", {"version": 1, "status": "in_review"})
    response = await api.patch(
        "/api/v1/incidents/inc-1/review", {"version": 2, "status": "published"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("root_causes:")


async def test_a_review_of_an_unknown_or_sev3_incident_is_refused(api: Api) -> None:
    missing = await api.post("/api/v1/incidents/nope/review")
    assert missing.status_code == 404
    assert (await api.get("/api/v1/incidents/nope/review")).status_code == 404
    await resolved_incident(api, Severity.SEV3)
    sev3 = await api.post("/api/v1/incidents/inc-1/review")
    assert sev3.status_code == 422
    assert sev3.json()["detail"].startswith("severity:")


async def test_a_resolved_sev1_without_a_review_reminds_its_commander(api: Api) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    commander = await api.post("/api/v1/incidents/inc-1/commander", {"user": "bob"})
    assert commander.status_code == 200, commander.text
    await api.post("/api/v1/incidents/inc-1/resolve")

    async def armed() -> bool:
        return bool(await api.reminders.pending("inc-1"))

    await eventually(armed)
    api.rig.clock.advance(DAY)
    assert await api.reminders.fire_due() == 0
    api.rig.clock.advance(DAY + timedelta(minutes=1))
    assert await api.reminders.fire_due() == 1
    [reminder] = api.reminded()
    assert reminder.recipient.user_id == "bob"
    assert reminder.incident.title == "Post-incident review due: CheckoutErrors"
    # Once a day until a review is started; then never again.
    api.rig.clock.advance(DAY)
    assert await api.reminders.fire_due() == 1
    assert (await api.post("/api/v1/incidents/inc-1/review")).status_code == 201
    api.rig.clock.advance(DAY)
    await api.reminders.fire_due()
    assert len(api.reminded()) == 2
    assert await api.reminders.pending("inc-1") == []


async def test_a_reopened_incident_is_not_reminded_of_its_review(api: Api) -> None:
    await resolved_incident(api)

    async def armed() -> bool:
        return bool(await api.reminders.pending("inc-1"))

    await eventually(armed)
    await api.rig.engine.on_incident_event(
        incident_event(IncidentEventKind.ALERT_ADDED, firing=1, count=2, at=api.rig.clock.now())
    )
    api.rig.clock.advance(3 * DAY)
    await api.reminders.fire_due()
    assert api.reminded() == []


async def test_a_resolved_sev3_arms_no_review_reminder(api: Api) -> None:
    await resolved_incident(api, Severity.SEV3)
    await asyncio.sleep(0.3)
    api.rig.clock.advance(3 * DAY)
    assert await api.reminders.fire_due() == 0
    assert api.reminded() == []


# -- action items --------------------------------------------------------------------------


def item(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Make the pool size configurable",
        "owner": "alice",
        "due": (T0.date() + timedelta(days=3)).isoformat(),
        "priority": "high",
        "url": "https://tracker.example/PAY-12",
        **overrides,
    }


@pytest.mark.parametrize(
    ("incident", "body", "status", "field"),
    [
        ("nope", item(), 404, "incident"),
        ("inc-1", item(owner="mallory"), 422, "owner"),
        ("inc-1", item(due=(T0.date() - timedelta(days=1)).isoformat()), 422, "due"),
        ("inc-1", item(due="tomorrow"), 422, "due"),
        ("inc-1", item(url="javascript:alert(1)"), 422, "url"),
        ("inc-1", item(title=""), 422, "title"),
        ("inc-1", item(status="finished"), 422, "status"),
    ],
)
async def test_bad_action_items_are_refused_naming_the_field(
    api: Api, incident: str, body: dict[str, Any], status: int, field: str
) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    response = await api.post(f"/api/v1/incidents/{incident}/action-items", body)
    assert response.status_code == status, response.text
    assert field in str(response.json()["detail"])
    assert (await api.get("/api/v1/action-items")).json()["action_items"] == []


async def test_action_items_list_filter_and_patch(api: Api) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    first = (await api.post("/api/v1/incidents/inc-1/action-items", item())).json()
    second = (
        await api.post(
            "/api/v1/incidents/inc-1/action-items",
            item(owner="bob", title="Alert on pool saturation", due=T0.date().isoformat()),
        )
    ).json()
    assert first["status"] == "open"
    assert first["overdue"] is False
    by_owner = (await api.get("/api/v1/action-items", owner="bob")).json()["action_items"]
    assert [i["id"] for i in by_owner] == [second["id"]]
    api.rig.clock.advance(2 * DAY)
    overdue = (await api.get("/api/v1/action-items", overdue="true")).json()["action_items"]
    assert [(i["id"], i["overdue"]) for i in overdue] == [(second["id"], True)]
    done = await api.patch(f"/api/v1/action-items/{second['id']}", {"status": "done"})
    assert done.status_code == 200, done.text
    assert done.json()["overdue"] is False
    assert (await api.get("/api/v1/action-items", overdue="true")).json()["action_items"] == []
    closed = await api.get("/api/v1/action-items", overdue="true", status="done")
    assert closed.json()["action_items"] == []
    listed = (await api.get("/api/v1/action-items", status="done")).json()["action_items"]
    assert [i["id"] for i in listed] == [second["id"]]
    stale = await api.patch(f"/api/v1/action-items/{first['id']}", {"version": 7, "title": "x"})
    assert stale.status_code == 409
    unknown = await api.patch("/api/v1/action-items/ai-nope", {"status": "done"})
    assert unknown.status_code == 404
    past = await api.patch(f"/api/v1/action-items/{first['id']}", {"due": "2020-01-01"})
    assert past.status_code == 422
    assert past.json()["detail"].startswith("due:")


async def test_an_overdue_action_item_reminds_its_owner_once_a_day(api: Api) -> None:
    await api.rig.engine.on_incident_event(incident_event())
    due = T0.date() + timedelta(days=1)
    created = await api.post(
        "/api/v1/incidents/inc-1/action-items", item(owner="bob", due=due.isoformat())
    )
    item_id = created.json()["id"]
    api.rig.clock.advance(DAY)  # due today: not overdue yet
    assert await api.reminders.fire_due() == 0
    api.rig.clock.at = api.rig.clock.at.replace(hour=0) + DAY + timedelta(minutes=1)
    assert await api.reminders.fire_due() == 1
    assert await api.reminders.fire_due() == 0  # not again the same day
    [reminder] = api.reminded()
    assert reminder.recipient.user_id == "bob"
    assert (
        reminder.incident.title
        == f"Action item overdue (due {due}): Make the pool size configurable"
    )
    api.rig.clock.advance(DAY)
    assert await api.reminders.fire_due() == 1
    await api.patch(f"/api/v1/action-items/{item_id}", {"status": "done"})
    api.rig.clock.advance(DAY)
    assert await api.reminders.fire_due() == 0
    assert len(api.reminded()) == 2
    assert isinstance(date.fromisoformat(created.json()["due"]), date)


# -- the timeline ----------------------------------------------------------------------------


async def test_the_timeline_holds_every_step_in_order_with_actors(api: Api) -> None:
    r = api.rig
    await r.engine.on_incident_event(incident_event(details=alert("fp-1", "5xx on /pay")))
    r.clock.advance(timedelta(minutes=1))
    await r.engine.on_incident_event(
        incident_event(
            IncidentEventKind.ALERT_ADDED,
            details=alert("fp-2", "latency on /pay"),
            count=2,
            firing=2,
            at=r.clock.now(),
        )
    )
    r.clock.advance(timedelta(minutes=1))
    severity = incident_event(
        IncidentEventKind.SEVERITY_CHANGED,
        severity=Severity.SEV0,
        count=2,
        firing=2,
        at=r.clock.now(),
    )
    await r.engine.on_incident_event(
        severity.model_copy(update={"severity_reasons": ("blast radius: 2 alerts",)})
    )
    r.clock.advance(timedelta(minutes=1))
    assert (await api.post("/api/v1/incidents/inc-1/acknowledge")).status_code == 200
    r.clock.advance(timedelta(minutes=1))
    assert (await api.post("/api/v1/incidents/inc-1/commander", {"user": "bob"})).status_code == 200
    r.clock.advance(timedelta(minutes=1))
    assert (
        await api.post("/api/v1/incidents/inc-1/notes", {"text": "rolled back"})
    ).status_code == 201
    r.clock.advance(timedelta(minutes=1))
    await r.engine.on_incident_event(
        incident_event(
            IncidentEventKind.ALERTS_RESOLVED,
            severity=Severity.SEV0,
            count=2,
            firing=0,
            at=r.clock.now(),
        )
    )
    body = (await api.get("/api/v1/incidents/inc-1/timeline")).json()
    steps = [(e["action"], e["actor"]) for e in body["timeline"]]
    assert steps == [
        ("triggered", "triage"),
        ("paged", None),
        ("alert_added", "triage"),
        ("severity_changed", "triage"),
        ("acknowledge", "api:ops"),
        ("notified", None),
        ("set_commander", "api:ops"),
        ("note", "api:ops"),
        ("alerts_resolved", "triage"),
        ("resolve", "triage"),
        ("notified", None),
    ]
    details = {e["action"]: e["detail"] for e in body["timeline"]}
    assert details["alert_added"] == "latency on /pay (2 of 2 alerts firing)"
    assert details["severity_changed"] == "SEV1 → SEV0 (blast radius: 2 alerts)"
    assert details["alerts_resolved"] == "all 2 alerts resolved"
    times = [e["at"] for e in body["timeline"]]
    assert times == sorted(times)


# -- recurrence ----------------------------------------------------------------------------


async def test_a_recurrence_shows_the_previous_review_and_its_open_action_items(api: Api) -> None:
    r = api.rig
    await r.engine.on_incident_event(incident_event(incident_id="inc-0"))
    assert (await api.post("/api/v1/incidents/inc-0/resolve")).status_code == 200
    review = {"root_causes": ["the DB pool was too small"]}
    assert (await api.post("/api/v1/incidents/inc-0/review", review)).status_code == 201
    for title in ("Pool size from config", "Alert on pool saturation", "Load test"):
        created = await api.post("/api/v1/incidents/inc-0/action-items", item(title=title))
        assert created.status_code == 201
    done = created.json()["id"]
    assert (await api.patch(f"/api/v1/action-items/{done}", {"status": "done"})).status_code == 200

    r.clock.advance(DAY)
    recurred = incident_event(incident_id="inc-1", at=r.clock.now()).model_copy(
        update={"recurrence_of": "inc-0", "recurrence_count": 1}
    )
    await r.bus.publish(INCIDENTS_EVENTS, "inc-1", recurred)  # through the service's consumer

    async def shown() -> bool:
        response = await api.get("/api/v1/incidents/inc-1")
        return response.status_code == 200 and response.json()["recurrence"] is not None

    await eventually(shown)
    body = (await api.get("/api/v1/incidents/inc-1")).json()["recurrence"]
    assert body["previous_incident"] == "inc-0"
    assert body["root_causes"] == ["the DB pool was too small"]
    assert sorted(i["title"] for i in body["open_action_items"]) == [
        "Alert on pool saturation",
        "Pool size from config",
    ]
    assert body["summary"] == (
        "recurred: last time root cause was the DB pool was too small; 2 action items still open"
    )
    assert (await api.get("/api/v1/incidents/inc-0")).json()["recurrence"] is None
