"""What every service is built from (`services.<name>.app.from_parts`); only the bus and the
database adapters differ between the two run modes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tocsin.runtime.access import Access
from tocsin.runtime.audit import AuditLog
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.settings import Settings
from tocsin.runtime.store import DocumentDatabase


@dataclass(frozen=True)
class Parts:
    bus: Bus
    database: DocumentDatabase
    settings: Settings
    clock: Clock
    http_client: httpx.AsyncClient
    instance_id: str
    require_api_key: Callable[..., str]
    # People, personal keys and the audit log (tocsin.runtime.access, .audit); None in tests
    # that guard the API with a fixed key only.
    access: Access | None = None
    audit: AuditLog | None = None
