"""The metrics contract: every metric an API must expose for perfstack's dashboards and alerts.

This module is the only place a metric name, label set or bucket layout is written. The
instrumentation (:mod:`perfstack.telemetry.asgi`, ``.sqlalchemy``, ``.cache``) builds its
collectors from these specs, and the rules, dashboards and tests import the names from here::

    from perfstack.telemetry import contract
    contract.API_REQUEST_DURATION.name          # "api_request_duration_seconds"
    contract.API_REQUEST_DURATION.buckets       # (..., 0.05, ..., 0.1, ..., 0.5, ...)

Conventions (Prometheus naming guide): base units (seconds), ``_total`` on counters,
bounded label values (``endpoint`` is the route template, never the raw path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "histogram", "gauge"]

# Label values that stand for "anything else", so label sets stay bounded.
UNMATCHED_ENDPOINT = "<unmatched>"  # requests no route matched share this endpoint value
OTHER_METHOD = "OTHER"  # a method outside HTTP_METHODS
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The cache results counted by cache_requests_total.
CACHE_HIT, CACHE_MISS, CACHE_ERROR = "hit", "miss", "error"
CACHE_RESULTS = (CACHE_HIT, CACHE_MISS, CACHE_ERROR)


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the contract."""

    name: str  # the exposed name (counters include _total)
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # histograms only
    # Gauges under prometheus_client's multiprocess mode: how per-process values combine.
    multiprocess_mode: str = "livesum"

    @property
    def base_name(self) -> str:
        """The name prometheus_client takes (it appends ``_total`` to counters itself)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    def series(self) -> tuple[str, ...]:
        """Every series name this metric exposes (``_bucket``/``_sum``/``_count`` for histograms)."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


# Buckets carry every boundary a target names (API p95 0.1 s; DB average 0.05 s, p95 0.1 s,
# none over 0.5 s) with resolution on both sides, so histogram_quantile() interpolates
# between close neighbours around each target and "slower than 0.5 s" is an exact count.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
CACHE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
POOL_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- HTTP ---------------------------------------------------------------------------------
API_REQUESTS = MetricSpec(
    "api_requests_total",
    "counter",
    "HTTP requests served, by method, route template and status code.",
    ("method", "endpoint", "status"),
)
API_REQUEST_DURATION = MetricSpec(
    "api_request_duration_seconds",
    "histogram",
    "Time from receiving a request to sending the end of its response, by method and route template.",
    ("method", "endpoint"),
    REQUEST_BUCKETS,
)

# --- Database -----------------------------------------------------------------------------
DB_QUERY_DURATION = MetricSpec(
    "db_query_duration_seconds",
    "histogram",
    "Database statement execution time, by operation (a name the code gives, else the SQL verb).",
    ("operation",),
    QUERY_BUCKETS,
)
DB_POOL_SIZE = MetricSpec("db_pool_size_connections", "gauge", "Configured pool size (persistent connections).")
DB_POOL_MAX_OVERFLOW = MetricSpec(
    "db_pool_max_overflow_connections", "gauge", "Connections the pool may open beyond its size."
)
DB_POOL_CHECKED_OUT = MetricSpec(
    "db_pool_checked_out_connections", "gauge", "Connections currently checked out of the pool."
)
DB_POOL_OVERFLOW = MetricSpec(
    "db_pool_overflow_connections", "gauge", "Connections open beyond the pool size (overflow in use)."
)
DB_POOL_WAITING = MetricSpec("db_pool_waiting_checkouts", "gauge", "Checkouts currently waiting for a free connection.")
DB_POOL_CHECKOUT_WAIT = MetricSpec(
    "db_pool_checkout_wait_seconds",
    "histogram",
    "Time a checkout waited for a connection.",
    (),
    POOL_WAIT_BUCKETS,
)
DB_POOL_TIMEOUTS = MetricSpec(
    "db_pool_checkout_timeouts_total", "counter", "Checkouts that gave up after the pool timeout."
)

# --- Cache --------------------------------------------------------------------------------
CACHE_REQUESTS = MetricSpec(
    "cache_requests_total",
    "counter",
    "Cache lookups by cache category and result (hit, miss, error).",
    ("cache", "result"),
)
CACHE_OPERATION_DURATION = MetricSpec(
    "cache_operation_duration_seconds",
    "histogram",
    "Redis round-trip time of cache operations, by cache category and operation (get, set, delete).",
    ("cache", "operation"),
    CACHE_BUCKETS,
)

ALL: tuple[MetricSpec, ...] = (
    API_REQUESTS,
    API_REQUEST_DURATION,
    DB_QUERY_DURATION,
    DB_POOL_SIZE,
    DB_POOL_MAX_OVERFLOW,
    DB_POOL_CHECKED_OUT,
    DB_POOL_OVERFLOW,
    DB_POOL_WAITING,
    DB_POOL_CHECKOUT_WAIT,
    DB_POOL_TIMEOUTS,
    CACHE_REQUESTS,
    CACHE_OPERATION_DURATION,
)

# The plan's cache categories and their TTLs in seconds.
CACHE_TTLS: dict[str, int] = {
    "feature_flags": 300,
    "merchant_data": 600,
    "user_preferences": 1800,
    "dashboard_stats": 60,
}


def by_name(name: str) -> MetricSpec:
    for spec in ALL:
        if name == spec.name or name in spec.series():
            return spec
    raise KeyError(name)
