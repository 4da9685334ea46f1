"""A Starlette app served by uvicorn on 127.0.0.1 in a thread of its own, with its own event
loop: usable from plain tests and from async tests alike (the fake never waits on the test's
loop, so a Tocsin app served in the test's loop can answer the fake's callbacks). From async
code, call the fakes' blocking helpers through `asyncio.to_thread`."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

T = TypeVar("T")

_START_TIMEOUT = 10.0


class BackgroundServer:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the server is not running")
        return self._loop

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"fake:{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT) or self._error is not None:
            raise RuntimeError(f"the fake server did not start: {self._error!r}")

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
            while not self._server.started and not task.done():
                await asyncio.sleep(0.005)
            self._ready.set()
            await task

        try:
            asyncio.run(serve())
        except BaseException as error:  # reported to start(), which raises it
            self._error = error
            self._ready.set()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run `coroutine` on the server's loop and wait for its result (blocking)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_START_TIMEOUT)
        self._socket.close()
