"""A Redis cache-aside helper with the plan's TTLs, counted and safe to lose.

::

    cache = Cache(redis.Redis.from_url(url, socket_timeout=0.1, socket_connect_timeout=0.1, retry=None))
    merchant = cache.get_or_load("merchant_data", f"merchant:{merchant_id}", lambda: load(merchant_id))
    cache.invalidate("merchant_data", f"merchant:{merchant_id}")    # after a write
    cache.invalidate_category("merchant_data")                        # every list page too

- **TTLs** per category (``contract.CACHE_TTLS``: feature flags 300 s, merchant data 600 s,
  user preferences 1800 s, dashboard stats 60 s), with a small random jitter so keys written
  together do not expire together.
- **Counted**: ``cache_requests_total{cache, result}`` (hit, miss, error) and the Redis
  round-trip time in ``cache_operation_duration_seconds{cache, operation}``.
- **No stampede**: when a hot key expires, one caller (per key, across processes) takes a
  short Redis lock and loads; the others wait briefly for its value instead of all hitting
  the database. If the value does not arrive in time they load it themselves.
- **Graceful degradation**: any Redis error counts as ``error`` and the value is loaded from
  the database; after an error the cache is bypassed for ``retry_after`` seconds, so a dead
  Redis costs one timeout per interval, not one per request. Never an exception because of
  the cache.
- **Invalidation**: ``invalidate`` deletes keys; ``invalidate_category`` deletes every key the
  category has written (tracked in a per-category set), for list pages with many variants.

Values are stored as JSON (``default=str``: datetimes and decimals become strings).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, TypeVar

import redis

from .contract import CACHE_ERROR, CACHE_HIT, CACHE_MISS, CACHE_TTLS
from .metrics import Metrics, default_metrics

T = TypeVar("T")

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class Cache:
    def __init__(
        self,
        client: redis.Redis,
        metrics: Metrics | None = None,
        ttls: Mapping[str, int] = CACHE_TTLS,
        prefix: str = "cache",
        lock_ttl: float = 5.0,
        wait_for_fill: float = 0.5,
        retry_after: float = 2.0,
        jitter: float = 0.1,
    ) -> None:
        self.client = client
        self.metrics = metrics or default_metrics()
        self.ttls = dict(ttls)
        self.prefix = prefix
        self.lock_ttl = lock_ttl
        self.wait_for_fill = wait_for_fill
        self.retry_after = retry_after
        self.jitter = jitter
        self._down_until = 0.0
        self._local_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # --- public API ---------------------------------------------------------------------

    def get_or_load(self, category: str, key: str, loader: Callable[[], T], ttl: int | None = None) -> T:
        """The cached value of ``key``, or ``loader()`` stored for the category's TTL."""
        ttl = ttl if ttl is not None else self._ttl(category)
        full = self._key(category, key)
        if self._bypassed():
            self._count(category, CACHE_ERROR)
            return loader()
        try:
            raw = self._timed(category, "get", self.client.get, full)
        except redis.RedisError:
            self._failed(category)
            return loader()
        if raw is not None:
            self._count(category, CACHE_HIT)
            return json.loads(raw)
        self._count(category, CACHE_MISS)
        return self._fill(category, full, loader, ttl)

    def invalidate(self, category: str, *keys: str) -> bool:
        """Delete ``keys``; False when Redis could not be reached (the TTL then bounds staleness)."""
        if not keys:
            return True
        try:
            self._timed(category, "delete", self.client.delete, *[self._key(category, k) for k in keys])
            return True
        except redis.RedisError:
            self._failed(category, count=False)
            return False

    def invalidate_category(self, category: str) -> bool:
        """Delete every key the category has written (list pages, filters, ...)."""
        index = self._index(category)
        try:
            members = self._timed(category, "get", self.client.smembers, index)
            pipe = self.client.pipeline(transaction=False)
            if members:
                pipe.delete(*members)
            pipe.delete(index)
            self._timed(category, "delete", pipe.execute)
            return True
        except redis.RedisError:
            self._failed(category, count=False)
            return False

    # --- internals ----------------------------------------------------------------------

    def _fill(self, category: str, full: str, loader: Callable[[], T], ttl: int) -> T:
        # One loader per key in this process; across processes, a Redis lock.
        with self._local_lock(full):
            token = uuid.uuid4().hex
            lock = f"{full}:lock"
            try:
                raw = self.client.get(full)  # another thread may have filled it meanwhile
                if raw is not None:
                    return json.loads(raw)
                leader = self.client.set(lock, token, nx=True, px=int(self.lock_ttl * 1000))
            except redis.RedisError:
                self._failed(category, count=False)
                return loader()
            if not leader:
                value = self._wait_for(full)
                if value is not None:
                    return json.loads(value)
                return loader()  # the leader is slow or gone: do not wait any longer
            try:
                value = loader()
                self._store(category, full, value, ttl)
                return value
            finally:
                with contextlib.suppress(redis.RedisError):  # else the lock expires by itself
                    self.client.eval(_RELEASE, 1, lock, token)

    def _wait_for(self, full: str) -> bytes | None:
        deadline = time.monotonic() + self.wait_for_fill
        delay = 0.005
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            try:
                raw = self.client.get(full)
            except redis.RedisError:
                return None
            if raw is not None:
                return raw
        return None

    def _store(self, category: str, full: str, value: Any, ttl: int) -> None:
        ttl = max(1, int(ttl * (1 + random.uniform(-self.jitter, self.jitter))))
        pipe = self.client.pipeline(transaction=False)
        pipe.set(full, json.dumps(value, default=str, separators=(",", ":")), ex=ttl)
        pipe.sadd(self._index(category), full)
        pipe.expire(self._index(category), self._ttl(category) * 2)
        try:
            self._timed(category, "set", pipe.execute)
        except redis.RedisError:
            self._failed(category, count=False)

    def _ttl(self, category: str) -> int:
        try:
            return self.ttls[category]
        except KeyError:
            raise KeyError(f"unknown cache category {category!r}; known: {', '.join(sorted(self.ttls))}") from None

    def _key(self, category: str, key: str) -> str:
        return f"{self.prefix}:{category}:{key}"

    def _index(self, category: str) -> str:
        return f"{self.prefix}:{category}:__keys__"

    def _timed(self, category: str, operation: str, fn: Callable[..., Any], *args: Any) -> Any:
        start = perf_counter()
        try:
            return fn(*args)
        finally:
            self.metrics.cache_duration.labels(category, operation).observe(perf_counter() - start)

    def _count(self, category: str, result: str) -> None:
        self.metrics.cache_requests.labels(category, result).inc()

    def _failed(self, category: str, count: bool = True) -> None:
        self._down_until = time.monotonic() + self.retry_after
        if count:
            self._count(category, CACHE_ERROR)

    def _bypassed(self) -> bool:
        return time.monotonic() < self._down_until

    def _local_lock(self, key: str) -> threading.Lock:
        with self._guard:
            lock = self._local_locks.get(key)
            if lock is None:
                if len(self._local_locks) > 10_000:  # bounded: drop idle locks
                    self._local_locks = {k: v for k, v in self._local_locks.items() if v.locked()}
                lock = self._local_locks[key] = threading.Lock()
            return lock
