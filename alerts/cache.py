"""Application cache rules: hit ratio per category and overall."""

from perfstack import slo
from perfstack.rules import Alert, Group, Recording
from perfstack.telemetry import contract as c

LOOKUPS = c.CACHE_REQUESTS.name


def _share(level: str, by: str, result: str, name: str) -> Recording:
    return Recording(
        f"{level}:{name}:ratio_rate5m",
        f'(\n  sum by ({by}) (rate({LOOKUPS}{{result="{result}"}}[5m]))\n'
        f"  or sum by ({by}) (rate({LOOKUPS}[5m])) * 0\n)\n"
        f"/ sum by ({by}) (rate({LOOKUPS}[5m]))",
    )


groups = [
    Group(
        "cache.rules",
        [
            Recording("job_cache:cache_requests:rate5m", f"sum by (job, cache) (rate({LOOKUPS}[5m]))"),
            # `or ... * 0`: a result never seen has no series; its share is 0, not absent.
            _share("job_cache", "job, cache", c.CACHE_HIT, "cache_hits"),
            _share("job_cache", "job, cache", c.CACHE_ERROR, "cache_errors"),
            _share("job", "job", c.CACHE_HIT, "cache_hits"),
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
