"""The Helm chart: lint, Kubernetes schemas, and what every rendered Deployment must carry."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import (
    CHART,
    DEFAULT_SET,
    K8S_VERSION,
    PRODUCTION_VALUES,
    ROOT,
    Manifest,
    Render,
    of_kind,
    run,
)

SERVICES = {"ingest": 8081, "triage": 8082, "escalation": 8083, "notifier": 8084}
VARIANTS = ["default", "production"]


@pytest.fixture(params=VARIANTS)
def rendered(
    request: pytest.FixtureRequest,
    default_manifests: list[Manifest],
    production_manifests: list[Manifest],
) -> list[Manifest]:
    return default_manifests if request.param == "default" else production_manifests


def variant_args(variant: str) -> list[str]:
    return DEFAULT_SET if variant == "default" else ["-f", str(PRODUCTION_VALUES)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_passes(helm: Path, variant: str) -> None:
    done = run(helm, "lint", "--strict", CHART, *variant_args(variant))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rendered_manifests_are_valid_kubernetes(rendered: list[Manifest], tmp_path: Path) -> None:
    builtin = [d for d in rendered if "monitoring.coreos.com" not in d["apiVersion"]]
    manifest_file = tmp_path / "manifests.yaml"
    manifest_file.write_text(yaml.safe_dump_all(builtin))
    done = run(
        ROOT / ".venv" / "bin" / "kubernetes-validate", "--strict", "--quiet",
        "-k", K8S_VERSION, manifest_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_validate_rejects_a_broken_manifest(
    default_manifests: list[Manifest], tmp_path: Path
) -> None:
    deployment = copy.deepcopy(next(d for d in default_manifests if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    manifest_file = tmp_path / "broken.yaml"
    manifest_file.write_text(yaml.safe_dump(deployment))
    done = run(ROOT / ".venv" / "bin" / "kubernetes-validate", "-k", K8S_VERSION, manifest_file)
    assert done.returncode != 0


def test_every_service_has_a_hardened_deployment_with_probes_and_resources(
    rendered: list[Manifest],
) -> None:
    deployments = of_kind(rendered, "Deployment")
    assert set(deployments) == {f"tocsin-{name}" for name in SERVICES}
    for name, port in SERVICES.items():
        pod = deployments[f"tocsin-{name}"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        assert container["args"] == ["serve", name, "--port", str(port)]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]
        # A read-only root needs a writable /tmp.
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_every_service_has_a_pdb_and_a_service(rendered: list[Manifest]) -> None:
    deployments = of_kind(rendered, "Deployment")
    budgets = of_kind(rendered, "PodDisruptionBudget")
    services = of_kind(rendered, "Service")
    for name, port in SERVICES.items():
        selector = deployments[f"tocsin-{name}"]["spec"]["selector"]["matchLabels"]
        assert budgets[f"tocsin-{name}"]["spec"]["selector"]["matchLabels"] == selector
        assert budgets[f"tocsin-{name}"]["spec"]["maxUnavailable"] == 1
        assert services[f"tocsin-{name}"]["spec"]["selector"] == selector
        assert services[f"tocsin-{name}"]["spec"]["ports"][0]["port"] == port


def test_topics_and_indexes_are_created_by_a_pre_install_hook_with_the_values_settings(
    rendered: list[Manifest],
) -> None:
    jobs = of_kind(rendered, "Job")
    job = jobs["tocsin-init"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "command" not in container  # the image's entrypoint, `tocsin`
    assert container["args"] == ["admin", "init"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    deployment = of_kind(rendered, "Deployment")["tocsin-ingest"]
    service_env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for key in ("PARTITIONS", "REPLICATION_FACTOR", "MIN_INSYNC_REPLICAS", "RETENTION_HOURS"):
        assert env[f"TOCSIN_KAFKA_{key}"] == service_env[f"TOCSIN_KAFKA_{key}"]
    assert env["TOCSIN_KAFKA_RETENTION_HOURS"] == "168"
    assert env["TOCSIN_INIT_TIMEOUT_SECONDS"] == str(job["spec"]["activeDeadlineSeconds"])
    # What the hook needs exists before it runs: a chart-made Secret is a hook too.
    assert "tocsin-init" not in of_kind(rendered, "ConfigMap")
    done = run(ROOT / ".venv" / "bin" / "tocsin", *container["args"], "--help")
    assert done.returncode == 0, done.stderr


def pod_specs(docs: list[Manifest]) -> dict[str, Manifest]:
    """The pod spec of every Deployment and Job, by name."""
    return {
        name: doc["spec"]["template"]["spec"]
        for kind in ("Deployment", "Job")
        for name, doc in of_kind(docs, kind).items()
    }


def test_default_values_connect_to_kafka_in_plaintext(
    default_manifests: list[Manifest],
) -> None:
    for name, pod in pod_specs(default_manifests).items():
        (container,) = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["TOCSIN_KAFKA_SECURITY_PROTOCOL"]["value"] == "PLAINTEXT", name
        assert not {"TOCSIN_KAFKA_SASL_PASSWORD", "TOCSIN_KAFKA_SSL_CAFILE"} & env.keys(), name
        assert "kafka-ca" not in {v["name"] for v in pod["volumes"]}, name


def test_strimzi_sasl_ssl_values_reach_every_pod_with_the_password_and_ca_from_secrets(
    production_manifests: list[Manifest],
) -> None:
    pods = pod_specs(production_manifests)
    assert set(pods) == {*(f"tocsin-{s}" for s in SERVICES), "tocsin-init"}
    for name, pod in pods.items():
        (container,) = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["TOCSIN_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL", name
        assert env["TOCSIN_KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512", name
        assert env["TOCSIN_KAFKA_SASL_USERNAME"]["value"] == "tocsin", name
        # The password is a reference to Strimzi's KafkaUser Secret, never a literal value.
        assert "value" not in env["TOCSIN_KAFKA_SASL_PASSWORD"], name
        assert env["TOCSIN_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "tocsin",
            "key": "password",
        }, name
        assert env["TOCSIN_KAFKA_SSL_CAFILE"]["value"] == "/etc/tocsin-kafka-ca/ca.crt", name
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["kafka-ca"]["secret"] == {
            "secretName": "tocsin-kafka-cluster-ca-cert",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }, name
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["kafka-ca"] == {
            "name": "kafka-ca",
            "mountPath": "/etc/tocsin-kafka-ca",
            "readOnly": True,
        }, name


def test_default_values_render_no_optional_extras(default_manifests: list[Manifest]) -> None:
    kinds = {d["kind"] for d in default_manifests}
    assert not kinds & {"HorizontalPodAutoscaler", "Ingress", "ServiceMonitor"}
    assert "Secret" in kinds


def test_production_values_render_hpa_ingress_monitoring_and_dashboards(
    production_manifests: list[Manifest],
) -> None:
    autoscalers = of_kind(production_manifests, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {"tocsin-ingest", "tocsin-triage"}
    deployments = of_kind(production_manifests, "Deployment")
    assert "replicas" not in deployments["tocsin-ingest"]["spec"]  # the HPA owns it
    assert deployments["tocsin-notifier"]["spec"]["replicas"] == 3
    (ingress,) = of_kind(production_manifests, "Ingress").values()
    backends = {
        p["path"]: p["backend"]["service"]["name"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert backends["/v1/ingest"] == "tocsin-ingest"
    assert backends["/api/v1"] == "tocsin-escalation"
    assert ingress["spec"]["tls"][0]["secretName"] == "tocsin-tls"
    assert "ServiceMonitor" in {d["kind"] for d in production_manifests}
    dashboards = [
        d
        for d in of_kind(production_manifests, "ConfigMap").values()
        if d["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert dashboards
    # An existing Secret is used: the chart makes none.
    assert "Secret" not in {d["kind"] for d in production_manifests}
    env_from = deployments["tocsin-triage"]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert env_from == [{"secretRef": {"name": "tocsin-secrets"}}]


def test_production_config_is_a_valid_tocsin_config(
    production_manifests: list[Manifest], tmp_path: Path
) -> None:
    config = of_kind(production_manifests, "ConfigMap")["tocsin-config"]["data"]["tocsin.yaml"]
    config_file = tmp_path / "tocsin.yaml"
    config_file.write_text(config)
    done = run(ROOT / ".venv" / "bin" / "tocsin", "config", "check", config_file)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "kafka.topics.partitions=0"], "partitions"),
        (["--set", "services.triage.replicas=0"], "replicas"),
        (["--set", "securityContext.readOnlyRootFilesystem=false"], "readOnlyRootFilesystem"),
        (["--set", "kafka.bootstrap=not a host"], "bootstrap"),
        (["--set", "mongodb.url=postgres://x"], "url"),
        (["--set", "servicez.ingest.replicas=2"], "servicez"),
        (["--set", "kafka.security.protocol=TLS"], "protocol"),
        (["--set", "kafka.security.saslMechanism=GSSAPI"], "saslMechanism"),
        (["--set", "kafka.topics.retentionHours=0"], "retentionHours"),
    ],
)
def test_a_wrong_value_fails_with_a_message_naming_it(
    render: Render, args: list[str], message: str
) -> None:
    done = render(*DEFAULT_SET, *args)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr


def test_missing_kafka_or_mongodb_fails_with_a_clear_message(render: Render) -> None:
    done = render("--set", "mongodb.url=mongodb://mongo:27017")
    assert done.returncode != 0
    assert "kafka.bootstrap is required" in done.stderr
    done = render("--set", "kafka.bootstrap=kafka:9092")
    assert done.returncode != 0
    assert "mongodb.url is required" in done.stderr


def test_deploy_check_script_passes() -> None:
    done = subprocess.run(
        [ROOT / "scripts" / "deploy-check.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.rstrip().endswith("deploy-check: ok")


# Not through the Ingress: probes, metrics, docs, and the reload every process takes for itself
# (SIGHUP, or its own address).
PRIVATE_PATHS = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/openapi.json",
    "/api/v1/config/reload",
)


def _routed(paths: dict[str, str], path: str) -> str | None:
    """The backend the Ingress gives `path` (Prefix rules: the longest matching prefix)."""
    matches = [p for p in paths if path == p or path.startswith(p.rstrip("/") + "/")]
    return paths[max(matches, key=len)] if matches else None


@pytest.mark.parametrize("service", list(SERVICES))
async def test_the_ingress_sends_every_public_route_to_the_service_that_serves_it(
    service: str, production_manifests: list[Manifest], mongo_url: str
) -> None:
    from tocsin.composition.config import parse_config
    from tocsin.composition.distributed import create_service_app
    from tocsin.runtime.service import ProcessState
    from tocsin.runtime.settings import Settings

    (ingress,) = of_kind(production_manifests, "Ingress").values()
    backends = {
        p["path"]: p["backend"]["service"]["name"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    settings = Settings(mongo_url=mongo_url, mongo_database="ingress-walk")
    app = create_service_app(service, settings, parse_config({}), ProcessState())  # type: ignore[arg-type]
    # Every documented route, and the console (served outside the OpenAPI document).
    paths = {p for p in app.openapi()["paths"] if not p.startswith(PRIVATE_PATHS)}
    if service == "escalation":
        paths.add("/ui/login")
    assert paths
    wrong = {p: _routed(backends, p) for p in paths if _routed(backends, p) != f"tocsin-{service}"}
    assert not wrong, f"{service}'s routes the Ingress sends elsewhere (or nowhere): {wrong}"
