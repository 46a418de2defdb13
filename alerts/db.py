"""Database rules: query latency average and quantiles, slow queries, pool saturation."""

from perfstack import slo
from perfstack.rules import Alert, Group, Recording
from perfstack.telemetry import contract as c

QUERY = c.DB_QUERY_DURATION.name
SLOW_LE = slo.fmt(slo.DB_QUERY_MAX_SECONDS)
GUARD = f"job:db_queries:rate5m > {slo.fmt(slo.MIN_QUERY_RATE)}"
WAIT = c.DB_POOL_CHECKOUT_WAIT.name


def _quantiles(level: str, by: str) -> list[Recording]:
    source = f"{level}_le:{QUERY}_bucket:rate5m"
    rules = [Recording(source, f"sum by ({by}, le) (rate({QUERY}_bucket[5m]))")]
    for q in (0.95, 0.99):
        rules.append(
            Recording(
                f"{level}_quantile:{QUERY}:histogram_quantile5m",
                f"histogram_quantile({slo.fmt(q)}, {source})",
                {"quantile": slo.fmt(q)},
            )
        )
    return rules


groups = [
    Group(
        "db.rules",
        [
            Recording("job:db_queries:rate5m", f"sum by (job) (rate({QUERY}_count[5m]))"),
            Recording(
                f"job:{QUERY}:mean5m",
                f"sum by (job) (rate({QUERY}_sum[5m])) / sum by (job) (rate({QUERY}_count[5m]))",
            ),
            Recording(
                f"job_operation:{QUERY}:mean5m",
                f"sum by (job, operation) (rate({QUERY}_sum[5m]))\n  / sum by (job, operation) (rate({QUERY}_count[5m]))",
            ),
            *_quantiles("job", "job"),
            *_quantiles("job_operation", "job, operation"),
            Recording(
                "job:db_slow_queries:rate5m",
                f"sum by (job) (rate({QUERY}_count[5m]))\n"
                f'  - sum by (job) (rate({QUERY}_bucket{{le="{SLOW_LE}"}}[5m]))',
            ),
            Recording(
                "job:db_pool_checked_out:ratio",
                f"sum by (job) ({c.DB_POOL_CHECKED_OUT.name})\n"
                f"  / sum by (job) ({c.DB_POOL_SIZE.name} + {c.DB_POOL_MAX_OVERFLOW.name})",
            ),
        ],
    ),
    Group(
        "db.alerts",
        [
            Alert(
                "DbQueryLatencyHigh",
                f"(\n  job:{QUERY}:mean5m > {slo.fmt(slo.DB_QUERY_AVG_SECONDS)}\n"
                f'  or job_quantile:{QUERY}:histogram_quantile5m{{quantile="0.95"}} > {slo.fmt(slo.DB_QUERY_P95_SECONDS)}\n'
                f")\nand on (job) {GUARD}",
                severity="warning",
                for_=slo.FOR["DbQueryLatencyHigh"],
                summary="Database queries are slower than the plan allows.",
                description=(
                    "{{ $labels.job }}: {{ if $labels.quantile }}p95 {{ else }}average {{ end }}"
                    "query time is {{ $value | humanizeDuration }} over the last 5m (targets: average "
                    f"{slo.fmt(slo.DB_QUERY_AVG_SECONDS * 1000)}ms, p95 {slo.fmt(slo.DB_QUERY_P95_SECONDS * 1000)}ms)."
                ),
            ),
            Alert(
                "DbSlowQueries",
                "job:db_slow_queries:rate5m > 0",
                severity="warning",
                for_=slo.FOR["DbSlowQueries"],
                summary=f"Database queries are taking longer than {slo.fmt(slo.DB_QUERY_MAX_SECONDS * 1000)}ms.",
                description=(
                    '{{ $labels.job }}: {{ $value | printf "%.3g" }} queries per second took longer than '
                    f"{slo.fmt(slo.DB_QUERY_MAX_SECONDS * 1000)}ms over the last 5m; the plan allows none. "
                    "db_query_duration_seconds by operation shows which."
                ),
            ),
            Alert(
                "DbPoolSaturated",
                f"job:db_pool_checked_out:ratio > {slo.fmt(slo.DB_POOL_SATURATION)}\n"
                f"or (\n  sum by (job) (rate({WAIT}_count[5m]))\n"
                f'  - sum by (job) (rate({WAIT}_bucket{{le="{slo.fmt(slo.DB_POOL_WAIT_SECONDS)}"}}[5m]))\n'
                f") / sum by (job) (rate({WAIT}_count[5m])) > {slo.fmt(slo.DB_POOL_SLOW_CHECKOUTS)}\n"
                f"or sum by (job) (rate({c.DB_POOL_TIMEOUTS.name}[5m])) > 0",
                severity="warning",
                for_=slo.FOR["DbPoolSaturated"],
                summary="The database connection pool is nearly exhausted or requests wait for connections.",
                description=(
                    '{{ $labels.job }}: {{ $value | printf "%.3g" }}: more than '
                    f"{slo.percent(slo.DB_POOL_SATURATION)} of pool size plus overflow checked out, more than "
                    f"{slo.percent(slo.DB_POOL_SLOW_CHECKOUTS)} of checkouts waiting over "
                    f"{slo.fmt(slo.DB_POOL_WAIT_SECONDS * 1000)}ms, or checkouts timing out (per second), for "
                    f"{slo.FOR['DbPoolSaturated']}."
                ),
            ),
        ],
    ),
]
