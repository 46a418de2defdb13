"""prometheus.yml and the rule files, as Prometheus 2.42 (CI) and 3.x (the image) accept them.

Kept to the common subset (FACTS.md §6.3): retention goes in command-line flags, not the
config file's ``storage`` block, and Alertmanager is addressed over API v2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..rules import build as rules_build
from ..settings import Settings
from .base import HEADER, SERVICES, Content, File, dump_yaml

CONFIG_DIR = "/etc/prometheus"
DATA_DIR = "/prometheus"


def command(settings: Settings) -> list[str]:
    """The container's arguments; the image's defaults are repeated because ``command`` replaces them."""
    p = settings.prometheus
    args = [
        f"--config.file={CONFIG_DIR}/prometheus.yml",
        f"--storage.tsdb.path={DATA_DIR}",
        f"--storage.tsdb.retention.time={p.retention}",
        "--web.enable-lifecycle",  # POST /-/reload after a rules-only change
    ]
    if p.retention_size:
        args.append(f"--storage.tsdb.retention.size={p.retention_size}")
    return args


def scrape_configs(settings: Settings) -> list[dict[str, Any]]:
    s = settings
    jobs: list[dict[str, Any]] = [
        _job("prometheus", [f"localhost:{SERVICES['prometheus'].port}"]),
        _job("alertmanager", [SERVICES["alertmanager"].address]),
        _job("grafana", [SERVICES["grafana"].address]),
        _job("redis", [SERVICES["redis-exporter"].address]),
    ]
    if s.postgres_enabled:
        jobs.append(_job("postgres", [SERVICES["postgres-exporter"].address]))
    by_job: dict[str, list[Any]] = {}
    for t in s.targets:
        by_job.setdefault(t.job, []).append(t)
    for job, targets in by_job.items():
        first = targets[0]
        jobs.append(
            {
                "job_name": job,
                "metrics_path": first.metrics_path,
                "scheme": first.scheme,
                "static_configs": [
                    {"targets": [t.address], **({"labels": dict(t.labels)} if t.labels else {})} for t in targets
                ],
            }
        )
    return jobs


def _job(name: str, targets: list[str]) -> dict[str, Any]:
    return {"job_name": name, "static_configs": [{"targets": targets}]}


def prometheus_yml(settings: Settings, rule_files: list[str], secrets: Mapping[str, str]) -> str:
    p = settings.prometheus
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": p.scrape_interval,
            "scrape_timeout": p.scrape_timeout,
            "evaluation_interval": p.evaluation_interval,
            "external_labels": {"stack": settings.stack, **dict(p.external_labels)},
        },
        "alerting": {
            "alertmanagers": [
                {"api_version": "v2", "static_configs": [{"targets": [SERVICES["alertmanager"].address]}]}
            ]
        },
        # Relative paths resolve from this file's folder, in the container and in a render.
        "rule_files": [f"rules/{name}" for name in rule_files],
        "scrape_configs": scrape_configs(settings),
    }
    if p.remote_write:
        config["remote_write"] = [_remote_write(rw, secrets) for rw in p.remote_write]
    return dump_yaml(config, HEADER.format(stack=settings.stack, what="Prometheus configuration"))


def _remote_write(rw: Any, secrets: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"url": rw.url}
    if rw.name:
        out["name"] = rw.name
    if rw.username:
        out["basic_auth"] = {"username": rw.username}
        if rw.password is not None:
            out["basic_auth"]["password"] = secrets[rw.password.key]
    if rw.bearer_token is not None:
        out["authorization"] = {"type": "Bearer", "credentials": secrets[rw.bearer_token.key]}
    return out


def prometheus_files(settings: Settings, content: Content, secrets: Mapping[str, str]) -> list[File]:
    uid = SERVICES["prometheus"].user
    names = sorted(content.rule_files)
    disabled = set(settings.alerts.disabled)
    base_url = settings.alerts.runbook_base_url
    files = [
        File(
            "prometheus",
            "prometheus.yml",
            f"{CONFIG_DIR}/prometheus.yml",
            prometheus_yml(settings, names, secrets),
            uid,
        )
    ]
    files += [
        File(
            "prometheus",
            f"rules/{name}",
            f"{CONFIG_DIR}/rules/{name}",
            rules_build.for_stack(content.rule_files[name], disabled, base_url),
            uid,
        )
        for name in names
    ]
    return files
