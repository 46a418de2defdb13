"""Before the purge, wait for the new version to be served; after it, check what the edge serves.

Purging before the origin serves the new release would let the edge cache the *old* files again
on the next request, so ``--wait-for URL --expect TEXT`` polls ``URL`` until its body contains
``TEXT`` (typically a ``version.txt`` holding the commit id) and fails, purging nothing, if that
does not happen within ``--wait-timeout`` seconds. Each poll adds a ``perfstack-wait`` query
parameter with a fresh value: Cloudflare's default cache key includes the query string, so the
poll reaches the origin even when ``URL`` itself is cached at the edge.

``--verify`` then requests a sample of the purged URLs and reads ``cf-cache-status``. Right after
a purge the first request for a URL is expected to be ``MISS`` (or ``EXPIRED``, ``REVALIDATED``;
``DYNAMIC`` and ``BYPASS`` mean the URL is not cached at all). ``HIT``, ``STALE`` or ``UPDATING``
mean the edge still served a cached copy: reported as a warning, since another visitor may have
refilled the cache in between, and a ``200`` from the purge API is only an acceptance (FACTS.md §4.1).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from .limits import Clock

EXPECTED_AFTER_PURGE = frozenset({"MISS", "EXPIRED", "REVALIDATED", "DYNAMIC", "BYPASS"})
STILL_CACHED = frozenset({"HIT", "STALE", "UPDATING"})
USER_AGENT = "perfstack-cdn-purge"


@dataclass
class WaitResult:
    """How ``--wait-for`` ended."""

    ok: bool
    url: str
    attempts: int
    seconds: float
    last: str  # what the last poll saw

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Check:
    """One ``--verify`` request: the URL, its HTTP status and ``cf-cache-status``, and the verdict."""

    url: str
    status: int | None
    cache_status: str | None
    level: str  # "ok" or "warning"
    note: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


_counter = itertools.count()


def cache_busted(url: str) -> str:
    """``url`` with a ``perfstack-wait`` query parameter that differs on every call."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("perfstack-wait", f"{time.time_ns()}-{next(_counter)}")]
    return urlunsplit(parts._replace(query=urlencode(query)))


def wait_for(
    url: str,
    expect: str,
    *,
    timeout: float,
    interval: float,
    clock: Clock,
    on_poll: Callable[[int, str], None] | None = None,
    request_timeout: float = 10.0,
) -> WaitResult:
    """Poll ``url`` every ``interval`` seconds until its body contains ``expect``, for at most ``timeout``."""
    start = clock.now()
    deadline = start + timeout
    attempts = 0
    last = "no answer yet"
    headers = {"User-Agent": USER_AGENT, "Cache-Control": "no-cache"}
    with httpx.Client(timeout=request_timeout, follow_redirects=True, headers=headers) as client:
        while True:
            attempts += 1
            try:
                response = client.get(cache_busted(url))
                if expect in response.text:
                    return WaitResult(True, url, attempts, clock.now() - start, f"HTTP {response.status_code}")
                last = f"HTTP {response.status_code}, body does not contain the expected text"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if on_poll:
                on_poll(attempts, last)
            remaining = deadline - clock.now()
            if remaining <= 0:
                return WaitResult(False, url, attempts, clock.now() - start, last)
            clock.sleep(min(interval, remaining))


def sample(urls: Sequence[str], n: int) -> list[str]:
    """``n`` URLs spread evenly over ``urls`` (the first and the last included), in order."""
    if n <= 0 or not urls:
        return []
    if n >= len(urls):
        return list(urls)
    if n == 1:
        return [urls[0]]
    picks = sorted({int(i * (len(urls) - 1) / (n - 1) + 0.5) for i in range(n)})
    return [urls[i] for i in picks]


def verify(urls: Sequence[str], *, request_timeout: float = 10.0) -> list[Check]:
    """GET each URL once and judge its ``cf-cache-status`` (see the module docstring)."""
    checks = []
    with httpx.Client(timeout=request_timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}) as client:
        for url in urls:
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                checks.append(Check(url, None, None, "warning", f"request failed: {type(exc).__name__}: {exc}"))
                continue
            status = response.headers.get("cf-cache-status")
            value = status.upper() if status else None
            if value is None:
                level, note = "warning", "no cf-cache-status header: is this URL proxied by Cloudflare?"
            elif value in STILL_CACHED:
                level, note = "warning", f"{value}: the edge still served a cached copy"
            elif value in EXPECTED_AFTER_PURGE:
                level, note = "ok", f"{value}: not served from cache"
            else:
                level, note = "warning", f"{value}: unexpected cache status"
            checks.append(Check(url, response.status_code, value, level, note))
    return checks
