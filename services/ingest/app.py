"""Wiring of the ingest service: integrations from config into its store, then the routes."""

from __future__ import annotations

from schemas import ALERTS_RAW
from services.ingest.api import IntegrationDirectory, router
from services.ingest.store import IngestStore, Integration
from tocsin.bus import Bus
from tocsin.clock import Clock
from tocsin.config import TocsinConfig
from tocsin.http import token_digest
from tocsin.service import Service

PRODUCES = (ALERTS_RAW,)


def build(bus: Bus, store: IngestStore, config: TocsinConfig, clock: Clock) -> Service:
    directory = IntegrationDirectory()

    async def apply_config() -> None:
        await store.ensure_indexes()
        for integration in config.integrations:
            await store.upsert_integration(
                Integration(
                    id=integration.id,
                    type=integration.type,
                    service_id=integration.service,
                    token_sha256=token_digest(integration.token.get_secret_value()),
                )
            )
        directory.replace(await store.integrations())

    return Service(name="ingest", router=router(bus, directory, clock), on_start=[apply_config])
