"""Per-request cost of perfstack's ASGI instrumentation, next to prometheus-fastapi-instrumentator.

    python -m benchmarks.overhead            # full run (about 3 minutes on 2 cores)
    python -m benchmarks.overhead --quick    # small numbers, under a minute

One trivial FastAPI app in three variants: ``plain`` (no instrumentation), ``ours``
(``instrument_app(app, Metrics(CollectorRegistry()))``) and ``peer``
(``Instrumentator().instrument(app).expose(app)``, the instrumentator's default setup).

1. In process: each app is driven straight through ASGI (scope/receive/send built here, no
   sockets), N requests per batch, variants interleaved round-robin over several rounds so drift
   hits all alike; the median batch gives microseconds per request.
2. Over HTTP: each variant under uvicorn (one worker, its own process) loaded by wrk on loopback.
3. Scrape cost: an app with 200 route templates x 5 methods x 3 status codes driven through the
   middleware, then /metrics rendered (generate_latest, and GET /metrics with and without gzip).
4. Request latency over HTTP with a scraper hitting /metrics every 100 ms, versus without.

Figures are printed, never asserted: the targets get PASS/MISS for information and the exit code
is 0 whatever they are.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_fastapi_instrumentator import Instrumentator

from perfstack.telemetry import instrument_app
from perfstack.telemetry.metrics import Metrics

from ._harness import (
    LoadResult,
    Scraper,
    ServerProcess,
    cleanup_on_sigterm,
    free_port,
    load_tool,
    machine_line,
    md_table,
    run_load,
)

VARIANTS = ("plain", "ours", "peer")
LABELS = {
    "plain": "(a) no instrumentation",
    "ours": "(b) perfstack PrometheusMiddleware",
    "peer": "(c) prometheus-fastapi-instrumentator",
}
# The request mix: templated routes with path parameters and plain ones, all answering 200.
PATHS = ("/items/42", "/", "/users/7/orders/1001", "/items/9000", "/health")
LOADED_PATHS = tuple(f"/r{i}/{i}" for i in range(0, 200, 7))  # GETs (200) on the many-routes app
SCRAPE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SCRAPE_STATUSES = (200, 404, 500)
TARGET_THROUGHPUT = 95.0  # ours >= 95 % of the uninstrumented throughput
TARGET_RATIO = 0.25  # ours costs at most 1/4 of the peer's per-request overhead


# --- the apps ------------------------------------------------------------------------------------
def build_app(variant: str, registry: CollectorRegistry | None = None) -> FastAPI:
    """The trivial app; ``registry`` only for ours/peer (the peer's default is the global REGISTRY)."""
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"service": "bench"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": f"item {item_id}"}

    @app.post("/items", status_code=201)
    async def create_item() -> dict[str, bool]:
        return {"created": True}

    @app.get("/users/{user_id}/orders/{order_id}")
    async def order(user_id: int, order_id: int) -> dict[str, int]:
        return {"user_id": user_id, "order_id": order_id}

    if variant == "ours":
        instrument_app(app, Metrics(registry or CollectorRegistry()))
    elif variant == "peer":
        Instrumentator(registry=registry).instrument(app).expose(app)
    elif variant != "plain":
        raise ValueError(variant)
    return app


def plain_app() -> FastAPI:  # uvicorn --factory targets
    return build_app("plain")


def ours_app() -> FastAPI:
    return build_app("ours")


def peer_app() -> FastAPI:
    return build_app("peer")


def build_many_routes_app(variant: str, templates: int, registry: CollectorRegistry) -> FastAPI:
    """``templates`` route templates ``/r{i}/{item_id}``, each answering the 5 methods with ?status=."""
    app = FastAPI()

    async def handler(request: Request, item_id: int) -> Response:
        return Response(b"{}", status_code=int(request.query_params.get("status", "200")))

    for i in range(templates):
        app.add_api_route(f"/r{i}/{{item_id}}", handler, methods=list(SCRAPE_METHODS))
    if variant == "ours":
        instrument_app(app, Metrics(registry))
    else:
        Instrumentator(registry=registry).instrument(app).expose(app)
    return app


def loaded_ours_app() -> FastAPI:
    """uvicorn factory: ours on the many-routes app, every (template, method, status) already counted."""
    app = build_many_routes_app("ours", 200, CollectorRegistry())
    # uvicorn calls the factory inside its running loop: drive the app on a loop of our own.
    t = threading.Thread(target=asyncio.run, args=(drive_all_series(app, 200),))
    t.start()
    t.join()
    return app


# --- a minimal ASGI harness ----------------------------------------------------------------------
def make_scope(method: str, path: str, query: bytes = b"", headers: Sequence[tuple[bytes, bytes]] = ()) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def receive() -> dict:
    return _REQUEST


class Sink:
    """The ``send`` callable: keeps the last status and counts body bytes."""

    def __init__(self) -> None:
        self.status = 0
        self.body = bytearray()
        self.keep_body = False

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif self.keep_body:
            self.body += message.get("body", b"")


async def call(app: Any, scope: dict, keep_body: bool = False) -> Sink:
    sink = Sink()
    sink.keep_body = keep_body
    await app(dict(scope), receive, sink)
    return sink


async def batch(app: Any, scopes: Sequence[dict], n: int) -> float:
    """Seconds per request over ``n`` requests cycling through ``scopes``."""
    sink = Sink()
    k = len(scopes)
    start = time.perf_counter()
    for i in range(n):
        await app(dict(scopes[i % k]), receive, sink)
    return (time.perf_counter() - start) / n


async def drive_all_series(app: Any, templates: int) -> int:
    """One request per (template, method, status): every label combination the contract allows here."""
    n = 0
    for i in range(templates):
        for method in SCRAPE_METHODS:
            for status in SCRAPE_STATUSES:
                sink = await call(app, make_scope(method, f"/r{i}/{n}", f"status={status}".encode()))
                if sink.status != status:
                    raise RuntimeError(f"/r{i} {method} answered {sink.status}, wanted {status}")
                n += 1
    return n


# --- 1. in process -------------------------------------------------------------------------------
@dataclass
class InProcess:
    per_request_us: dict[str, float]  # median over rounds
    spread_us: dict[str, tuple[float, float]]  # min, max over rounds
    paired_us: dict[str, float]  # median over rounds of (variant - plain) in the same round
    rounds: int
    requests: int


async def in_process(requests: int, rounds: int) -> InProcess:
    apps = {"plain": build_app("plain"), "ours": build_app("ours"), "peer": build_app("peer")}
    scopes = [make_scope("GET", p) for p in PATHS]
    for name, app in apps.items():  # sanity: every request of the mix is a 200 on every variant
        for scope in scopes:
            status = (await call(app, scope)).status
            if status != 200:
                raise RuntimeError(f"{name}: GET {scope['path']} answered {status}")
        await batch(app, scopes, max(200, requests // 5))  # warm up
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]  # rotate so no variant always runs first
        for name in order:
            gc.collect()
            samples[name].append(await batch(apps[name], scopes, requests) * 1e6)
    return InProcess(
        {v: statistics.median(s) for v, s in samples.items()},
        {v: (min(s), max(s)) for v, s in samples.items()},
        {v: statistics.median(x - p for x, p in zip(s, samples["plain"], strict=True)) for v, s in samples.items()},
        rounds,
        requests,
    )


# --- 2. over HTTP --------------------------------------------------------------------------------
def uvicorn_cmd(factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"benchmarks.overhead:{factory}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def over_http(requests: int, concurrency: int, rounds: int) -> dict[str, list[LoadResult]]:
    servers = {v: ServerProcess(v, uvicorn_cmd(f"{v}_app", p := free_port()), p) for v in VARIANTS}
    results: dict[str, list[LoadResult]] = {v: [] for v in VARIANTS}
    try:
        for server in servers.values():
            server.start()
        for v in VARIANTS:  # warm up (imports, route caches, label children)
            run_load(servers[v].base_url, PATHS, concurrency, requests=max(500, requests // 10))
        for r in range(rounds):
            order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
            for v in order:
                results[v].append(run_load(servers[v].base_url, PATHS, concurrency, requests=requests))
    finally:
        for server in servers.values():
            server.stop()
    return results


def median_run(results: list[LoadResult]) -> LoadResult:
    """The median run by throughput (of an odd count; the faster middle one otherwise)."""
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


# --- 3. scrape cost ------------------------------------------------------------------------------
@dataclass
class ScrapeCost:
    name: str
    series: int
    render_ms: float
    get_ms: float
    get_bytes: int
    gzip_ms: float
    gzip_bytes: int


def count_series(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


async def scrape_costs(templates: int, repeats: int) -> list[ScrapeCost]:
    """Render cost of ours (with and without ``_created`` series) and the peer, measured round-robin."""
    import prometheus_client

    setups = [
        ("perfstack", "ours", True),
        ("perfstack, _created off", "ours", False),
        ("instrumentator, default metrics", "peer", True),
    ]
    apps, registries = [], []
    for _, variant, _ in setups:
        registry = CollectorRegistry()
        app = build_many_routes_app(variant, templates, registry)
        await drive_all_series(app, templates)
        apps.append(app)
        registries.append(registry)
    plain_scope = make_scope("GET", "/metrics")
    gzip_scope = make_scope("GET", "/metrics", headers=[(b"accept-encoding", b"gzip")])
    times: list[dict[str, list[float]]] = [{"render": [], "plain": [], "gzip": []} for _ in setups]
    sizes: list[dict[str, int]] = [{} for _ in setups]
    for _ in range(repeats):
        for i, (_, _, created) in enumerate(setups):
            if not created:
                prometheus_client.disable_created_metrics()
            try:
                gc.collect()
                start = time.perf_counter()
                body = generate_latest(registries[i])
                times[i]["render"].append(time.perf_counter() - start)
                sizes[i]["series"] = count_series(body)
                for key, scope in (("plain", plain_scope), ("gzip", gzip_scope)):
                    start = time.perf_counter()
                    sink = await call(apps[i], scope, keep_body=True)
                    times[i][key].append(time.perf_counter() - start)
                    if sink.status != 200:
                        raise RuntimeError(f"GET /metrics answered {sink.status}")
                    sizes[i][key] = len(sink.body)
            finally:
                if not created:
                    prometheus_client.enable_created_metrics()
    return [
        ScrapeCost(
            name,
            sizes[i]["series"],
            statistics.median(times[i]["render"]) * 1000,
            statistics.median(times[i]["plain"]) * 1000,
            sizes[i]["plain"],
            statistics.median(times[i]["gzip"]) * 1000,
            sizes[i]["gzip"],
        )
        for i, (name, _, _) in enumerate(setups)
    ]


# --- 4. latency under scrapes --------------------------------------------------------------------
@dataclass
class UnderScrape:
    name: str
    series: int
    interval: float | None  # None: no scraper
    load: LoadResult
    scrapes: int = 0
    scrape_p50_ms: float = float("nan")
    scrape_max_ms: float = float("nan")


def under_scrapes(seconds: float, concurrency: int, interval: float) -> list[UnderScrape]:
    """Fixed-duration runs (a slow scrape can cut throughput a lot): no scraper, then a scraper."""
    out = []
    setups = (
        ("trivial app", "ours_app", PATHS, (interval,)),
        ("200 templates x 5 methods x 3 statuses", "loaded_ours_app", LOADED_PATHS, (interval, 1.0)),
    )
    for name, factory, paths, intervals in setups:
        port = free_port()
        with ServerProcess(factory, uvicorn_cmd(factory, port), port, ready_path="/metrics") as server:
            run_load(server.base_url, paths, concurrency, duration=2)  # warm up
            series = count_series(httpx.get(server.base_url + "/metrics").content)
            out.append(UnderScrape(name, series, None, run_load(server.base_url, paths, concurrency, duration=seconds)))
            for every in intervals:
                with Scraper(server.base_url + "/metrics", every) as scraper:
                    load = run_load(server.base_url, paths, concurrency, duration=seconds)
                durations = sorted(scraper.durations) or [float("nan")]
                out.append(
                    UnderScrape(
                        name,
                        series,
                        every,
                        load,
                        len(scraper.durations),
                        statistics.median(durations) * 1000,
                        durations[-1] * 1000,
                    )
                )
    return out


# --- report --------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, help="in-process requests per batch (default 4000; quick 500)")
    p.add_argument("--rounds", type=int, help="in-process rounds, variants interleaved (default 25; quick 5)")
    p.add_argument("--http-requests", type=int, help="requests per HTTP run (default 20000; quick 2000)")
    p.add_argument("--http-rounds", type=int, help="HTTP runs per variant, interleaved (default 3; quick 1)")
    p.add_argument("--concurrency", type=int, default=32, help="HTTP connections (default 32)")
    p.add_argument("--templates", type=int, help="route templates for the scrape cost (default 200; quick 50)")
    p.add_argument("--scrape-interval", type=float, default=0.1, help="seconds between scrapes (default 0.1)")
    p.add_argument(
        "--scrape-seconds", type=float, help="duration of each latency-under-scrapes run (default 10; quick 3)"
    )
    p.add_argument("--quick", action="store_true", help="small numbers: finishes in under a minute")
    p.add_argument("--skip-http", action="store_true", help="in-process and scrape-render figures only")
    a = p.parse_args(argv)
    q = a.quick
    requests = a.requests or (500 if q else 4000)
    rounds = a.rounds or (5 if q else 25)
    http_requests = a.http_requests or (2000 if q else 20000)
    http_rounds = a.http_rounds or (1 if q else 3)
    templates = a.templates or (50 if q else 200)
    repeats = 3 if q else 9
    scrape_seconds = a.scrape_seconds or (3.0 if q else 10.0)
    cleanup_on_sigterm()
    began = time.perf_counter()
    print(f"machine: {machine_line()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"load generator: {load_tool()}; HTTP server: uvicorn, 1 worker (its default loop/parser)\n")

    print(f"[1/4] in process: {rounds} rounds x {requests} requests per variant ...", flush=True)
    ip = asyncio.run(in_process(requests, rounds))
    us = ip.per_request_us
    ours_over, peer_over = us["ours"] - us["plain"], us["peer"] - us["plain"]
    ratio = ours_over / peer_over if peer_over > 0 else float("nan")
    throughput = us["plain"] / us["ours"] * 100
    for v in VARIANTS:
        lo, hi = ip.spread_us[v]
        print(f"  {LABELS[v]:40} {us[v]:8.2f} us/request (rounds {lo:.2f} .. {hi:.2f})")
    print(f"  overhead ours {ours_over:.2f} us, peer {peer_over:.2f} us, ratio {ratio:.2f}; ours {throughput:.1f} %")
    print(f"  paired per round: ours +{ip.paired_us['ours']:.2f} us, peer +{ip.paired_us['peer']:.2f} us")

    http: dict[str, list[LoadResult]] = {}
    scraped: list[UnderScrape] = []
    if not a.skip_http:
        print(f"[2/4] over HTTP: {http_rounds} x {http_requests} requests, {a.concurrency} connections ...", flush=True)
        http = over_http(http_requests, a.concurrency, http_rounds)
        for v in VARIANTS:
            runs = ", ".join(f"{r.rps:.0f}" for r in http[v])
            print(f"  {LABELS[v]:40} req/s per run: {runs}")

    print(f"[3/4] scrape cost: {templates} templates x 5 methods x 3 statuses ...", flush=True)
    costs = asyncio.run(scrape_costs(templates, repeats))

    if not a.skip_http:
        print(f"[4/4] latency with a scraper every {a.scrape_interval * 1000:.0f} ms vs none ...", flush=True)
        scraped = under_scrapes(scrape_seconds, a.concurrency, a.scrape_interval)

    # --- the Markdown block ------------------------------------------------------------------
    out = ["", "### Instrumentation overhead", "", f"Measured {machine_line()}; `python -m benchmarks.overhead`.", ""]
    out.append(
        f"In process (ASGI called directly, no sockets; median of {ip.rounds} interleaved rounds of "
        f"{ip.requests} requests over {len(PATHS)} routes incl. path parameters):"
    )
    out.append("")
    rows = []
    for v in VARIANTS:
        added = "" if v == "plain" else f"{us[v] - us['plain']:.2f}"
        paired = "" if v == "plain" else f"{ip.paired_us[v]:.2f}"
        rows.append(
            [
                LABELS[v],
                f"{us[v]:.2f}",
                f"{ip.spread_us[v][0]:.2f}",
                added,
                paired,
                f"{us['plain'] / us[v] * 100:.1f} %",
            ]
        )
    headers = ["variant", "µs / request", "best round", "added µs", "added, paired by round", "throughput vs (a)"]
    out.append(md_table(headers, rows))
    out.append("")
    out.append(
        md_table(
            ["target", "measured", "result"],
            [
                [
                    f"ours >= {TARGET_THROUGHPUT:.0f} % of uninstrumented throughput",
                    f"{throughput:.1f} %",
                    verdict(throughput >= TARGET_THROUGHPUT),
                ],
                [
                    f"ours <= {TARGET_RATIO:g} x the peer's added cost",
                    f"{ratio:.2f} ({ours_over:.2f} vs {peer_over:.2f} µs)",
                    verdict(ratio <= TARGET_RATIO),
                ],
            ],
        )
    )
    if http:
        out.append("")
        out.append(
            f"Over HTTP (uvicorn, 1 worker; {load_tool()} on loopback, {http_requests} requests, "
            f"{a.concurrency} connections; median of {http_rounds} interleaved runs; "
            "client and server share the cores):"
        )
        out.append("")
        base = median_run(http["plain"]).rps
        rows = []
        for v in VARIANTS:
            r = median_run(http[v])
            rows.append(
                [
                    LABELS[v],
                    f"{r.rps:.0f}",
                    f"{r.rps / base * 100:.1f} %",
                    f"{r.p50_ms:.2f}",
                    f"{r.p99_ms:.2f}",
                    r.error_count,
                ]
            )
        out.append(md_table(["variant", "req/s", "vs (a)", "p50 ms", "p99 ms", "errors"], rows))
    out.append("")
    out.append(
        f"Scrape cost ({templates} route templates x 5 methods x 3 status codes driven through the middleware; "
        f"median of {repeats}, registries measured round-robin; the peer's default /metrics does not compress):"
    )
    out.append("")
    rows = [
        [
            c.name,
            c.series,
            f"{c.render_ms:.1f}",
            f"{c.get_ms:.1f}",
            f"{c.get_bytes / 1024:.0f} KiB",
            f"{c.gzip_ms:.1f}",
            f"{c.gzip_bytes / 1024:.0f} KiB",
        ]
        for c in costs
    ]
    out.append(
        md_table(
            ["registry", "series", "generate_latest ms", "GET /metrics ms", "body", "GET gzip ms", "gzip body"], rows
        )
    )
    if scraped:
        out.append("")
        out.append(
            f"Request latency while a scraper GETs /metrics (gzip, like Prometheus) versus none (ours, uvicorn, "
            f"{scrape_seconds:.0f} s per run, {a.concurrency} connections; a scrape that takes longer than the "
            "interval is followed by the next at once):"
        )
        out.append("")
        rows = []
        for s in scraped:
            every = "none" if s.interval is None else f"every {s.interval * 1000:.0f} ms"
            done = "" if s.interval is None else f"{s.scrapes} ({s.scrape_p50_ms:.1f} / {s.scrape_max_ms:.1f})"
            r = s.load
            rows.append(
                [
                    f"{s.name}, {s.series} series",
                    every,
                    f"{r.rps:.0f}",
                    f"{r.p50_ms:.2f}",
                    f"{r.p99_ms:.2f}",
                    f"{r.max_ms:.1f}",
                    done,
                ]
            )
        out.append(md_table(["app", "scraper", "req/s", "p50 ms", "p99 ms", "max ms", "scrapes (p50 / max ms)"], rows))
    out.append("")
    print("\n".join(out))
    print(f"(finished in {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
