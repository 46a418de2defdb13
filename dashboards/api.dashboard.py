"""API: request rate, latency and errors by endpoint."""

from perfstack import slo
from perfstack.dashboards.style import Threshold, dashboard, heatmap, query, row, timeseries
from perfstack.telemetry import contract as c

SEL = 'job=~"$job", endpoint=~"$endpoint"'

dashboard = dashboard(
    __file__,
    "API",
    "Request rate, latency percentiles and errors for each route template of the API.",
    rows=[
        row(
            "Traffic",
            [
                timeseries(
                    "Request rate by endpoint",
                    "Requests per second for each route template (the endpoint label), over 5 minutes.",
                    "reqps",
                    [query(f"job_endpoint:api_requests:rate5m{{{SEL}}}", "{{endpoint}}")],
                    stacked=True,
                    width=24,
                ),
            ],
        ),
        row(
            "Latency",
            [
                timeseries(
                    "Latency p50 / p95 / p99 by endpoint",
                    f"Request latency percentiles per route template; the line is the p95 target "
                    f"({slo.fmt(slo.API_P95_SECONDS * 1000)}ms).",
                    "s",
                    [
                        query(
                            f"job_endpoint_quantile:{c.API_REQUEST_DURATION.name}:histogram_quantile5m{{{SEL}}}",
                            "{{endpoint}} p{{quantile}}",
                        )
                    ],
                    thresholds=[Threshold(slo.API_P95_SECONDS)],
                ),
                heatmap(
                    "Latency distribution",
                    "How many requests fell in each latency bucket over time (all selected endpoints).",
                    "s",
                    query(
                        f"sum by (le) (job_endpoint_le:{c.API_REQUEST_DURATION.name}_bucket:rate5m{{{SEL}}})",
                        "{{le}}",
                    ),
                ),
            ],
        ),
        row(
            "Errors",
            [
                timeseries(
                    "Error ratio by endpoint",
                    f"Share of each route's requests that failed (5xx); target below {slo.percent(slo.ERROR_RATE)}.",
                    "percentunit",
                    [query(f"job_endpoint:api_request_errors:ratio_rate5m{{{SEL}}}", "{{endpoint}}")],
                    thresholds=[Threshold(slo.ERROR_RATE)],
                ),
                timeseries(
                    "5xx by endpoint and status",
                    "Server errors per second by route and status code; empty while nothing fails.",
                    "reqps",
                    [
                        query(
                            f'sum by (endpoint, status) (rate({c.API_REQUESTS.name}{{{SEL}, status=~"5.."}}[$__rate_interval]))',
                            "{{endpoint}} {{status}}",
                        )
                    ],
                    faults_only=True,
                ),
                timeseries(
                    "4xx by endpoint and status",
                    "Client errors per second by route and status code (not counted against the SLO).",
                    "reqps",
                    [
                        query(
                            f'sum by (endpoint, status) (rate({c.API_REQUESTS.name}{{{SEL}, status=~"4.."}}[$__rate_interval]))',
                            "{{endpoint}} {{status}}",
                        )
                    ],
                    width=24,
                    faults_only=True,
                ),
            ],
        ),
    ],
    endpoint_variable=True,
    tags=["api"],
)
