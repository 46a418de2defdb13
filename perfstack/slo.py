"""THE one place for targets, objectives, burn-rate windows, thresholds and ``for`` durations.

Alerts (``alerts/*.py``), dashboards and the load-test gate import these numbers; nothing else
writes them. Each knob says which alert uses it and when to change it.

A note on the plan's numbers: they are not all consistent. An error rate held at the plan's
0.1 % burns a 99.95 % availability budget (0.05 % of requests) at twice the sustainable rate, so
the 30-day budget is gone in 15 days. Both are kept: the SLO burn-rate alerts decide what pages;
the 0.1 % alert (``ApiHighErrorRate``) is a warning that opens a ticket.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- The plan's targets -----------------------------------------------------------------------

SLO_PERIOD = "30d"  # the window every objective is measured over
SLO_PERIOD_DAYS = 30

AVAILABILITY_OBJECTIVE = 0.9995  # 99.95 % of requests succeed (non-5xx). ApiAvailabilityBudgetBurn.
LATENCY_OBJECTIVE = 0.95  # 95 % of requests ... ApiLatencyBudgetBurn.
LATENCY_THRESHOLD_SECONDS = 0.1  # ... finish within 100 ms. Must be a bucket of api_request_duration_seconds.
API_P95_SECONDS = 0.1  # p95 < 100 ms. ApiHighLatencyP95; the load-test gate.
ERROR_RATE = 0.001  # error ratio < 0.1 %. ApiHighErrorRate; the load-test gate.

DB_QUERY_AVG_SECONDS = 0.05  # average query < 50 ms. DbQueryLatencyHigh.
DB_QUERY_P95_SECONDS = 0.1  # p95 query < 100 ms. DbQueryLatencyHigh. Must be a bucket of db_query_duration_seconds.
DB_QUERY_MAX_SECONDS = 0.5  # no query > 500 ms. DbSlowQueries. Must be a bucket of db_query_duration_seconds.

CACHE_HIT_RATIO = 0.8  # hit ratio > 80 %. CacheHitRateLow; the load-test report.

CONCURRENT_USERS = 1000  # the plan's capacity target (load tests).
REQUESTS_PER_SECOND = 1000  # the plan's throughput target (load tests).

# --- Guards and thresholds of the alerts -------------------------------------------------------

# Rate-based alerts stay quiet below this many requests per second (per job), so three errors
# at night do not page. Raise it for a busy API whose quiet hours still carry real traffic.
MIN_REQUEST_RATE = 0.5
# DbQueryLatencyHigh needs at least this many queries per second. (DbSlowQueries has no guard:
# the plan allows no query over 500 ms, at any traffic.)
MIN_QUERY_RATE = 0.2
# CacheHitRateLow needs at least this many cache lookups per second.
MIN_CACHE_LOOKUP_RATE = 0.5

DB_POOL_SATURATION = 0.9  # DbPoolSaturated: checked out / (size + max overflow) above this...
DB_POOL_WAIT_SECONDS = 0.05  # ... or checkouts waiting longer than this (a bucket of db_pool_checkout_wait_seconds)
DB_POOL_SLOW_CHECKOUTS = 0.01  # ... make up more than this share of all checkouts.
REDIS_MEMORY_RATIO = 0.9  # RedisMemoryHigh: used / maxmemory above this.
REDIS_EVICTIONS_PER_SECOND = 5.0  # RedisEvictions: an LRU cache evicts; this many per second means it is too small.
NOTIFICATION_FAILURE_RATIO = 0.01  # AlertmanagerFailedToSendAlerts.

# --- ``for`` durations (how long a condition must hold before the alert fires) ----------------

FOR = {
    "ApiAvailabilityBudgetBurn.page": "2m",
    "ApiAvailabilityBudgetBurn.ticket": "15m",
    "ApiLatencyBudgetBurn.page": "2m",
    "ApiLatencyBudgetBurn.ticket": "15m",
    "ApiHighErrorRate": "10m",
    "ApiHighLatencyP95": "10m",
    "DbQueryLatencyHigh": "10m",
    "DbSlowQueries": "2m",
    "DbPoolSaturated": "5m",
    "CacheHitRateLow": "15m",
    "RedisDown": "1m",
    "RedisMemoryHigh": "10m",
    "RedisEvictions": "15m",
    "TargetDown": "5m",
    "PrometheusRuleFailures": "10m",
    "PrometheusConfigReloadFailed": "10m",
    "AlertmanagerFailedToSendAlerts": "5m",
}


# --- Multi-window, multi-burn-rate alerting ----------------------------------------------------


@dataclass(frozen=True)
class BurnRateWindow:
    """Fire when the error budget burns ``factor`` times faster than sustainable over both
    windows: the long one proves it is significant, the short one that it is still going on."""

    severity: str  # critical pages, warning opens a ticket
    tier: str  # "page" or "ticket": which FOR entry applies
    factor: float
    long: str
    short: str
    source: str

    def budget_spent(self) -> float:
        """Share of the 30-day budget spent when the long window has burned at ``factor``."""
        hours = {"m": 1 / 60, "h": 1, "d": 24}
        long_hours = float(self.long[:-1]) * hours[self.long[-1]]
        return self.factor * long_hours / (SLO_PERIOD_DAYS * 24)


_SRE_WORKBOOK = "Google SRE Workbook, ch. 5 'Alerting on SLOs', table 5-8 (recommended parameters)"
BURN_RATE_WINDOWS: tuple[BurnRateWindow, ...] = (
    BurnRateWindow("critical", "page", 14.4, "1h", "5m", _SRE_WORKBOOK),  # 2 % of budget in 1 h
    BurnRateWindow("critical", "page", 6, "6h", "30m", _SRE_WORKBOOK),  # 5 % of budget in 6 h
    BurnRateWindow("warning", "ticket", 3, "1d", "2h", "sloth (slok/sloth) default ticket alert"),  # 10 % in 1 d
    BurnRateWindow("warning", "ticket", 1, "3d", "6h", _SRE_WORKBOOK),  # 10 % of budget in 3 d
)


def sli_windows() -> tuple[str, ...]:
    """Every window an SLI ratio is recorded for, shortest first."""
    seconds = {"m": 60, "h": 3600, "d": 86400}
    names = {w for b in BURN_RATE_WINDOWS for w in (b.long, b.short)}
    return tuple(sorted(names, key=lambda w: int(w[:-1]) * seconds[w[-1]]))


def budget(objective: float) -> float:
    """The error budget: the share of requests allowed to fail."""
    return round(1 - objective, 10)


def days_to_exhaust(error_ratio: float, objective: float = AVAILABILITY_OBJECTIVE) -> float:
    """Days until a constant ``error_ratio`` spends the whole budget of the SLO period."""
    return SLO_PERIOD_DAYS * budget(objective) / error_ratio


def fmt(value: float) -> str:
    """A number as it should appear in PromQL and text: no float noise (0.9995, not 0.99950000001)."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text or "0"


def percent(value: float) -> str:
    return fmt(value * 100) + "%"


# --- The load-test gate (perfstack loadtest) -------------------------------------------------------

LOAD_P95_SECONDS = API_P95_SECONDS  # a run fails when p95 is above the API target
LOAD_P99_SECONDS = DB_QUERY_MAX_SECONDS  # the plan names no p99: the gate holds it to the 500 ms "none over" line
LOAD_ERROR_RATE = ERROR_RATE  # a run fails above the plan's error rate
LOAD_MIN_ACHIEVED = 0.95  # ... or when it delivers less than 95 % of the target arrival rate (coordinated omission)
LOAD_GENERATOR_CPU_MAX = 0.9  # ... and is not passed when the load generator itself used more than 90 % of a core
