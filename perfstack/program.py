"""The Pulumi program: settings -> rendered files -> components -> stack outputs.

``__main__.py`` calls :func:`build` and exports what it returns; the tests call it under
Pulumi's mocks with each stack file's config.
"""

from __future__ import annotations

import re
from pathlib import Path

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from . import configs
from .configs import alertmanager as am_cfg
from .configs import prometheus as prom_cfg
from .infra.alertmanager import Alertmanager, AlertmanagerArgs
from .infra.grafana import Grafana, GrafanaArgs
from .infra.postgres_exporter import PostgresExporter, PostgresExporterArgs
from .infra.prometheus import Prometheus, PrometheusArgs
from .infra.redis import Redis, RedisArgs
from .infra.service import FileSet, StackContext
from .paths import project_root
from .settings import Settings, SettingsError, from_pulumi


def load_settings() -> Settings:
    """Settings from the engine's config; a bad value ends the run with its message alone."""
    try:
        return from_pulumi()
    except SettingsError as exc:
        raise pulumi.RunError("invalid stack configuration:\n" + str(exc)) from None


def _secret_values(settings: Settings) -> dict[str, pulumi.Output[str]]:
    """Every secret the files need: from config when set, else generated (and kept in state)."""
    values: dict[str, pulumi.Output[str]] = {}
    for key, configured in configs.secret_fields(settings).items():
        if configured is not None:
            values[key] = pulumi.Output.secret(configured.reveal())
        else:
            slug = re.sub(r"(?<=[a-z])(?=[A-Z])|\.", "-", key).lower()  # grafana-admin-password
            values[key] = random.RandomPassword(slug, length=32, special=False).result
    return values


def build(root: Path | None = None) -> dict[str, pulumi.Input[str]]:
    """Register the stack's resources; returns the stack outputs."""
    settings = load_settings()
    content = configs.load_content(root or project_root())

    try:  # renders and checks every file before any resource is registered
        plain = configs.render(settings, content, configs.placeholder_secrets(settings))
    except SettingsError as exc:
        raise pulumi.RunError("invalid stack configuration:\n" + str(exc)) from None
    secrets = _secret_values(settings)
    real = pulumi.Output.secret(
        pulumi.Output.all(**secrets).apply(lambda values: configs.render(settings, content, values))
    )
    files = FileSet(plain, real)

    network = docker.Network(
        "network",
        name=f"perfstack-{settings.stack}",
        driver="bridge",
        labels=[docker.NetworkLabelArgs(label="stack", value=settings.stack)],
    )
    ctx = StackContext(
        stack=settings.stack,
        network=network.name,
        bind_address=settings.bind_address,
        protect_data=settings.protect_data,
    )

    prometheus = Prometheus("prometheus", PrometheusArgs(settings.prometheus, prom_cfg.command(settings), files, ctx))
    alertmanager = Alertmanager(
        "alertmanager",
        AlertmanagerArgs(settings.alertmanager, am_cfg.describe_routes(settings), files, ctx),
    )
    grafana = Grafana("grafana", GrafanaArgs(settings.grafana, files, secrets["grafana.adminPassword"], ctx))
    if settings.redis_container:
        redis_password, exporter_password = secrets["redis.password"], secrets["redis.exporterPassword"]
    else:
        redis_password = exporter_password = pulumi.Output.secret("")
    redis = Redis(
        "redis",
        RedisArgs(settings.redis, settings.redis_exporter, files, redis_password, exporter_password, ctx),
    )
    if settings.postgres_enabled:
        PostgresExporter("postgres-exporter", PostgresExporterArgs(settings.postgres_exporter, ctx))
    cdn = settings.cdn
    if cdn.enabled and cdn.manage_zone:
        from .cdn.component import Cdn, CdnArgs  # pulumi_cloudflare is a large import: only when used

        Cdn("cdn", CdnArgs(cdn))
    cdn_role = (
        "off"
        if not cdn.enabled
        else f"zone {cdn.zone_id} ({cdn.plan}): "
        + ("rules and settings managed by this stack" if cdn.manage_zone else "purge only (rules owned elsewhere)")
    )

    return {
        "network": network.name,
        "prometheusUrl": prometheus.url,
        "alertmanagerUrl": alertmanager.url,
        "alertRouting": alertmanager.routing,
        "grafanaUrl": grafana.url,
        "grafanaAdminUser": settings.grafana.admin_user,
        "grafanaAdminPassword": grafana.admin_password,
        "redisUrl": redis.url,
        "redisPassword": redis.password,
        "cdn": cdn_role,
        "cdnZoneId": cdn.zone_id or "",
    }
