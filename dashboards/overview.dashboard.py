"""Overview / SLO: where the API stands against its targets, at a glance."""

from perfstack import slo
from perfstack.dashboards.style import Threshold, dashboard, query, row, stat, timeseries

JOB = 'job=~"$job"'
AVAILABILITY_BUDGET = slo.fmt(slo.budget(slo.AVAILABILITY_OBJECTIVE))
PAGE_FACTORS = [b.factor for b in slo.BURN_RATE_WINDOWS if b.tier == "page"]

dashboard = dashboard(
    __file__,
    "Overview",
    "The API against the plan: availability and error budget, burn rates, p95 latency, error rate, cache hit rate.",
    rows=[
        row(
            f"SLOs ({slo.SLO_PERIOD})",
            [
                stat(
                    f"Availability ({slo.SLO_PERIOD})",
                    f"Share of requests that did not fail (5xx) over {slo.SLO_PERIOD}; "
                    f"objective {slo.percent(slo.AVAILABILITY_OBJECTIVE)}.",
                    "percentunit",
                    [
                        query(
                            f"1 - sum(sum_over_time(job:api_request_errors:rate5m{{{JOB}}}[{slo.SLO_PERIOD}]))"
                            f" / sum(sum_over_time(job:api_requests:rate5m{{{JOB}}}[{slo.SLO_PERIOD}]))"
                        )
                    ],
                    thresholds=[Threshold(slo.AVAILABILITY_OBJECTIVE, good_below=False)],
                    decimals=3,
                ),
                stat(
                    "Availability budget remaining",
                    f"Share of the {slo.SLO_PERIOD} availability error budget "
                    f"({slo.percent(slo.budget(slo.AVAILABILITY_OBJECTIVE))} of requests) not yet spent.",
                    "percentunit",
                    [query(f"min(job:api_availability_error_budget:remaining{slo.SLO_PERIOD}{{{JOB}}})")],
                    thresholds=[Threshold(0, good_below=False), Threshold(0.25, good_below=False)],
                ),
                stat(
                    "Latency budget remaining",
                    f"Share of the {slo.SLO_PERIOD} latency error budget (requests slower than "
                    f"{slo.fmt(slo.LATENCY_THRESHOLD_SECONDS * 1000)}ms beyond "
                    f"{slo.percent(1 - slo.LATENCY_OBJECTIVE)}) not yet spent.",
                    "percentunit",
                    [query(f"min(job:api_latency_error_budget:remaining{slo.SLO_PERIOD}{{{JOB}}})")],
                    thresholds=[Threshold(0, good_below=False), Threshold(0.25, good_below=False)],
                ),
                stat(
                    "Request rate now",
                    "Requests per second over the last 5 minutes.",
                    "reqps",
                    [query(f"sum(job:api_requests:rate5m{{{JOB}}})")],
                ),
            ],
        ),
        row(
            "Burn rate",
            [
                timeseries(
                    "Availability burn rate",
                    "How many times faster than sustainable the availability budget is being spent; the lines "
                    "are the paging thresholds (both windows of a pair must cross).",
                    "x",
                    [
                        query(f"job:api_request_errors:ratio_rate{w}{{{JOB}}} / {AVAILABILITY_BUDGET}", f"{{{{job}}}} {w}")
                        for w in ("5m", "1h", "6h")
                    ],
                    thresholds=[Threshold(f) for f in sorted(PAGE_FACTORS)],
                ),
                timeseries(
                    "Latency burn rate",
                    f"How many times faster than sustainable requests slower than "
                    f"{slo.fmt(slo.LATENCY_THRESHOLD_SECONDS * 1000)}ms spend the latency budget.",
                    "x",
                    [
                        query(
                            f"job:api_slow_requests:ratio_rate{w}{{{JOB}}} / {slo.fmt(slo.budget(slo.LATENCY_OBJECTIVE))}",
                            f"{{{{job}}}} {w}",
                        )
                        for w in ("5m", "1h", "6h")
                    ],
                    thresholds=[Threshold(f) for f in sorted(PAGE_FACTORS)],
                ),
            ],
        ),
        row(
            "Targets",
            [
                timeseries(
                    "p95 latency",
                    f"95th percentile request latency; target {slo.fmt(slo.API_P95_SECONDS * 1000)}ms.",
                    "s",
                    [query(f'job_quantile:api_request_duration_seconds:histogram_quantile5m{{{JOB}, quantile="0.95"}}', "{{job}}")],
                    thresholds=[Threshold(slo.API_P95_SECONDS)],
                    width=8,
                ),
                timeseries(
                    "Error rate",
                    f"Share of requests failing (5xx); target below {slo.percent(slo.ERROR_RATE)}.",
                    "percentunit",
                    [query(f"job:api_request_errors:ratio_rate5m{{{JOB}}}", "{{job}}")],
                    thresholds=[Threshold(slo.ERROR_RATE)],
                    width=8,
                ),
                timeseries(
                    "Cache hit rate",
                    f"Share of application cache lookups that hit; target above {slo.percent(slo.CACHE_HIT_RATIO)}.",
                    "percentunit",
                    [query(f"job:cache_hits:ratio_rate5m{{{JOB}}}", "{{job}}")],
                    thresholds=[Threshold(slo.CACHE_HIT_RATIO, good_below=False)],
                    minimum=0,
                    maximum=1,
                    width=8,
                ),
                timeseries(
                    "Request rate",
                    f"Requests per second; the plan's capacity target is {slo.REQUESTS_PER_SECOND} requests/s.",
                    "reqps",
                    [query(f"job:api_requests:rate5m{{{JOB}}}", "{{job}}")],
                    thresholds=[Threshold(slo.REQUESTS_PER_SECOND, good_below=True)],
                    width=24,
                ),
            ],
        ),
    ],
    tags=["slo"],
)
