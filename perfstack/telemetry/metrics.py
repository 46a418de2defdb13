"""prometheus_client collectors built from the contract, one set per registry.

Tests build a fresh set on a fresh registry; an application uses :func:`default_metrics`
(the process-wide registry, or the multiprocess files when ``PROMETHEUS_MULTIPROC_DIR`` is set)::

    from prometheus_client import CollectorRegistry
    metrics = Metrics(CollectorRegistry())
    metrics.requests.labels("GET", "/items/{id}", "200").inc()
"""

from __future__ import annotations

import os
import threading

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from . import contract as c
from .contract import MetricSpec
from .tally import RequestTally


def _counter(spec: MetricSpec, registry: CollectorRegistry) -> Counter:
    return Counter(spec.base_name, spec.help, spec.labels, registry=registry)


def _histogram(spec: MetricSpec, registry: CollectorRegistry) -> Histogram:
    return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=spec.buckets)


def _gauge(spec: MetricSpec, registry: CollectorRegistry) -> Gauge:
    return Gauge(spec.name, spec.help, spec.labels, registry=registry, multiprocess_mode=spec.multiprocess_mode)


class Metrics:
    """Every collector of the contract, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        # HTTP requests: lock-free tallies in one process; prometheus_client's shared-file
        # values under multiprocess mode (PROMETHEUS_MULTIPROC_DIR), where tallies cannot go.
        self.http: RequestTally | None = None
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.requests = _counter(c.API_REQUESTS, registry)
            self.request_duration = _histogram(c.API_REQUEST_DURATION, registry)
        else:
            self.http = RequestTally()
            registry.register(self.http)
        self.query_duration = _histogram(c.DB_QUERY_DURATION, registry)
        self.pool_size = _gauge(c.DB_POOL_SIZE, registry)
        self.pool_max_overflow = _gauge(c.DB_POOL_MAX_OVERFLOW, registry)
        self.pool_checked_out = _gauge(c.DB_POOL_CHECKED_OUT, registry)
        self.pool_overflow = _gauge(c.DB_POOL_OVERFLOW, registry)
        self.pool_waiting = _gauge(c.DB_POOL_WAITING, registry)
        self.pool_checkout_wait = _histogram(c.DB_POOL_CHECKOUT_WAIT, registry)
        self.pool_timeouts = _counter(c.DB_POOL_TIMEOUTS, registry)
        self.cache_requests = _counter(c.CACHE_REQUESTS, registry)
        self.cache_duration = _histogram(c.CACHE_OPERATION_DURATION, registry)


_default: Metrics | None = None
_lock = threading.Lock()


def default_metrics() -> Metrics:
    """The process-wide collectors on prometheus_client's default registry (created once)."""
    global _default
    with _lock:
        if _default is None:
            _default = Metrics(REGISTRY)
        return _default
