"""The load test, end to end: ``perfstack loadtest run --profile smoke`` against the real stack.

What runs (nothing mocked): the session's PostgreSQL (a database of this test's own, seeded
small), the ``redis_server`` fixture's Redis, the reference API (``python -m service serve``),
the Debian ``prometheus`` on the config and rule files perfstack renders (scrapes and rule
evaluation every second, the api job pointed at the API), and the load test itself in a child
process (Locust monkey-patches the process it runs in with gevent; pytest's must stay unpatched).

The ``smoke`` profile is shortened to a 5 s ramp-up and a 20 s plateau. Then:

1. the command exits 0: the gate passed on the client's view and on the server's (Prometheus);
2. report.md, report.json, latency.png and throughput.png are written, and report.json holds
   both views, the service's resources and a row per second;
3. every dashboard query (dashboards/generated/*.json, Grafana variables as "All") returns data,
   except the explicit exclusions below;
4. no alert expression (alerts/generated/*.yml) returns a series, except Watchdog's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry
from services import (
    PostgresServer,
    RedisServer,
    free_port,
    log_tail,
    prom_query,
    start_process,
    stop_process,
    wait_until,
)

from perfstack import configs, slo
from perfstack.settings import load
from perfstack.telemetry.metrics import Metrics
from service.config import Config
from service.db import make_engine, migrate
from service.seed import Sizes, seed

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[1]
SIZES = Sizes(users=5_000, merchants=500, tickets=20_000)
RAMP_UP, PLATEAU = 5, 20  # seconds: the smoke profile (5 + 40) shortened to keep the test near a minute

# Grafana's variables as a dashboard showing "All" sends them; $__rate_interval for a 1s scrape.
VARIABLES = {"job": ".+", "endpoint": ".+", "instance": ".+", "__rate_interval": "1m"}

# Panels fed by a scrape job that does not run here, by the job and the metric prefix it exports:
# no redis_exporter, postgres_exporter or Alertmanager is started (test_dashboards_live.py runs
# them), and Grafana has no panel of its own. Their jobs are dropped from the config, so that
# TargetDown stays quiet too.
NOT_RUNNING = {"redis": "redis_", "postgres": "pg_", "alertmanager": "alertmanager_", "grafana": "grafana_"}

# Panels that read only failure series (5xx, cache errors): prometheus_client creates a labelled
# series on its first increment, so a healthy run leaves them empty ("No data", correctly).
FAILURES_ONLY = {
    ("api", "5xx by endpoint and status"),
    ("api", "4xx by endpoint and status"),
    ("api", "Error ratio by endpoint"),
    ("cache", "Cache errors ratio"),
    ("overview", "Availability (30d)"),
    ("overview", "Availability budget remaining"),
    ("overview", "Availability burn rate"),
    ("overview", "Error rate"),
}


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Stack:
    api: str  # http://127.0.0.1:PORT
    prometheus: str
    logs: dict[str, Path]


def write_prometheus_config(folder: Path, api_port: int, prom_port: int) -> Path:
    """The rendered prometheus/ folder with only the jobs that run here (api, prometheus)."""
    settings = load(
        "dev",
        {
            "prometheus": {"scrapeInterval": "1s", "scrapeTimeout": "1s", "evaluationInterval": "1s"},
            "targets": [{"address": f"127.0.0.1:{api_port}"}],
        },
    )
    files = configs.render(settings, configs.load_content(ROOT), configs.placeholder_secrets(settings))
    for key, f in files.items():
        if not key.startswith("prometheus/"):
            continue
        path = folder / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f.content
        if f.path.startswith("rules/"):
            # A group's own interval (slo_budget.rules: 1m) would record only after a minute; on
            # the global 1s it records within seconds. The expressions are unchanged.
            rules = yaml.safe_load(text)
            for group in rules["groups"]:
                group.pop("interval", None)
            text = yaml.safe_dump(rules, sort_keys=False)
        path.write_text(text)
    config_path = folder / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    jobs = [j for j in config["scrape_configs"] if j["job_name"] not in NOT_RUNNING]
    assert {j["job_name"] for j in jobs} == {"api", "prometheus"}, jobs
    for job in jobs:
        if job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{prom_port}"]}]
    config["scrape_configs"] = jobs
    config.pop("alerting", None)  # no Alertmanager here: the test reads expressions, not notifications
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


@contextmanager
def reference_stack(
    postgres: PostgresServer, redis: RedisServer, folder: Path, sizes: Sizes = SIZES, pool_size: int = 10
) -> Iterator[Stack]:
    """A seeded database, the reference API and Prometheus scraping it; all stopped afterwards."""
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus not found (apt-get install prometheus)"
    logs = {name: folder / f"{name}.log" for name in ("api", "prometheus")}
    name = f"loadtest_{uuid.uuid4().hex[:8]}"
    with ExitStack() as cleanup:
        db_url = postgres.create_database(name)
        cleanup.callback(postgres.drop_database, name)
        migrate(db_url)
        engine = make_engine(Config(database_url=db_url, pool_size=1, max_overflow=0), Metrics(CollectorRegistry()))
        seed(engine, sizes)
        engine.dispose()
        api_port, prom_port = free_port(), free_port()
        env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis.url, "DB_POOL_SIZE": str(pool_size)}
        api = start_process([sys.executable, "-m", "service", "serve", "--port", str(api_port)], logs["api"], env)
        cleanup.callback(stop_process, api)
        config = write_prometheus_config(folder / "prometheus", api_port, prom_port)
        prom = start_process(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            logs["prometheus"],
        )
        cleanup.callback(stop_process, prom)
        stack = Stack(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{prom_port}", logs)
        wait_until(lambda: httpx.get(f"{stack.api}/health", timeout=1).status_code == 200, 60, "the API", logs["api"])
        wait_until(
            lambda: httpx.get(f"{stack.prometheus}/-/ready", timeout=1).status_code == 200,
            30,
            "Prometheus ready",
            logs["prometheus"],
        )
        wait_until(
            lambda: prom_query(stack.prometheus, 'up{job="api"} == 1'),
            30,
            "Prometheus to scrape the API",
            logs["prometheus"],
        )
        yield stack


# --- what the dashboards and alerts ask ------------------------------------------------------


def substitute(expr: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in VARIABLES:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return VARIABLES[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)


def dashboard_queries() -> tuple[list[tuple[str, str, str]], list[str]]:
    """(dashboard, panel title, expr) of every panel target to check, and what was excluded (why)."""
    checks, excluded = [], []
    for path in sorted((ROOT / "dashboards" / "generated").glob("*.json")):
        panels = list(json.loads(path.read_text())["panels"])
        while panels:
            panel = panels.pop(0)
            if panel["type"] == "row":
                panels[0:0] = panel.get("panels", [])
                continue
            for target in panel.get("targets", []):
                expr = target["expr"]
                names = set(re.findall(r"[a-zA-Z_:][\w:]*", re.sub(r'"[^"]*"', "", expr)))
                # A recording rule's name carries its source after the level ("instance:redis_...").
                bare = {part for n in names for part in n.split(":")}
                job = next((j for j, prefix in NOT_RUNNING.items() if any(n.startswith(prefix) for n in bare)), None)
                if job is not None:
                    excluded.append(f"{path.stem} / {panel['title']}: job {job} does not run here")
                elif (path.stem, panel["title"]) in FAILURES_ONLY:
                    excluded.append(f"{path.stem} / {panel['title']}: failure series only")
                else:
                    checks.append((path.stem, panel["title"], substitute(expr)))
    return checks, excluded


def alert_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "alerts" / "generated").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [(r["alert"], r["expr"]) for r in group["rules"] if "alert" in r]
    return out


# --- the test ----------------------------------------------------------------------------------


def test_smoke_run_passes_the_gate_on_both_views(
    postgres_server: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    checks, excluded = dashboard_queries()
    titles = {(d, title) for d, title, _ in checks} | {tuple(e.split(":")[0].split(" / ")) for e in excluded}
    assert titles >= FAILURES_ONLY, f"FAILURES_ONLY names panels no dashboard has: {FAILURES_ONLY - titles}"
    alerts = alert_exprs()
    assert any(name == "Watchdog" for name, _ in alerts)
    out = tmp_path / "report"
    with reference_stack(postgres_server, redis_server, tmp_path) as stack:
        startup = time.monotonic() - t0
        cmd = [sys.executable, "-m", "perfstack.loadtest.cli", "run", "--profile", "smoke", "--host", stack.api]
        cmd += ["--ramp-up", str(RAMP_UP), "--duration", str(PLATEAU), "--prometheus", stack.prometheus]
        cmd += ["--out", str(out), "--merchants", str(SIZES.merchants), "--app-users", str(SIZES.users)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RAMP_UP + PLATEAU + 60, cwd=ROOT)
        print(f"\n{proc.stdout}")
        assert proc.returncode == 0, (
            f"loadtest run exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}\n"
            f"API log:\n{log_tail(stack.logs['api'])}"
        )
        # The dashboards and alerts over the same data, right after the run.
        empty = [f"{d} / {title}: {expr}" for d, title, expr in checks if not prom_query(stack.prometheus, expr)]
        firing = [
            f"{name}: {expr}" for name, expr in alerts if name != "Watchdog" and prom_query(stack.prometheus, expr)
        ]
        watchdog = prom_query(stack.prometheus, dict(alerts)["Watchdog"])
    elapsed = time.monotonic() - t0

    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["exit_code"] == 0, report["verdict"]
    (plateau,) = report["stages"]
    client, server = plateau["client"], plateau["server"]
    assert plateau["passed"] and not plateau["breaches"]
    assert client["target_rate"] == pytest.approx(50) and server["target_rate"] == pytest.approx(50)
    assert client["achieved_rate"] >= slo.LOAD_MIN_ACHIEVED * 50
    assert server["achieved_rate"] >= slo.LOAD_MIN_ACHIEVED * 50
    assert client["requests"] >= 0.9 * 50 * (PLATEAU - 1)
    assert server["p95"] is not None and server["p95"] <= slo.LOAD_P95_SECONDS
    assert 0 < client["generator_cpu"] <= slo.LOAD_GENERATOR_CPU_MAX
    # Both views saw the same traffic, within what a 1s scrape and rate() extrapolation allow.
    assert server["requests"] == pytest.approx(client["requests"], rel=0.1)
    used = plateau["resources"]
    assert used["cpu_cores"] and used["cpu_cores"] > 0, used
    assert used["memory_bytes_max"] and used["memory_bytes_max"] > 10 * 2**20, used
    assert used["db_pool_capacity"] == 10 + Config.max_overflow, used
    assert used["cache_hit_ratio"] is not None and 0 < used["cache_hit_ratio"] <= 1, used
    assert len(report["series"]) >= RAMP_UP + PLATEAU
    assert {e["endpoint"] for e in report["endpoints"]} >= {"GET /api/v1/feature-flags", "GET /api/v1/merchants/{id}"}
    assert (out / "report.md").read_text().startswith("# Load test `smoke`: PASS")
    for png in ("latency.png", "throughput.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png

    print(
        f"  smoke: target {client['target_rate']:.1f}/s, achieved client {client['achieved_rate']:.1f}/s "
        f"server {server['achieved_rate']:.1f}/s; client p50/p95/p99 "
        f"{client['p50'] * 1000:.1f}/{client['p95'] * 1000:.1f}/{client['p99'] * 1000:.1f} ms, server p95 "
        f"{server['p95'] * 1000:.1f} ms; errors {client['errors']}/{client['requests']}; generator CPU "
        f"{client['generator_cpu']:.0%}; cache hit ratio {used['cache_hit_ratio']:.1%}"
    )
    print(f"  {len(checks)} dashboard queries checked, {len(excluded)} excluded:")
    for line in sorted(set(excluded)):
        print(f"    {line}")
    print(f"  startup {startup:.1f}s, total {elapsed:.1f}s")
    assert not empty, f"{len(empty)} dashboard queries returned no data:\n" + "\n".join(empty)
    assert not firing, f"{len(firing)} alert expressions return series:\n" + "\n".join(firing)
    assert watchdog, "Watchdog's expression returned nothing: the rules are not evaluated as written"
