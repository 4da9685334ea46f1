"""MongoDB access (pymongo's native async client), restricted to what FerretDB 1.24 supports.

See DESIGN §5: no transactions, no change streams, no TTL indexes; single-document atomic
updates and compare-and-set on `version` only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

Document = dict[str, Any]


def open_client(url: str) -> AsyncMongoClient[Document]:
    # The client connects lazily; short timeouts make /readyz and failures answer fast.
    return AsyncMongoClient(
        url, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True
    )


async def ping(database: AsyncDatabase[Document]) -> bool:
    try:
        await asyncio.wait_for(database.command("ping"), timeout=2)
    except (PyMongoError, TimeoutError):
        return False
    return True
