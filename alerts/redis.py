"""Redis rules, from redis_exporter."""

from perfstack import slo
from perfstack.rules import Alert, Group, Recording
from perfstack.telemetry import exporters as x

groups = [
    Group(
        "redis.rules",
        [
            Recording(
                "instance:redis_memory_used:ratio",
                f"{x.REDIS_MEMORY_USED} / ({x.REDIS_MEMORY_MAX} > 0)",
            ),
            Recording("instance:redis_evicted_keys:rate5m", f"rate({x.REDIS_EVICTED_KEYS}[5m])"),
            Recording(
                "instance:redis_keyspace_hits:ratio_rate5m",
                f"rate({x.REDIS_KEYSPACE_HITS}[5m])\n"
                f"  / (rate({x.REDIS_KEYSPACE_HITS}[5m]) + rate({x.REDIS_KEYSPACE_MISSES}[5m]))",
            ),
        ],
    ),
    Group(
        "redis.alerts",
        [
            Alert(
                "RedisDown",
                f"{x.REDIS_UP} == 0",
                severity="critical",
                for_=slo.FOR["RedisDown"],
                summary="Redis is not answering its exporter.",
                description=(
                    "redis_exporter {{ $labels.instance }} cannot reach Redis for "
                    f"{slo.FOR['RedisDown']}: the API serves from the database and its latency rises."
                ),
            ),
            Alert(
                "RedisMemoryHigh",
                f"instance:redis_memory_used:ratio > {slo.fmt(slo.REDIS_MEMORY_RATIO)}",
                severity="warning",
                for_=slo.FOR["RedisMemoryHigh"],
                summary=f"Redis uses more than {slo.percent(slo.REDIS_MEMORY_RATIO)} of its maxmemory.",
                description=(
                    "{{ $labels.instance }}: {{ $value | humanizePercentage }} of maxmemory used for "
                    f"{slo.FOR['RedisMemoryHigh']}; evictions follow."
                ),
            ),
            Alert(
                "RedisEvictions",
                f"instance:redis_evicted_keys:rate5m > {slo.fmt(slo.REDIS_EVICTIONS_PER_SECOND)}",
                severity="warning",
                for_=slo.FOR["RedisEvictions"],
                summary="Redis is evicting keys faster than a right-sized cache would.",
                description=(
                    "{{ $labels.instance }}: {{ $value | humanize }} keys evicted per second over the last 5m "
                    f"(above {slo.fmt(slo.REDIS_EVICTIONS_PER_SECOND)}/s for {slo.FOR['RedisEvictions']}); "
                    "the cache is too small for its working set."
                ),
            ),
        ],
    ),
]
