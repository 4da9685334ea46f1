"""The incident's timeline names the person behind an action (`actor_name`), from the file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.escalation.app import build
from tests.unit.escalation_harness import config, incident_event, rig
from tocsin.composition.config import TocsinConfig


async def test_an_acknowledgement_shows_the_persons_name(tmp_path: Path) -> None:
    async with rig(tmp_path, config()) as r:
        service = build(
            r.bus,
            r.store,
            r.live.view(TocsinConfig.escalation),
            r.clock,
            lambda: "alice",
            instance_id="api",
            oncall=r.oncall,
        )
        app = FastAPI()
        app.include_router(service.router)
        tasks = [asyncio.create_task(r.bus.consume(s)) for s in service.subscriptions]
        try:
            await r.engine.on_incident_event(incident_event())
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                acked = await client.post("/api/v1/incidents/inc-1/acknowledge")
                assert acked.status_code == 200, acked.text
                timeline = (await client.get("/api/v1/incidents/inc-1/timeline")).json()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    by_action = {e["action"]: e for e in timeline["timeline"]}
    assert by_action["acknowledge"]["actor"] == "api:alice"
    assert by_action["acknowledge"]["actor_name"] == "Alice"
    assert by_action["triggered"]["actor_name"] is None
    assert [e["actor_name"] for e in acked.json()["timeline"] if e["action"] == "acknowledge"] == [
        "Alice"
    ]
