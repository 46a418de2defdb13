"""SQLAlchemy 2 hooks: time every statement and report the connection pool's state.

::

    from sqlalchemy import create_engine
    from perfstack.telemetry.sqlalchemy import InstrumentedQueuePool, instrument_engine

    engine = create_engine(url, poolclass=InstrumentedQueuePool, pool_size=20, max_overflow=40,
                           pool_pre_ping=True)
    instrument_engine(engine)

Statements are labelled by ``operation``: the name the code gives with
``.execution_options(operation="merchant_by_id")`` (on a statement, connection or session
execute), else the SQL verb (``select``, ``insert``, ...). Both are bounded sets.

Pool gauges (size, max overflow, checked out, overflow) are updated on every checkout and
checkin. :class:`InstrumentedQueuePool` (a ``QueuePool``) adds what pool events cannot see:
checkouts waiting for a connection, the time they waited, and checkouts that timed out.
"""

from __future__ import annotations

import re
import threading
from time import perf_counter
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool, QueuePool

from .metrics import Metrics, default_metrics

OPERATION_OPTION = "operation"
_START = "perfstack_query_start"
_VERB = re.compile(r"^\s*(?:/\*.*?\*/\s*)?([A-Za-z]+)", re.S)
_VERBS = frozenset({"select", "insert", "update", "delete", "with", "copy", "begin", "commit", "rollback", "set"})


def operation_of(statement: str, options: dict[str, Any]) -> str:
    """The ``operation`` label: the code's name for the statement, else its SQL verb."""
    named = options.get(OPERATION_OPTION)
    if named:
        return str(named)
    m = _VERB.match(statement)
    verb = m.group(1).lower() if m else ""
    return verb if verb in _VERBS else "other"


class InstrumentedQueuePool(QueuePool):
    """A QueuePool that also reports waiting checkouts, their wait time and timeouts."""

    perfstack_metrics: Metrics | None = None

    def _do_get(self) -> Any:
        metrics = self.perfstack_metrics
        if metrics is None:
            return super()._do_get()
        metrics.pool_waiting.inc()
        start = perf_counter()
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            metrics.pool_timeouts.inc()
            raise
        finally:
            metrics.pool_waiting.dec()
            metrics.pool_checkout_wait.observe(perf_counter() - start)

    def recreate(self) -> QueuePool:
        pool = super().recreate()
        pool.perfstack_metrics = self.perfstack_metrics  # type: ignore[attr-defined]
        return pool


def instrument_engine(engine: Engine, metrics: Metrics | None = None) -> Engine:
    """Attach query timing and pool metrics to ``engine`` (idempotent)."""
    metrics = metrics or default_metrics()
    if getattr(engine, "_perfstack_instrumented", False):
        return engine
    engine._perfstack_instrumented = True  # type: ignore[attr-defined]
    children: dict[str, Any] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault(_START, []).append(perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        elapsed = perf_counter() - conn.info[_START].pop()
        _observe(statement, context, elapsed)

    @event.listens_for(engine, "handle_error")
    def _error(ctx: Any) -> None:
        starts = ctx.connection.info.get(_START) if ctx.connection is not None else None
        if starts:  # a failed statement still took time
            _observe(ctx.statement or "", ctx.execution_context, perf_counter() - starts.pop())

    def _observe(statement: str, context: Any, elapsed: float) -> None:
        options = context.execution_options if context is not None else {}
        op = operation_of(statement, options)
        child = children.get(op)
        if child is None:
            child = children[op] = metrics.query_duration.labels(op)
        child.observe(elapsed)

    pool: Pool = engine.pool
    if isinstance(pool, InstrumentedQueuePool):
        pool.perfstack_metrics = metrics
    size = pool.size() if isinstance(pool, QueuePool) else 0
    metrics.pool_size.set(size)
    if isinstance(pool, QueuePool):
        metrics.pool_max_overflow.set(max(pool._max_overflow, 0))

    # Counted here rather than read from the pool: a checkin event fires before the pool
    # takes the connection back, so pool.checkedout() would still include it.
    lock = threading.Lock()
    state = {"out": 0}

    def _moved(delta: int) -> None:
        with lock:
            state["out"] += delta
            out = state["out"]
        metrics.pool_checked_out.set(out)
        metrics.pool_overflow.set(max(0, out - size))

    # Pool events on the Engine follow it to a pool recreated by dispose().
    event.listen(engine, "checkout", lambda *_: _moved(+1))
    event.listen(engine, "checkin", lambda *_: _moved(-1))
    return engine
