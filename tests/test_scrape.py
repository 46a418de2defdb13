"""A real Prometheus, on the config perfstack renders, scraping the reference API under load."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from services import PostgresServer, RedisServer, free_port, prom_query

from perfstack import configs
from perfstack.settings import load
from perfstack.telemetry import contract
from perfstack.telemetry.metrics import Metrics
from service.config import Config
from service.db import make_engine, migrate
from service.seed import Sizes, seed

pytestmark = pytest.mark.tools


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def api_port(postgres_server: PostgresServer, redis_server: RedisServer) -> Iterator[int]:
    name = f"scrape_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    migrate(url)
    engine = make_engine(Config(database_url=url, pool_size=1, max_overflow=0), Metrics(CollectorRegistry()))
    seed(engine, Sizes(users=2_000, merchants=200, tickets=5_000))
    engine.dispose()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_server.url, "DB_POOL_SIZE": "4"}
    proc = start([sys.executable, "-m", "service", "serve", "--port", str(port)], env)
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200, 60, "the API")
        yield port
    finally:
        stop(proc)
        postgres_server.drop_database(name)


def test_prometheus_scrapes_every_contract_metric_with_bounded_labels(api_port: int, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found (apt-get install prometheus)"
    settings = load(
        "dev",
        {
            "prometheus": {"scrapeInterval": "1s", "scrapeTimeout": "1s", "evaluationInterval": "1s"},
            "targets": [{"address": f"127.0.0.1:{api_port}", "labels": {"service": "reference-api"}}],
        },
    )
    files = configs.render(settings, configs.Content(), configs.placeholder_secrets(settings))
    config = tmp_path / "prometheus.yml"
    config.write_text(files["prometheus/prometheus.yml"].content)
    prom_port = free_port()
    prom = f"http://127.0.0.1:{prom_port}"
    proc = start(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
    )
    try:
        wait_until(lambda: httpx.get(f"{prom}/-/ready", timeout=1).status_code == 200, 30, "Prometheus ready")
        base = f"http://127.0.0.1:{api_port}"
        rng = random.Random(3)
        paths = [
            "/api/v1/feature-flags",
            "/api/v1/merchants?status=pending",
            "/api/v1/admin/dashboard/overview",
            "/api/v1/analytics/merchants-by-status",
            "/api/v1/support-tickets/recent",
        ]
        with httpx.Client(base_url=base, timeout=5) as client:
            for i in range(200):
                client.get(paths[i % len(paths)])
                client.get(f"/api/v1/merchants/{rng.randint(1, 200)}")
                client.get(f"/api/v1/users/by-email?email=user{rng.randint(1, 2000)}@example.com")
            for _ in range(300):
                client.get(f"/random/{uuid.uuid4().hex}")
        total = 200 * 3 + 300
        wait_until(
            lambda: float(prom_query(prom, 'sum(api_requests_total{job="api"})')[0]["value"][1]) >= total,
            30,
            "Prometheus to scrape the load",
        )
        for spec in contract.ALL:
            name = spec.series()[0]
            found = prom_query(prom, f'count({{__name__="{name}", job="api", service="reference-api"}})')
            assert found and float(found[0]["value"][1]) > 0, f"{name} not scraped"
        endpoints = {
            r["metric"]["endpoint"] for r in prom_query(prom, 'count by (endpoint) (api_requests_total{job="api"})')
        }
        assert contract.UNMATCHED_ENDPOINT in endpoints
        # 300 random paths added one value; the rest are the templates the load (and health probe) used.
        assert endpoints == {
            "/health",
            "/api/v1/feature-flags",
            "/api/v1/merchants",
            "/api/v1/admin/dashboard/overview",
            "/api/v1/analytics/merchants-by-status",
            "/api/v1/support-tickets/recent",
            "/api/v1/merchants/{merchant_id}",
            "/api/v1/users/by-email",
            contract.UNMATCHED_ENDPOINT,
        }
        operations = {
            r["metric"]["operation"] for r in prom_query(prom, "count by (operation) (db_query_duration_seconds_count)")
        }
        assert {"merchant_by_id", "user_by_email", "recent_tickets"} <= operations
        hits = prom_query(prom, 'sum(cache_requests_total{result="hit"})')
        assert float(hits[0]["value"][1]) > 0
    finally:
        stop(proc)
