"""The real-server fixtures in services.py: PostgreSQL per-test databases and Redis per test.

These start the Debian postgresql and redis-server binaries (installed by make test).
"""

from __future__ import annotations

import psycopg
import pytest
import redis
import sqlalchemy as sa
from services import PostgresServer, RedisServer

# The fixtures, bound by assignment so pytest finds them in this module. Importing them by name
# works as well, but ruff then flags every test parameter that uses one (F811, redefinition).

pytestmark = pytest.mark.tools


def query(url: str, statement: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


# --- PostgreSQL ----------------------------------------------------------------------------


def test_postgres_urls_name_the_server_port_in_sqlalchemy_and_libpq_forms(postgres_server: PostgresServer) -> None:
    port = postgres_server.port
    assert postgres_server.url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    assert postgres_server.dsn == f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with psycopg.connect(postgres_server.dsn) as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("15")
        assert conn.execute("SHOW fsync").fetchone()[0] == "off"


def test_pg_url_is_a_fresh_database_that_answers_queries(pg_url: str) -> None:
    dbname = sa.make_url(pg_url).database
    assert dbname.startswith("test_")
    assert query(pg_url, "SELECT current_database(), 1 + 1") == [(dbname, 2)]
    assert query(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    query(pg_url, "CREATE TABLE marker (id int)")


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_its_own_database_without_the_previous_tests_tables(pg_url: str, run: int) -> None:
    assert query(pg_url, "SELECT to_regclass('public.marker')") == [(None,)]
    query(pg_url, "CREATE TABLE marker (id int)")


def test_postgres_server_accepts_queries_and_pg_stat_statements(pg_url: str) -> None:
    query(pg_url, "CREATE EXTENSION pg_stat_statements")
    query(pg_url, "SELECT 42")
    calls = query(pg_url, "SELECT sum(calls) FROM pg_stat_statements WHERE query = 'SELECT $1'")
    assert calls[0][0] >= 1


def test_drop_database_succeeds_while_a_client_is_still_connected(postgres_server: PostgresServer) -> None:
    name = "test_left_open"  # pg_url drops its database this way after every test
    url = postgres_server.create_database(name)
    engine = sa.create_engine(url)
    leftover = engine.connect()  # what a test that forgets to close its connection leaves behind
    try:
        postgres_server.drop_database(name)
        with psycopg.connect(postgres_server.dsn) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None
    finally:
        leftover.invalidate()
        engine.dispose()


# --- Redis ---------------------------------------------------------------------------------


def test_redis_url_answers_ping_and_set_get(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
    finally:
        client.close()


def test_each_test_gets_its_own_empty_redis(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        assert client.dbsize() == 0


def test_stopped_redis_refuses_connections_and_answers_again_after_start(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.set("key", "value")
        redis_server.stop()
        redis_server.stop()  # idempotent
        with pytest.raises(redis.ConnectionError):
            client.ping()
        redis_server.start()
        redis_server.start()  # idempotent
        assert client.ping()
        assert client.get("key") is None  # a restarted Redis is empty (nothing is persisted)


def test_paused_redis_times_out_and_answers_again_after_resume(redis_server: RedisServer) -> None:
    with redis_server.client(timeout=0.3) as client:
        assert client.ping()
        redis_server.pause()
        with pytest.raises(redis.TimeoutError):
            client.ping()
        redis_server.resume()
        assert client.ping()
        redis_server.pause()  # teardown stops a paused Redis too (it resumes it first)


def test_a_server_used_as_a_context_manager_is_stopped_on_exit() -> None:
    with RedisServer() as server, server.client() as client:
        assert client.ping()
    assert server.proc is None and server.dir is None
    with pytest.raises(redis.ConnectionError):
        server.client().ping()
