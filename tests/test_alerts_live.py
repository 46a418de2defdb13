"""The alert rules, live: real processes, real faults, every alert expression evaluated by Prometheus.

What runs (nothing mocked): a PostgreSQL of this test's own (seeded small), the ``redis_server``
fixture's Redis, the Debian ``prometheus-redis-exporter`` in front of it, the reference API
(``python -m service serve``) and the Debian ``prometheus`` on the config perfstack renders with
the generated rule files. A background thread sends ~40 requests/s to a cache-friendly mix.

Phases (each polls with a deadline; evaluation and scrapes run every second). The rules' windows
work on seconds of data because ``rate()`` uses the samples that exist: ratios come out right at
once, but an absolute rate is the increase divided by the whole window, so the request-rate guards
(``> 0.5`` req/s) need 150 requests in a 5m window and 1800 in a 1h one.

1. healthy: every alert ``expr`` of the rendered rule files returns no series (Watchdog aside);
2. Redis stopped: RedisDown and CacheHitRateLow return series; Redis comes back;
3. slow query + slow endpoint: ACCESS EXCLUSIVE locks on ``merchants`` while the load reads
   merchants that are not cached: ApiHighLatencyP95, DbSlowQueries and DbQueryLatencyHigh;
4. 5xx burst: PostgreSQL stopped, uncached endpoints answer 500: ApiHighErrorRate and the
   critical (page) ApiAvailabilityBudgetBurn.

The 5xx burst runs last (nothing comes back from it), Redis before the slow phase (after Redis
returns, the hit ratio stays low for the rest of the window, which only CacheHitRateLow reads).
Before each fault the expressions it should trigger are checked quiet, so a phase cannot pass on
what an earlier one left behind. Only the expressions are checked, not the alerts' ``for:``.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from services import (
    PostgresServer,
    PromClient,
    RedisServer,
    free_port,
    start_process,
    stop_process,
    wait_until,
)

from perfstack import configs
from perfstack.settings import load
from service.config import Config
from service.db import make_engine, migrate
from service.seed import Sizes, seed

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[1]
REDIS_EXPORTER = "/usr/bin/prometheus-redis-exporter"
SIZES = Sizes(users=5_000, merchants=500, tickets=20_000)
CACHED_MERCHANTS = 20  # the load reads merchants 1..20 over and over: after the first read, hits
EMAILS = [f"user{n}@example.com" for n in (1, 42, 777, 1234, 4999)]
RATE = 40.0  # requests per second of the background load


# --- processes -------------------------------------------------------------------------------


# --- Prometheus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    alert: str
    severity: str
    expr: str
    file: str

    def __str__(self) -> str:
        return f"{self.alert} ({self.severity}, {self.file})"


def alert_rules(files: dict[str, configs.File]) -> list[Rule]:
    """Every alerting rule of the rendered rule files, in file order."""
    rules = []
    for key, f in files.items():
        if not key.startswith("prometheus/rules/"):
            continue
        for group in yaml.safe_load(f.content)["groups"]:
            for r in group["rules"]:
                if "alert" in r:
                    rules.append(Rule(r["alert"], r.get("labels", {}).get("severity", ""), r["expr"], f.path))
    return rules


def pick(rules: list[Rule], alert: str, severity: str | None = None) -> Rule:
    found = [r for r in rules if r.alert == alert and severity in (None, r.severity)]
    assert len(found) == 1, f"expected one {alert} rule (severity {severity}), found {found}"
    return found[0]


def write_prometheus_config(
    files: dict[str, configs.File], folder: Path, prom_port: int, exporter_port: int, api_port: int
) -> Path:
    """The render's prometheus/ folder, its built-in jobs re-pointed at what runs here."""
    for key, f in files.items():
        if key.startswith("prometheus/"):
            path = folder / f.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f.content)
    config_path = folder / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    targets = {"prometheus": f"127.0.0.1:{prom_port}", "redis": f"127.0.0.1:{exporter_port}"}
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name in ("alertmanager", "grafana"):
            continue  # nothing runs them here: they would only add up == 0 (TargetDown) series
        if name in targets:
            job["static_configs"] = [{"targets": [targets[name]]}]
        else:
            assert name == "api" and job["static_configs"][0]["targets"] == [f"127.0.0.1:{api_port}"], job
        jobs.append(job)
    config["scrape_configs"] = jobs
    # No Alertmanager runs here either; the test reads expressions, not notifications.
    config.pop("alerting", None)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


class Prom(PromClient):
    def expect_series(self, rule: Rule, fault: str, since: float, timeout: float, diagnostics: list[str]) -> float:
        """Poll ``rule.expr`` until it returns series, at most ``timeout`` s after the fault began
        (``since``, a monotonic time); the seconds from the fault to the first series."""
        deadline = since + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(rule.expr)
            if result:
                took = time.monotonic() - since
                found = [(r["metric"], r["value"][1]) for r in result]
                print(f"    {rule} returned series {took:.1f}s after the fault: {found}")
                return took
            time.sleep(0.5)
        raise AssertionError(
            f"{rule} returned no series within {timeout:.0f}s of the fault {fault!r}; expr:\n{rule.expr}\n"
            f"related series now:\n{self.show(diagnostics)}"
        )

    def assert_quiet(self, rules: list[Rule], before: str) -> None:
        loud = {str(r): self.query(r.expr) for r in rules}
        loud = {k: v for k, v in loud.items() if v}
        assert not loud, f"already returning series before {before}: {loud}"


# --- load --------------------------------------------------------------------------------------


class Load:
    """Open-loop load: RATE requests/s whatever the answers take (a slow endpoint must not slow the
    load down), at most ``max_in_flight`` at once; stops by itself after ``max_seconds``."""

    def __init__(self, base: str, rate: float = RATE, max_seconds: float = 180.0, max_in_flight: int = 48) -> None:
        self.base, self.rate, self.max_seconds, self.max_in_flight = base, rate, max_seconds, max_in_flight
        self.phase = "healthy"
        self.uncached_share = 0.0  # share of requests reading a merchant not read before
        self.results: Counter[tuple[str, str]] = Counter()
        self._rng = random.Random(7)
        self._fresh = itertools.count(CACHED_MERCHANTS + 1)
        self._stop = threading.Event()
        self.in_flight = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=base, timeout=5, limits=httpx.Limits(max_connections=max_in_flight + 4))
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="load")
        self._thread = threading.Thread(target=self._run, name="load-dispatcher", daemon=True)

    def path(self) -> str:
        r = self._rng.random()
        if r < self.uncached_share:
            return f"/api/v1/merchants/{next(self._fresh)}"
        r = self._rng.random()
        if r < 0.3:
            return "/api/v1/feature-flags"
        if r < 0.65:
            return f"/api/v1/merchants/{self._rng.randint(1, CACHED_MERCHANTS)}"
        if r < 0.8:
            return "/api/v1/admin/dashboard/overview"
        return f"/api/v1/users/by-email?email={self._rng.choice(EMAILS)}"  # never cached

    def _one(self, path: str, phase: str) -> None:
        outcome = "unknown"
        try:
            outcome = str(self._client.get(path).status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        finally:
            with self._lock:
                self.in_flight -= 1
                self.results[(phase, outcome)] += 1

    def _run(self) -> None:
        begin = time.monotonic()
        for n in itertools.count():
            if self._stop.is_set() or time.monotonic() - begin > self.max_seconds:
                return
            with self._lock:
                free = self.in_flight < self.max_in_flight  # else skip this slot: the API is saturated
                if free:
                    self.in_flight += 1
                else:
                    self.results[(self.phase, "skipped")] += 1
            if free:
                self._pool.submit(self._one, self.path(), self.phase)
            pause = begin + (n + 1) / self.rate - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def summary(self) -> dict[str, dict[str, int]]:
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (phase, outcome), n in sorted(self.results.items()):
                out.setdefault(phase, {})[outcome] = n
            return out


@contextmanager
def merchants_locked(dsn: str, hold: float, gap: float, max_seconds: float) -> Iterator[None]:
    """A slow query on demand: ACCESS EXCLUSIVE locks on ``merchants``, ``hold`` seconds each,
    ``gap`` seconds apart, from a connection of its own, for at most ``max_seconds``."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                end = time.monotonic() + max_seconds
                while not done.is_set() and time.monotonic() < end:
                    with conn.transaction():
                        conn.execute("LOCK TABLE merchants IN ACCESS EXCLUSIVE MODE")
                        done.wait(hold)
                    done.wait(gap)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="merchants-lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(hold + 10)
    assert not errors, f"the lock holder failed: {errors}"


# --- the test ----------------------------------------------------------------------------------


def test_each_fault_makes_its_alert_expressions_return_series(redis_server: RedisServer, tmp_path: Path) -> None:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert prometheus and promtool, "prometheus/promtool not found (apt-get install prometheus)"
    assert Path(REDIS_EXPORTER).is_file(), "apt-get install prometheus-redis-exporter"
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: tmp_path / f"{name}.log" for name in ("api", "exporter", "prometheus")}
    pg = PostgresServer()  # its own: stopping it for the 5xx burst disturbs no other test
    load_: Load | None = None
    prom: Prom | None = None
    try:
        pg.start()
        db_url = pg.create_database("perfstack")
        migrate(db_url)
        engine = make_engine(Config(database_url=db_url, pool_size=1, max_overflow=0))
        seed(engine, SIZES)
        engine.dispose()

        api_port, exporter_port, prom_port = free_port(), free_port(), free_port()
        env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_server.url, "DB_POOL_SIZE": "20"}
        procs["api"] = start_process(
            [sys.executable, "-m", "service", "serve", "--port", str(api_port)], logs["api"], env
        )
        exporter_env = {**os.environ, "REDIS_ADDR": f"redis://127.0.0.1:{redis_server.port}"}
        procs["exporter"] = start_process(
            [REDIS_EXPORTER, f"--web.listen-address=127.0.0.1:{exporter_port}", "--connection-timeout=500ms"],
            logs["exporter"],
            exporter_env,
        )

        settings = load(
            "dev",
            {
                "prometheus": {"scrapeInterval": "1s", "scrapeTimeout": "1s", "evaluationInterval": "1s"},
                "targets": [{"address": f"127.0.0.1:{api_port}"}],
            },
        )
        files = configs.render(settings, configs.load_content(ROOT), configs.placeholder_secrets(settings))
        rules = alert_rules(files)
        assert len(rules) >= 15, [str(r) for r in rules]
        config = write_prometheus_config(files, tmp_path / "prometheus", prom_port, exporter_port, api_port)
        check = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, f"promtool check config failed:\n{check.stdout}{check.stderr}"

        procs["prometheus"] = start_process(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            logs["prometheus"],
        )
        api = f"http://127.0.0.1:{api_port}"
        wait_until(lambda: httpx.get(f"{api}/health", timeout=1).status_code == 200, 60, "the API", logs["api"])
        wait_until(
            lambda: "redis_up 1" in httpx.get(f"http://127.0.0.1:{exporter_port}/metrics", timeout=1).text,
            30,
            "redis_exporter to reach Redis",
            logs["exporter"],
        )
        prom = Prom(f"http://127.0.0.1:{prom_port}")
        wait_until(lambda: httpx.get(f"{prom.url}/-/ready", timeout=1).status_code == 200, 30, "Prometheus ready")
        timings["startup"] = time.monotonic() - t0

        # --- 1. healthy ------------------------------------------------------------------------
        t = time.monotonic()
        load_ = Load(api)
        load_.start()
        # Data flowing through every job and recording rule the alerts read.
        warm = [
            'up{job=~"api|redis|prometheus"}',
            'job:api_requests:rate5m{job="api"}',
            'job:cache_hits:ratio_rate5m{job="api"}',
            'job:db_queries:rate5m{job="api"}',
        ]
        try:
            wait_until(
                lambda: (
                    prom.value(f"count({warm[0]} == 1)") == 3
                    and (prom.value(warm[1]) or 0) > 1  # rate() over 5m: increase / 300s
                    and prom.value(warm[2]) is not None
                    and prom.value(warm[3]) is not None
                ),
                40,
                "scrapes and recording rules under load",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{prom.show(warm)}\nload: {load_.summary()}") from None
        loud: dict[str, list[Any]] = {}
        evaluations = 0
        while True:
            for r in rules:
                result = prom.query(r.expr)
                if result and r.alert != "Watchdog":
                    loud.setdefault(str(r), []).append([(s["metric"], s["value"][1]) for s in result])
            evaluations += 1
            if time.monotonic() - t >= 20 and evaluations >= 3:
                break
            time.sleep(2)
        watchdog = pick(rules, "Watchdog")
        assert prom.query(watchdog.expr), "Watchdog's vector(1) returned nothing"
        hit_ratio = prom.value('job:cache_hits:ratio_rate5m{job="api"}')
        # rate(x[5m]) is the increase over the samples that exist divided by 300 s, so on seconds
        # of data the recorded rate is a fraction of the real one (the guards compare that).
        rps = prom.value('job:api_requests:rate5m{job="api"}')
        real = prom.value('sum(rate(api_requests_total{job="api"}[10s]))')
        print(
            f"\n  healthy: {real:.1f} req/s (job:api_requests:rate5m {rps:.1f}), cache hit ratio {hit_ratio:.3f}, "
            f"{evaluations} rounds of {len(rules)} alert exprs; job:db_slow_queries:rate5m "
            f"{prom.value('job:db_slow_queries:rate5m')}"
        )
        if loud:
            print(f"  returned series under healthy load: {loud}")
        assert not loud, "alert expressions returned series under healthy load:\n" + "\n".join(
            f"  {name}: {found}" for name, found in loud.items()
        )
        assert hit_ratio is not None and hit_ratio > 0.8, f"healthy cache hit ratio {hit_ratio}"
        assert rps is not None and rps > 0.5, f"healthy job:api_requests:rate5m {rps}: below the 0.5 req/s guard"
        timings["1 healthy"] = time.monotonic() - t

        # --- 2. Redis stopped ------------------------------------------------------------------
        t = time.monotonic()
        load_.phase = "redis-down"
        redis_down, hit_rate_low = pick(rules, "RedisDown"), pick(rules, "CacheHitRateLow")
        redis_server.stop()
        fault, since = "Redis stopped", time.monotonic()
        prom.expect_series(redis_down, fault, since, 20, ["redis_up", 'up{job="redis"}'])
        prom.expect_series(
            hit_rate_low,
            fault,
            since,
            40,
            ["job:cache_hits:ratio_rate5m", "sum by (job) (job_cache:cache_requests:rate5m)", "cache_requests_total"],
        )
        redis_server.start()
        wait_until(lambda: prom.value("redis_up") == 1, 20, "redis_up == 1 after Redis came back")
        timings["2 redis stopped"] = time.monotonic() - t

        # --- 3. slow query, slow endpoint --------------------------------------------------------
        t = time.monotonic()
        slow = [pick(rules, "ApiHighLatencyP95"), pick(rules, "DbSlowQueries"), pick(rules, "DbQueryLatencyHigh")]
        load_.phase = "slow"
        prom.assert_quiet(slow, "the slow phase")
        fault = "ACCESS EXCLUSIVE locks on merchants, uncached merchant reads"
        diagnostics = [
            'job_quantile:api_request_duration_seconds:histogram_quantile5m{quantile="0.95"}',
            "job:api_requests:rate5m",
            "job:db_slow_queries:rate5m",
            "job:db_query_duration_seconds:mean5m",
            'job_quantile:db_query_duration_seconds:histogram_quantile5m{quantile="0.95"}',
            "job:db_queries:rate5m",
        ]
        with merchants_locked(pg.dsn_for("perfstack"), hold=2.0, gap=0.3, max_seconds=30):
            load_.uncached_share = 0.5
            since = time.monotonic()
            try:
                for r in slow:
                    prom.expect_series(r, fault, since, 40, diagnostics)
            finally:
                load_.uncached_share = 0.0
        # Let the requests that queued behind the locks finish before the next fault.
        load_.phase = "recovery"
        wait_until(lambda: load_.in_flight <= 4, 20, "the requests held up by the locks to finish")
        timings["3 slow query"] = time.monotonic() - t

        # --- 4. 5xx burst ----------------------------------------------------------------------
        t = time.monotonic()
        burst = [pick(rules, "ApiHighErrorRate"), pick(rules, "ApiAvailabilityBudgetBurn", "critical")]
        load_.phase = "postgres-down"
        prom.assert_quiet(burst, "the 5xx burst")
        pg.stop()
        fault, since = "PostgreSQL stopped (uncached endpoints answer 500)", time.monotonic()
        diagnostics = [
            "job:api_request_errors:ratio_rate5m",
            "job:api_request_errors:ratio_rate1h",
            "job:api_requests:rate5m",
            "job:api_requests:rate1h",
            'sum by (status) (api_requests_total{job="api"})',
        ]
        # The page rule's guard job:api_requests:rate1h > 0.5 is increase / 3600 s: it needs 1800
        # requests since Prometheus started (about 45 s of this load), hence the longer deadline.
        for r in burst:
            prom.expect_series(r, fault, since, 45, diagnostics)
        codes = load_.summary().get("postgres-down", {})
        assert codes.get("500", 0) > 0, f"the 5xx burst produced no 500s: {codes}"
        timings["4 5xx burst"] = time.monotonic() - t
    finally:
        if load_ is not None:
            load_.stop()
            print(f"  load outcomes by phase: {load_.summary()}")
        if prom is not None:
            prom.close()
        for name in ("prometheus", "exporter", "api"):
            stop_process(procs.get(name))
        pg.stop()
        timings["total"] = time.monotonic() - t0
        print("  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
