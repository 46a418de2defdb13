"""Send the batches: pace them by the plan's token buckets, retry what can be retried, count it all.

:class:`Runner` takes a ``send(mode, items) -> purge_id`` function (normally
:meth:`perfstack.cdn.api.PurgeAPI.purge`) and a list of :class:`Batch`, and returns a
:class:`RunResult` saying, for every batch, whether Cloudflare accepted it.

For each attempt it first waits for the plan's token bucket (:class:`perfstack.cdn.limits.Pacer`),
then sends one request. On failure (:class:`perfstack.cdn.api.ApiError`):

* **429** waits what ``Retry-After``/``retry-after-ms`` says (capped at ``max_retry_after``), or
  backs off when the header is absent; then retries.
* **5xx, 408, 409 and connection errors** back off exponentially with jitter: attempt ``n`` waits a
  random time between half and all of ``min(max_delay, base_delay * 2**(n-1))`` ("equal jitter",
  so that clients that failed together do not retry together). A ``Retry-After`` on them is honoured.
* **401, 403, 404** stop the run: every other batch would fail the same way.
* **Other 4xx** fail that batch only.

A batch is tried at most ``1 + max_retries`` times. When ``give_up_after`` batches in a row have
used up their retries the API is taken to be down and the remaining batches are not sent. Batches
that were not sent are reported as not purged, never as purged. Ctrl-C stops the run the same way;
the batch in flight then counts as not purged, since whether Cloudflare applied it is unknown.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .api import ApiError
from .limits import Clock, Pacer, Plan

Send = Callable[[str, Sequence[str]], str]


@dataclass(frozen=True)
class Batch:
    """The items of one purge request; ``number`` counts from 1."""

    number: int
    items: tuple[str, ...]


@dataclass
class Outcome:
    """What happened to one batch."""

    batch: Batch
    purged: bool = False
    attempts: int = 0
    purge_id: str | None = None
    error: ApiError | None = None
    not_sent: str | None = None  # why the batch was never sent (the run stopped first)

    @property
    def reason(self) -> str:
        """Why the batch is not purged, for the summary."""
        if self.purged:
            return ""
        if self.error is not None:
            tries = f" after {self.attempts} attempt{'s' if self.attempts != 1 else ''}"
            return self.error.describe() + tries
        return self.not_sent or "not sent"


@dataclass
class RunResult:
    """Every batch's outcome, and what it cost."""

    mode: str
    outcomes: list[Outcome] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    rate_limit_wait: float = 0.0  # seconds spent waiting for the token bucket
    retry_wait: float = 0.0  # seconds spent waiting between attempts
    stopped: str | None = None  # why batches were left unsent
    fatal: ApiError | None = None  # the 401/403/404 that stopped the run
    interrupted: bool = False

    @property
    def purged(self) -> list[str]:
        return [item for o in self.outcomes if o.purged for item in o.batch.items]

    @property
    def not_purged(self) -> list[tuple[str, Outcome]]:
        return [(item, o) for o in self.outcomes if not o.purged for item in o.batch.items]

    @property
    def ok(self) -> bool:
        return all(o.purged for o in self.outcomes)


class Events(Protocol):
    """What a progress display hears from the runner."""

    def started(self, batches: Sequence[Batch], mode: str) -> None: ...

    def retrying(self, batch: Batch, attempt: int, error: ApiError, delay: float) -> None: ...

    def finished_batch(self, outcome: Outcome, done: int, total: int) -> None: ...

    def finished(self, result: RunResult) -> None: ...


class Runner:
    """Sends batches through ``send`` under the plan's limits (see the module docstring)."""

    def __init__(
        self,
        send: Send,
        plan: Plan,
        mode: str,
        *,
        clock: Clock,
        max_retries: int = 5,
        events: Events | None = None,
        rng: random.Random | None = None,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        max_retry_after: float = 300.0,
        give_up_after: int = 3,
    ) -> None:
        self.send = send
        self.plan = plan
        self.mode = mode
        self.clock = clock
        self.max_retries = max_retries
        self.events = events
        self.rng = rng or random.Random()
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self.give_up_after = give_up_after

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), with equal jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return self.rng.uniform(ceiling / 2, ceiling)

    def delay_after(self, error: ApiError, attempt: int) -> float:
        """The server's ``Retry-After`` when it gave one, else :meth:`backoff`."""
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        return self.backoff(attempt)

    def run(self, batches: Sequence[Batch]) -> RunResult:
        """Send every batch (until a fatal error or ``give_up_after`` failures in a row)."""
        result = RunResult(self.mode)
        pacer = Pacer(self.plan, self.clock)
        if self.events:
            self.events.started(batches, self.mode)
        failures_in_a_row = 0
        for index, batch in enumerate(batches):
            if result.stopped:
                result.outcomes.append(Outcome(batch, not_sent=f"not sent: {result.stopped}"))
                continue
            try:
                outcome = self._send_batch(batch, pacer, result)
            except KeyboardInterrupt:
                result.interrupted = True
                result.stopped = "interrupted (Ctrl-C)"
                outcome = Outcome(
                    batch, not_sent="interrupted while being sent: whether Cloudflare applied it is unknown"
                )
            result.outcomes.append(outcome)
            if self.events:
                self.events.finished_batch(outcome, index + 1, len(batches))
            if outcome.purged:
                failures_in_a_row = 0
            elif outcome.error is not None and outcome.error.fatal:
                result.fatal = outcome.error
                result.stopped = f"the run stopped at batch {batch.number}: {outcome.error.describe()}"
            elif outcome.error is not None and outcome.error.retryable:
                failures_in_a_row += 1
                if failures_in_a_row >= self.give_up_after:
                    result.stopped = (
                        f"the run stopped after {failures_in_a_row} batches in a row used up their retries "
                        "(the API looks unavailable)"
                    )
        if self.events:
            self.events.finished(result)
        return result

    def _send_batch(self, batch: Batch, pacer: Pacer, result: RunResult) -> Outcome:
        outcome = Outcome(batch)
        for attempt in range(1, self.max_retries + 2):
            result.rate_limit_wait += pacer.before_request(self.mode, len(batch.items))
            result.requests += 1
            outcome.attempts = attempt
            try:
                outcome.purge_id = self.send(self.mode, batch.items)
            except ApiError as error:
                outcome.error = error
                if not error.retryable or attempt > self.max_retries:
                    return outcome
                delay = self.delay_after(error, attempt)
                if self.events:
                    self.events.retrying(batch, attempt, error, delay)
                self.clock.sleep(delay)
                result.retry_wait += delay
                result.retries += 1
                continue
            outcome.purged = True
            outcome.error = None
            return outcome
        return outcome  # not reached: the loop returns on its last attempt
