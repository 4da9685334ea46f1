"""What every service is built from (`services.<name>.app.from_parts`); only the bus and the
database adapters differ between the two run modes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.mongo import Document
from tocsin.runtime.settings import Settings


@dataclass(frozen=True)
class Parts:
    bus: Bus
    database: AsyncDatabase[Document]
    settings: Settings
    clock: Clock
    http_client: httpx.AsyncClient
    instance_id: str
    require_api_key: Callable[..., str]
