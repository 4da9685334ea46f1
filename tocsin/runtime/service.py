"""How a service plugs into a process: its routes, subscriptions, loops and start-up steps.

One process can host one service (distributed mode) or all four (embedded mode); `create_app`
composes whichever it is given into one FastAPI app whose lifespan starts the bus, the consumer
loops and the background loops, and stops them in reverse order. A service's hot routes
(`tocsin.runtime.http.HotRoute`) are dispatched by that app before anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import Receive, Scope, Send

from tocsin.runtime.bus import Bus, Subscription
from tocsin.runtime.http import HotRoute, HotRoutes, ReadinessCheck, install_docs, install_ops

log = logging.getLogger(__name__)


@dataclass
class Service:
    name: str
    router: APIRouter = field(default_factory=APIRouter)
    subscriptions: list[Subscription[Any]] = field(default_factory=list)
    loops: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Served ahead of the middleware stack and the router (see HotRoute).
    hot_routes: list[HotRoute] = field(default_factory=list)


class ServiceApp(FastAPI):
    """The app of a process: its hot routes first, then FastAPI (middleware, router)."""

    hot: HotRoutes = HotRoutes([])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.hot:
            route = self.hot.match(scope)
            if route is not None:
                scope["app"] = self
                await self.hot.serve(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


@dataclass
class ProcessState:
    """Set when a consumer or loop died: the process stops and exits non-zero."""

    failed: bool = False


def create_app(
    title: str,
    services: Sequence[Service],
    bus: Bus,
    checks: dict[str, ReadinessCheck],
    on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    state: ProcessState | None = None,
) -> FastAPI:
    process = state or ProcessState()

    def _watch(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # Fail loudly: a dead consumer must not leave a process that looks healthy.
            log.critical("%s died: %r; stopping the process", task.get_name(), error)
            process.failed = True
            os.kill(os.getpid(), signal.SIGTERM)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await bus.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            for service in services:
                for step in service.on_start:
                    await step()
            for service in services:
                for subscription in service.subscriptions:
                    task = asyncio.create_task(
                        bus.consume(subscription), name=f"{service.name}:{subscription.topic}"
                    )
                    task.add_done_callback(_watch)
                    tasks.append(task)
                for loop in service.loops:
                    task = asyncio.create_task(loop(), name=f"{service.name}:{loop.__name__}")
                    task.add_done_callback(_watch)
                    tasks.append(task)
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            app.hot.summary.flush()
            await bus.stop()
            for close in on_close:
                await close()

    # /docs is installed by install_docs, with assets served locally; no CDN-backed /redoc.
    app = ServiceApp(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.hot = HotRoutes([route for service in services for route in service.hot_routes])
    install_ops(app, checks)
    install_docs(app)
    for service in services:
        app.include_router(service.router)
    return app
