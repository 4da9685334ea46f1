"""Where the console finds triage in the two deployments: escalation, and only escalation, has
TOCSIN_TRIAGE_URL naming triage's Service on triage's port (Compose and the Helm chart)."""

from __future__ import annotations

import yaml

from tests.deploy.support import ROOT, Manifest, of_kind


def env_of(deployment: Manifest) -> dict[str, str | None]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_chart_points_escalation_at_triages_service(
    default_manifests: list[Manifest], production_manifests: list[Manifest]
) -> None:
    for manifests in (default_manifests, production_manifests):
        deployments = of_kind(manifests, "Deployment")
        services = of_kind(manifests, "Service")
        port = services["tocsin-triage"]["spec"]["ports"][0]["port"]
        assert env_of(deployments["tocsin-escalation"])["TOCSIN_TRIAGE_URL"] == (
            f"http://tocsin-triage:{port}"
        )
        for name in ("tocsin-ingest", "tocsin-triage", "tocsin-notifier"):
            assert "TOCSIN_TRIAGE_URL" not in env_of(deployments[name]), name


def test_compose_points_escalation_at_triage() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    escalation = services["escalation"]["environment"]
    assert escalation["TOCSIN_TRIAGE_URL"] == "http://triage:8082"
    assert "8082" in services["triage"]["command"]
    # The shared settings are still there (the anchor is merged, not replaced).
    assert escalation["TOCSIN_KAFKA_BOOTSTRAP"] == "kafka:9092"
    for name in ("ingest", "triage", "notifier"):
        assert "TOCSIN_TRIAGE_URL" not in services[name]["environment"], name
