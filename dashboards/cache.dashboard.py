"""Cache: the application's hit ratio by category, and Redis from redis_exporter."""

from perfstack import slo
from perfstack.dashboards.style import Threshold, dashboard, query, row, timeseries
from perfstack.telemetry import contract as c
from perfstack.telemetry import exporters as x

JOB = 'job=~"$job"'
INSTANCE = 'instance=~"$instance"'

dashboard = dashboard(
    __file__,
    "Cache",
    "Application cache hit ratio per category and Redis memory, evictions and throughput.",
    rows=[
        row(
            "Application cache",
            [
                timeseries(
                    "Hit ratio by cache category",
                    f"Share of lookups answered from Redis, per cache category; target above "
                    f"{slo.percent(slo.CACHE_HIT_RATIO)}.",
                    "percentunit",
                    [query(f"job_cache:cache_hits:ratio_rate5m{{{JOB}}}", "{{cache}}")],
                    thresholds=[Threshold(slo.CACHE_HIT_RATIO, good_below=False)],
                    minimum=0,
                    maximum=1,
                ),
                timeseries(
                    "Lookups by result",
                    "Cache lookups per second by category and result (hit, miss, error).",
                    "ops",
                    [
                        query(
                            f"sum by (cache, result) (rate({c.CACHE_REQUESTS.name}{{{JOB}}}[$__rate_interval]))",
                            "{{cache}} {{result}}",
                        )
                    ],
                ),
                timeseries(
                    "Cache errors ratio",
                    "Share of lookups that failed because Redis was unavailable (served from the database).",
                    "percentunit",
                    [query(f"job_cache:cache_errors:ratio_rate5m{{{JOB}}}", "{{cache}}")],
                    thresholds=[Threshold(0.01)],
                ),
                timeseries(
                    "Redis round-trip p95 by operation",
                    "95th percentile of the cache's Redis round trips (get, set, delete).",
                    "s",
                    [
                        query(
                            f"histogram_quantile(0.95, sum by (operation, le) "
                            f"(rate({c.CACHE_OPERATION_DURATION.name}_bucket{{{JOB}}}[$__rate_interval])))",
                            "{{operation}}",
                        )
                    ],
                ),
            ],
        ),
        row(
            "Redis",
            [
                timeseries(
                    "Keyspace hit ratio",
                    "Redis' own hit ratio over every key (all clients).",
                    "percentunit",
                    [query(f"instance:redis_keyspace_hits:ratio_rate5m{{{INSTANCE}}}", "{{instance}}")],
                    minimum=0,
                    maximum=1,
                ),
                timeseries(
                    "Memory against maxmemory",
                    "Memory Redis uses, against its maxmemory (evictions start there).",
                    "bytes",
                    [
                        query(f"{x.REDIS_MEMORY_USED}{{{INSTANCE}}}", "{{instance}} used"),
                        query(f"{x.REDIS_MEMORY_MAX}{{{INSTANCE}}}", "{{instance}} maxmemory"),
                    ],
                ),
                timeseries(
                    "Evictions",
                    f"Keys evicted per second; above {slo.fmt(slo.REDIS_EVICTIONS_PER_SECOND)}/s the cache is too small.",
                    "ops",
                    [query(f"instance:redis_evicted_keys:rate5m{{{INSTANCE}}}", "{{instance}}")],
                    thresholds=[Threshold(slo.REDIS_EVICTIONS_PER_SECOND)],
                ),
                timeseries(
                    "Commands per second",
                    "Commands Redis processed per second.",
                    "ops",
                    [query(f"rate({x.REDIS_COMMANDS}{{{INSTANCE}}}[$__rate_interval])", "{{instance}}")],
                ),
            ],
        ),
    ],
    instance_metric=x.REDIS_UP,
    tags=["cache"],
)
