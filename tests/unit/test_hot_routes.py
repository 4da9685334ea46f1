"""Hot routes: served by the service app ahead of its middleware and router, with the HTTP
metric, an aggregated access log and (when spans are recorded) a server span of their own;
whatever they do not take reaches the router as before."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tocsin.runtime.http import AccessSummary, HotRoute, HotRoutes
from tocsin.runtime.service import Service, ServiceApp, create_app

TEMPLATE = "/v1/hooks/{secret}"
SECRET = "hot-route-secret-0123456789"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Seen:
    """What the hot endpoint saw of each request: its path parameter, route and trace."""

    def __init__(self) -> None:
        self.params: list[dict[str, str]] = []
        self.routes: list[str] = []
        self.trace_ids: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.params.append(dict(scope["path_params"]))
        self.routes.append(scope["route"].path)
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        secret = scope["path_params"]["secret"]
        status = 202 if secret == SECRET else 401
        await JSONResponse({"secret_ok": status == 202}, status_code=status)(scope, receive, send)


class CountingMiddleware:
    calls = 0

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            CountingMiddleware.calls += 1
        await self._app(scope, receive, send)


class Bus:
    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class App:
    def __init__(self, http: httpx.AsyncClient, seen: Seen, app: ServiceApp) -> None:
        self.http = http
        self.seen = seen
        self.app = app


def _app(seen: Seen, root_path: str = "") -> tuple[httpx.AsyncClient, ServiceApp]:
    router = APIRouter()

    @router.get(TEMPLATE)
    async def documented(secret: str) -> dict[str, str]:
        return {"via": "router"}

    service = Service("hooks", router=router, hot_routes=[HotRoute("POST", TEMPLATE, seen)])
    app = create_app("hot", [service], Bus(), {})  # type: ignore[arg-type]
    assert isinstance(app, ServiceApp)
    app.add_middleware(CountingMiddleware)
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://tocsin"), app


@pytest.fixture
async def hot() -> AsyncIterator[App]:
    seen = Seen()
    http, app = _app(seen)
    async with http:
        yield App(http, seen, app)


def _served(status: str) -> float:
    labels = {"method": "POST", "route": TEMPLATE, "status": status}
    return REGISTRY.get_sample_value("tocsin_http_request_duration_seconds_count", labels) or 0.0


async def test_a_hot_route_skips_the_middleware_and_is_measured_once(hot: App) -> None:
    before, middleware = _served("202"), CountingMiddleware.calls
    response = await hot.http.post(f"/v1/hooks/{SECRET}", json={})
    assert (response.status_code, response.json()) == (202, {"secret_ok": True})
    assert hot.seen.params == [{"secret": SECRET}]
    assert hot.seen.routes == [TEMPLATE]
    assert CountingMiddleware.calls == middleware  # the stack never saw it
    assert _served("202") == before + 1  # the hot dispatch's metric, not the middleware's too


async def test_what_the_hot_route_does_not_take_reaches_the_router(hot: App) -> None:
    middleware = CountingMiddleware.calls
    assert (await hot.http.get(f"/v1/hooks/{SECRET}")).json() == {"via": "router"}
    assert (await hot.http.post(f"/v1/hooks/{SECRET}/more")).status_code == 404
    assert (await hot.http.post("/v1/hooks/")).status_code == 404
    assert (await hot.http.post("/v1/other/x")).status_code == 404
    assert hot.seen.params == []
    assert CountingMiddleware.calls == middleware + 4


async def test_behind_a_root_path_the_router_answers() -> None:
    seen = Seen()
    http, _ = _app(seen, root_path="/prefix")
    async with http:
        response = await http.post(f"/prefix/v1/hooks/{SECRET}", json={})
    assert response.status_code == 405  # the router's GET route; no hot dispatch
    assert seen.params == []


def test_a_hot_route_ends_with_its_only_parameter() -> None:
    assert HotRoute("POST", TEMPLATE, Seen()).prefix == "/v1/hooks/"
    for path in ("/v1/hooks", "/v1/{a}/hooks", "/v1/{a}/{b}", "/v1/hooks/{x"):
        with pytest.raises(ValueError, match="ends with its only parameter"):
            HotRoute("POST", path, Seen())


async def test_accepted_requests_are_summed_up_refusals_logged_one_by_one(
    hot: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.access")
    for _ in range(3):
        await hot.http.post(f"/v1/hooks/{SECRET}", json={})
    await hot.http.post("/v1/hooks/wrong-secret-0123", json={})
    lines = [r.getMessage() for r in caplog.records if r.name == "tocsin.access"]
    assert len(lines) == 1
    assert lines[0].startswith(f"POST {TEMPLATE} 401 ")
    hot.app.hot.summary.flush()
    lines = [r.getMessage() for r in caplog.records if r.name == "tocsin.access"]
    assert len(lines) == 2
    assert lines[1].startswith(f"POST {TEMPLATE} 202 x3 in ")
    assert all(SECRET not in line and "wrong-secret" not in line for line in lines)


async def test_the_summary_prints_itself_after_its_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.access")
    summary = AccessSummary(interval=0.01)
    summary.record("POST", TEMPLATE, 202, 0.002)
    summary.record("POST", TEMPLATE, 202, 0.004)
    await asyncio.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "tocsin.access"]
    assert len(lines) == 1
    assert " 202 x2 in " in lines[0]
    assert lines[0].endswith("mean 3.0ms max 4.0ms")


def _traced(seen: Seen, recorded: bool) -> tuple[httpx.AsyncClient, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    routes = HotRoutes(
        [HotRoute("POST", TEMPLATE, seen)],
        tracer=provider.get_tracer("test"),
        spans_recorded=lambda: recorded,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        route = routes.match(scope)
        assert route is not None
        await routes.serve(route, scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://tocsin"), exporter


async def test_recorded_spans_name_the_template_and_continue_the_callers_trace() -> None:
    seen = Seen()
    http, exporter = _traced(seen, recorded=True)
    async with http:
        await http.post(f"/v1/hooks/{SECRET}", headers={"traceparent": TRACEPARENT})
        await http.post("/v1/hooks/wrong-secret-0123")
    first, second = exporter.get_finished_spans()
    assert first.name == f"POST {TEMPLATE}"
    assert first.kind == trace.SpanKind.SERVER
    assert format(first.context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert first.parent is not None
    assert format(first.parent.span_id, "016x") == "b7ad6b7169203331"
    assert first.attributes is not None
    assert first.attributes["http.response.status_code"] == 202
    assert first.attributes["http.route"] == TEMPLATE
    assert SECRET not in str(dict(first.attributes))
    assert second.parent is None  # no caller context: a new trace
    assert second.attributes is not None
    assert second.attributes["http.response.status_code"] == 401
    assert seen.trace_ids == [first.context.trace_id, second.context.trace_id]


async def test_without_recorded_spans_no_span_but_the_callers_trace_goes_on() -> None:
    seen = Seen()
    http, exporter = _traced(seen, recorded=False)
    async with http:
        await http.post(f"/v1/hooks/{SECRET}", headers={"traceparent": TRACEPARENT})
        await http.post(f"/v1/hooks/{SECRET}")
    assert exporter.get_finished_spans() == ()
    assert seen.trace_ids == [int(TRACEPARENT.split("-")[1], 16), 0]
