"""Application cache rules: hit ratio per category and overall."""

from perfstack import slo
from perfstack.rules import Alert, Group, Recording
from perfstack.telemetry import contract as c

LOOKUPS = c.CACHE_REQUESTS.name

groups = [
    Group(
        "cache.rules",
        [
            Recording("job_cache:cache_requests:rate5m", f"sum by (job, cache) (rate({LOOKUPS}[5m]))"),
            Recording(
                "job_cache:cache_hits:ratio_rate5m",
                f'sum by (job, cache) (rate({LOOKUPS}{{result="{c.CACHE_HIT}"}}[5m]))\n'
                f"  / sum by (job, cache) (rate({LOOKUPS}[5m]))",
            ),
            Recording(
                "job_cache:cache_errors:ratio_rate5m",
                f'sum by (job, cache) (rate({LOOKUPS}{{result="{c.CACHE_ERROR}"}}[5m]))\n'
                f"  / sum by (job, cache) (rate({LOOKUPS}[5m]))",
            ),
            Recording(
                "job:cache_hits:ratio_rate5m",
                f'sum by (job) (rate({LOOKUPS}{{result="{c.CACHE_HIT}"}}[5m]))\n  / sum by (job) (rate({LOOKUPS}[5m]))',
            ),
        ],
    ),
    Group(
        "cache.alerts",
        [
            Alert(
                "CacheHitRateLow",
                f"job:cache_hits:ratio_rate5m < {slo.fmt(slo.CACHE_HIT_RATIO)}\n"
                f"and on (job) sum by (job) (job_cache:cache_requests:rate5m) > {slo.fmt(slo.MIN_CACHE_LOOKUP_RATE)}",
                severity="warning",
                for_=slo.FOR["CacheHitRateLow"],
                summary=f"The application cache hit ratio is below {slo.percent(slo.CACHE_HIT_RATIO)}.",
                description=(
                    "{{ $labels.job }}: {{ $value | humanizePercentage }} of cache lookups hit over the last 5m, "
                    f"below the plan's {slo.percent(slo.CACHE_HIT_RATIO)} for {slo.FOR['CacheHitRateLow']}; "
                    "job_cache:cache_hits:ratio_rate5m shows which category."
                ),
            ),
        ],
    ),
]
