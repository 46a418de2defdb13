"""The reference API on a seeded PostgreSQL and a real Redis, through its instrumentation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from services import PostgresServer, RedisServer, free_port
from sqlalchemy import create_engine, event

from perfstack.telemetry.metrics import Metrics
from service.app import create_app
from service.config import Config
from service.db import make_engine, migrate
from service.seed import Sizes, seed

SIZES = Sizes(users=20_000, merchants=2_000, tickets=50_000)


@pytest.fixture(scope="module")
def seeded_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"seeded_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    migrate(url)
    engine = make_engine(Config(database_url=url, pool_size=2, max_overflow=0), Metrics(CollectorRegistry()))
    seed(engine, SIZES)
    engine.dispose()
    yield url
    postgres_server.drop_database(name)


class Api:
    def __init__(self, client: TestClient, registry: CollectorRegistry, app: Any) -> None:
        self.client, self.registry, self.app = client, registry, app

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def api(seeded_url: str, redis_server: RedisServer) -> Iterator[Api]:
    registry = CollectorRegistry()
    app = create_app(Config(database_url=seeded_url, redis_url=redis_server.url, pool_size=5), Metrics(registry))
    with TestClient(app) as client:
        yield Api(client, registry, app)


ENDPOINTS = [
    ("/health", "/health"),
    ("/api/v1/feature-flags", "/api/v1/feature-flags"),
    ("/api/v1/merchants?status=pending&limit=10", "/api/v1/merchants"),
    ("/api/v1/merchants/42", "/api/v1/merchants/{merchant_id}"),
    ("/api/v1/admin/dashboard/overview", "/api/v1/admin/dashboard/overview"),
    ("/api/v1/analytics/merchants-by-status", "/api/v1/analytics/merchants-by-status"),
    ("/api/v1/analytics/tickets-per-day?days=7", "/api/v1/analytics/tickets-per-day"),
    ("/api/v1/users/by-email?email=user7@example.com", "/api/v1/users/by-email"),
    ("/api/v1/users/7/preferences", "/api/v1/users/{user_id}/preferences"),
    ("/api/v1/support-tickets/recent?limit=5", "/api/v1/support-tickets/recent"),
]


@pytest.mark.parametrize(("path", "template"), ENDPOINTS)
def test_each_endpoint_answers_and_is_counted_once_under_its_template(api: Api, path: str, template: str) -> None:
    response = api.client.get(path)
    assert response.status_code == 200, response.text
    assert api.value("api_requests_total", method="GET", endpoint=template, status="200") == 1
    assert api.value("api_request_duration_seconds_count", method="GET", endpoint=template) == 1


def test_the_seed_has_the_planned_shape(api: Api) -> None:
    merchants = api.client.get("/api/v1/analytics/merchants-by-status").json()
    assert sum(merchants.values()) == SIZES.merchants
    assert merchants["active"] > merchants["pending"] > merchants["suspended"] > 0
    recent = api.client.get("/api/v1/support-tickets/recent?limit=20").json()
    stamps = [t["created_at"] for t in recent]
    assert len(recent) == 20 and stamps == sorted(stamps, reverse=True)


def test_merchant_reads_are_cached_and_a_write_invalidates_them(api: Api) -> None:
    first = api.client.get("/api/v1/merchants/42").json()
    assert api.client.get("/api/v1/merchants/42").json() == first
    assert api.value("cache_requests_total", cache="merchant_data", result="hit") == 1
    api.client.get("/api/v1/merchants?status=suspended&limit=50")
    api.client.get("/api/v1/admin/dashboard/overview")
    new_status = "suspended" if first["status"] != "suspended" else "active"
    patched = api.client.patch("/api/v1/merchants/42", json={"status": new_status})
    assert patched.status_code == 200 and patched.json()["status"] == new_status
    assert api.client.get("/api/v1/merchants/42").json()["status"] == new_status
    listed = [m["id"] for m in api.client.get("/api/v1/merchants?status=suspended&limit=50").json()["items"]]
    assert (42 in listed) == (new_status == "suspended")
    counts = api.client.get("/api/v1/admin/dashboard/overview").json()["merchants_by_status"]
    assert api.value("cache_requests_total", cache="dashboard_stats", result="miss") == 2
    assert sum(counts.values()) == SIZES.merchants
    api.client.patch("/api/v1/merchants/42", json={"status": first["status"]})


def test_feature_flag_and_preference_writes_invalidate_their_cache(api: Api) -> None:
    flags = {f["name"]: f["enabled"] for f in api.client.get("/api/v1/feature-flags").json()}
    api.client.put("/api/v1/feature-flags/dark_mode", json={"enabled": not flags["dark_mode"]})
    after = {f["name"]: f["enabled"] for f in api.client.get("/api/v1/feature-flags").json()}
    assert after["dark_mode"] is (not flags["dark_mode"])
    api.client.put("/api/v1/feature-flags/dark_mode", json={"enabled": flags["dark_mode"]})
    api.client.get("/api/v1/users/9/preferences")
    api.client.put("/api/v1/users/9/preferences", json={"preferences": {"theme": "solarized"}})
    assert api.client.get("/api/v1/users/9/preferences").json()["preferences"] == {"theme": "solarized"}


def test_bad_input_gets_a_4xx_naming_the_field(api: Api) -> None:
    assert api.client.get("/api/v1/merchants?status=bogus").status_code == 422
    assert api.client.get("/api/v1/merchants?limit=100000").status_code == 422
    assert api.client.get("/api/v1/merchants/999999999").status_code == 404
    r = api.client.patch("/api/v1/merchants/1", json={"status": "closed"})
    assert r.status_code == 422 and "status" in r.text
    assert api.client.put("/api/v1/feature-flags/nope", json={"enabled": True}).status_code == 404


def test_with_redis_stopped_every_endpoint_answers_200_and_cache_errors_are_counted(
    api: Api, redis_server: RedisServer
) -> None:
    redis_server.stop()
    for path, _ in ENDPOINTS:
        response = api.client.get(path)
        assert response.status_code == 200, (path, response.text)
    assert api.client.get("/health").json()["cache"] == "unavailable"
    errors = sum(
        api.value("cache_requests_total", cache=c, result="error")
        for c in ("feature_flags", "merchant_data", "dashboard_stats", "user_preferences")
    )
    assert errors == 7  # the seven cached endpoints above
    patched = api.client.patch("/api/v1/merchants/5", json={"name": "Renamed while Redis is down"})
    assert patched.status_code == 200


def test_query_durations_and_pool_size_are_exported(api: Api) -> None:
    api.client.get("/api/v1/merchants/7")
    api.client.get("/api/v1/users/by-email?email=user3@example.com")
    assert api.value("db_query_duration_seconds_count", operation="merchant_by_id") == 1
    assert api.value("db_query_duration_seconds_count", operation="user_by_email") == 1
    assert api.value("db_pool_size_connections") == 5
    assert api.value("db_pool_checked_out_connections") == 0


HOT_QUERIES = {
    # operation -> (request that issues it, index it must use)
    "user_by_email": ("/api/v1/users/by-email?email=user1234@example.com", "ix_users_email"),
    "merchants_list": ("/api/v1/merchants?status=pending&limit=50", "ix_merchants_status"),
    "recent_tickets": ("/api/v1/support-tickets/recent?limit=50", "ix_support_tickets_created_at"),
    "merchant_by_id": ("/api/v1/merchants/77", "merchants_pkey"),
}


@pytest.mark.parametrize("operation", sorted(HOT_QUERIES))
def test_explain_of_each_hot_query_uses_the_intended_index(api: Api, seeded_url: str, operation: str) -> None:
    path, index = HOT_QUERIES[operation]
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if context is not None and context.execution_options.get("operation") == operation:
            captured.append((statement, parameters))

    event.listen(api.app.state.engine, "before_cursor_execute", capture)
    try:
        assert api.client.get(path).status_code == 200
    finally:
        event.remove(api.app.state.engine, "before_cursor_execute", capture)
    assert captured, f"{path} issued no {operation} query"
    statement, parameters = captured[0]
    engine = create_engine(seeded_url)
    with engine.connect() as conn:
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
    engine.dispose()
    assert f"using {index}" in plan.lower() or f"on {index}" in plan.lower(), plan
    assert "Seq Scan" not in plan, plan


def test_metrics_from_several_worker_processes_are_summed(seeded_url: str, redis_server: RedisServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": seeded_url,
        "REDIS_URL": redis_server.url,
        "DB_POOL_SIZE": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=5) as client:
            for _ in range(40):  # new connections: the kernel spreads them over both workers
                assert httpx.get(f"{base}/api/v1/feature-flags", timeout=5).status_code == 200
            body = client.get("/metrics").text
        pids = {p.name.split("_")[-1] for p in tmp_path.glob("*.db")}
        assert len(pids) >= 2, f"expected metric files from 2 workers, got {sorted(p.name for p in tmp_path.glob('*'))}"
        m = re.search(r'api_requests_total\{endpoint="/api/v1/feature-flags",method="GET",status="200"\} (\S+)', body)
        assert m and float(m.group(1)) == 40, body[:2000]
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_more_requests_in_flight_than_threads_and_connections_do_not_stall_the_api(seeded_url: str) -> None:
    """With a 2-connection pool and 150 requests in flight (more than the 40 worker threads plus
    the pool), every request still completes: connections go back before FastAPI serialises."""
    import asyncio

    port = free_port()
    env = {**os.environ, "DATABASE_URL": seeded_url, "CACHE_ENABLED": "false",
           "DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
                responses = await asyncio.gather(
                    *(client.get(f"/api/v1/users/by-email?email=user{i + 1}@example.com") for i in range(150))
                )
                return [r.status_code for r in responses]

        statuses = asyncio.run(burst())
        assert statuses == [200] * 150
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert "db_pool_checkout_timeouts_total 0.0" in metrics
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
