"""/docs works without internet access: the page references no other host, and every file it
loads is served by Tocsin itself, in both run modes (the embedded app and each service)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tocsin.composition.config import TocsinConfig
from tocsin.composition.distributed import create_service_app
from tocsin.composition.embedded import create_embedded_app
from tocsin.composition.wiring import SERVICE_NAMES, ServiceName
from tocsin.runtime.service import ProcessState
from tocsin.runtime.settings import Settings

EXPECTED_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


async def _assert_docs_are_self_hosted(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "://" not in html, "the docs page names another host"
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert len(assets) == 3, assets  # stylesheet, icon, script
        for url in assets:
            assert url.startswith("/docs/"), url
            answer = await client.get(url)
            assert answer.status_code == 200, url
            assert answer.headers["content-type"].startswith(EXPECTED_TYPES[Path(url).suffix])
            assert len(answer.content) > 0
        (script,) = [url for url in assets if url.endswith(".js")]
        assert b"SwaggerUIBundle" in (await client.get(script)).content
        (spec,) = re.findall(r"url: '([^']+)'", html)
        assert (await client.get(spec)).json()["info"]["title"] == app.title
        # ReDoc would load from a CDN: it is not offered.
        assert (await client.get("/redoc")).status_code == 404


async def test_tocsin_up_serves_its_docs_assets_itself(tmp_path: Path) -> None:
    app = create_embedded_app(Settings(), TocsinConfig(), tmp_path, ProcessState())
    await _assert_docs_are_self_hosted(app)


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_each_service_serves_its_docs_assets_itself(service: ServiceName) -> None:
    # Building the app opens no connection; the docs need neither Kafka nor MongoDB.
    app = create_service_app(service, Settings(), TocsinConfig(), ProcessState())
    await _assert_docs_are_self_hosted(app)
