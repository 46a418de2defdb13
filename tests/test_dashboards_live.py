"""The dashboards, live: every panel query of every generated dashboard, evaluated by a real Prometheus.

What runs (nothing mocked): a PostgreSQL of this test's own (seeded small), the ``redis_server``
fixture's Redis, the Debian ``prometheus-redis-exporter`` in front of it, the Debian
``prometheus-postgres-exporter`` when installed, the reference API (``python -m service serve``),
the Debian ``prometheus-alertmanager`` on the rendered ``alertmanager.yml`` and the Debian
``prometheus`` on the config and rule files perfstack renders (the dashboards read the recording
rules). Scrapes and rule evaluation run every second; a background thread sends ~30 requests/s
over every GET endpoint and every cache category, plus a few writes.

Phases (each polls with a deadline):

1. healthy: each target ``expr`` of each panel of ``dashboards/generated/*.json`` (Grafana's
   variables substituted as their "All" values, ``$__rate_interval`` as 1m) must return at least
   one series, except panels that only show faults (``faults_only``), panels in
   ``EMPTY_WHILE_HEALTHY`` (below) and panels of an exporter that does not run here;
2. 4xx: requests for unknown ids and invalid parameters; the 4xx panels must return data;
3. Redis stopped: the cache falls back to the database and counts errors; the cache-error panel
   must return data; Redis comes back;
4. 5xx burst (last: nothing comes back from it): PostgreSQL stopped, so uncached endpoints answer
   500; the 5xx and error-ratio panels must return data.

Every panel that returned nothing is collected and reported at once (dashboard, title, expr).

Test-only departures from the rendered config, for a run of seconds: the built-in jobs point at
the local processes (no Grafana runs, so no grafana job), rule groups with their own interval
(slo_budget.rules: 1m) evaluate on the global 1s, and Prometheus re-sends alerts every second
(``--rules.alert.resend-delay``), so an alert sent before Alertmanager was discovered arrives.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from services import PostgresServer, PromClient, RedisServer, free_port, start_process, stop_process, wait_until

from perfstack import configs
from perfstack.dashboards import build
from perfstack.settings import load
from service.config import Config
from service.db import make_engine, migrate
from service.seed import FLAGS, Sizes, seed

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[1]
REDIS_EXPORTER = "/usr/bin/prometheus-redis-exporter"
POSTGRES_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
SIZES = Sizes(users=5_000, merchants=500, tickets=20_000)
RATE = 30.0  # requests per second of the background load
HEALTHY_SECONDS = 20.0  # load before the healthy evaluation
DB_NAME = "perfstack"

# Grafana's variables as a Grafana showing "All" would send them (allValue ".+"), and the
# $__rate_interval Grafana computes for a 1s scrape interval at this zoom (at least 4 scrapes).
VARIABLES = {"job": ".+", "endpoint": ".+", "instance": ".+", "__rate_interval": "1m"}

# Panels that read only 5xx or cache-error series, which do not exist until something fails
# (prometheus_client creates a labelled series on its first increment): while healthy they show
# "No data", not 0, although they are not marked faults_only. Checked under the fault named here
# instead; see the final report. Keyed by (dashboard file stem, panel title).
EMPTY_WHILE_HEALTHY: dict[tuple[str, str], str] = {
    # None since the error and cache-share rules fall back to 0 when nothing failed yet; kept
    # for panels that can only show data under a fault and are not marked faults-only.
}

# Shown when data does not get through scrapes, rules and Alertmanager in time.
PIPELINE = [
    "job:api_requests:rate5m",
    "ALERTS",
    "prometheus_notifications_alertmanagers_discovered",
    "prometheus_notifications_sent_total",
    "prometheus_notifications_dropped_total",
    "alertmanager_alerts_received_total",
]

# Optional exporters: Panel.needs -> (scrape job, prefix of the metric names it provides).
OPTIONAL = {"postgres_exporter": ("postgres", "pg_")}


# --- processes ---------------------------------------------------------------------------------


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=1).status_code == 200


def metrics_if(url: str, line: str) -> str | None:
    """The exposition text at ``url`` if it has ``line``."""
    text = httpx.get(url, timeout=2).text
    return text if line in text.splitlines() else None


def write_prometheus_config(
    files: dict[str, configs.File], folder: Path, targets: dict[str, str], alertmanager: str
) -> Path:
    """The render's prometheus/ folder, its built-in jobs re-pointed at what runs here."""
    for key, f in files.items():
        if not key.startswith("prometheus/"):
            continue
        path = folder / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f.content
        if f.path.startswith("rules/"):
            # Groups with their own interval (slo_budget.rules: 1m) would first evaluate up to a
            # minute after start; on the global 1s they record within seconds. Exprs unchanged.
            rules = yaml.safe_load(text)
            for group in rules["groups"]:
                group.pop("interval", None)
            text = yaml.safe_dump(rules, sort_keys=False)
        path.write_text(text)
    config_path = folder / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name == "grafana":
            continue  # no Grafana runs here (the queries go straight to Prometheus): up == 0 only
        if name in targets:
            job["static_configs"] = [{"targets": [targets[name]]}]
        else:
            assert name == "api", f"unexpected job {name}: {job}"
        jobs.append(job)
    config["scrape_configs"] = jobs
    if "postgres" in targets and not any(j["job_name"] == "postgres" for j in jobs):
        # dev renders no postgres job (no DSN configured); the same job as a stack with one.
        jobs.append({"job_name": "postgres", "static_configs": [{"targets": [targets["postgres"]]}]})
    config["alerting"] = {"alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": [alertmanager]}]}]}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


# --- panels ------------------------------------------------------------------------------------


@dataclass
class Check:
    dashboard: str  # "api"
    title: str
    panel_id: int
    ref: str  # the target's refId
    raw: str  # the expr as in the JSON
    expr: str  # variables substituted
    faults_only: bool
    needs: str | None

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.title} [{self.ref}]"


def substitute(expr: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in VARIABLES:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return VARIABLES[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)


def panel_checks() -> list[Check]:
    """Every target of every non-row panel of every generated dashboard, with its metadata."""
    built = {path.stem: b for path, b in build.build(ROOT).items()}
    checks = []
    for path in sorted((ROOT / "dashboards" / "generated").glob("*.json")):
        meta = built[path.stem].panels
        stack = list(json.loads(path.read_text())["panels"])
        while stack:
            panel = stack.pop(0)
            if panel["type"] == "row":
                stack[0:0] = panel.get("panels", [])  # a collapsed row holds its panels
                continue
            style = meta.get(panel["title"])
            assert style is not None, f"{path.name}: panel {panel['title']!r} is not in its source (stale JSON?)"
            assert panel.get("targets"), f"{path.name}: panel {panel['title']!r} has no query"
            for t in panel["targets"]:
                checks.append(
                    Check(
                        path.stem,
                        panel["title"],
                        panel["id"],
                        t["refId"],
                        t["expr"],
                        substitute(t["expr"]),
                        style.faults_only,
                        style.needs,
                    )
                )
    return checks


def fault_of(check: Check) -> str:
    """The fault under which a faults-only panel shows data, from what its query reads."""
    if 'status=~"4..' in check.raw:
        return "4xx"
    if 'status=~"5..' in check.raw:
        return "5xx"
    raise AssertionError(f"{check}: faults_only, but this test knows no fault for {check.raw!r}: add one")


class Prom(PromClient):
    def until_data(self, checks: list[Check], timeout: float) -> dict[str, list[dict[str, Any]]]:
        """Poll the checks' exprs until each returns series or ``timeout``; the last results."""
        results: dict[str, list[dict[str, Any]]] = {}
        pending = {c.expr for c in checks}
        deadline = time.monotonic() + timeout
        while True:
            for expr in sorted(pending):
                try:
                    results[expr] = self.query(expr)
                except AssertionError as exc:  # a query Prometheus rejects: report it as such
                    results[expr] = []
                    results.setdefault("__errors__", []).append({"expr": expr, "error": str(exc)})
                    pending.discard(expr)
                    continue
                if results[expr]:
                    pending.discard(expr)
            if not pending or time.monotonic() > deadline:
                return results
            time.sleep(1.0)


def related(expr: str) -> list[str]:
    """Diagnostics for an empty panel: does each metric it reads exist at all?"""
    keywords = {"by", "without", "on", "ignoring", "and", "or", "unless", "bool", "offset", "group_left", "group_right"}
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)|\{[^}]*\}|\[[^\]]*\]", " ", expr)  # labels, ranges
    names = sorted(set(re.findall(r"\b[a-zA-Z_:][\w:]*\b(?!\s*\()", bare)) - keywords)
    return [f'count by (__name__) ({{__name__="{n}"}})' for n in names]


# --- load --------------------------------------------------------------------------------------


class Load:
    """Open-loop load: RATE requests/s however long the answers take, at most ``max_in_flight``
    at once; stops by itself after ``max_seconds``. The mode (``switch``) picks the mix; outcomes
    are counted by the mode their request was sent in."""

    def __init__(self, base: str, rate: float = RATE, max_seconds: float = 150.0, max_in_flight: int = 32) -> None:
        self.rate, self.max_seconds, self.max_in_flight = rate, max_seconds, max_in_flight
        self.mode = "healthy"
        self.results: Counter[tuple[str, str, str]] = Counter()  # (mode, endpoint kind, status)
        self._rng = random.Random(11)
        self._stop = threading.Event()
        self.in_flight = 0
        self._pending: Counter[str] = Counter()  # requests in flight by the mode they were sent in
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=base, timeout=5, limits=httpx.Limits(max_connections=max_in_flight + 4))
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="load")
        self._thread = threading.Thread(target=self._run, name="load-dispatcher", daemon=True)

    def request(self, mode: str) -> tuple[str, str, str, Any]:
        """(kind, method, path, json body) of the next request."""
        rng = self._rng
        if mode == "4xx" and rng.random() < 0.5:
            return rng.choice(
                [
                    ("merchant 404", "GET", "/api/v1/merchants/999999999", None),
                    ("preferences 404", "GET", "/api/v1/users/999999999/preferences", None),
                    ("email 404", "GET", "/api/v1/users/by-email?email=nobody@example.com", None),
                    ("limit 422", "GET", "/api/v1/merchants?limit=0", None),
                    ("days 422", "GET", "/api/v1/analytics/tickets-per-day?days=0", None),
                ]
            )
        r = rng.random()
        if r < 0.18:
            return "feature flags", "GET", "/api/v1/feature-flags", None
        if r < 0.28:
            status = rng.choice(["active", "pending", "suspended"])
            return "merchants list", "GET", f"/api/v1/merchants?status={status}&limit=20", None
        if r < 0.46:
            return "merchant", "GET", f"/api/v1/merchants/{rng.randint(1, 40)}", None
        if r < 0.54:
            return "overview", "GET", "/api/v1/admin/dashboard/overview", None
        if r < 0.60:
            return "by status", "GET", "/api/v1/analytics/merchants-by-status", None
        if r < 0.66:
            return "per day", "GET", f"/api/v1/analytics/tickets-per-day?days={rng.choice([7, 30])}", None
        if r < 0.76:
            return (
                "by email",
                "GET",
                f"/api/v1/users/by-email?email=user{rng.randint(1, SIZES.users)}@example.com",
                None,
            )
        if r < 0.88:
            return "preferences", "GET", f"/api/v1/users/{rng.randint(1, 60)}/preferences", None
        if r < 0.98:
            return "recent tickets", "GET", "/api/v1/support-tickets/recent?limit=20", None
        # A few writes (each invalidates cache keys): every endpoint of the API shows up.
        w = rng.random()
        if w < 0.4:
            body = {"preferences": {"theme": rng.choice(["light", "dark"])}}
            return "set preferences", "PUT", f"/api/v1/users/{rng.randint(1, 60)}/preferences", body
        if w < 0.7:
            name, _, _ = rng.choice(FLAGS)
            return "set flag", "PUT", f"/api/v1/feature-flags/{name}", {"enabled": rng.random() < 0.5}
        n = rng.randint(1, 40)
        return "patch merchant", "PATCH", f"/api/v1/merchants/{n}", {"name": f"Merchant {n}"}

    def _one(self, mode: str, kind: str, method: str, path: str, body: Any) -> None:
        try:
            outcome = str(self._client.request(method, path, json=body).status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        with self._lock:
            self.in_flight -= 1
            self._pending[mode] -= 1
            self.results[(mode, kind, outcome)] += 1

    def _run(self) -> None:
        begin = time.monotonic()
        for n in itertools.count():
            if self._stop.is_set() or time.monotonic() - begin > self.max_seconds:
                return
            with self._lock:
                mode = self.mode
                free = self.in_flight < self.max_in_flight  # else skip this slot: the API is saturated
                if free:
                    self.in_flight += 1
                    self._pending[mode] += 1
                else:
                    self.results[(mode, "-", "skipped")] += 1
            if free:
                self._pool.submit(self._one, mode, *self.request(mode))
            pause = begin + (n + 1) / self.rate - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)

    def start(self) -> None:
        self._thread.start()

    def switch(self, mode: str, timeout: float = 10.0) -> None:
        """Send the next requests in ``mode``, once those of earlier modes have answered (so the
        next fault meets none of them, and each mode's outcomes are its own)."""
        with self._lock:
            self.mode = mode

        def drained() -> bool:
            with self._lock:
                return all(n == 0 for m, n in self._pending.items() if m != mode)

        wait_until(drained, timeout, f"the requests sent before {mode!r} to answer")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def statuses(self, mode: str) -> dict[str, int]:
        with self._lock:
            out: Counter[str] = Counter()
            for (m, _, outcome), n in self.results.items():
                if m == mode:
                    out[outcome] += n
            return dict(sorted(out.items()))

    def failed(self) -> dict[str, int]:
        """Non-2xx outcomes by mode, request kind and outcome."""
        with self._lock:
            return {f"{m} {k} {o}": n for (m, k, o), n in sorted(self.results.items()) if not o.startswith("2")}

    def summary(self) -> dict[str, dict[str, int]]:
        with self._lock:
            modes = sorted({m for m, _, _ in self.results})
        return {m: self.statuses(m) for m in modes}


# --- the test ----------------------------------------------------------------------------------


def test_every_dashboard_panel_returns_data(redis_server: RedisServer, tmp_path: Path) -> None:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert prometheus and promtool, "prometheus/promtool not found (apt-get install prometheus)"
    assert Path(REDIS_EXPORTER).is_file(), "apt-get install prometheus-redis-exporter"
    assert Path(ALERTMANAGER).is_file(), "apt-get install prometheus-alertmanager"
    checks = panel_checks()
    panels = {(c.dashboard, c.title) for c in checks}
    unknown = set(EMPTY_WHILE_HEALTHY) - panels
    assert not unknown, f"EMPTY_WHILE_HEALTHY names panels no dashboard has: {sorted(unknown)}"

    timings: dict[str, float] = {}
    t0 = time.monotonic()
    names = ("api", "redis-exporter", "postgres-exporter", "alertmanager", "prometheus")
    logs = {name: tmp_path / f"{name}.log" for name in names}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    pg = PostgresServer()  # its own: stopping it for the 5xx burst disturbs no other test
    load_: Load | None = None
    failures: list[str] = []  # every panel target that returned nothing when it should have
    skipped: list[str] = []
    notes: list[str] = []
    try:
        pg.start()
        db_url = pg.create_database(DB_NAME)
        migrate(db_url)
        engine = make_engine(Config(database_url=db_url, pool_size=1, max_overflow=0))
        seed(engine, SIZES)
        engine.dispose()

        ports = {name: free_port() for name in names}
        env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_server.url, "DB_POOL_SIZE": "10"}
        procs["api"] = start_process(
            [sys.executable, "-m", "service", "serve", "--port", str(ports["api"])], logs["api"], env
        )
        procs["redis-exporter"] = start_process(
            [REDIS_EXPORTER, f"--web.listen-address=127.0.0.1:{ports['redis-exporter']}", "--connection-timeout=500ms"],
            logs["redis-exporter"],
            {**os.environ, "REDIS_ADDR": f"redis://127.0.0.1:{redis_server.port}"},
        )
        postgres_exporter = Path(POSTGRES_EXPORTER).is_file()
        if postgres_exporter:
            procs["postgres-exporter"] = start_process(
                # 0.11 (Debian 12) has no --collector.stat_statements: pg_stat_statements_* are
                # not exported (the panels reading them are skipped, see below).
                [POSTGRES_EXPORTER, f"--web.listen-address=127.0.0.1:{ports['postgres-exporter']}"],
                logs["postgres-exporter"],
                {
                    **os.environ,
                    "DATA_SOURCE_NAME": f"postgresql://postgres@127.0.0.1:{pg.port}/{DB_NAME}?sslmode=disable",
                },
            )
        else:
            print(f"\n  {POSTGRES_EXPORTER} not installed (apt-get install prometheus-postgres-exporter)")

        settings = load(
            "dev",
            {
                "prometheus": {"scrapeInterval": "1s", "scrapeTimeout": "1s", "evaluationInterval": "1s"},
                "targets": [{"address": f"127.0.0.1:{ports['api']}"}],
            },
        )
        files = configs.render(settings, configs.load_content(ROOT), configs.placeholder_secrets(settings))
        am_config = tmp_path / "alertmanager" / "alertmanager.yml"
        am_config.parent.mkdir()
        am_config.write_text(files["alertmanager/alertmanager.yml"].content)
        procs["alertmanager"] = start_process(
            [
                ALERTMANAGER,
                f"--config.file={am_config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                "--cluster.listen-address=",
            ],
            logs["alertmanager"],
        )
        targets = {
            name: f"127.0.0.1:{ports[process]}"
            for name, process in [
                ("prometheus", "prometheus"),
                ("alertmanager", "alertmanager"),
                ("redis", "redis-exporter"),
                ("postgres", "postgres-exporter"),
            ]
            if process in procs or process == "prometheus"
        }
        config = write_prometheus_config(files, tmp_path / "prometheus", targets, f"127.0.0.1:{ports['alertmanager']}")
        check = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, f"promtool check config failed:\n{check.stdout}{check.stderr}"
        procs["prometheus"] = start_process(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                # Alerts reach Alertmanager once it is discovered; one sent before that is dropped
                # and re-sent only after this delay (1m by default).
                "--rules.alert.resend-delay=1s",
            ],
            logs["prometheus"],
        )

        api = f"http://127.0.0.1:{ports['api']}"
        am = f"http://127.0.0.1:{ports['alertmanager']}"
        wait_until(lambda: http_ok(f"{api}/health"), 60, "the API", logs["api"])
        wait_until(
            lambda: "redis_up 1" in httpx.get(f"http://127.0.0.1:{ports['redis-exporter']}/metrics", timeout=1).text,
            30,
            "redis_exporter to reach Redis",
            logs["redis-exporter"],
        )
        exposed: set[str] = set()
        if postgres_exporter:
            pg_metrics = wait_until(
                lambda: metrics_if(f"http://127.0.0.1:{ports['postgres-exporter']}/metrics", "pg_up 1"),
                30,
                "postgres_exporter to reach PostgreSQL",
                logs["postgres-exporter"],
            )
            exposed = {line.split("{")[0].split(" ")[0] for line in pg_metrics.splitlines() if line[:1].isalpha()}
        wait_until(lambda: http_ok(f"{am}/-/ready"), 30, "Alertmanager ready", logs["alertmanager"])
        prom = Prom(f"http://127.0.0.1:{ports['prometheus']}")
        wait_until(lambda: http_ok(f"{prom.url}/-/ready"), 30, "Prometheus ready", logs["prometheus"])
        timings["startup"] = time.monotonic() - t0

        # --- 1. healthy ---------------------------------------------------------------------------
        t = time.monotonic()
        load_ = Load(api)
        load_.start()
        jobs = sorted(["api", *targets])
        up = f'up{{job=~"{"|".join(jobs)}"}}'

        def ready() -> dict[str, bool]:
            alerts = httpx.get(f"{am}/api/v2/alerts", timeout=2).json()
            return {
                f"every job up ({', '.join(jobs)})": prom.value(f"count({up} == 1)") == len(jobs),
                "recording rules": prom.value('sum(job:api_requests:rate5m{job="api"})') is not None,
                "the 1m budget rules": prom.value("count(job:api_latency_error_budget:remaining30d)") is not None,
                # The alerting pipeline: Prometheus sent the always-firing Watchdog to Alertmanager.
                "Watchdog in Alertmanager": any(a["labels"]["alertname"] == "Watchdog" for a in alerts),
            }

        try:
            wait_until(lambda: all(ready().values()), 40, "data through the pipeline")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {ready()}\n{prom.show([up, *PIPELINE])}") from None
        remaining = HEALTHY_SECONDS - (time.monotonic() - t)
        if remaining > 0:
            time.sleep(remaining)  # judge rates over at least HEALTHY_SECONDS of load, not the first scrapes

        by_fault: dict[str, list[Check]] = {}
        healthy: list[Check] = []
        for c in checks:
            if c.needs is not None:
                job, prefix = OPTIONAL[c.needs]
                if job not in targets:
                    skipped.append(f"{c}: needs {c.needs}, which is not installed here")
                    continue
                missing = sorted(
                    n for n in re.findall(r"[a-zA-Z_:][\w:]*", c.expr) if n.startswith(prefix) and n not in exposed
                )
                if missing:
                    skipped.append(f"{c}: {c.needs} 0.11 (Debian) does not export {', '.join(missing)}")
                    continue
            if c.faults_only:
                by_fault.setdefault(fault_of(c), []).append(c)
            elif (c.dashboard, c.title) in EMPTY_WHILE_HEALTHY:
                by_fault.setdefault(EMPTY_WHILE_HEALTHY[(c.dashboard, c.title)], []).append(c)
            else:
                healthy.append(c)
        faulted = [c for cs in by_fault.values() for c in cs]

        def judge(phase: str, expected: list[Check], timeout: float) -> None:
            begin = time.monotonic()
            results = prom.until_data(expected, timeout)
            print(f"    [{phase}] evaluated in {time.monotonic() - begin:.1f}s")
            for err in results.get("__errors__", []):
                failures.append(f"[{phase}] query rejected: {err['expr']}: {err['error']}")
            for c in expected:
                found = results.get(c.expr, [])
                if found:
                    print(f"    ok [{phase}] {c}: {len(found)} series")
                else:
                    failures.append(
                        f"[{phase}] {c} returned no series\n    expr: {c.raw}\n    queried: {c.expr}\n"
                        f"    what the metrics it reads hold:\n{prom.show(related(c.expr))}"
                    )

        print(f"\n  phase healthy: {len(healthy)} queries expected to return data")
        judge("healthy", healthy, 15)
        # What the panels left for later show while healthy (they are expected empty).
        for c in faulted:
            found = prom.query(c.expr)
            state = f"{len(found)} series" if found else "no data"
            print(f"    while healthy: {c}: {state}")
            if found and not c.faults_only:
                notes.append(f"{c} returned data while healthy: its EMPTY_WHILE_HEALTHY entry can go")
        # Why: the series those panels read do not exist yet (no 5xx status, no cache error).
        print(
            "  series that exist while healthy:\n"
            + prom.show(
                ['count by (status) (api_requests_total{job="api"})', "count by (result) (cache_requests_total)"]
            )
        )
        # What the Alertmanager panels show: dev routes nothing to an integration (the watchdog
        # receiver has no URL), so the counters exist (zero for every integration) but stay flat.
        print(
            "  Alertmanager:\n"
            + prom.show(["sum(alertmanager_alerts_received_total)", "sum(alertmanager_notifications_total)"])
        )
        healthy_codes = load_.statuses("healthy")
        print(f"  healthy load outcomes: {healthy_codes}")
        assert set(healthy_codes) <= {"200", "skipped"}, f"the healthy load failed requests: {load_.summary()}"
        timings["1 healthy"] = time.monotonic() - t

        # --- 2. 4xx -----------------------------------------------------------------------------
        t = time.monotonic()
        load_.switch("4xx")
        print(f"  phase 4xx: {len(by_fault.get('4xx', []))} queries")
        judge("4xx", by_fault.get("4xx", []), 20)
        load_.switch("after-4xx")
        codes = load_.statuses("4xx")
        assert any(k.startswith("4") for k in codes), f"the 4xx phase produced no 4xx: {codes}"
        timings["2 4xx"] = time.monotonic() - t

        # --- 3. Redis stopped -----------------------------------------------------------------------
        t = time.monotonic()
        load_.switch("redis-down")
        redis_server.stop()
        print(f"  phase redis-down: {len(by_fault.get('redis-down', []))} queries")
        judge("redis-down", by_fault.get("redis-down", []), 20)
        redis_server.start()
        load_.switch("redis-back")
        timings["3 redis stopped"] = time.monotonic() - t

        # --- 4. 5xx burst (last: PostgreSQL does not come back) ------------------------------------
        t = time.monotonic()
        load_.switch("5xx")
        pg.stop()
        print(f"  phase 5xx: {len(by_fault.get('5xx', []))} queries")
        judge("5xx", by_fault.get("5xx", []), 30)
        codes = load_.statuses("5xx")
        assert any(k.startswith("5") for k in codes), f"the 5xx burst produced no 5xx: {codes}"
        timings["4 5xx burst"] = time.monotonic() - t

        unplaced = set(by_fault) - {"4xx", "redis-down", "5xx"}
        assert not unplaced, f"faults with no phase: {unplaced}"
        checked = len(healthy) + len(faulted)
        print(
            f"  checked {checked} queries of {len({(c.dashboard, c.panel_id) for c in checks})} panels "
            f"({len(healthy)} healthy, {len(faulted)} under a fault), skipped {len(skipped)}"
        )
        for s in skipped:
            print(f"  skipped: {s}")
        for key, fault in EMPTY_WHILE_HEALTHY.items():
            print(f"  empty while healthy (not faults_only), checked under {fault}: {' / '.join(key)}")
        for n in notes:
            print(f"  note: {n}")
    finally:
        if load_ is not None:
            load_.stop()
            print(f"  load outcomes by phase: {load_.summary()}")
            print(f"  requests that did not answer 2xx: {load_.failed()}")
            unexpected = {k: n for k, n in load_.failed().items() if k.split()[-1].startswith("5") and k[:3] != "5xx"}
            if unexpected:  # a 5xx before PostgreSQL was stopped: show the API's traceback
                tracebacks = logs["api"].read_text(errors="replace").split("Traceback (most recent call last):")
                first = tracebacks[1][-3000:] if len(tracebacks) > 1 else "(none in the API log)"
                print(f"  5xx outside the 5xx phase: {unexpected}; first API traceback:\n{first}")
        for name in reversed(names):
            stop_process(procs.get(name))
        pg.stop()
        timings["total"] = time.monotonic() - t0
        print("  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    assert not failures, f"{len(failures)} panel queries returned no data:\n" + "\n".join(failures)
