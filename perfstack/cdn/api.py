"""One purge request through the official ``cloudflare`` SDK, with every failure made explicit.

:class:`PurgeAPI` sends exactly one HTTP request per :meth:`PurgeAPI.purge` call: the client is
built with ``max_retries=0`` so that :mod:`perfstack.cdn.runner` owns retries, their count, and
how long to wait (the SDK's own loop honours ``Retry-After`` only up to 60 s and would hide how
many requests were made). Every failure comes back as one :class:`ApiError` whose ``kind`` says
what the caller should do:

=================  =========================================  ===================================
kind               cause                                      caller
=================  =========================================  ===================================
``rate_limited``   HTTP 429                                   wait ``retry_after``, then retry
``server``         HTTP 408, 409 or 5xx                       back off, then retry
``connection``     no answer: refused, reset, timed out       back off, then retry
``unauthorized``   HTTP 401                                   stop: every request would fail
``forbidden``      HTTP 403                                   stop: the token lacks Cache Purge
``not_found``      HTTP 404                                   stop: unknown zone id
``rejected``       other 4xx, or 200 with ``success: false``  this batch failed; go on
=================  =========================================  ===================================

Three behaviours of SDK 5.9.0 this module works around (read in its source):

* The client picks **one** credential: ``X-Auth-Email``, then ``X-Auth-Key``, then the bearer
  token, each filled from the environment (``CLOUDFLARE_EMAIL``, ``CLOUDFLARE_API_KEY``) when not
  given. A stray ``CLOUDFLARE_EMAIL`` in CI would silently replace the token, so the other
  credentials are cleared after the client is built.
* A ``200`` whose envelope says ``"success": false`` is not raised: the SDK unwraps ``result``
  and returns ``None``. Requests go through ``with_raw_response`` and the envelope is checked here.
* Error messages look like ``Error code: 403 - {...the body...}``; the envelope's ``errors`` list
  (``code`` and ``message``) is read from ``APIStatusError.errors`` instead.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The Cloudflare API used when neither ``--api-base-url`` nor ``CLOUDFLARE_BASE_URL`` is set.
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

RETRYABLE = frozenset({"rate_limited", "server", "connection"})
FATAL = frozenset({"unauthorized", "forbidden", "not_found"})


@dataclass(eq=False)
class ApiError(Exception):
    """A purge request that did not succeed; ``kind`` is one of the table in the module docstring."""

    kind: str
    message: str
    status: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.describe()

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL

    def describe(self) -> str:
        """``HTTP 500: Internal error [code 10001]``, or the connection error's message."""
        head = f"HTTP {self.status}" if self.status is not None else self.kind.replace("_", " ")
        if self.errors:
            detail = "; ".join(
                f"{e.get('message') or 'no message'}" + (f" [code {e['code']}]" if e.get("code") is not None else "")
                for e in self.errors
            )
        else:
            detail = self.message
        return f"{head}: {detail}" if detail else head


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a 429 (or 503) asks the client to wait, or None when the response does not say.

    Reads ``retry-after-ms`` (milliseconds, non-standard but precise) first, then ``Retry-After``
    as seconds (decimals accepted) or as an HTTP date. Negative values count as 0.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_list(raw: Any) -> list[dict[str, Any]]:
    """The envelope's ``errors`` as plain dicts with ``code`` and ``message``."""
    out = []
    for e in raw or []:
        code = getattr(e, "code", None) if not isinstance(e, Mapping) else e.get("code")
        message = getattr(e, "message", None) if not isinstance(e, Mapping) else e.get("message")
        out.append({"code": code, "message": message})
    return out


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PurgeAPI:
    """Purge requests for one zone, through ``cloudflare.Cloudflare`` with its retries turned off."""

    def __init__(self, token: str, zone_id: str, base_url: str, *, timeout: float = 30.0) -> None:
        import cloudflare  # imported here so that `perfstack --help` does not pay for the SDK

        self._cf = cloudflare
        self.zone_id = zone_id
        self.client = cloudflare.Cloudflare(api_token=token, base_url=base_url, max_retries=0, timeout=timeout)
        # Only the bearer token may authenticate (see the module docstring).
        self.client.api_email = None
        self.client.api_key = None
        self.client.user_service_key = None

    def close(self) -> None:
        self.client.close()

    def purge(self, mode: str, items: Sequence[str]) -> str:
        """Send one purge request; return Cloudflare's purge id, or raise :class:`ApiError`.

        ``mode`` is ``files``, ``prefixes``, ``tags``, ``hosts`` or ``everything`` (``items`` unused).
        """
        cf = self._cf
        kwargs: dict[str, Any] = {"purge_everything": True} if mode == "everything" else {mode: list(items)}
        try:
            raw = self.client.cache.with_raw_response.purge(zone_id=self.zone_id, **kwargs)
        except cf.APIStatusError as exc:
            raise self._status_error(exc) from None
        except cf.APIConnectionError as exc:  # includes APITimeoutError
            cause = exc.__cause__ or exc.__context__
            reason = f"{exc.message} ({type(cause).__name__}: {cause})" if cause else exc.message
            raise ApiError("connection", _short(reason)) from None
        except cf.APIError as exc:  # e.g. a response that is not the documented envelope
            raise ApiError("rejected", _short(exc.message)) from None

        status = raw.http_response.status_code
        try:
            envelope = json.loads(raw.http_response.text)
        except ValueError:
            raise ApiError("rejected", "the response is not JSON", status=status) from None
        if not isinstance(envelope, dict) or envelope.get("success") is not True:
            errors = _error_list(envelope.get("errors") if isinstance(envelope, dict) else None)
            raise ApiError("rejected", "the response says success is not true", status=status, errors=errors)
        result = envelope.get("result") or {}
        return str(result.get("id", "")) if isinstance(result, dict) else ""

    def _status_error(self, exc: Any) -> ApiError:
        status = exc.status_code
        errors = _error_list(exc.errors)
        message = "" if errors else _short(exc.message)
        if status == 429:
            return ApiError("rate_limited", message, status, errors, parse_retry_after(exc.response.headers))
        if status in (408, 409) or status >= 500:
            return ApiError("server", message, status, errors, parse_retry_after(exc.response.headers))
        kind = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(status, "rejected")
        return ApiError(kind, message, status, errors)
