"""Triage's rules through its consumers and API on the embedded bus and store: routing,
grouping (`group_by`, `group_window`, `max_alerts`) and silences, each alert saying what
happened to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from schemas import ALERTS_RAW, AlertReceived, AlertStatus, IncidentEventKind, Label, Severity
from services.triage.config import (
    InhibitRuleConfig,
    RouteConfig,
    ServiceGroupingConfig,
    SeverityRuleConfig,
    TriageConfig,
)
from services.triage.unsilence import Unsilencer
from services.triage.unsilence import occurrence as unsilence_occurrence
from tests.integration.triage_pipeline import (
    T0,
    TriagePipeline,
    eventually,
    occurrence,
    run_pipeline,
)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


CONFIG = TriageConfig(
    grouping={
        "checkout": ServiceGroupingConfig(
            group_by=("alertname", "dc"), group_window=timedelta(minutes=10), max_alerts=3
        )
    },
    severity_rules=(
        SeverityRuleConfig(matchers=('alertname="DiskFull"',), severity=Severity.SEV1),
    ),
    inhibit_rules=(
        InhibitRuleConfig(
            source_matchers=('alertname="DatacenterDown"',),
            target_matchers=('alertname="InstanceDown"',),
            equal=("dc",),
        ),
    ),
    routes={
        "prom": (RouteConfig(matchers=('team="payments"', 'env=~"prod|live"'), service="payments"),)
    },
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def pipeline(tmp_path: Path, clock: FakeClock) -> AsyncIterator[TriagePipeline]:
    async for running in run_pipeline(tmp_path, CONFIG, clock):
        yield running


@pytest.fixture
async def http(pipeline: TriagePipeline) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(pipeline.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://triage") as client:
        yield client


def _alert(fingerprint: str, at: timedelta = timedelta(0), **labels: str) -> AlertReceived:
    base = occurrence(fingerprint, labels={"alertname": "CheckoutErrors", **labels})
    return base.model_copy(update={"occurred_at": T0 + at})


async def _decision(http: httpx.AsyncClient, fingerprint: str) -> dict[str, object]:
    found = await http.get("/api/v1/alerts", params={"fingerprint": fingerprint})
    alert: dict[str, object] = found.json()["alerts"][0]
    return alert


async def test_routes_send_matching_alerts_to_their_service(
    pipeline: TriagePipeline, http: httpx.AsyncClient
) -> None:
    await pipeline.send_alert(_alert("00000000000000a1", team="payments", env="live"))
    await pipeline.send_alert(_alert("00000000000000a2", team="payments", env="preprod"))
    first, second = await pipeline.wait_events(2)
    assert {first.service_id, second.service_id} == {"payments", "checkout"}
    routed = await _decision(http, "00000000000000a1")
    assert routed["service"] == "payments"
    assert "routed to service payments by routes[0] of integration prom" in str(routed["decision"])
    assert (await _decision(http, "00000000000000a2"))["service"] == "checkout"


async def test_group_by_window_and_max_alerts(
    pipeline: TriagePipeline, http: httpx.AsyncClient
) -> None:
    minute = timedelta(minutes=1)
    sent = [
        _alert("00000000000000b1", dc="east"),
        _alert("00000000000000b2", 1 * minute, dc="east"),  # joins b1
        _alert("00000000000000b3", 2 * minute, dc="west"),  # another group
        _alert("00000000000000b4", 3 * minute, dc="east"),  # joins: third alert
        _alert("00000000000000b5", 4 * minute, dc="east"),  # full: opens the next
        _alert("00000000000000b6", 20 * minute, dc="east"),  # past the window: opens another
    ]
    for alert in sent:
        await pipeline.send_alert(alert)
    events = await pipeline.wait_events(len(sent))
    incident_of = {e.fingerprint: e.incident_id for e in events}
    opened = {e.fingerprint for e in events if e.kind is IncidentEventKind.OPENED}
    assert opened == {
        "00000000000000b1",
        "00000000000000b3",
        "00000000000000b5",
        "00000000000000b6",
    }
    assert incident_of["00000000000000b2"] == incident_of["00000000000000b1"]
    assert incident_of["00000000000000b4"] == incident_of["00000000000000b1"]
    assert len(set(incident_of.values())) == 4
    joined = await _decision(http, "00000000000000b2")
    assert joined["decision"] == (
        f"grouped into incident {incident_of['00000000000000b1']} (grouped by alertname, dc)"
    )
    assert (await _decision(http, "00000000000000b1"))["decision"] == (
        f"grouped into incident {incident_of['00000000000000b1']} (opened it)"
    )


async def test_a_silenced_alert_is_recorded_and_pages_once_the_silence_expired(
    pipeline: TriagePipeline, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    body = {
        "matchers": [
            {"name": "dc", "value": "east", "isRegex": False, "isEqual": True},
            {"name": "alertname", "value": "Checkout.*", "isRegex": True},
        ],
        "startsAt": T0.isoformat(),
        "endsAt": (T0 + timedelta(hours=1)).isoformat(),
        "createdBy": "alice",
        "comment": "planned failover",
    }
    created = await http.post("/api/v1/silences", json=body)
    assert created.status_code == 200, created.text
    silence_id = created.json()["silenceID"]
    listed = (await http.get("/api/v1/silences")).json()
    assert [(s["id"], s["status"]["state"], s["createdBy"]) for s in listed] == [
        (silence_id, "active", "alice")
    ]
    assert listed[0]["matchers"][1] == {
        "name": "alertname",
        "value": "Checkout.*",
        "isRegex": True,
        "isEqual": True,
    }

    await pipeline.send_alert(_alert("00000000000000c1", dc="east"))
    await pipeline.send_alert(_alert("00000000000000c2", dc="west"))
    (event,) = await pipeline.wait_events(1)
    assert event.fingerprint == "00000000000000c2"

    async def silenced_recorded() -> bool:
        found = await http.get("/api/v1/alerts", params={"fingerprint": "00000000000000c1"})
        return bool(found.json()["alerts"])

    await eventually(silenced_recorded)
    silenced = await _decision(http, "00000000000000c1")
    assert silenced["decision"] == f"silenced by {silence_id}"
    assert silenced["incident_id"] is None
    assert silenced["status"] == "firing"

    # A sweep while the silence holds publishes nothing.
    unsilencer = Unsilencer(pipeline.bus, pipeline.store, pipeline.silences, CONFIG, clock)
    assert await unsilencer.sweep() == 0

    # Expired while the alert still fires: the sweep triages it then, and it pages; a second
    # replica sweeping at the same time publishes the same occurrence, which changes nothing.
    clock.at = T0 + timedelta(minutes=5)
    assert (await http.delete(f"/api/v1/silences/{silence_id}")).status_code == 200
    state = (await http.get(f"/api/v1/silences/{silence_id}")).json()["status"]["state"]
    assert state == "expired"
    clock.at = T0 + timedelta(minutes=6)
    assert await unsilencer.sweep() == 1
    assert await unsilencer.sweep() in (0, 1)
    events = await pipeline.wait_events(2)
    assert events[1].fingerprint == "00000000000000c1"
    assert events[1].kind is IncidentEventKind.OPENED

    async def triaged() -> bool:
        decision = str((await _decision(http, "00000000000000c1"))["decision"])
        return decision.startswith("grouped into incident ")

    await eventually(triaged)
    assert await unsilencer.sweep() == 0
    opened = {e.event_id for e in pipeline.events if e.kind is IncidentEventKind.OPENED}
    assert len(opened) == 2


async def test_a_sweep_that_lost_the_race_with_a_resolve_opens_nothing(
    pipeline: TriagePipeline, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    body = {
        "matchers": [{"name": "dc", "value": "east", "isRegex": False}],
        "startsAt": T0.isoformat(),
        "endsAt": (T0 + timedelta(minutes=1)).isoformat(),
        "createdBy": "alice",
        "comment": "x",
    }
    assert (await http.post("/api/v1/silences", json=body)).status_code == 200
    await pipeline.send_alert(_alert("00000000000000e1", dc="east"))

    async def silenced() -> bool:
        found = await http.get("/api/v1/alerts", params={"fingerprint": "00000000000000e1"})
        return bool(found.json()["alerts"])

    await eventually(silenced)
    clock.at = T0 + timedelta(minutes=2)
    # The sweep reads the alert, then its resolve is consumed before the sweep's occurrence.
    stale = await pipeline.store.held_firing(None, 10)
    resolve = _alert("00000000000000e1", timedelta(minutes=2), dc="east")
    await pipeline.send_alert(resolve.model_copy(update={"status": AlertStatus.RESOLVED}))
    await pipeline.bus.publish(
        ALERTS_RAW, "00000000000000e1", unsilence_occurrence(stale[0], clock.at)
    )
    await pipeline.send_alert(_alert("00000000000000e2", timedelta(minutes=3), dc="west"))
    (event,) = await pipeline.wait_events(1)
    assert event.fingerprint == "00000000000000e2"
    assert (await _decision(http, "00000000000000e1"))["status"] == "resolved"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"matchers": []}, 422),
        ({"matchers": [{"name": "a", "value": "(", "isRegex": True}]}, 400),
        ({"matchers": [{"name": "a", "value": ".*", "isRegex": True}]}, 400),
        ({"endsAt": T0.isoformat()}, 400),
        ({"startsAt": "2026-03-02T09:00:00"}, 422),  # no time zone
        ({"id": "unknown"}, 404),
        ({"extra": 1}, 422),
    ],
)
async def test_bad_silences_are_refused_and_change_nothing(
    http: httpx.AsyncClient, change: dict[str, object], status: int
) -> None:
    body: dict[str, object] = {
        "matchers": [{"name": "a", "value": "b", "isRegex": False}],
        "startsAt": T0.isoformat(),
        "endsAt": (T0 + timedelta(hours=1)).isoformat(),
        "createdBy": "alice",
        "comment": "x",
        **change,
    }
    assert (await http.post("/api/v1/silences", json=body)).status_code == status
    assert (await http.get("/api/v1/silences")).json() == []
    assert (await http.delete("/api/v1/silences/nope")).status_code == 404


async def test_a_resolve_of_a_silenced_alert_opens_nothing(
    pipeline: TriagePipeline, http: httpx.AsyncClient
) -> None:
    body = {
        "matchers": [{"name": "dc", "value": "east", "isRegex": False}],
        "startsAt": T0.isoformat(),
        "endsAt": (T0 + timedelta(hours=1)).isoformat(),
        "createdBy": "alice",
        "comment": "x",
    }
    assert (await http.post("/api/v1/silences", json=body)).status_code == 200
    await pipeline.send_alert(_alert("00000000000000d1", dc="east"))
    resolve = _alert("00000000000000d1", timedelta(minutes=1), dc="east")
    await pipeline.send_alert(resolve.model_copy(update={"status": AlertStatus.RESOLVED}))
    await pipeline.send_alert(_alert("00000000000000d2", timedelta(minutes=2), dc="west"))
    (event,) = await pipeline.wait_events(1)
    assert event.fingerprint == "00000000000000d2"
    assert (await _decision(http, "00000000000000d1"))["status"] == "resolved"


def _named(alertname: str, fingerprint: str, at: timedelta, **labels: str) -> AlertReceived:
    alert = _alert(fingerprint, at, **labels)
    return alert.model_copy(
        update={
            "alertname": alertname,
            "labels": tuple(
                Label(name=n, value=v)
                for n, v in sorted({**labels, "alertname": alertname}.items())
            ),
        }
    )


async def test_a_firing_source_inhibits_targets_until_it_resolves(
    pipeline: TriagePipeline, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    minute = timedelta(minutes=1)
    source = _named("DatacenterDown", "00000000000000f0", 0 * minute, dc="east")
    await pipeline.send_alert(source)
    await pipeline.send_alert(_named("InstanceDown", "00000000000000f1", minute, dc="east"))
    await pipeline.send_alert(_named("InstanceDown", "00000000000000f2", minute, dc="west"))
    events = await pipeline.wait_events(3)  # f1 held back, on the timeline of f0's incident
    opened = [e for e in events if e.kind is IncidentEventKind.OPENED]
    assert {e.fingerprint for e in opened} == {"00000000000000f0", "00000000000000f2"}
    (held,) = [e for e in events if e.kind is IncidentEventKind.ALERT_HELD]
    assert held.fingerprint == "00000000000000f1"

    async def recorded() -> bool:
        found = await http.get("/api/v1/alerts", params={"fingerprint": "00000000000000f1"})
        return bool(found.json()["alerts"])

    await eventually(recorded)
    inhibited = await _decision(http, "00000000000000f1")
    assert inhibited["decision"] == "inhibited by alert 00000000000000f0 (inhibit_rules[0])"
    assert inhibited["incident_id"] is None

    unsilencer = Unsilencer(pipeline.bus, pipeline.store, pipeline.silences, CONFIG, clock)
    assert await unsilencer.sweep() == 0  # the source still fires
    resolve = _named("DatacenterDown", "00000000000000f0", 2 * minute, dc="east")
    await pipeline.send_alert(resolve.model_copy(update={"status": AlertStatus.RESOLVED}))
    await pipeline.wait_events(4)  # the source's incident resolved
    clock.at = T0 + 5 * minute
    assert await unsilencer.sweep() == 1
    events = await pipeline.wait_events(5)
    assert events[4].fingerprint == "00000000000000f1"
    assert events[4].kind is IncidentEventKind.OPENED


async def test_a_severity_rule_sets_the_incident_severity_with_its_reason(
    pipeline: TriagePipeline,
) -> None:
    disk = _named("DiskFull", "0000000000000101", timedelta(0), dc="east")
    await pipeline.send_alert(disk.model_copy(update={"severity": "info"}))
    (event,) = await pipeline.wait_events(1)
    assert event.severity is Severity.SEV1
    assert event.severity_reasons == ("severity_rules[0] matches: SEV1",)


async def test_past_the_blast_radius_the_incident_is_raised_once_and_escalation_told(
    tmp_path: Path,
) -> None:
    config = TriageConfig(blast_radius={"checkout": 2})
    async for pipeline in run_pipeline(tmp_path, config):
        for n in range(4):
            await pipeline.send_alert(_alert(f"{0x200 + n:016x}"))
        events = await pipeline.wait_events(5)
        kinds = [e.kind for e in events]
        assert kinds == [
            IncidentEventKind.OPENED,
            IncidentEventKind.ALERT_ADDED,
            IncidentEventKind.ALERT_ADDED,
            IncidentEventKind.SEVERITY_CHANGED,
            IncidentEventKind.ALERT_ADDED,
        ]
        changed = events[3]
        assert (events[0].severity, changed.severity, events[4].severity) == (
            Severity.SEV2,
            Severity.SEV1,
            Severity.SEV1,
        )
        assert changed.severity_reasons[-1] == (
            "blast radius: 3 alerts (more than 2): raised from SEV2 to SEV1"
        )
