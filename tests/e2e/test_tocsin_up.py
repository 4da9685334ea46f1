"""`tocsin up` as a new user starts it: what the log says at start, and the locked API."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import (
    ROOT,
    TOCSIN,
    TocsinProcess,
    free_port,
    stop_processes,
    wait_ready,
)

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "tocsin.yaml"
LOCKED = "TOCSIN_ADMIN_TOKEN is not set: the operator API (/api/v1/...) takes only personal"


def _start_up(tmp_path: Path, admin_token: str | None) -> TocsinProcess:
    env = {k: v for k, v in os.environ.items() if k != "TOCSIN_ADMIN_TOKEN"}
    if admin_token is not None:
        env["TOCSIN_ADMIN_TOKEN"] = admin_token
    port = free_port()
    data_dir = tmp_path / "data"
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                str(TOCSIN),
                "up",
                "--config",
                str(EXAMPLE),
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    return TocsinProcess("up", port, process, log_path)


@pytest.fixture
def started(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TocsinProcess]:
    up = _start_up(tmp_path, request.param)
    try:
        wait_ready([up])
        yield up
    finally:
        stop_processes([up])


@pytest.mark.parametrize("started", [None], indirect=True)
def test_without_an_admin_token_the_log_says_the_api_is_locked_and_how_to_unlock_it(
    started: TocsinProcess,
) -> None:
    log = started.log()
    assert LOCKED in log
    assert "restart with TOCSIN_ADMIN_TOKEN=<a long random secret>" in log
    answer = httpx.get(
        f"{started.base_url}/api/v1/incidents", headers={"Authorization": "Bearer guess"}
    )
    assert answer.status_code == 401


@pytest.mark.parametrize("started", ["a-long-random-admin-token"], indirect=True)
def test_with_an_admin_token_the_api_answers_and_nothing_is_said_about_locking(
    started: TocsinProcess,
) -> None:
    answer = httpx.get(
        f"{started.base_url}/api/v1/incidents",
        headers={"Authorization": "Bearer a-long-random-admin-token"},
    )
    assert answer.status_code == 200
    assert LOCKED not in started.log()
    assert "a-long-random-admin-token" not in started.log()
