"""Wiring of the ingest service: integrations and heartbeats from config into its store and
token directories, the webhook routes, and the heartbeat loop.

A reload replaces the section behind `config` (a view of the live configuration): the next
request, or the next heartbeat check, applies it first (new, changed and removed integrations
and heartbeats), once, under a lock; requests already past that point finish with the old one."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from schemas import ALERTS_RAW
from services.ingest import changes, enqueue
from services.ingest.api import router
from services.ingest.config import IngestConfig
from services.ingest.domain.formats import FORMATS
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.heartbeat_monitor import HeartbeatMonitor
from services.ingest.intake import RETRY_AFTER_SECONDS, Caller
from services.ingest.store import (
    HeartbeatDeclaration,
    IngestStore,
    Integration,
    MongoIngestStore,
)
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.http import TokenDirectory, token_digest
from tocsin.runtime.live_config import Current, Fixed
from tocsin.runtime.parts import Parts
from tocsin.runtime.service import Service
from tocsin.runtime.store import StoreUnavailable

PRODUCES = (ALERTS_RAW,)


def _callers(stored: list[Integration], config: IngestConfig) -> dict[str, Caller]:
    options = {integration.id: integration for integration in config.integrations}
    callers = {}
    for integration in stored:
        fmt = FORMATS.get(integration.type)
        declared = options.get(integration.id)
        if fmt is None or declared is None:
            continue  # only integrations of this configuration answer
        callers[integration.token_sha256] = Caller(
            integration=integration,
            format=fmt,
            limits=declared.limits,
            hmac=declared.hmac,
            rate_limit_per_minute=declared.rate_limit_per_minute,
        )
    return callers


def from_parts(parts: Parts, config: IngestConfig | Current[IngestConfig]) -> Service:
    return build(parts.bus, MongoIngestStore(parts.database), config, parts.clock)


def build(
    bus: Bus,
    store: IngestStore,
    config: IngestConfig | Current[IngestConfig],
    clock: Clock,
    *,
    heartbeat_poll_seconds: float = 1.0,
) -> Service:
    integrations: TokenDirectory[Caller] = TokenDirectory()
    heartbeats: TokenDirectory[str] = TokenDirectory()
    limiter = RateLimiter()
    live = Fixed(config) if isinstance(config, IngestConfig) else config
    # Its heartbeats are set by `apply` (at start, and after each reload).
    monitor = HeartbeatMonitor(bus, store, clock, [], poll_seconds=heartbeat_poll_seconds)
    applied: list[IngestConfig] = []  # the section the directories hold (none before start)
    applying = asyncio.Lock()

    async def apply(config: IngestConfig) -> None:
        for integration in config.integrations:
            await store.upsert_integration(
                Integration(
                    id=integration.id,
                    type=integration.type,
                    service_id=integration.service,
                    token_sha256=token_digest(integration.token.get_secret_value()),
                )
            )
        integrations.replace(_callers(await store.integrations(), config))
        digests = {}
        for heartbeat in config.heartbeats:
            digest = token_digest(heartbeat.token.get_secret_value())
            await store.declare_heartbeat(
                HeartbeatDeclaration(
                    id=heartbeat.id,
                    token_sha256=digest,
                    service_id=heartbeat.service,
                    interval=heartbeat.interval,
                    grace=heartbeat.grace,
                    severity=heartbeat.severity,
                    summary=heartbeat.summary,
                ),
                clock.now(),
            )
            digests[digest] = heartbeat.id
        heartbeats.replace(digests)
        monitor.watch([heartbeat.id for heartbeat in config.heartbeats])
        applied[:] = [config]

    async def apply_config() -> None:
        await store.ensure_indexes()
        async with applying:
            await apply(live.current)

    async def apply_reloaded() -> None:
        """Before each request and heartbeat check: apply a reloaded section first."""
        if applied and live.current is applied[0]:
            return
        async with applying:
            current = live.current
            if not applied or current is applied[0]:
                return  # not started yet, or applied by whoever held the lock
            if current == applied[0]:
                applied[:] = [current]  # another section was reloaded: nothing to write
                return
            await apply(current)

    reload_refused = "cannot apply the reloaded configuration right now"

    async def apply_before_request() -> None:
        try:
            await apply_reloaded()
        except StoreUnavailable:
            # Not applied yet (the next request tries again): senders retry 5xx.
            raise HTTPException(
                503, reload_refused, headers={"Retry-After": RETRY_AFTER_SECONDS}
            ) from None

    async def reloaded_or_refused() -> JSONResponse | None:
        """`apply_before_request` for the lean webhook route: the same 503, as an answer."""
        try:
            await apply_reloaded()
        except StoreUnavailable:
            return JSONResponse(
                {"detail": reload_refused},
                status_code=503,
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        return None

    api = APIRouter(dependencies=[Depends(apply_before_request)])
    webhooks = router(bus, integrations, heartbeats, monitor, clock, limiter, reloaded_or_refused)
    api.include_router(webhooks.router)
    api.include_router(enqueue.router(bus, integrations, clock, limiter))
    api.include_router(changes.router(bus, integrations, clock, limiter))

    async def check_heartbeats() -> None:
        await monitor.run(before_check=apply_reloaded)

    return Service(
        name="ingest",
        router=api,
        on_start=[apply_config],
        # Always running: a reload may declare the first heartbeat (no ids: no query).
        loops=[check_heartbeats],
        hot_routes=[webhooks.hot],
    )
