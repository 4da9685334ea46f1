"""Reloading tocsin.yaml while running: a good file is swapped in (escalation sees it at its
next page, pending timers included), a bad one is refused with each problem at its key and the
running configuration stays; SIGHUP and POST /api/v1/config/reload (admin key only)."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from fastapi import FastAPI

from services.triage.consumers import AlertTriage
from services.triage.store import TriageStore
from tests.unit.escalation_harness import incident_event, pages, rig, webhook_user
from tocsin.composition.config import ConfigError, TocsinConfig, parse_config
from tocsin.composition.reload import (
    ConfigReloader,
    NoConfigFile,
    notifier_restart_only,
    reload_service,
    section_status,
)
from tocsin.runtime.bus import Bus
from tocsin.runtime.http import ApiKeys, api_key_dependency, token_digest
from tocsin.runtime.live_config import LiveConfig

MIN_5 = 5


def document(second_level: str = "bob") -> dict[str, Any]:
    return {
        "services": [{"id": "checkout", "name": "Checkout", "escalation_policy": "oncall"}],
        "integrations": [
            {
                "id": "prom",
                "type": "alertmanager",
                "token": "a-long-enough-token-0123456789",
                "service": "checkout",
            }
        ],
        "users": [webhook_user(u) for u in ("alice", "bob", "carol")],
        "escalation_policies": [
            {
                "id": "oncall",
                "levels": [
                    {"targets": [{"user": "alice"}]},
                    {"delay": f"{MIN_5}m", "targets": [{"user": second_level}]},
                ],
            }
        ],
    }


def write(path: Path, doc: object) -> None:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tocsin.yaml"
    write(path, document())
    return path


@pytest.fixture
def live(config_file: Path) -> LiveConfig[TocsinConfig]:
    return LiveConfig(parse_config(document()))


def test_a_good_file_is_swapped_in_and_the_report_names_each_section(
    config_file: Path, live: LiveConfig[TocsinConfig]
) -> None:
    view = live.view(TocsinConfig.escalation)
    before = view.current
    reloader = ConfigReloader(config_file, live, ["ingest", "triage", "escalation", "notifier"])
    changed = document("carol")
    changed["integrations"][0]["token"] = "another-long-token-0123456789"
    write(config_file, changed)

    report = reloader.reload()
    assert report.source == str(config_file)
    assert report.sections == {
        "ingest": "reloaded",
        "triage": "unchanged",
        "escalation": "reloaded",
        "notifier": "unchanged",
    }
    policy = view.current.policy("oncall")
    assert policy is not None
    assert policy.levels[1].targets[0].user == "carol"
    assert view.current is not before
    assert view.current is view.current  # recomputed once per reload, not per read


def test_a_bad_file_is_refused_with_the_key_and_the_running_config_stays(
    config_file: Path, live: LiveConfig[TocsinConfig]
) -> None:
    running = live.current
    bad = document()
    bad["escalation_policies"][0]["levels"][1]["targets"] = [{"user": "zed"}]
    bad["escalation_policies"][0]["levels"][0]["delay"] = "soon"
    write(config_file, bad)
    with pytest.raises(ConfigError) as caught:
        ConfigReloader(config_file, live, ["escalation"]).reload()
    assert caught.value.problems == [
        "escalation_policies[0].levels[0].delay: 'soon' is not a duration; write e.g. '30s', "
        "'5m', '1h30m'"
    ]
    assert live.current is running
    assert live.generation == 0


def test_unreadable_yaml_is_refused(config_file: Path, live: LiveConfig[TocsinConfig]) -> None:
    config_file.write_text("services: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        ConfigReloader(config_file, live, ["escalation"]).reload()
    assert caught.value.problems[0].startswith("not valid YAML")
    config_file.unlink()
    with pytest.raises(ConfigError, match="cannot read"):
        ConfigReloader(config_file, live, ["escalation"]).reload()


def test_without_a_file_there_is_nothing_to_reload(live: LiveConfig[TocsinConfig]) -> None:
    with pytest.raises(NoConfigFile):
        ConfigReloader(None, live, ["escalation"]).reload()


# -- the route and SIGHUP --------------------------------------------------------------------

KEYS = ApiKeys({"admin": token_digest("admin-token"), "ops": token_digest("ops-token")})


@pytest.fixture
def app(config_file: Path, live: LiveConfig[TocsinConfig]) -> FastAPI:
    service = reload_service(
        ConfigReloader(config_file, live, ["escalation"]), api_key_dependency(KEYS)
    )
    app = FastAPI()
    app.include_router(service.router)
    return app


async def post(app: FastAPI, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
        return await client.post("/api/v1/config/reload", headers=headers)


async def test_the_admin_key_reloads_through_the_api(
    app: FastAPI, config_file: Path, live: LiveConfig[TocsinConfig]
) -> None:
    write(config_file, document("carol"))
    response = await post(app, "admin-token")
    assert response.status_code == 200, response.text
    assert response.json() == {"source": str(config_file), "sections": {"escalation": "reloaded"}}
    assert live.generation == 1
    again = await post(app, "admin-token")
    assert again.json()["sections"] == {"escalation": "unchanged"}


async def test_only_the_admin_key_may_reload(
    app: FastAPI, config_file: Path, live: LiveConfig[TocsinConfig]
) -> None:
    write(config_file, document("carol"))
    assert (await post(app, None)).status_code == 401
    refused = await post(app, "ops-token")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "only the admin API key may reload the configuration"
    assert live.generation == 0


async def test_a_bad_file_through_the_api_is_422_with_every_problem(
    app: FastAPI, config_file: Path, live: LiveConfig[TocsinConfig]
) -> None:
    bad = document()
    bad["users"][1]["notification_rules"][0]["contact"] = "pager"
    write(config_file, bad)
    response = await post(app, "admin-token")
    assert response.status_code == 422
    assert response.json()["detail"] == {
        "error": "invalid configuration; the running configuration stays",
        "source": str(config_file),
        "problems": [
            "users[1].notification_rules[0].contact: unknown contact 'pager' (user 'bob' has: "
            "bob-hook)"
        ],
    }
    assert live.generation == 0


async def test_sighup_reloads_and_a_bad_file_only_logs(
    config_file: Path, live: LiveConfig[TocsinConfig], caplog: pytest.LogCaptureFixture
) -> None:
    service = reload_service(
        ConfigReloader(config_file, live, ["escalation"]), api_key_dependency(KEYS)
    )
    loop = asyncio.get_running_loop()
    for step in service.on_start:
        await step()
    try:
        write(config_file, document("carol"))
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if live.generation == 1:
                break
            await asyncio.sleep(0.01)
        assert live.generation == 1

        write(config_file, {"services": "nope"})
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if "refused" in caplog.text:
                break
            await asyncio.sleep(0.01)
        assert "the running configuration stays: services: must be a list" in caplog.text
        assert live.generation == 1
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


# -- pending timers after a reload -----------------------------------------------------------


async def test_a_timer_armed_before_a_reload_pages_as_the_new_config_says(tmp_path: Path) -> None:
    async with rig(tmp_path, parse_config(document())) as r:
        await r.engine.on_incident_event(incident_event())
        assert [u for u, _, _ in pages(r)] == ["alice"]
        r.live.replace(parse_config(document("carol")))  # what a reload does
        r.clock.advance(timedelta(minutes=MIN_5))
        await r.engine.fire_due_timers()
        assert [u for u, _, _ in pages(r)] == ["alice", "carol"]


async def test_a_timer_whose_policy_was_removed_pages_nobody_and_does_not_fail(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, parse_config(document())) as r:
        await r.engine.on_incident_event(incident_event())
        empty = document()
        empty["services"] = []
        empty["integrations"] = []
        r.live.replace(parse_config(empty))
        r.clock.advance(timedelta(minutes=MIN_5))
        assert await r.engine.fire_due_timers() == 1
        assert [u for u, _, _ in pages(r)] == ["alice"]


def test_a_triage_rule_change_reaches_a_running_triage(
    config_file: Path, live: LiveConfig[TocsinConfig], tmp_path: Path
) -> None:
    triage = AlertTriage(cast(Bus, None), cast(TriageStore, None), live.view(TocsinConfig.triage))
    assert triage._config.tier("checkout") == 2
    changed = document()
    changed["services"][0]["tier"] = 0
    write(config_file, changed)
    report = ConfigReloader(config_file, live, ["triage"]).reload()
    assert report.sections == {"triage": "reloaded"}
    assert triage._config.tier("checkout") == 0


# -- what applies live and what waits for a restart ------------------------------------------

BOTH = ("escalation", "notifier")
PUBLIC_URL = "https://tocsin.example.com"
SLACK = {"bot_token": "xoxb-0123456789", "signing_secret": "signing-secret-0123456789"}


def with_slack(doc: dict[str, Any], slack_user: str = "U0123ALICE") -> dict[str, Any]:
    doc["public_url"] = PUBLIC_URL
    doc["providers"] = {"slack": SLACK}
    doc["users"][0]["contacts"].append({"id": "chat", "type": "slack", "address": slack_user})
    return doc


def statuses(old: dict[str, Any], new: dict[str, Any]) -> dict[str, str]:
    before, after = parse_config(old), parse_config(new)
    return {name: section_status(name, before, after) for name in BOTH}


def test_a_changed_contact_address_is_reloaded() -> None:
    changed = document()
    changed["users"][0]["contacts"][0]["address"] = "http://127.0.0.1:9/elsewhere"
    assert statuses(document(), changed) == {"escalation": "unchanged", "notifier": "reloaded"}


def test_changed_providers_wait_for_a_restart() -> None:
    rotated = with_slack(document())
    rotated["providers"]["slack"] = {**SLACK, "bot_token": "xoxb-rotated-0123456789"}
    assert statuses(with_slack(document()), rotated) == {
        "escalation": "unchanged",
        "notifier": "changed; restart to apply",
    }


def test_a_changed_public_url_waits_for_a_restart_in_both_sections() -> None:
    moved = with_slack(document())
    moved["public_url"] = "https://oncall.example.com"
    assert statuses(with_slack(document()), moved) == {
        "escalation": "changed; restart to apply",
        "notifier": "changed; restart to apply",
    }


def test_slack_contacts_change_the_inbound_user_map_which_waits_for_a_restart() -> None:
    old, new = with_slack(document()), with_slack(document(), slack_user="U0456ALICE")
    assert statuses(old, new)["notifier"] == "changed; restart to apply"
    # A Slack channel (C...) is not in the map: reloaded.
    channel_old, channel_new = with_slack(document(), "C0123OPS"), with_slack(document(), "C9OPS")
    assert statuses(channel_old, channel_new)["notifier"] == "reloaded"
    assert notifier_restart_only(parse_config(channel_old)) == notifier_restart_only(
        parse_config(channel_new)
    )


def with_status_page(doc: dict[str, Any], sev0_cadence: str = "30m") -> dict[str, Any]:
    doc["status_pages"] = [
        {
            "id": "public",
            "title": "Example status",
            "components": [{"id": "checkout", "name": "Checkout", "services": ["checkout"]}],
            "cadence": {"SEV0": sev0_cadence},
        }
    ]
    return doc


def test_a_changed_update_cadence_is_reported_reloaded_for_escalation_which_reads_it() -> None:
    old, new = with_status_page(document()), with_status_page(document(), "15m")
    assert statuses(old, new) == {"escalation": "reloaded", "notifier": "reloaded"}


def test_a_changed_maintenance_window_is_reported_reloaded_for_the_status_pages() -> None:
    old = with_status_page(document())
    new = with_status_page(document())
    new["maintenance_windows"] = [
        {
            "id": "db-upgrade",
            "services": ["checkout"],
            "starts_at": "2030-01-05T02:00:00Z",
            "duration": "2h",
        }
    ]
    assert statuses(old, new) == {"escalation": "unchanged", "notifier": "reloaded"}
