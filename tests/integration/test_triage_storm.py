"""An alert storm through triage's consumers on the embedded bus and store: 500 alerts from 3
root causes, with an inhibition, a silence, grouping and a blast radius in force, become two
incidents with the expected severities and reasons; every alert says what became of it.
(Maintenance windows are not built yet: the issue's storm also has one.)"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from schemas import AlertReceived, IncidentEventKind, Label, Severity
from services.triage.config import (
    InhibitRuleConfig,
    ServiceGroupingConfig,
    SeverityRuleConfig,
    TriageConfig,
)
from services.triage.store import AlertFilter, MongoTriageStore
from tests.integration.test_triage_rules import FakeClock
from tests.integration.triage_pipeline import T0, eventually, occurrence, run_pipeline

CONFIG = TriageConfig(
    grouping={"checkout": ServiceGroupingConfig(group_by=("alertname", "dc"))},
    blast_radius={"checkout": 100},
    inhibit_rules=(
        InhibitRuleConfig(
            source_matchers=('alertname="DatacenterDown"',),
            target_matchers=('alertname="InstanceDown"',),
            equal=("dc",),
        ),
    ),
    severity_rules=(
        SeverityRuleConfig(matchers=('alertname="DatacenterDown"',), severity=Severity.SEV1),
    ),
)


def _alert(n: int, alertname: str, severity: str, **labels: str) -> AlertReceived:
    alert = occurrence(f"{n:016x}", alertname=alertname, severity=severity)
    pairs = {**labels, "alertname": alertname, "instance": f"i-{n}"}
    return alert.model_copy(
        update={"labels": tuple(Label(name=k, value=v) for k, v in sorted(pairs.items()))}
    )


async def test_a_storm_of_500_alerts_becomes_two_incidents(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async for pipeline in run_pipeline(tmp_path, CONFIG, clock):
        app = FastAPI()
        app.include_router(pipeline.router)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            silence = {
                "matchers": [{"name": "team", "value": "search", "isRegex": False}],
                "startsAt": T0.isoformat(),
                "endsAt": (T0 + timedelta(hours=2)).isoformat(),
                "createdBy": "alice",
                "comment": "search reindex",
            }
            assert (await http.post("/api/v1/silences", json=silence)).status_code == 200

        # Root cause 1: a datacenter goes down; its 200 instances follow.
        storm = [_alert(0, "DatacenterDown", "critical", dc="east")]
        storm += [_alert(n, "InstanceDown", "critical", dc="east") for n in range(1, 201)]
        # Root cause 2: latency across 150 instances in the other datacenter.
        storm += [_alert(n, "HighLatency", "warning", dc="west") for n in range(201, 351)]
        # Root cause 3: search errors during a silenced reindex.
        storm += [
            _alert(n, "SearchErrors", "critical", dc="west", team="search") for n in range(351, 500)
        ]
        assert len(storm) == 500
        for alert in storm:
            await pipeline.send_alert(alert)

        async def all_recorded(store: MongoTriageStore = pipeline.store) -> bool:
            found = await store.list_alerts(AlertFilter(), None, 1000)
            return len(found) == 500

        await eventually(all_recorded, timeout=120)
        events = await pipeline.wait_events(2 + 149 + 1, timeout=60)
        opened = [e for e in events if e.kind is IncidentEventKind.OPENED]
        assert sorted(e.group_key for e in opened) == [
            'checkout/[["alertname", "DatacenterDown"], ["dc", "east"]]',
            'checkout/[["alertname", "HighLatency"], ["dc", "west"]]',
        ]
        latency = await pipeline.store.get_incident(
            next(e.incident_id for e in opened if "HighLatency" in e.group_key)
        )
        assert latency is not None
        assert latency.alert_count == 150
        assert latency.severity is Severity.SEV1
        assert latency.severity_reasons == (
            "sender severity 'warning' maps to SEV2",
            "blast radius: 101 alerts (more than 100): raised from SEV2 to SEV1",
        )
        datacenter = next(e for e in opened if "DatacenterDown" in e.group_key)
        assert datacenter.severity is Severity.SEV1
        assert datacenter.severity_reasons == ("severity_rules[0] matches: SEV1",)

        decisions = Counter(
            (a.decision or "").split(" ")[0]
            for a in await pipeline.store.list_alerts(AlertFilter(), None, 1000)
        )
        assert decisions == {"grouped": 151, "inhibited": 200, "silenced": 149}
