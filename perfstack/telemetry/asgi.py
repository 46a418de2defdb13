"""A pure ASGI middleware that counts and times every HTTP request, and the /metrics endpoint.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``): no extra task per request, streaming
responses pass through untouched, and the cost is a few dictionary lookups plus one counter
increment and one histogram observation::

    from fastapi import FastAPI
    from perfstack.telemetry import instrument_app

    app = FastAPI()
    instrument_app(app)            # middleware + GET /metrics

``endpoint`` is the matched route's template (``/api/v1/merchants/{merchant_id}``), read from
the ``route`` Starlette puts in the scope; requests that match no route all count as
``<unmatched>``, so random paths cannot explode the number of series.

Under several worker processes (gunicorn/uvicorn ``--workers``), set
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder shared by the workers before they start:
``/metrics`` then aggregates every worker's values (prometheus_client multiprocess mode).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from time import perf_counter
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder

from .contract import HTTP_METHODS, OTHER_METHOD, UNMATCHED_ENDPOINT
from .metrics import Metrics, default_metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PrometheusMiddleware:
    """Records ``api_requests_total`` and ``api_request_duration_seconds`` for each request."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics | None = None,
        exclude_paths: Iterable[str] = ("/metrics",),
    ) -> None:
        self.app = app
        self.metrics = metrics or default_metrics()
        self.exclude = frozenset(exclude_paths)
        self.tally = self.metrics.http
        # Label children cached by label values: the sets are bounded by the contract.
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude:
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        root_path = scope.get("root_path", "")
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = perf_counter() - start
            tally = self.tally
            if tally is None:
                self._record(scope, root_path, status, elapsed)
            else:  # the hot path, inlined: this runs once per request
                method = scope["method"]
                if method not in HTTP_METHODS:
                    method = OTHER_METHOD
                path = getattr(scope.get("route"), "path", None)
                if path.__class__ is not str:
                    endpoint = UNMATCHED_ENDPOINT
                elif scope.get("root_path", "") == root_path:
                    endpoint = path
                else:
                    endpoint = route_template(scope, root_path)
                tally.observe(method, endpoint, _STATUS.get(status) or str(status), elapsed)

    def _record(self, scope: Scope, root_path: str, status: int, elapsed: float) -> None:
        """Multiprocess mode: prometheus_client's collectors (the tallies cannot be shared)."""
        method = scope["method"]
        if method not in HTTP_METHODS:
            method = OTHER_METHOD
        endpoint = route_template(scope, root_path)
        key = (method, endpoint)
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = self.metrics.request_duration.labels(method, endpoint)
        histogram.observe(elapsed)
        ckey = (method, endpoint, str(status))
        counter = self._counters.get(ckey)
        if counter is None:
            counter = self._counters[ckey] = self.metrics.requests.labels(*ckey)
        counter.inc()


_STATUS = {code: str(code) for code in range(100, 600)}


def route_template(scope: Scope, root_path: str = "") -> str:
    """The template of the route that handled ``scope``, including any mount prefix."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ENDPOINT
    prefix = scope.get("root_path", "")[len(root_path) :]
    return prefix + path


def metrics_app(registry: CollectorRegistry | None = None) -> ASGIApp:
    """The /metrics endpoint: the given registry, or every worker's values in multiprocess mode.

    The exposition is rendered (and gzipped when the scraper accepts it, as Prometheus does) in
    a worker thread: rendering tens of thousands of series takes a few hundred milliseconds,
    which on the event loop would stall every request in flight for the length of each scrape.
    The Accept header picks the text format or OpenMetrics; ``name[]`` restricts the output.
    """
    if registry is None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    source = registry

    def render(accept: str, names: list[str], gzipped: bool) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        target = source.restricted_registry(names) if names else source
        body = encoder(target)
        return (gzip.compress(body, compresslevel=3) if gzipped else body), content_type

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        names = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("name[]", [])
        gzipped = "gzip" in headers.get("accept-encoding", "")
        body, content_type = await anyio.to_thread.run_sync(render, headers.get("accept", ""), names, gzipped)
        response_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        if gzipped:
            response_headers.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    return app


def instrument_app(app: Any, metrics: Metrics | None = None, metrics_path: str = "/metrics") -> Any:
    """Add the middleware and a ``GET metrics_path`` route to a Starlette or FastAPI app."""
    from starlette.routing import Route

    metrics = metrics or default_metrics()
    app.add_middleware(PrometheusMiddleware, metrics=metrics, exclude_paths=(metrics_path,))
    registry = None if metrics.registry is _default_registry() else metrics.registry
    endpoint = _Endpoint(metrics_app(registry))
    app.router.routes.append(Route(metrics_path, endpoint, methods=["GET"], include_in_schema=False))
    return app


class _Endpoint:
    """Starlette treats a plain function as a request handler; this marks an ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _default_registry() -> CollectorRegistry:
    from prometheus_client import REGISTRY

    return REGISTRY
