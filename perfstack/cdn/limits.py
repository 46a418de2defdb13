"""Cloudflare's purge limits per plan, and the token buckets that keep a run inside them.

Cloudflare meters cache purges with token buckets, per account (FACTS.md §4.1):

* **Purges by URL** (``files``) are metered in URLs: each URL takes one token, and the bucket
  refills at the plan's URLs-per-second rate (800 on Free, 1500 on Pro and Business, 3000 on
  Enterprise).
* **Every other purge** (``tags``, ``prefixes``, ``hosts``, ``purge_everything``) is metered in
  requests: each request takes one token. Free refills 5 tokens per *minute* into a bucket of 25;
  Pro 5/s (25), Business 10/s (50), Enterprise 50/s (500).

A token bucket of capacity ``C`` refilled at ``r`` tokens/s allows a burst of ``C`` at once,
then ``r`` per second on average. :class:`TokenBucket` is the client-side copy: before each
request the command takes the tokens that request will cost, sleeping until they are there, so a
normal run never meets a 429. It cannot see other clients spending the same account's tokens;
that is what the 429 handling in :mod:`perfstack.cdn.runner` is for.

The clock is injectable (:class:`Clock`): :class:`SystemClock` for real runs, and
:class:`VirtualClock`, whose ``sleep`` only moves its own time forward, for tests and for the
``--dry-run`` duration estimate (:func:`estimate_seconds`), which replays the batches through
the same buckets without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

#: Batch size used when ``--batch-size`` is not given: the old documented per-call URL limit,
#: which every plan accepts (FACTS.md §4.1, "safe choice").
DEFAULT_BATCH_SIZE = 30

#: Purge modes; ``files`` is the only one metered in URLs rather than requests.
MODES = ("files", "prefixes", "tags", "hosts", "everything")


@dataclass(frozen=True)
class Plan:
    """One Cloudflare plan's purge limits (FACTS.md §4.1 table)."""

    name: str
    requests_per_second: float  # tags / prefixes / hosts / everything
    request_burst: int
    urls_per_second: float  # files
    max_urls_per_request: int
    max_operations_per_request: int = 100  # tags, prefixes or hosts in one request

    @property
    def url_burst(self) -> int:
        """The URL bucket's capacity: one second's worth (the documented figure is a moving average)."""
        return int(self.urls_per_second)

    def max_batch(self, mode: str) -> int:
        """The most items one request of ``mode`` may carry on this plan."""
        return self.max_urls_per_request if mode == "files" else self.max_operations_per_request

    def describe(self, mode: str) -> str:
        """One line naming the limit that paces ``mode`` on this plan."""
        if mode == "files":
            return f"plan {self.name}: purges by URL limited to {self.urls_per_second:g} URLs/s"
        if self.requests_per_second < 1:
            rate = f"{self.requests_per_second * 60:g} requests/minute"
        else:
            rate = f"{self.requests_per_second:g} requests/s"
        return f"plan {self.name}: {mode} purges limited to {rate}, bursts of {self.request_burst}"


PLANS: dict[str, Plan] = {
    "free": Plan("free", requests_per_second=5 / 60, request_burst=25, urls_per_second=800, max_urls_per_request=100),
    "pro": Plan("pro", requests_per_second=5, request_burst=25, urls_per_second=1500, max_urls_per_request=100),
    "business": Plan(
        "business", requests_per_second=10, request_burst=50, urls_per_second=1500, max_urls_per_request=100
    ),
    "enterprise": Plan(
        "enterprise", requests_per_second=50, request_burst=500, urls_per_second=3000, max_urls_per_request=500
    ),
}


class Clock(Protocol):
    """Where the command reads the time and waits; tests pass a :class:`VirtualClock`."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`time.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass
class VirtualClock:
    """A clock whose ``sleep`` returns at once and moves ``now`` forward; it records each sleep."""

    t: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)


class TokenBucket:
    """A token bucket: ``capacity`` tokens at most, refilled continuously at ``rate`` per second.

    It starts full, so a fresh run may burst up to ``capacity``. :meth:`acquire` blocks (on the
    injected clock) until ``n`` tokens are available, then takes them.
    """

    def __init__(self, rate: float, capacity: float, clock: Clock) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("a token bucket needs a positive rate and capacity")
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.tokens = float(capacity)
        self._updated = clock.now()

    def _refill(self) -> None:
        now = self.clock.now()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait_time(self, n: float = 1) -> float:
        """Seconds until ``n`` tokens are available (0 if they are there now)."""
        self._refill()
        return max(0.0, (n - self.tokens) / self.rate)

    def acquire(self, n: float = 1) -> float:
        """Take ``n`` tokens, sleeping until the bucket holds them; returns the seconds slept."""
        if n > self.capacity:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.capacity}")
        slept = 0.0
        while True:
            wait = self.wait_time(n)
            if wait <= 1e-9:
                self.tokens -= n
                return slept
            self.clock.sleep(wait)
            slept += wait


class Pacer:
    """The buckets for one run: URLs for ``files`` purges, requests for every other mode."""

    def __init__(self, plan: Plan, clock: Clock) -> None:
        self.plan = plan
        self.urls = TokenBucket(plan.urls_per_second, plan.url_burst, clock)
        self.requests = TokenBucket(plan.requests_per_second, plan.request_burst, clock)

    def before_request(self, mode: str, size: int) -> float:
        """Wait until a request of ``mode`` carrying ``size`` items fits the plan; returns seconds waited."""
        if mode == "files":
            return self.urls.acquire(size)
        return self.requests.acquire(1)


def estimate_seconds(plan: Plan, mode: str, batch_sizes: Iterable[int]) -> float:
    """How long the batches take under ``plan``'s limits, if no request fails or meets a 429.

    Replays them through a :class:`Pacer` on a :class:`VirtualClock`; request latency is not counted.
    """
    clock = VirtualClock()
    pacer = Pacer(plan, clock)
    for size in batch_sizes:
        pacer.before_request(mode, size)
    return clock.now()
