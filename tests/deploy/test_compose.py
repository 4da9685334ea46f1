"""docker-compose.yml: valid against the Compose specification, pinned, wired as documented."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from tests.deploy.support import ROOT, run

COMPOSE = ROOT / "docker-compose.yml"
TOCSIN_SERVICES = {"ingest": 8081, "triage": 8082, "escalation": 8083, "notifier": 8084}
PINNED = re.compile(r"[a-z0-9./_-]+:(?!latest$)[A-Za-z0-9._-]+(@sha256:[0-9a-f]{64})?")


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def schema_errors(schema_file: Path, document: dict[str, Any]) -> list[str]:
    validator = jsonschema_rs.validator_for(json.loads(schema_file.read_text()))
    return [error.message for error in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_specification(compose_schema: Path) -> None:
    assert schema_errors(compose_schema, compose()) == []


def test_the_schema_check_rejects_a_wrong_compose_file(compose_schema: Path) -> None:
    document = compose()
    document["services"]["ingest"]["depends_on"]["kafka"]["condition"] = "service_ready"
    document["services"]["triage"]["deploy"]["replicas"] = "two"
    assert len(schema_errors(compose_schema, document)) >= 2


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in compose()["services"].items():
        assert PINNED.fullmatch(service["image"]), f"{name}: {service['image']}"


def test_the_stack_has_what_the_quick_start_needs() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["mongo"]["image"].startswith("mongo:")
    assert "--replSet" in services["mongo"]["command"]
    assert {"prometheus", "grafana", "alertmanager", "tocsin-init"} <= services.keys()
    assert services["triage"]["deploy"]["replicas"] == 2
    assert services["escalation"]["deploy"]["replicas"] == 2


def test_services_wait_for_healthy_dependencies_and_the_topic_job() -> None:
    services = compose()["services"]
    for name, port in TOCSIN_SERVICES.items():
        service = services[name]
        assert service["command"] == ["serve", name, "--port", str(port)]
        assert service["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "mongo": {"condition": "service_healthy"},
            "tocsin-init": {"condition": "service_completed_successfully"},
        }
        assert f"127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
    for name in ("kafka", "mongo"):
        assert services[name]["healthcheck"]["test"]


def test_config_and_secrets_come_from_mounted_files_and_the_environment() -> None:
    services = compose()["services"]
    for name in [*TOCSIN_SERVICES, "tocsin-init"]:
        environment = services[name]["environment"]
        # Interpolated from the shell (or .env) when compose starts, never a literal in the image.
        assert environment["TOCSIN_ADMIN_TOKEN"].startswith("${TOCSIN_ADMIN_TOKEN")
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            assert (ROOT / source).is_file(), volume
            assert volume.endswith(":ro")


def test_the_mounted_tocsin_config_is_valid() -> None:
    done = run(
        ROOT / ".venv" / "bin" / "tocsin", "config", "check", "deploy/compose/tocsin/tocsin.yaml"
    )
    assert done.returncode == 0, done.stderr


def test_the_example_alertmanager_posts_to_ingest_with_the_integrations_token() -> None:
    config = yaml.safe_load((ROOT / "deploy/compose/tocsin/tocsin.yaml").read_text())
    tokens = {i["token"] for i in config["integrations"] if i["type"] == "alertmanager"}
    alertmanager = yaml.safe_load(
        (ROOT / "deploy/compose/alertmanager/alertmanager.yml").read_text()
    )
    urls = [hook["url"] for r in alertmanager["receivers"] for hook in r.get("webhook_configs", [])]
    assert urls
    assert all(url.rsplit("/", 1)[0] == "http://ingest:8081/v1/ingest" for url in urls)
    assert {url.rsplit("/", 1)[1] for url in urls} <= tokens


def test_the_example_contacts_page_the_sink_service() -> None:
    config = yaml.safe_load((ROOT / "deploy/compose/tocsin/tocsin.yaml").read_text())
    port = compose()["services"]["sink"]["environment"]["HTTP_PORT"]
    addresses = [
        c["address"] for u in config["users"] for c in u["contacts"] if c["type"] == "webhook"
    ]
    assert addresses
    assert all(a.startswith(f"http://sink:{port}/") for a in addresses)


def test_prometheus_scrapes_every_service_on_its_port() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy/compose/prometheus/prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "tocsin")
    scraped = {n: sd["port"] for sd in job["dns_sd_configs"] for n in sd["names"]}
    assert scraped == TOCSIN_SERVICES


def test_compose_and_the_chart_ship_the_same_dashboards() -> None:
    compose_dir = ROOT / "deploy/grafana/dashboards"
    chart_dir = ROOT / "deploy/helm/tocsin/files/dashboards"
    names = sorted(p.name for p in compose_dir.glob("*.json"))
    assert names
    assert names == sorted(p.name for p in chart_dir.glob("*.json"))
    for name in names:
        assert json.loads((compose_dir / name).read_text()) == json.loads(
            (chart_dir / name).read_text()
        )


def test_the_init_job_runs_tocsin_admin_init_with_the_topic_settings() -> None:
    init = compose()["services"]["tocsin-init"]
    assert "entrypoint" not in init  # the image's `tocsin`
    assert init["command"] == ["admin", "init"]
    assert init["restart"] == "no"
    assert "tocsin-init" not in init["depends_on"]
    environment = init["environment"]
    for key in ("PARTITIONS", "REPLICATION_FACTOR", "MIN_INSYNC_REPLICAS", "RETENTION_HOURS"):
        assert environment[f"TOCSIN_KAFKA_{key}"].isdigit(), key
    done = run(ROOT / ".venv" / "bin" / "tocsin", *init["command"], "--help")
    assert done.returncode == 0, done.stderr
