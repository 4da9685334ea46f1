"""The `tocsin` command line's front door: --version and what --help tells a new user."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tocsin.composition.cli import main

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _exit_output(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 0
    return capsys.readouterr().out


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    version = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]
    assert _exit_output(["--version"], capsys) == f"tocsin {version}\n"


def test_up_help_shows_the_defaults_and_the_admin_token_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = " ".join(_exit_output(["up", "--help"], capsys).split())
    assert (
        "--data-dir DATA_DIR where the SQLite file and the lock file live (default: tocsin-data)"
        in text
    )
    assert "--host HOST address to listen on (default: 127.0.0.1)" in text
    assert "--port PORT port to listen on (default: 8080)" in text
    assert "default: $TOCSIN_CONFIG" in text
    assert "TOCSIN_ADMIN_TOKEN the bootstrap admin key" in text
    assert "the API under /api/v1 takes only personal API keys" in text


def test_serve_help_shows_each_service_port_and_the_infrastructure_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = " ".join(_exit_output(["serve", "--help"], capsys).split())
    assert "ingest 8081, triage 8082, escalation 8083, notifier 8084" in text
    for variable in ("TOCSIN_KAFKA_BOOTSTRAP", "TOCSIN_MONGO_URL", "TOCSIN_ADMIN_TOKEN"):
        assert variable in text


def test_config_check_reports_each_problem_by_path_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text(
        "users:\n"
        "  - id: bob\n"
        "    name: Bob\n"
        "    contacts: [{id: a, type: log}, {id: b, type: log}]\n"
        "    notification_rules: [{contact: x}]\n"
        "integrations:\n"
        "  - {id: prom, type: alertmanager, token: short, service: checkout}\n",
        encoding="utf-8",
    )
    assert main(["config", "check", str(config)]) == 1
    assert capsys.readouterr().err == (
        f"invalid configuration in {config}:\n"
        "  - integrations[0].token: must be at least 16 characters\n"
        "  - users[0].notification_rules[0].contact: unknown contact 'x' (user 'bob' has: a, b)\n"
    )
