"""The server's truth from Prometheus: the gate's server view and the service's resources.

    prom = Prometheus("http://127.0.0.1:9090")
    prom.wait_for_scrape("api", end)                        # every sample up to `end` is stored
    view = server_view(prom, "api", start, end, target)     # gate.View("server", ...)
    used = resources(prom, "api", start, end)               # CPU, memory, DB pool, cache hit ratio

Every query is an instant query evaluated at the end of the window (``time=end``, what ``@ end``
would do) over a range exactly as long as the window, so the load before and after it (ramp-up,
the next stress step) does not count. Latency percentiles are ``histogram_quantile`` over
``api_request_duration_seconds_bucket``: interpolated inside a bucket, so they are as exact as
the contract's buckets around the targets (0.075, 0.1, 0.125 ... 0.5 s).

A window needs at least ``MIN_SCRAPES`` scrapes of the job for ``rate()`` to mean anything; with
fewer, the server view carries a ``problem`` and the report says so instead of a number.
Uses only the standard library (urllib), so it also runs inside the gevent-patched load process.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..telemetry import contract
from .gate import View

MIN_SCRAPES = 4

REQUESTS = contract.API_REQUESTS.name
DURATION = contract.API_REQUEST_DURATION.name
QUERY_DURATION = contract.DB_QUERY_DURATION.name
CACHE = contract.CACHE_REQUESTS.name


class PrometheusError(RuntimeError):
    pass


class Prometheus:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422: a bad query; the body says why
            try:
                body = json.loads(exc.read())
            except ValueError:
                raise PrometheusError(f"{self.url}: HTTP {exc.code} for {params.get('query')!r}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusError(f"cannot query Prometheus at {self.url}: {exc}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{params.get('query')!r}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("/api/v1/query", params)["result"]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The first series' value (None when there is none, or it is NaN)."""
        result = self.query(expr, at)
        if not result:
            return None
        v = float(result[0]["value"][1])
        return None if math.isnan(v) or math.isinf(v) else v

    def values(self, expr: str, label: str, at: float | None = None) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for r in self.query(expr, at):
            v = float(r["value"][1])
            out[r["metric"].get(label, "")] = None if math.isnan(v) or math.isinf(v) else v
        return out

    def check(self) -> None:
        """Raise PrometheusError unless Prometheus answers a query."""
        self.query("vector(1)")

    def wait_for_scrape(self, job: str, at: float, timeout: float = 30.0) -> bool:
        """Wait until ``job`` has been scraped at or after ``at``: the window ending there is complete."""
        deadline = time.monotonic() + timeout
        while True:
            last = self.value(f'max(timestamp(up{{job="{job}"}}))')
            if last is not None and last >= at:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def _window(start: float, end: float) -> str:
    return f"{max(1, round(end - start))}s"


def server_view(prom: Prometheus, job: str, start: float, end: float, target_rate: float | None) -> View:
    """The gate's view of [start, end] as the API itself measured it."""
    sel, w = f'job="{job}"', _window(start, end)
    queries = {
        "scrapes": f"sum(count_over_time(up{{{sel}}}[{w}]))",
        "requests": f"sum(increase({REQUESTS}{{{sel}}}[{w}]))",
        "errors": f'sum(increase({REQUESTS}{{{sel}, status=~"5.."}}[{w}]))',
        "rate": f"sum(rate({REQUESTS}{{{sel}}}[{w}]))",
        **{
            f"p{round(q * 100)}": f"histogram_quantile({q}, sum by (le) (rate({DURATION}_bucket{{{sel}}}[{w}])))"
            for q in (0.5, 0.95, 0.99)
        },
    }
    got = {name: prom.value(expr, end) for name, expr in queries.items()}
    extra: dict[str, Any] = {"window": [start, end], "job": job, "prometheus": prom.url, "queries": queries}
    if not got["scrapes"]:
        extra["problem"] = f"Prometheus has no scrape of job {job!r} between {start:.0f} and {end:.0f}"
    elif got["scrapes"] < MIN_SCRAPES:
        extra["problem"] = (
            f"only {got['scrapes']:.0f} scrapes of job {job!r} in the {w} window: too few for rate(); "
            f"lengthen --duration or shorten the scrape interval"
        )
    ok = "problem" not in extra
    return View(
        "server",
        requests=round(got["requests"] or 0) if ok else 0,
        errors=round(got["errors"] or 0) if ok else 0,
        p50=got["p50"] if ok else None,
        p95=got["p95"] if ok else None,
        p99=got["p99"] if ok else None,
        achieved_rate=(got["rate"] or 0.0) if ok else 0.0,
        target_rate=target_rate,
        extra=extra,
    )


def resources(prom: Prometheus, job: str, start: float, end: float) -> dict[str, Any]:
    """What serving the window cost the service: CPU, memory, DB pool, queries, cache hit ratio.
    A value is None when its metric is not exported (process_* are absent in multiprocess mode)."""
    sel, w = f'job="{job}"', _window(start, end)
    queries = {
        "cpu_cores": f"sum(rate(process_cpu_seconds_total{{{sel}}}[{w}]))",
        "memory_bytes_max": f"sum(max_over_time(process_resident_memory_bytes{{{sel}}}[{w}]))",
        "db_pool_checked_out_avg": f"sum(avg_over_time({contract.DB_POOL_CHECKED_OUT.name}{{{sel}}}[{w}]))",
        "db_pool_checked_out_max": f"sum(max_over_time({contract.DB_POOL_CHECKED_OUT.name}{{{sel}}}[{w}]))",
        "db_pool_capacity": (
            f"sum(max_over_time({contract.DB_POOL_SIZE.name}{{{sel}}}[{w}]))"
            f" + sum(max_over_time({contract.DB_POOL_MAX_OVERFLOW.name}{{{sel}}}[{w}]))"
        ),
        "db_pool_waiting_max": f"sum(max_over_time({contract.DB_POOL_WAITING.name}{{{sel}}}[{w}]))",
        "db_pool_timeouts": f"sum(increase({contract.DB_POOL_TIMEOUTS.name}{{{sel}}}[{w}]))",
        "db_queries_per_second": f"sum(rate({QUERY_DURATION}_count{{{sel}}}[{w}]))",
        "db_query_p95": f"histogram_quantile(0.95, sum by (le) (rate({QUERY_DURATION}_bucket{{{sel}}}[{w}])))",
        "cache_hit_ratio": (
            f'sum(increase({CACHE}{{{sel}, result="hit"}}[{w}])) / sum(increase({CACHE}{{{sel}}}[{w}]))'
        ),
        "cache_lookups_per_second": f"sum(rate({CACHE}{{{sel}}}[{w}]))",
    }
    out: dict[str, Any] = {name: prom.value(expr, end) for name, expr in queries.items()}
    by_category = (
        f'sum by (cache) (increase({CACHE}{{{sel}, result="hit"}}[{w}]))'
        f" / sum by (cache) (increase({CACHE}{{{sel}}}[{w}]))"
    )
    out["cache_hit_ratio_by_category"] = prom.values(by_category, "cache", end)
    out["queries"] = queries
    return out
