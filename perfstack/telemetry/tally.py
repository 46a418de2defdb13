"""Lock-free HTTP request tallies, exposed as the contract's counter and histogram.

The ASGI middleware runs on the event loop's single thread, so it can count in plain Python
lists (one bisect and two additions per request) instead of three lock-protected
prometheus_client updates; a collector turns the tallies into ``api_requests_total`` and
``api_request_duration_seconds`` when Prometheus scrapes. This cuts the middleware's cost by
about two thirds (see README, "Instrumentation overhead").

Not for prometheus_client's multiprocess mode, whose values live in shared files: there
:class:`~perfstack.telemetry.metrics.Metrics` keeps the standard collectors.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from . import contract as c


class RequestTally(Collector):
    def __init__(self, buckets: tuple[float, ...] = c.API_REQUEST_DURATION.buckets) -> None:
        self.bounds = list(buckets)
        # (method, endpoint, status) -> [count per bucket..., count above the last bound, sum]
        self.data: dict[tuple[str, str, str], list[float]] = {}

    def observe(self, method: str, endpoint: str, status: str, seconds: float) -> None:
        """Count one request. Call from one thread only (the event loop's)."""
        entry = self.data.get((method, endpoint, status))
        if entry is None:
            entry = self.data[(method, endpoint, status)] = [0] * (len(self.bounds) + 2)
        entry[bisect_left(self.bounds, seconds)] += 1
        entry[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        items = list(self.data.items())  # one atomic copy: the loop may add keys meanwhile
        requests = CounterMetricFamily(
            c.API_REQUESTS.base_name, c.API_REQUESTS.help, labels=list(c.API_REQUESTS.labels)
        )
        per_route: dict[tuple[str, str], list[float]] = {}
        for (method, endpoint, status), entry in items:
            counts = entry[:-1]
            requests.add_metric([method, endpoint, status], sum(counts))
            route = per_route.setdefault((method, endpoint), [0] * len(entry))
            for i, v in enumerate(entry):
                route[i] += v
        yield requests
        duration = HistogramMetricFamily(
            c.API_REQUEST_DURATION.name, c.API_REQUEST_DURATION.help, labels=list(c.API_REQUEST_DURATION.labels)
        )
        for (method, endpoint), entry in per_route.items():
            cumulative, running = [], 0.0
            for bound, count in zip([*self.bounds, float("inf")], entry[:-1], strict=True):
                running += count
                cumulative.append((_le(bound), running))
            duration.add_metric([method, endpoint], cumulative, sum_value=entry[-1])
        yield duration

    def describe(self) -> Iterator[Metric]:
        # Lets the registry reject a second registration of the same names.
        yield CounterMetricFamily(c.API_REQUESTS.base_name, c.API_REQUESTS.help, labels=list(c.API_REQUESTS.labels))
        yield HistogramMetricFamily(
            c.API_REQUEST_DURATION.name, c.API_REQUEST_DURATION.help, labels=list(c.API_REQUEST_DURATION.labels)
        )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
