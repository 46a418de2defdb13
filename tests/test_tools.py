"""The rendered files, checked by the real programs the containers run (or their Debian builds).

Every stack is rendered with placeholders for its secrets (as ``perfstack render`` does) and then
handed to promtool, amtool, prometheus, redis-server, redis-cli and redis_exporter. Servers listen
on free 127.0.0.1 ports, are polled with a deadline (never a fixed sleep) and always stopped.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfstack import configs, render
from perfstack.configs import redis as redis_cfg
from perfstack.schema import redis_size_bytes
from perfstack.settings import Settings, load

pytestmark = pytest.mark.tools

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "staging", "prod")
# The built-in scrape jobs, plus the `api` job every stack file's targets get by default.
EXPECTED_JOBS = {"prometheus", "alertmanager", "grafana", "redis", "api"}
MAXMEMORY_BYTES = {"dev": 256 * 1024**2, "prod": 1024**3}

RULE_GROUP = """\
groups:
  - name: example
    rules:
      - alert: ExampleTargetDown
        expr: up == 0
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.instance }} is down"
"""
# Same group, expression that PromQL cannot parse.
BROKEN_RULE_GROUP = RULE_GROUP.replace("up == 0", "up == ((")


# --- helpers --------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (make debian-packages installs it)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kwargs)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def http_get(url: str) -> tuple[int, str] | None:
    """(status, body), or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@contextlib.contextmanager
def process(cmd: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` with its output in ``log``; always stop it afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def log_text(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


def render_settings(settings: Settings, out: Path, content: configs.Content | None = None) -> Path:
    files = configs.render(settings, content or configs.Content(), configs.placeholder_secrets(settings))
    render.write(files, out)
    return out


# --- rendered stacks ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each stack of the repository, rendered as `perfstack render` renders it."""
    out = {}
    for stack in STACKS:
        _, files = render.render_stack(ROOT, stack)
        folder = tmp_path_factory.mktemp(f"render-{stack}")
        render.write(files, folder)
        out[stack] = folder
    return out


# --- Prometheus -----------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_config_passes_promtool_for_every_stack(rendered: dict[str, Path], stack: str) -> None:
    config = rendered[stack] / "prometheus" / "prometheus.yml"
    proc = run([tool("promtool"), "check", "config", str(config)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_rule_files_are_referenced_from_prometheus_yml_and_checked_by_promtool(tmp_path: Path) -> None:
    settings = load("dev", {})
    out = render_settings(settings, tmp_path, configs.Content(rule_files={"example.yml": RULE_GROUP}))
    rule_file = out / "prometheus" / "rules" / "example.yml"
    assert rule_file.read_text() == RULE_GROUP

    config = out / "prometheus" / "prometheus.yml"
    assert yaml.safe_load(config.read_text())["rule_files"] == ["rules/example.yml"]
    proc = run([tool("promtool"), "check", "config", str(config)])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert f"Checking {rule_file}" in output
    assert "1 rules found" in output


def test_a_broken_rule_file_makes_promtool_check_config_fail(tmp_path: Path) -> None:
    settings = load("dev", {})
    out = render_settings(settings, tmp_path, configs.Content(rule_files={"example.yml": BROKEN_RULE_GROUP}))
    proc = run([tool("promtool"), "check", "config", str(out / "prometheus" / "prometheus.yml")])
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "example.yml" in output
    assert "parse error" in output


def test_real_prometheus_starts_on_the_dev_config_and_has_every_scrape_job(
    rendered: dict[str, Path], tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "prometheus.log"
    cmd = [
        tool("prometheus"),
        f"--config.file={rendered['dev'] / 'prometheus' / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with process(cmd, log, cwd=tmp_path) as proc:

        def ready() -> bool:
            assert proc.poll() is None, f"prometheus exited with {proc.returncode}:\n{log_text(log)}"
            answer = http_get(f"{base}/-/ready")
            return answer is not None and answer[0] == 200

        wait_until(ready, 30, "prometheus /-/ready")

        status, body = http_get(f"{base}/api/v1/status/config") or (0, "")
        assert status == 200, body
        loaded = yaml.safe_load(json.loads(body)["data"]["yaml"])
        assert {job["job_name"] for job in loaded["scrape_configs"]} == EXPECTED_JOBS
        assert loaded["global"]["external_labels"] == {"stack": "dev"}

        # Scrape pools get their targets from discovery a few seconds after start.
        def target_jobs() -> set[str] | None:
            answer = http_get(f"{base}/api/v1/targets")
            if answer is None or answer[0] != 200:
                return None
            active = json.loads(answer[1])["data"]["activeTargets"]
            jobs = {t["labels"]["job"] for t in active}
            return jobs if jobs >= EXPECTED_JOBS else None

        assert wait_until(target_jobs, 30, "every scrape job in /api/v1/targets") == EXPECTED_JOBS


# --- Alertmanager ---------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_alertmanager_config_passes_amtool_for_every_stack(rendered: dict[str, Path], stack: str) -> None:
    proc = run([tool("amtool"), "check-config", str(rendered[stack] / "alertmanager" / "alertmanager.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def route(config: Path, receiver: str, *labels: str) -> subprocess.CompletedProcess[str]:
    """amtool's routing test: exit 0 only when ``labels`` resolve to ``receiver``."""
    return run(
        [
            tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            f"--verify.receivers={receiver}",
            *labels,
        ]
    )


ROUTED_SETTINGS = {
    "alertmanager": {
        "critical": ["pagerduty"],
        "warning": ["slack"],
        "pagerduty": {"routingKey": "k"},
        "slack": {"webhookUrl": "https://hooks.slack.com/services/T/B/X"},
    }
}


@pytest.fixture(scope="module")
def routed_alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = load("dev", ROUTED_SETTINGS, secret_keys={"alertmanager"})
    out = render_settings(settings, tmp_path_factory.mktemp("routed"))
    return out / "alertmanager" / "alertmanager.yml"


@pytest.mark.parametrize("severity", ["critical", "warning", "info"])
def test_with_no_receiver_configured_every_alert_goes_to_the_null_receiver(
    rendered: dict[str, Path], severity: str
) -> None:
    config = rendered["dev"] / "alertmanager" / "alertmanager.yml"
    proc = route(config, "null", f"severity={severity}", "alertname=X")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "null"


def test_routed_alertmanager_config_passes_amtool(routed_alertmanager: Path) -> None:
    proc = run([tool("amtool"), "check-config", str(routed_alertmanager)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # null, watchdog, critical (PagerDuty) and warning (Slack)
    assert "4 receivers" in proc.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("severity=critical", "alertname=X"), "critical"),
        (("severity=warning", "alertname=X"), "warning"),
        (("severity=info", "alertname=X"), "null"),
        # The dead man's switch goes to its own receiver and never pages, whatever its severity.
        (("severity=critical", "alertname=Watchdog"), "watchdog"),
        (("alertname=Watchdog", "severity=info"), "watchdog"),
    ],
)
def test_critical_pages_warning_tickets_info_nowhere_and_watchdog_to_its_own_receiver(
    routed_alertmanager: Path, labels: tuple[str, ...], receiver: str
) -> None:
    proc = route(routed_alertmanager, receiver, *labels)
    assert proc.returncode == 0, f"{labels} -> {proc.stdout.strip()!r}, expected {receiver!r}\n{proc.stderr}"
    assert proc.stdout.strip() == receiver


def test_routed_receivers_carry_the_configured_channels(routed_alertmanager: Path) -> None:
    config = yaml.safe_load(routed_alertmanager.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"null", "watchdog", "critical", "warning"}
    assert set(receivers["critical"]) == {"name", "pagerduty_configs"}
    assert set(receivers["warning"]) == {"name", "slack_configs"}
    # Rendered with placeholders: the configured secret values never reach the file.
    text = routed_alertmanager.read_text()
    assert "hooks.slack.com" not in text
    assert "https://secret.invalid/alertmanager-slack-webhookUrl" in text


def test_critical_alert_inhibits_the_warning_with_the_same_alertname(routed_alertmanager: Path) -> None:
    rules = yaml.safe_load(routed_alertmanager.read_text())["inhibit_rules"]
    matching = [
        r
        for r in rules
        if r.get("source_matchers") == ['severity="critical"']
        and r.get("target_matchers") == ['severity="warning"']
        and "alertname" in r.get("equal", [])
    ]
    assert matching, rules


# --- Redis and redis_exporter ---------------------------------------------------------------


class Redis:
    """A redis-server started on a rendered redis.conf, on a free loopback port."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    def cli(self, *args: str, user: str | None = None, password: str | None = None) -> str:
        cmd = [tool("redis-cli"), "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning"]
        if user is not None:
            cmd += ["--user", user]
        if password is not None:
            cmd += ["--pass", password]
        proc = run([*cmd, *args])
        return (proc.stdout + proc.stderr).strip()

    def healthcheck(self) -> str:
        """What the container healthcheck runs."""
        return self.cli("ping", user=redis_cfg.HEALTHCHECK_USER, password="nopass")


@contextlib.contextmanager
def redis_server(conf: Path, workdir: Path) -> Iterator[Redis]:
    port = free_port()
    log = workdir / "redis.log"
    cmd = [tool("redis-server"), str(conf), "--port", str(port), "--bind", "127.0.0.1"]
    with process(cmd, log, cwd=workdir) as proc:
        server = Redis(proc, port, log)

        def up() -> bool:
            assert proc.poll() is None, f"redis-server exited with {proc.returncode}:\n{log_text(log)}"
            return server.healthcheck() == "PONG"

        wait_until(up, 15, "redis-server to answer the healthcheck PING")
        yield server


@pytest.fixture(scope="module", params=["dev", "prod"])
def redis(request: pytest.FixtureRequest, rendered: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    stack = request.param
    settings, _ = render.render_stack(ROOT, stack)
    workdir = tmp_path_factory.mktemp(f"redis-{stack}")
    with redis_server(rendered[stack] / "redis" / "redis.conf", workdir) as server:
        yield stack, settings, server


def test_redis_healthcheck_user_may_ping_without_a_password(redis: tuple[str, Settings, Redis]) -> None:
    _, _, server = redis
    assert server.healthcheck() == "PONG"


@pytest.mark.parametrize("command", [("get", "x"), ("info",), ("config", "get", "requirepass")])
def test_redis_healthcheck_user_is_denied_everything_but_ping(
    redis: tuple[str, Settings, Redis], command: tuple[str, ...]
) -> None:
    _, settings, server = redis
    reply = server.cli(*command, user=redis_cfg.HEALTHCHECK_USER, password="nopass")
    # The whole reply is the error (INFO's own text can mention NOPERM in its error stats).
    assert reply.startswith("NOPERM") and len(reply.splitlines()) == 1, reply
    assert configs.placeholder_secrets(settings)["redis.password"] not in reply


def test_redis_default_user_without_the_password_gets_noauth(redis: tuple[str, Settings, Redis]) -> None:
    _, _, server = redis
    assert server.cli("get", "x").startswith("NOAUTH")


def test_redis_default_user_with_the_password_can_set_and_get(redis: tuple[str, Settings, Redis]) -> None:
    _, settings, server = redis
    password = configs.placeholder_secrets(settings)["redis.password"]
    assert server.cli("set", "perfstack-test", "hello", password=password) == "OK"
    assert server.cli("get", "perfstack-test", password=password) == "hello"


def test_redis_wrong_password_is_refused(redis: tuple[str, Settings, Redis]) -> None:
    _, _, server = redis
    reply = server.cli("get", "x", password="not-the-password")
    # redis-cli reports the failed AUTH, then runs GET unauthenticated.
    assert "AUTH failed: WRONGPASS" in reply, reply
    assert reply.startswith("NOAUTH"), reply


def test_redis_maxmemory_and_policy_match_the_stack(redis: tuple[str, Settings, Redis]) -> None:
    stack, settings, server = redis
    password = configs.placeholder_secrets(settings)["redis.password"]
    assert server.cli("config", "get", "maxmemory", password=password).splitlines() == [
        "maxmemory",
        str(MAXMEMORY_BYTES[stack]),
    ]
    assert redis_size_bytes(settings.redis.maxmemory) == MAXMEMORY_BYTES[stack]
    assert server.cli("config", "get", "maxmemory-policy", password=password).splitlines() == [
        "maxmemory-policy",
        "allkeys-lru",
    ]


def test_redis_exporter_scrapes_redis_as_the_exporter_user_without_permission_errors(
    rendered: dict[str, Path], tmp_path: Path
) -> None:
    settings, _ = render.render_stack(ROOT, "dev")
    secrets = configs.placeholder_secrets(settings)
    # A server of its own, so its ACL log and error stats hold the exporter's commands only.
    with redis_server(rendered["dev"] / "redis" / "redis.conf", tmp_path) as server:
        port = free_port()
        log = tmp_path / "redis_exporter.log"
        env = {
            "PATH": "/usr/bin:/bin",
            "REDIS_ADDR": f"redis://127.0.0.1:{server.port}",
            "REDIS_USER": redis_cfg.EXPORTER_USER,
            "REDIS_PASSWORD": secrets["redis.exporterPassword"],
        }
        cmd = [tool("prometheus-redis-exporter"), f"--web.listen-address=127.0.0.1:{port}", "--debug"]
        with process(cmd, log, env=env, cwd=tmp_path) as exporter:

            def metrics() -> str | None:
                assert exporter.poll() is None, f"exporter exited with {exporter.returncode}:\n{log_text(log)}"
                answer = http_get(f"http://127.0.0.1:{port}/metrics")
                return answer[1] if answer is not None and answer[0] == 200 else None

            body = wait_until(metrics, 20, "redis_exporter /metrics")
        lines = body.splitlines()
        assert "redis_up 1" in lines, [line for line in lines if line.startswith("redis_up")]
        # CONFIG GET worked: the exporter reports the configured maxmemory.
        maxmemory = [line.split()[1] for line in lines if line.startswith("redis_config_maxmemory ")]
        assert [float(v) for v in maxmemory] == [float(MAXMEMORY_BYTES["dev"])]
        # Redis logs every command an ACL denied; the exporter must have none.
        acl_log = server.cli("acl", "log", password=secrets["redis.password"])
        assert acl_log == "", acl_log
    exporter_log = log_text(log)
    assert "NOPERM" not in exporter_log
    assert "Providing metrics at" in exporter_log  # the log really is the exporter's
