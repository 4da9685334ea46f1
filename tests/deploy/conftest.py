"""Deployment files: the Dockerfile, docker-compose.yml and the Helm chart (no engine, no cluster).

Helm is built from the Go module proxy by scripts/helm.sh (once, into .cache/bin) and the Compose
specification's schema comes from the compose-go module (scripts/compose-schema.sh).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import (
    CHART,
    DEFAULT_SET,
    K8S_VERSION,
    PRODUCTION_VALUES,
    ROOT,
    Manifest,
    Render,
    manifests,
    run,
)


@pytest.fixture(scope="session")
def helm() -> Path:
    done = run(ROOT / "scripts" / "helm.sh")
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


@pytest.fixture(scope="session")
def compose_schema() -> Path:
    done = run(ROOT / "scripts" / "compose-schema.sh")
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """`helm template` of the chart with these extra arguments (values files, --set)."""

    def template(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return run(
            helm, "template", "tocsin", CHART, "--namespace", "tocsin",
            "--kube-version", K8S_VERSION, *args,
        )  # fmt: skip

    return template


@pytest.fixture(scope="session")
def default_manifests(render: Render) -> list[Manifest]:
    done = render(*DEFAULT_SET)
    assert done.returncode == 0, done.stderr
    return manifests(done.stdout)


@pytest.fixture(scope="session")
def production_manifests(render: Render) -> list[Manifest]:
    done = render("-f", PRODUCTION_VALUES)
    assert done.returncode == 0, done.stderr
    return manifests(done.stdout)
