"""Query timing and pool metrics on a real PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, exc, text

from perfstack.telemetry.metrics import Metrics
from perfstack.telemetry.sqlalchemy import InstrumentedQueuePool, instrument_engine, operation_of


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def engine_for(url: str, registry: CollectorRegistry, **pool: object):  # type: ignore[no-untyped-def]
    engine = create_engine(url, poolclass=InstrumentedQueuePool, **pool)
    return instrument_engine(engine, Metrics(registry))


@pytest.mark.parametrize(
    ("statement", "options", "expected"),
    [
        ("SELECT 1", {}, "select"),
        ("  /* hint */ insert into t values (1)", {}, "insert"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", {}, "with"),
        ("VACUUM t", {}, "other"),
        ("SELECT 1", {"operation": "merchant_by_id"}, "merchant_by_id"),
    ],
)
def test_operation_is_the_code_given_name_else_the_sql_verb(statement: str, options: dict, expected: str) -> None:
    assert operation_of(statement, options) == expected


def test_every_statement_is_timed_under_its_operation(pg_url: str) -> None:
    registry = CollectorRegistry()
    engine = engine_for(pg_url, registry, pool_size=2)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x int)"))
        conn.execute(text("INSERT INTO t SELECT generate_series(1, 10)"))
        conn.execute(text("SELECT pg_sleep(0.06)"), execution_options={"operation": "slow_report"})
        conn.execute(text("SELECT count(*) FROM t").execution_options(operation="count_t"))
    assert sample(registry, "db_query_duration_seconds_count", operation="insert") == 1
    assert sample(registry, "db_query_duration_seconds_count", operation="count_t") == 1
    assert sample(registry, "db_query_duration_seconds_count", operation="slow_report") == 1
    # 60 ms lands above the 50 ms bucket and within the 75 ms one.
    assert sample(registry, "db_query_duration_seconds_bucket", operation="slow_report", le="0.05") == 0
    assert sample(registry, "db_query_duration_seconds_bucket", operation="slow_report", le="0.1") == 1


def test_a_failing_statement_is_still_timed(pg_url: str) -> None:
    registry = CollectorRegistry()
    engine = engine_for(pg_url, registry)
    with pytest.raises(exc.ProgrammingError), engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert sample(registry, "db_query_duration_seconds_count", operation="select") == 1


def test_pool_gauges_follow_checkouts_and_overflow(pg_url: str) -> None:
    registry = CollectorRegistry()
    engine = engine_for(pg_url, registry, pool_size=2, max_overflow=3)
    assert sample(registry, "db_pool_size_connections") == 2
    assert sample(registry, "db_pool_max_overflow_connections") == 3
    conns = [engine.connect() for _ in range(3)]
    for c in conns:
        c.execute(text("SELECT 1"))
    assert sample(registry, "db_pool_checked_out_connections") == 3
    assert sample(registry, "db_pool_overflow_connections") == 1
    for c in conns:
        c.close()
    assert sample(registry, "db_pool_checked_out_connections") == 0


def test_waiting_checkouts_and_timeouts_are_counted(pg_url: str) -> None:
    registry = CollectorRegistry()
    engine = engine_for(pg_url, registry, pool_size=1, max_overflow=0, pool_timeout=1)
    held = engine.connect()
    held.execute(text("SELECT 1"))
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            engine.connect()
        except exc.TimeoutError as e:
            errors.append(e)

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 5
    while sample(registry, "db_pool_waiting_checkouts") != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sample(registry, "db_pool_waiting_checkouts") == 1
    thread.join(10)
    held.close()
    assert len(errors) == 1
    assert sample(registry, "db_pool_checkout_timeouts_total") == 1
    assert sample(registry, "db_pool_waiting_checkouts") == 0
    assert sample(registry, "db_pool_checkout_wait_seconds_bucket", le="0.5") < sample(
        registry, "db_pool_checkout_wait_seconds_count"
    )


def test_pool_metrics_survive_dispose(pg_url: str) -> None:
    registry = CollectorRegistry()
    engine = engine_for(pg_url, registry, pool_size=1, max_overflow=0, pool_timeout=1)
    engine.dispose()
    held = engine.connect()
    assert sample(registry, "db_pool_checked_out_connections") == 1
    with pytest.raises(exc.TimeoutError):
        engine.connect()
    held.close()
    assert sample(registry, "db_pool_checkout_timeouts_total") == 1
