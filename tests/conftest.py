"""Shared fixtures: the real Kafka and FerretDB started by `scripts/infra.sh up`."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tocsin.runtime.mongo import Document, open_client


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: run `make test`, or `scripts/infra.sh up` and "
            "`source .cache/infra.env` first"
        )
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _required_env("TOCSIN_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def mongo_url() -> str:
    return _required_env("TOCSIN_MONGO_URL")


@pytest.fixture
def namespace() -> str:
    """A fresh topic/group prefix, so tests never read each other's messages."""
    return f"test-{uuid.uuid4().hex[:12]}."


@pytest.fixture
async def database(mongo_url: str) -> AsyncIterator[AsyncDatabase[Document]]:
    client = open_client(mongo_url)
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()
