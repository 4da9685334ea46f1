"""Paths and helpers of the deployment tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "tocsin"
PRODUCTION_VALUES = ROOT / "deploy" / "helm" / "values-production.yaml"
# The default values leave the external Kafka and MongoDB empty: they are required.
DEFAULT_SET = ["--set", "kafka.bootstrap=kafka:9092", "--set", "mongodb.url=mongodb://mongo:27017"]
K8S_VERSION = "1.33.0"

Manifest = dict[str, Any]
# `helm template` of the chart with extra arguments (the `render` fixture).
Render = Callable[..., subprocess.CompletedProcess[str]]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def manifests(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}
