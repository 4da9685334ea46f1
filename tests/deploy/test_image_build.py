"""Build the image from the Dockerfile where this machine can (buildah + debootstrap, as root),
run `tocsin --version` in it and serve /healthz from it. Skipped, saying why, elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.support import ROOT

IMAGE = "localhost/tocsin:test"
ENV = {**os.environ, "STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}

pytestmark = [
    pytest.mark.skipif(
        not (shutil.which("buildah") and shutil.which("debootstrap") and os.geteuid() == 0),
        reason="building the image needs root, buildah and debootstrap (apt-get install buildah "
        "debootstrap); the Dockerfile is still linted and its install step checked",
    ),
    pytest.mark.timeout(900),
]


def buildah(*args: str) -> str:
    done = subprocess.run(
        ["buildah", *args], env=ENV, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def built() -> Iterator[str]:
    done = subprocess.run(
        [ROOT / "scripts" / "build-image.sh"], cwd=ROOT, env={**ENV, "TOCSIN_IMAGE": IMAGE},
        capture_output=True, text=True, timeout=880, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == IMAGE
    yield done.stderr
    buildah("rmi", IMAGE)  # vfs storage keeps full copies: leave no image behind


@pytest.fixture
def container(built: str) -> Iterator[str]:
    name = buildah("from", "-q", IMAGE)
    yield name
    buildah("rm", name)


def test_the_image_runs_tocsin_as_the_non_root_user(built: str, container: str) -> None:
    assert "in the image: 10001:10001 tocsin 0.1.0" in built
    assert buildah("run", container, "--", "tocsin", "--version") == "tocsin 0.1.0"
    config = json.loads(buildah("inspect", "--type", "image", IMAGE))["Docker"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["tocsin"]
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    # No installer or compiler in the final image.
    assert buildah("run", container, "--", "sh", "-c", "command -v uv pip gcc || true") == ""


def test_the_image_serves_healthz(container: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["buildah", "run", "--env", "TOCSIN_ADMIN_TOKEN=test", container, "--",
         "tocsin", "up", "--host", "127.0.0.1", "--port", str(port), "--data-dir", "/data"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "no answer from tocsin up in the image"
                time.sleep(0.5)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=30)
