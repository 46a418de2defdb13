"""``perfstack validate``: render a stack to a temporary folder and run the real tools on it.

- ``promtool check config`` on prometheus.yml (which also checks every rule file it names),
- ``amtool check-config`` on alertmanager.yml,
- ``redis-server`` started on redis.conf (on a free loopback port), then PING as the
  healthcheck user and INFO as the exporter user, as the container healthcheck and
  redis_exporter will,
- Grafana's provisioning files and dashboards parsed and cross-checked (Grafana itself
  cannot run here).

Each check prints one line; any failure makes the exit status non-zero.
"""

from __future__ import annotations

import configparser
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import configs
from .configs import grafana as grafana_cfg
from .configs import redis as redis_cfg
from .render import render_stack, write
from .settings import Settings


@dataclass
class Result:
    name: str
    ok: bool
    detail: str = ""


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found on PATH (Debian: apt-get install {package})")
    return path


def _run(cmd: list[str], cwd: Path | None = None) -> tuple[bool, str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=120)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def check_prometheus(out: Path) -> Result:
    ok, text = _run([_tool("promtool", "prometheus"), "check", "config", str(out / "prometheus" / "prometheus.yml")])
    return Result("promtool check config prometheus/prometheus.yml", ok, text)


def check_alertmanager(out: Path) -> Result:
    ok, text = _run(
        [_tool("amtool", "prometheus-alertmanager"), "check-config", str(out / "alertmanager" / "alertmanager.yml")]
    )
    return Result("amtool check-config alertmanager/alertmanager.yml", ok, text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_redis(out: Path, secrets: dict[str, str]) -> Result:
    name = "redis-server redis/redis.conf (PING as healthcheck, INFO as exporter)"
    server, cli = _tool("redis-server", "redis-server"), _tool("redis-cli", "redis-tools")
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        # The file as rendered, on a free loopback port instead of the container's.
        proc = subprocess.Popen(
            [server, str(out / "redis" / "redis.conf"), "--port", str(port), "--bind", "127.0.0.1"],
            cwd=data,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = [cli, "-h", "127.0.0.1", "-p", str(port), "--no-auth-warning"]
            deadline = time.monotonic() + 15
            pong = ""
            while time.monotonic() < deadline and proc.poll() is None:
                _, pong = _run([*base, "--user", redis_cfg.HEALTHCHECK_USER, "--pass", "nopass", "ping"])
                if pong == "PONG":
                    break
                time.sleep(0.1)
            if proc.poll() is not None:
                return Result(name, False, proc.stdout.read() if proc.stdout else "redis-server exited")
            if pong != "PONG":
                return Result(name, False, f"healthcheck PING answered {pong!r}")
            _, info = _run(
                [
                    *base,
                    "--user",
                    redis_cfg.EXPORTER_USER,
                    "--pass",
                    secrets["redis.exporterPassword"],
                    "info",
                    "memory",
                ]
            )
            if "maxmemory:" not in info:
                return Result(name, False, f"exporter user could not run INFO: {info}")
            _, denied = _run([*base, "--user", redis_cfg.HEALTHCHECK_USER, "--pass", "nopass", "get", "x"])
            if "NOPERM" not in denied:
                return Result(name, False, f"healthcheck user may run GET: {denied!r}")
            return Result(name, True, f"started on port {port}, PONG, INFO ok, healthcheck user limited to PING")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def check_grafana(out: Path, settings: Settings) -> Result:
    name = "grafana provisioning (datasources, dashboard provider, dashboards, grafana.ini)"
    problems: list[str] = []
    g = out / "grafana"
    ini = configparser.ConfigParser(interpolation=None)
    try:
        ini.read_string((g / "grafana.ini").read_text())
        if ini.get("auth.anonymous", "enabled") != "false" or ini.get("users", "allow_sign_up") != "false":
            problems.append("grafana.ini: anonymous access or sign-up is on")
        if "$__file{" not in ini.get("security", "admin_password"):
            problems.append("grafana.ini: admin_password is not read from a file")
    except (configparser.Error, OSError) as exc:
        problems.append(f"grafana.ini: {exc}")
    ds = yaml.safe_load((g / "provisioning/datasources/perfstack.yml").read_text())
    uids = [d.get("uid") for d in ds.get("datasources", [])]
    if ds.get("apiVersion") != 1:
        problems.append("datasources: apiVersion must be 1")
    if len(set(uids)) != len(uids) or None in uids:
        problems.append(f"datasources: uids must be set and unique, got {uids}")
    if sum(1 for d in ds["datasources"] if d.get("isDefault")) != 1:
        problems.append("datasources: exactly one must be the default")
    prov = yaml.safe_load((g / "provisioning/dashboards/perfstack.yml").read_text())
    paths = [p.get("options", {}).get("path") for p in prov.get("providers", [])]
    if paths != [grafana_cfg.DASHBOARDS_DIR]:
        problems.append(f"dashboard provider path {paths} is not {grafana_cfg.DASHBOARDS_DIR}")
    dash_uids: list[str] = []
    for path in sorted((g / "dashboards").glob("*.json")) if (g / "dashboards").is_dir() else []:
        try:
            board = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}: not JSON ({exc})")
            continue
        if not board.get("uid"):
            problems.append(f"{path.name}: no uid")
        dash_uids.append(board.get("uid"))
    if len(set(dash_uids)) != len(dash_uids):
        problems.append(f"dashboards: duplicate uids {dash_uids}")
    detail = "; ".join(problems) or f"{len(uids)} datasources, {len(dash_uids)} dashboards"
    return Result(name, not problems, detail)


def validate(root: Path, stack: str, out: Path | None = None) -> list[Result]:
    settings, files = render_stack(root, stack)
    with tempfile.TemporaryDirectory(prefix=f"perfstack-{stack}-") as tmp:
        folder = out or Path(tmp)
        write(files, folder)
        secrets = configs.placeholder_secrets(settings)
        checks: list[tuple[str, Callable[[], Result]]] = [
            ("promtool check config prometheus/prometheus.yml", lambda: check_prometheus(folder)),
            ("amtool check-config alertmanager/alertmanager.yml", lambda: check_alertmanager(folder)),
            ("grafana provisioning", lambda: check_grafana(folder, settings)),
        ]
        if settings.redis_container:
            checks.append(("redis-server redis/redis.conf", lambda: check_redis(folder, secrets)))
        results = []
        for name, check in checks:
            try:
                results.append(check())
            except (FileNotFoundError, OSError, subprocess.SubprocessError) as exc:
                results.append(Result(name, False, str(exc)))
        return results
