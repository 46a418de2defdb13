"""Database: query latency by operation, slow queries, the connection pool, PostgreSQL itself."""

from perfstack import slo
from perfstack.dashboards.style import Threshold, dashboard, query, row, timeseries
from perfstack.telemetry import contract as c
from perfstack.telemetry import exporters as x

JOB = 'job=~"$job"'
QUERY = c.DB_QUERY_DURATION.name

dashboard = dashboard(
    __file__,
    "Database",
    "Query latency by operation, slow queries and pool usage from the API's instrumentation, "
    "and PostgreSQL's own view from postgres_exporter.",
    rows=[
        row(
            "Queries",
            [
                timeseries(
                    "Query p95 / p99 by operation",
                    f"Statement latency percentiles per operation; the line is the p95 target "
                    f"({slo.fmt(slo.DB_QUERY_P95_SECONDS * 1000)}ms).",
                    "s",
                    [query(f"job_operation_quantile:{QUERY}:histogram_quantile5m{{{JOB}}}", "{{operation}} p{{quantile}}")],
                    thresholds=[Threshold(slo.DB_QUERY_P95_SECONDS)],
                ),
                timeseries(
                    "Query average by operation",
                    f"Mean statement latency per operation; the line is the average target "
                    f"({slo.fmt(slo.DB_QUERY_AVG_SECONDS * 1000)}ms).",
                    "s",
                    [query(f"job_operation:{QUERY}:mean5m{{{JOB}}}", "{{operation}}")],
                    thresholds=[Threshold(slo.DB_QUERY_AVG_SECONDS)],
                ),
                timeseries(
                    f"Queries slower than {slo.fmt(slo.DB_QUERY_MAX_SECONDS * 1000)}ms",
                    f"Statements per second that took longer than {slo.fmt(slo.DB_QUERY_MAX_SECONDS * 1000)}ms; "
                    "the plan allows none.",
                    "ops",
                    [query(f"job:db_slow_queries:rate5m{{{JOB}}}", "{{job}}")],
                    thresholds=[Threshold(0.000001)],
                ),
                timeseries(
                    "Queries per second by operation",
                    "Statements executed per second, per operation.",
                    "ops",
                    [query(f"sum by (operation) (rate({QUERY}_count{{{JOB}}}[$__rate_interval]))", "{{operation}}")],
                    stacked=True,
                ),
            ],
        ),
        row(
            "Connection pool",
            [
                timeseries(
                    "Pool usage",
                    "Connections checked out against the pool size and the size plus overflow (the hard limit).",
                    "short",
                    [
                        query(f"sum by (job) ({c.DB_POOL_CHECKED_OUT.name}{{{JOB}}})", "{{job}} checked out"),
                        query(f"sum by (job) ({c.DB_POOL_SIZE.name}{{{JOB}}})", "{{job}} pool size"),
                        query(
                            f"sum by (job) ({c.DB_POOL_SIZE.name}{{{JOB}}} + {c.DB_POOL_MAX_OVERFLOW.name}{{{JOB}}})",
                            "{{job}} size + overflow",
                        ),
                    ],
                ),
                timeseries(
                    "Waiting checkouts and timeouts",
                    "Checkouts waiting for a free connection, and checkouts per second that gave up.",
                    "short",
                    [
                        query(f"sum by (job) ({c.DB_POOL_WAITING.name}{{{JOB}}})", "{{job}} waiting"),
                        query(f"sum by (job) (rate({c.DB_POOL_TIMEOUTS.name}{{{JOB}}}[$__rate_interval]))", "{{job}} timeouts/s"),
                    ],
                    thresholds=[Threshold(1)],
                ),
            ],
        ),
        row(
            "PostgreSQL (postgres_exporter)",
            [
                timeseries(
                    "Connections by database",
                    "Backends connected to each database, as PostgreSQL counts them.",
                    "short",
                    [query(f"sum by (datname) ({x.PG_BACKENDS})", "{{datname}}")],
                    needs="postgres_exporter",
                ),
                timeseries(
                    "Top statements by total time (pg_stat_statements)",
                    "The ten statements that spent the most execution time per second, from pg_stat_statements.",
                    "s",
                    [query(f"topk(10, sum by (queryid) (rate({x.PG_STATEMENT_SECONDS}[$__rate_interval])))", "{{queryid}}")],
                    needs="postgres_exporter",
                ),
                timeseries(
                    "Top statements by calls (pg_stat_statements)",
                    "The ten most frequently executed statements per second, from pg_stat_statements.",
                    "ops",
                    [query(f"topk(10, sum by (queryid) (rate({x.PG_STATEMENT_CALLS}[$__rate_interval])))", "{{queryid}}")],
                    width=24,
                    needs="postgres_exporter",
                ),
            ],
        ),
    ],
    tags=["database"],
)
