"""A fake Cloudflare purge API on 127.0.0.1, for testing ``perfstack cdn purge`` without the network.

It serves ``POST /client/v4/zones/{zone_id}/purge_cache`` as documented (FACTS.md §4.1) and keeps a
log, so tests can assert what a real zone would have seen. Point the SDK at it with
``base_url=fake.base_url`` (or ``CLOUDFLARE_BASE_URL``).

Each request is checked in this order, and the first check that fails decides the answer:

1. **Injected faults**: :meth:`FakeCloudflare.fail_next` (the next N requests get 500/502/...) and
   :meth:`FakeCloudflare.fail_always` (every request gets, say, 403).
2. **Route**: anything but ``POST .../zones/<id>/purge_cache`` is 404 (code 7003) or 405.
3. **Authentication**: ``Authorization: Bearer <token>`` must carry :attr:`FakeCloudflare.token`,
   else 403 with Cloudflare's envelope ``{"code": 10000, "message": "Authentication error"}``.
4. **Zone**: an id not in :attr:`FakeCloudflare.zone_ids` is 404.
5. **Rate limit** (when configured with :meth:`FakeCloudflare.rate_limit`): a token bucket of
   requests or of URLs, like Cloudflare's; an empty bucket answers 429 with ``Retry-After`` (and/or
   ``retry-after-ms``) saying how long until the request would fit.
6. **Body**: a JSON object with exactly one of ``files``, ``tags``, ``hosts``, ``prefixes``,
   ``purge_everything``; lists non-empty; at most ``max_files`` URLs (``max_operations`` for the
   others) per request; else 400.

A request that passes gets ``200 {"success": true, "errors": [], "messages": [], "result": {"id": ...}}``
and its items are appended to :attr:`FakeCloudflare.purged`. Every request, whatever its answer,
is appended to :attr:`FakeCloudflare.requests` (time, status, mode, size, items).

The error codes other than 10000 (auth) and 7003 (routing) are this fake's own: Cloudflare does
not document purge-specific codes.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

MODES = ("files", "tags", "hosts", "prefixes", "purge_everything")
ROUTE = re.compile(r"^/client/v4/zones/([^/]+)/purge_cache/?$")
DEFAULT_ZONE = "023e105f4ecef8ad9ca31a8372d0c353"


@dataclass
class Request:
    """One request the fake answered."""

    time: float  # time.monotonic() when it arrived
    method: str
    path: str
    zone_id: str | None
    status: int
    mode: str | None = None  # files, tags, hosts, prefixes or purge_everything
    items: list[str] = field(default_factory=list)
    retry_after: str | None = None  # the Retry-After sent with a 429

    @property
    def size(self) -> int:
        return len(self.items)


class _Bucket:
    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.updated = float(capacity), time.monotonic()

    def take(self, n: float) -> float:
        """Take ``n`` tokens and return 0, or take nothing and return the seconds until they are there."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


def envelope(errors: list[dict[str, Any]] | None = None, result: Any = None) -> dict[str, Any]:
    """Cloudflare's response envelope."""
    return {"success": not errors, "errors": errors or [], "messages": [], "result": result}


class FakeCloudflare:
    """The fake API server; use it as a context manager or through the ``fake_cloudflare`` fixture."""

    def __init__(
        self,
        *,
        token: str | None = None,
        zone_ids: tuple[str, ...] = (DEFAULT_ZONE,),
        max_files: int = 30,
        max_operations: int = 100,
    ) -> None:
        self.token = token or f"cf-test-token-{secrets.token_hex(12)}"
        self.zone_ids = set(zone_ids)
        self.max_files = max_files
        self.max_operations = max_operations
        self.requests: list[Request] = []
        self.purged: list[tuple[str, str]] = []  # (mode, item), one per item purged
        self._lock = threading.Lock()
        self._faults: list[tuple[int, bool, str | None]] = []  # (status, html body, message) for the next requests
        self._always: int | None = None
        self._bucket: _Bucket | None = None
        self._unit = "requests"
        self._retry_after: float | None = None
        self._retry_headers: tuple[str, ...] = ("Retry-After",)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- configuration --------------------------------------------------------------------

    @property
    def zone_id(self) -> str:
        return sorted(self.zone_ids)[0]

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/client/v4"

    def rate_limit(
        self,
        rate: float,
        burst: float,
        *,
        unit: str = "requests",
        retry_after: float | None = None,
        headers: tuple[str, ...] = ("Retry-After",),
    ) -> None:
        """Answer 429 once a token bucket (``rate``/s, capacity ``burst``) of requests or URLs is empty.

        ``Retry-After`` says how long until the request would fit, unless ``retry_after`` fixes it;
        ``headers`` picks ``Retry-After`` (seconds, decimals) and/or ``retry-after-ms``.
        """
        assert unit in ("requests", "urls")
        with self._lock:
            self._bucket, self._unit = _Bucket(rate, burst), unit
            self._retry_after, self._retry_headers = retry_after, headers

    def fail_next(self, n: int, status: int = 500, *, html: bool = False, message: str | None = None) -> None:
        """The next ``n`` requests get ``status``: an HTML body (like Cloudflare's edge on 502) if ``html``,
        else the error envelope, with ``message`` if given."""
        with self._lock:
            self._faults.extend([(status, html, message)] * n)

    def fail_always(self, status: int = 403) -> None:
        """Every request gets ``status`` until :meth:`clear_faults`."""
        with self._lock:
            self._always = status

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._always = None

    # --- the log ---------------------------------------------------------------------------

    def purged_items(self, mode: str | None = None) -> list[str]:
        with self._lock:
            return [item for m, item in self.purged if mode is None or m == mode]

    def purge_counts(self) -> Counter[str]:
        """How many times each item was purged."""
        return Counter(self.purged_items())

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.requests]

    def max_request_size(self) -> int:
        with self._lock:
            return max((r.size for r in self.requests), default=0)

    # --- serving ---------------------------------------------------------------------------

    def start(self) -> FakeCloudflare:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-cloudflare", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeCloudflare:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Decide the answer to one request, and log it (see the module docstring for the order)."""
        now = time.monotonic()
        match = ROUTE.match(path.split("?", 1)[0])
        zone = match.group(1) if match else None
        record = Request(now, method, path, zone, 0)

        def reply(status: int, payload: Any, extra: dict[str, str] | None = None, html: bool = False) -> Any:
            record.status = status
            with self._lock:
                self.requests.append(record)
            if html:
                return status, {"Content-Type": "text/html", **(extra or {})}, payload.encode()
            return status, {"Content-Type": "application/json", **(extra or {})}, json.dumps(payload).encode()

        def error(status: int, code: int, message: str, extra: dict[str, str] | None = None) -> Any:
            return reply(status, envelope([{"code": code, "message": message}]), extra)

        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        if isinstance(data, dict):
            given = [m for m in MODES if m in data]
            if len(given) == 1:
                record.mode = given[0]
                value = data[given[0]]
                if given[0] == "purge_everything":
                    record.items = ["everything"] if value is True else []
                elif isinstance(value, list):
                    record.items = [v["url"] if isinstance(v, dict) and "url" in v else v for v in value]

        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            always = self._always
        if always is not None:
            if always == 403:
                return error(403, 10000, "Authentication error")
            return error(always, 10001, f"injected failure {always}")
        if fault is not None:
            status, html, message = fault
            if html:
                return reply(status, f"<html><body><h1>{status} Bad Gateway</h1>cloudflare</body></html>", html=True)
            return error(status, 10001, message or f"injected failure {status}")

        if match is None:
            return error(404, 7003, f"Could not route to {path}, perhaps your object identifier is invalid?")
        if method != "POST":
            return error(405, 10405, f"method {method} not allowed")
        if headers.get("authorization") != f"Bearer {self.token}":
            return error(403, 10000, "Authentication error")
        if zone not in self.zone_ids:
            return error(404, 7003, f"Could not route to /zones/{zone}/purge_cache, perhaps your zone id is invalid?")

        with self._lock:
            bucket, unit = self._bucket, self._unit
            wait = bucket.take(record.size if unit == "urls" and record.mode == "files" else 1) if bucket else 0.0
        if wait > 0:
            seconds = self._retry_after if self._retry_after is not None else math.ceil(wait * 1000) / 1000
            extra = {}
            if "Retry-After" in self._retry_headers:
                extra["Retry-After"] = f"{seconds:.3f}"
            if "retry-after-ms" in self._retry_headers:
                extra["retry-after-ms"] = str(math.ceil(seconds * 1000))
            record.retry_after = f"{seconds:.3f}"
            return error(429, 10429, "Rate limited. Please wait and consider throttling your request speed", extra)

        problem = self._check_body(data)
        if problem:
            return error(400, 10400, problem)
        with self._lock:
            self.purged.extend((record.mode or "", item) for item in record.items)
        return reply(200, envelope(result={"id": uuid.uuid4().hex}))

    def _check_body(self, data: Any) -> str | None:
        if not isinstance(data, dict):
            return "the body must be a JSON object"
        given = [m for m in MODES if m in data]
        if len(given) != 1:
            return f"exactly one of {', '.join(MODES)} is required; got {given or 'none'}"
        mode = given[0]
        value = data[mode]
        if mode == "purge_everything":
            return None if value is True else "purge_everything must be true"
        if not isinstance(value, list) or not value:
            return f"{mode} must be a non-empty list"
        limit = self.max_files if mode == "files" else self.max_operations
        if len(value) > limit:
            return f"{mode}: {len(value)} items; at most {limit} per request"
        for v in value:
            item = v.get("url") if mode == "files" and isinstance(v, dict) else v
            if not isinstance(item, str) or not item:
                return f"{mode}: every item must be a non-empty string"
            if mode == "files" and not re.match(r"^https?://[^/\s]+", item):
                return f"files: {item!r} is not an absolute URL"
            if mode == "prefixes" and "://" in item:
                return f"prefixes: {item!r} must not have a scheme"
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without this each answer waits ~40 ms
    server_fake: FakeCloudflare

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, payload = self.server_fake.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def fake_cloudflare():
    """A started :class:`FakeCloudflare` (30 URLs per request, no rate limit), stopped after the test."""
    with FakeCloudflare() as fake:
        yield fake
