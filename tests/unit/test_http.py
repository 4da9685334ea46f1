"""Operator API keys: held as digests, matched in constant time; the docs page's own assets."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest
from fastapi import FastAPI

from tocsin.runtime.http import SWAGGER_UI_FILES, ApiKeys, install_docs, token_digest


def test_token_digest_is_sha256_hex() -> None:
    assert token_digest("s3cret") == hashlib.sha256(b"s3cret").hexdigest()


def _keys() -> ApiKeys:
    return ApiKeys({"ops": token_digest("ops-key-123"), "ci": token_digest("ci-key-456")})


def test_right_key_authenticates_as_its_name() -> None:
    keys = _keys()
    assert keys.authenticate("ops-key-123") == "ops"
    assert keys.authenticate("ci-key-456") == "ci"


def test_wrong_key_is_refused() -> None:
    keys = _keys()
    assert keys.authenticate("ops-key-124") is None
    assert keys.authenticate("") is None
    assert keys.authenticate("OPS-KEY-123") is None


def test_the_digest_itself_is_not_a_key() -> None:
    assert _keys().authenticate(token_digest("ops-key-123")) is None


def test_no_keys_refuses_everything() -> None:
    assert ApiKeys({}).authenticate("anything") is None


# -- /docs, served without a CDN ---------------------------------------------------------------


def _docs_app() -> FastAPI:
    app = FastAPI(title="Docs test", docs_url=None, redoc_url=None)
    install_docs(app)
    return app


async def _get(app: FastAPI, path: str, root_path: str = "") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://tocsin") as client:
        return await client.get(path)


async def test_docs_assets_are_cached_for_good_under_a_versioned_path() -> None:
    app = _docs_app()
    page = (await _get(app, "/docs")).text
    (script,) = re.findall(r'src="([^"]+)"', page)
    assert re.fullmatch(r"/docs/swagger-ui-\d+\.\d+\.\d+/swagger-ui-bundle\.js", script)
    answer = await _get(app, script)
    assert answer.status_code == 200
    assert "immutable" in answer.headers["cache-control"]


@pytest.mark.parametrize(
    "name", ["index.html", "swagger-initializer.js", "..%2F__init__.py", "nope.js"]
)
async def test_only_the_listed_docs_files_are_served(name: str) -> None:
    app = _docs_app()
    (script,) = re.findall(r'src="([^"]+)"', (await _get(app, "/docs")).text)
    directory = script.rsplit("/", 1)[0]
    assert name not in SWAGGER_UI_FILES
    assert (await _get(app, f"{directory}/{name}")).status_code == 404


async def test_docs_behind_a_path_prefix_load_everything_under_it() -> None:
    page = (await _get(_docs_app(), "/docs", root_path="/tocsin")).text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)
    assert len(urls) == 4, urls
    assert all(url.startswith("/tocsin/") for url in urls), urls


async def test_docs_do_not_ask_the_online_validator() -> None:
    page = (await _get(_docs_app(), "/docs")).text
    assert '"validatorUrl": null' in page
