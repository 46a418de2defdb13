"""The cache-aside helper on a real Redis: counting, TTLs, invalidation, stampede, Redis down."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry
from services import RedisServer

from perfstack.telemetry.cache import Cache
from perfstack.telemetry.metrics import Metrics


def count(registry: CollectorRegistry, cache: str, result: str) -> float:
    return registry.get_sample_value("cache_requests_total", {"cache": cache, "result": result}) or 0.0


class Loader:
    """A loader that counts its calls and can be slow."""

    def __init__(self, value: Any, delay: float = 0.0) -> None:
        self.value, self.delay, self.calls = value, delay, 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return self.value


def make_cache(url: str, registry: CollectorRegistry | Metrics, **kwargs: Any) -> Cache:
    client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2, retry=None)
    metrics = registry if isinstance(registry, Metrics) else Metrics(registry)
    return Cache(client, metrics, **kwargs)


def test_a_miss_loads_and_stores_then_a_hit_returns_the_stored_value(redis_url: str) -> None:
    registry = CollectorRegistry()
    cache = make_cache(redis_url, registry)
    loader = Loader({"id": 7, "name": "Acme"})
    assert cache.get_or_load("merchant_data", "merchant:7", loader) == {"id": 7, "name": "Acme"}
    assert cache.get_or_load("merchant_data", "merchant:7", loader) == {"id": 7, "name": "Acme"}
    assert loader.calls == 1
    assert count(registry, "merchant_data", "miss") == 1 and count(registry, "merchant_data", "hit") == 1
    assert (
        registry.get_sample_value(
            "cache_operation_duration_seconds_count", {"cache": "merchant_data", "operation": "get"}
        )
        == 2
    )


@pytest.mark.parametrize(
    ("category", "ttl"),
    [("feature_flags", 300), ("merchant_data", 600), ("user_preferences", 1800), ("dashboard_stats", 60)],
)
def test_each_category_gets_the_plans_ttl_with_bounded_jitter(redis_url: str, category: str, ttl: int) -> None:
    cache = make_cache(redis_url, CollectorRegistry())
    cache.get_or_load(category, "k", Loader(1))
    actual = redis.Redis.from_url(redis_url).ttl(f"cache:{category}:k")
    assert ttl * 0.9 - 1 <= actual <= ttl * 1.1


def test_an_unknown_category_is_an_error_naming_the_known_ones(redis_url: str) -> None:
    cache = make_cache(redis_url, CollectorRegistry())
    with pytest.raises(KeyError, match="dashboard_stats"):
        cache.get_or_load("sessions", "k", Loader(1))


def test_invalidate_removes_a_key_and_invalidate_category_every_key_of_it(redis_url: str) -> None:
    cache = make_cache(redis_url, CollectorRegistry())
    first, second = Loader("v1"), Loader("v2")
    for page in range(3):
        cache.get_or_load("merchant_data", f"list:active:50:{page * 50}", first)
    cache.get_or_load("feature_flags", "all", first)
    assert cache.invalidate("merchant_data", "list:active:50:0")
    assert cache.get_or_load("merchant_data", "list:active:50:0", second) == "v2"
    assert cache.invalidate_category("merchant_data")
    assert cache.get_or_load("merchant_data", "list:active:50:50", second) == "v2"
    assert cache.get_or_load("feature_flags", "all", second) == "v1", "another category was invalidated"


def test_a_hot_key_expiring_is_loaded_once_across_threads_and_processes(redis_url: str) -> None:
    registry = CollectorRegistry()
    # Two Cache objects stand for two worker processes; each has its own in-process lock.
    metrics = Metrics(registry)
    caches = [make_cache(redis_url, metrics, wait_for_fill=2.0), make_cache(redis_url, metrics, wait_for_fill=2.0)]
    loader = Loader({"flags": [1, 2, 3]}, delay=0.3)
    results: list[Any] = []
    barrier = threading.Barrier(20)

    def call(cache: Cache) -> None:
        barrier.wait()
        results.append(cache.get_or_load("feature_flags", "all", loader))

    threads = [threading.Thread(target=call, args=(caches[i % 2],)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [{"flags": [1, 2, 3]}] * 20
    assert loader.calls == 1


def test_with_redis_stopped_values_come_from_the_loader_and_errors_are_counted(
    redis_server: RedisServer, redis_url: str
) -> None:
    registry = CollectorRegistry()
    cache = make_cache(redis_url, registry, retry_after=0.3)
    loader = Loader("from-db")
    cache.get_or_load("merchant_data", "m:1", loader)
    redis_server.stop()
    for _ in range(10):
        assert cache.get_or_load("merchant_data", "m:1", loader) == "from-db"
    assert count(registry, "merchant_data", "error") == 10
    assert loader.calls == 11
    assert cache.invalidate("merchant_data", "m:1") is False
    # Only the first failure paid a connection attempt; the rest bypassed Redis.
    assert (
        registry.get_sample_value(
            "cache_operation_duration_seconds_count", {"cache": "merchant_data", "operation": "get"}
        )
        == 2
    )
    redis_server.start()
    time.sleep(0.35)  # the bypass interval (retry_after) must pass before Redis is tried again
    cache.get_or_load("merchant_data", "m:2", loader)
    assert cache.get_or_load("merchant_data", "m:2", loader) == "from-db"
    assert count(registry, "merchant_data", "hit") == 1


def test_a_hung_redis_costs_a_timeout_not_an_error_to_the_caller(redis_server: RedisServer, redis_url: str) -> None:
    registry = CollectorRegistry()
    cache = make_cache(redis_url, registry)
    redis_server.pause()
    try:
        assert cache.get_or_load("dashboard_stats", "overview", Loader({"n": 1})) == {"n": 1}
    finally:
        redis_server.resume()
    assert count(registry, "dashboard_stats", "error") == 1
