"""Stack settings: Pulumi config (or a stack file) -> frozen, validated values.

Every key the program reads is declared here, once, with its default and documentation.
Values are validated before any resource is registered; a bad value fails with a line
naming the key, what was given and the expected form::

    perfstack:prometheus.retention must be a duration such as 15d, 6h or 30s, got '15 days'

Two entry points share one parser:

- :func:`from_pulumi` inside ``pulumi up``: reads the engine's config (secrets decrypted).
- :func:`from_stack_file` for ``perfstack render``/``validate``: reads
  ``stacks/Pulumi.<stack>.yaml`` directly; encrypted values become placeholders.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .schema import (
    PROJECT,
    REQUIRED,
    SECURE,
    Invalid,
    Opt,
    Problems,
    Secret,
    SettingsError,
    boolean,
    camel,
    cpus,
    dns_name,
    duration,
    duration_seconds,
    host_port,
    http_url,
    image_ref,
    ip_address,
    label_names,
    labels,
    list_of,
    many,
    nonempty_str,
    one_of,
    opt,
    parse_section,
    port,
    positive_int,
    prom_size,
    redis_size,
    redis_size_bytes,
    secret,
    section,
    url_path,
)

__all__ = ["Secret", "Settings", "SettingsError", "from_pulumi", "from_stack_file", "load"]

CHANNELS = ("pagerduty", "slack", "webhook")


# --- Prometheus ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteWrite:
    url: str = opt(REQUIRED, "Receiver endpoint (Mimir, Thanos Receive, VictoriaMetrics, ...).", http_url)
    name: str | None = opt(None, "Queue name shown in Prometheus' remote-write metrics.", dns_name)
    username: str | None = opt(None, "Basic-auth user name; the password goes in `password`.", nonempty_str)
    password: Secret | None = secret("Basic-auth password.")
    bearer_token: Secret | None = secret("Bearer token, instead of basic auth.")


@dataclass(frozen=True)
class PrometheusSettings:
    image: str = opt("prom/prometheus:v3.5.0", "Image, pinned by tag (digest optional).", image_ref)
    port: int | None = opt(9090, "Host port for the UI and API; null leaves it unpublished.", port)
    memory_mb: int = opt(1024, "Container memory limit in MB.", positive_int)
    cpus: str = opt("1", "Container CPU limit (Docker --cpus).", cpus)
    retention: str = opt("15d", "TSDB retention time (--storage.tsdb.retention.time).", duration)
    retention_size: str | None = opt(
        None, "TSDB size cap (--storage.tsdb.retention.size); null means no cap.", prom_size
    )
    scrape_interval: str = opt("15s", "How often every target is scraped.", duration)
    scrape_timeout: str = opt("10s", "Scrape timeout; must not exceed scrapeInterval.", duration)
    evaluation_interval: str = opt("15s", "How often recording and alert rules are evaluated.", duration)
    external_labels: tuple[tuple[str, str], ...] = opt(
        (), "Extra labels on every series and alert (a `stack` label is always added).", labels
    )
    remote_write: tuple[RemoteWrite, ...] = many(
        RemoteWrite,
        "Remote-write endpoints, for long-term or central storage.",
        example='[{url: "https://mimir.example.com/api/v1/push", username: "tenant-1"}]',
    )


# --- Alertmanager -------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackSettings:
    webhook_url: Secret | None = secret("Slack incoming-webhook URL.", "url")
    channel: str = opt("#alerts", "Channel the webhook posts to.", nonempty_str)


@dataclass(frozen=True)
class PagerDutySettings:
    routing_key: Secret | None = secret("PagerDuty Events API v2 routing key.")


@dataclass(frozen=True)
class WebhookSettings:
    url: Secret | None = secret("Generic webhook URL that receives Alertmanager's JSON.", "url")


@dataclass(frozen=True)
class WatchdogSettings:
    url: Secret | None = secret(
        "Dead man's switch URL (healthchecks.io, Dead Man's Snitch, ...) that the always-firing Watchdog "
        "alert pings; without it Watchdog goes to an empty `watchdog` receiver.",
        "url",
    )


@dataclass(frozen=True)
class AlertmanagerSettings:
    image: str = opt("prom/alertmanager:v0.28.1", "Image, pinned by tag (digest optional).", image_ref)
    port: int | None = opt(9093, "Host port for the UI and API; null leaves it unpublished.", port)
    memory_mb: int = opt(128, "Container memory limit in MB.", positive_int)
    cpus: str = opt("0.25", "Container CPU limit (Docker --cpus).", cpus)
    critical: tuple[str, ...] = opt(
        (),
        "Channels that page for severity=critical: any of pagerduty, slack, webhook.",
        list_of(one_of(*CHANNELS), "a list drawn from pagerduty, slack, webhook"),
        example="[pagerduty, slack]",
    )
    warning: tuple[str, ...] = opt(
        (),
        "Channels that get a ticket for severity=warning: any of pagerduty, slack, webhook.",
        list_of(one_of(*CHANNELS), "a list drawn from pagerduty, slack, webhook"),
        example="[slack]",
    )
    group_by: tuple[str, ...] = opt(
        ("alertname", "job"), "Labels that group alerts into one notification.", label_names
    )
    group_wait: str = opt("30s", "Wait before the first notification of a new group.", duration)
    group_interval: str = opt("5m", "Wait before notifying about new alerts in a group.", duration)
    repeat_interval: str = opt("4h", "Wait before re-sending a still-firing notification.", duration)
    slack: SlackSettings = section(SlackSettings, "Slack receiver.")
    pagerduty: PagerDutySettings = section(PagerDutySettings, "PagerDuty receiver.")
    webhook: WebhookSettings = section(WebhookSettings, "Webhook receiver.")
    watchdog: WatchdogSettings = section(WatchdogSettings, "Dead man's switch for the Watchdog alert.")


ROUTE_TARGETS = ("critical", "warning", "null")


def _alert_name(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"[A-Z][A-Za-z0-9]*", value):
        return value
    raise Invalid("an alert name such as CacheHitRateLow")


def _alert_routes(value: Any) -> tuple[tuple[str, str], ...]:
    expected = "an object of alert names to critical, warning or null, such as {DbSlowQueries: critical}"
    if not isinstance(value, Mapping):
        raise Invalid(expected)
    for k, v in value.items():
        if not isinstance(k, str) or not re.fullmatch(r"[A-Z][A-Za-z0-9]*", k) or v not in ROUTE_TARGETS:
            raise Invalid(expected)
    return tuple(sorted(value.items()))


@dataclass(frozen=True)
class AlertsSettings:
    disabled: tuple[str, ...] = opt(
        (),
        "Alerts this stack does not run (removed from its rule files).",
        list_of(_alert_name, "a list of alert names such as [CacheHitRateLow]"),
        example="[RedisEvictions]",
    )
    routes: tuple[tuple[str, str], ...] = opt(
        (),
        "Per-alert routing overrides: critical (pages), warning (ticket) or null (nowhere).",
        _alert_routes,
        example="{DbSlowQueries: critical}",
    )
    runbook_base_url: str | None = opt(
        None, "Where this team's RUNBOOK.md is published; every alert's runbook_url points there.", http_url
    )


# --- Grafana ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrafanaSettings:
    image: str = opt("grafana/grafana:12.2.0", "Image, pinned by tag (digest optional).", image_ref)
    port: int | None = opt(3000, "Host port for the UI; null leaves it unpublished.", port)
    memory_mb: int = opt(512, "Container memory limit in MB.", positive_int)
    cpus: str = opt("0.5", "Container CPU limit (Docker --cpus).", cpus)
    admin_user: str = opt("admin", "Admin login.", nonempty_str)
    admin_password: Secret | None = secret(
        "Admin password; generated with pulumi-random and exported as a secret when unset. "
        "Grafana applies it when its database is created."
    )
    root_url: str | None = opt(
        None, "Public URL of Grafana (links in alerts); default http://<bindAddress>:<port>/.", http_url
    )


# --- Redis and exporters ------------------------------------------------------------------


@dataclass(frozen=True)
class RedisSettings:
    image: str = opt("redis:7.2.7", "Image, pinned by tag (digest optional).", image_ref)
    port: int | None = opt(6379, "Host port the API connects to; null leaves it unpublished.", port)
    memory_mb: int = opt(384, "Container memory limit in MB; must exceed maxmemory.", positive_int)
    cpus: str = opt("0.5", "Container CPU limit (Docker --cpus).", cpus)
    maxmemory: str = opt("256mb", "Cache size (redis.conf maxmemory).", redis_size)
    maxmemory_policy: str = opt(
        "allkeys-lru",
        "Eviction policy (redis.conf maxmemory-policy).",
        one_of("allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "allkeys-random", "volatile-ttl"),
    )
    appendonly: bool = opt(False, "Append-only persistence (appendfsync everysec).", boolean)
    password: Secret | None = secret("Password of the `default` user; generated with pulumi-random when unset.")
    external_url: Secret | None = secret(
        "A managed Redis to use instead of the container; may hold a password; the exporter then watches it.",
        "redis-url",
    )


@dataclass(frozen=True)
class RedisExporterSettings:
    image: str = opt(
        "oliver006/redis_exporter:v1.88.0-alpine", "Image (the -alpine tag has wget for the healthcheck).", image_ref
    )
    port: int | None = opt(None, "Host port for /metrics; null (default) leaves it unpublished.", port)
    memory_mb: int = opt(64, "Container memory limit in MB.", positive_int)
    cpus: str = opt("0.25", "Container CPU limit (Docker --cpus).", cpus)


@dataclass(frozen=True)
class PostgresExporterSettings:
    image: str = opt(
        "prometheuscommunity/postgres-exporter:v0.20.1", "Image, pinned by tag (digest optional).", image_ref
    )
    port: int | None = opt(None, "Host port for /metrics; null (default) leaves it unpublished.", port)
    memory_mb: int = opt(128, "Container memory limit in MB.", positive_int)
    cpus: str = opt("0.25", "Container CPU limit (Docker --cpus).", cpus)
    dsn: Secret | None = secret(
        "Database to watch; the exporter is created only when this is set. The database needs pg_stat_statements.",
        "postgres-url",
    )


CDN_PLANS = ("free", "pro", "business", "enterprise")


def _zone_id(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32}", value):
        return value
    raise Invalid("a Cloudflare zone id: 32 lower-case hex characters")


def _hostname(value: Any) -> str:
    label = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    if isinstance(value, str) and re.fullmatch(rf"(?=.{{1,253}}$)({label}\.)+[a-z]{{2,63}}", value):
        return value
    raise Invalid("a hostname such as www.example.com")


def _retired(reason: str) -> Any:
    def parse(value: Any) -> Any:
        raise Invalid(f"left unset: {reason}")

    return parse


# --- Scrape targets and CDN ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    address: str = opt(
        REQUIRED,
        "host:port of an API exposing /metrics, as seen from the Prometheus container.",
        host_port,
        example="host.docker.internal:8000",
    )
    job: str = opt("api", "Prometheus job label.", dns_name)
    labels: tuple[tuple[str, str], ...] = opt((), "Extra target labels, such as {service: payments}.", labels)
    metrics_path: str = opt("/metrics", "Path of the metrics endpoint.", url_path)
    scheme: str = opt("http", "http or https.", one_of("http", "https"))


@dataclass(frozen=True)
class CdnSettings:
    enabled: bool = opt(False, "Put the API behind Cloudflare (cache, compression and image rules; purge).", boolean)
    plan: str = opt(
        "free",
        "The zone's Cloudflare plan; a setting the plan lacks is refused.",
        one_of(*CDN_PLANS),
    )
    zone_id: str | None = opt(None, "The Cloudflare zone id (32 hex characters); required when enabled.", _zone_id)
    manage_zone: bool = opt(
        False,
        "This stack owns the zone's rulesets and settings (one stack per zone); others only purge.",
        boolean,
    )
    shared_zone: bool = opt(
        False, "Several environments share this zone: `perfstack cdn purge --everything` needs --force.", boolean
    )
    hostnames: tuple[str, ...] = opt(
        (),
        "Hostnames the rules cover (the owner stack may list every environment's).",
        list_of(_hostname, "a list of hostnames such as [www.example.com, staging.example.com]"),
        example="[www.example.com]",
    )
    versioned_paths: tuple[str, ...] = opt(
        ("/assets/", "/static/"),
        "Path prefixes of content-hashed assets (cached for a year at the edge and in browsers).",
        list_of(url_path, "a list of path prefixes such as [/assets/]"),
    )
    cacheable_api_paths: tuple[str, ...] = opt(
        ("/api/v1/feature-flags", "/api/v1/merchants", "/api/v1/admin/dashboard/overview", "/api/v1/analytics/"),
        "API GET paths cached by the origin's Cache-Control; every other /api/ path bypasses the cache.",
        list_of(url_path, "a list of path prefixes such as [/api/v1/feature-flags]"),
    )
    html_edge_ttl: int = opt(60, "Edge TTL of HTML in seconds (served stale while revalidating).", positive_int)
    polish: str | None = opt(
        None,
        "Image optimisation: off, lossless or lossy (pro and up); default lossless where the plan has it.",
        one_of("off", "lossless", "lossy"),
    )
    webp: bool | None = opt(None, "Serve WebP to browsers that accept it (pro and up, needs polish).", boolean)
    image_transformations: bool | None = opt(
        None, "Image transformations for responsive sizes and thumbnails (pro and up).", boolean
    )
    regional_tiered_cache: bool = opt(False, "Regional Tiered Cache (enterprise).", boolean)
    minify: Any = opt(
        None,
        "Refused: Cloudflare retired Auto Minify; minify at build time.",
        _retired("Cloudflare retired Auto Minify in 2024; minify assets at build time"),
    )
    brotli: Any = opt(
        None,
        "Refused: Cloudflare retired the brotli zone setting; the compression rules choose brotli.",
        _retired("Cloudflare retired the brotli zone setting; perfstack's compression rules already serve brotli"),
    )


# --- The whole stack ----------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Everything one stack needs; built only by :func:`load`."""

    stack: str
    bind_address: str = opt("127.0.0.1", "Host address every published port binds to.", ip_address)
    protect_data: bool = opt(
        False, "Protect data volumes (TSDB, Grafana, Alertmanager, Redis) from deletion; true in prod.", boolean
    )
    prometheus: PrometheusSettings = section(PrometheusSettings, "Prometheus server.")
    alertmanager: AlertmanagerSettings = section(AlertmanagerSettings, "Alertmanager and alert routing.")
    grafana: GrafanaSettings = section(GrafanaSettings, "Grafana.")
    redis: RedisSettings = section(RedisSettings, "Redis for the application cache.")
    redis_exporter: RedisExporterSettings = section(RedisExporterSettings, "redis_exporter.")
    postgres_exporter: PostgresExporterSettings = section(PostgresExporterSettings, "postgres_exporter.")
    alerts: AlertsSettings = section(AlertsSettings, "Which alerts run and where they go.")
    targets: tuple[Target, ...] = many(
        Target,
        "API instances Prometheus scrapes.",
        example='[{address: "host.docker.internal:8000", labels: {service: reference-api}}]',
    )
    cdn: CdnSettings = section(CdnSettings, "Cloudflare CDN: cache, compression and image rules, purge.")

    # Derived facts, so components and renderers agree.
    @property
    def postgres_enabled(self) -> bool:
        return self.postgres_exporter.dsn is not None

    @property
    def redis_container(self) -> bool:
        return self.redis.external_url is None

    def routes(self) -> dict[str, tuple[str, ...]]:
        return {"critical": self.alertmanager.critical, "warning": self.alertmanager.warning}


TOP_LEVEL = [f for f in Settings.__dataclass_fields__.values() if "opt" in f.metadata]


def top_level_keys() -> dict[str, Any]:
    return {camel(f.name): f for f in TOP_LEVEL}


def load(stack: str, raw: Mapping[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()) -> Settings:
    """Validate ``raw`` (top-level keys without the ``perfstack:`` prefix) into Settings.

    ``secret_keys`` names the top-level keys Pulumi holds as secrets; a secret field outside
    them was written in plain text and is refused.
    """
    problems = Problems()
    known = top_level_keys()
    for name in raw:
        if name not in known:
            problems.add(name, "is not a known setting; expected one of: " + ", ".join(sorted(known)))

    values: dict[str, Any] = {}
    for name, f in known.items():
        o: Opt = f.metadata["opt"]
        if name not in raw or raw[name] is None:
            continue
        value = raw[name]
        secret_ok = name in secret_keys
        if o.many:
            if not isinstance(value, list):
                problems.invalid(name, "a list of objects", value)
                continue
            values[f.name] = tuple(
                parse_section(o.section, item, f"{name}[{i}]", problems, secret_ok=secret_ok)  # type: ignore[arg-type]
                for i, item in enumerate(value)
            )
        elif o.section is not None:
            values[f.name] = parse_section(o.section, value, name, problems, secret_ok=secret_ok)
        else:
            try:
                values[f.name] = o.parse(value)  # type: ignore[misc]
            except Invalid as exc:
                problems.invalid(name, exc.expected, value)
    problems.raise_if_any()
    settings = Settings(stack=stack, **values)
    _check_consistency(settings, problems)
    problems.raise_if_any()
    return settings


def _check_consistency(s: Settings, problems: Problems) -> None:
    """Rules that span several keys."""
    p = s.prometheus
    if duration_seconds(p.scrape_timeout) > duration_seconds(p.scrape_interval):
        problems.add(
            "prometheus.scrapeTimeout",
            f"must not exceed prometheus.scrapeInterval ({p.scrape_interval}), got {p.scrape_timeout!r}",
        )
    if "stack" in dict(p.external_labels):
        problems.add("prometheus.externalLabels.stack", "is set by perfstack to the stack name; remove it")
    for i, rw in enumerate(p.remote_write):
        if rw.password is not None and rw.username is None:
            problems.add(f"prometheus.remoteWrite[{i}].password", f"needs prometheus.remoteWrite[{i}].username")
        if rw.bearer_token is not None and (rw.username or rw.password):
            problems.add(f"prometheus.remoteWrite[{i}].bearerToken", "cannot be combined with username/password")
    names = [rw.name for rw in p.remote_write if rw.name]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.add("prometheus.remoteWrite", f"names must be unique, {dup!r} appears twice")

    for name in sorted(set(s.alerts.disabled) & {n for n, _ in s.alerts.routes}):
        problems.add(f"alerts.routes.{name}", "routes an alert that alerts.disabled removes")
    am = s.alertmanager
    configured = {
        "pagerduty": ("alertmanager.pagerduty.routingKey", am.pagerduty.routing_key),
        "slack": ("alertmanager.slack.webhookUrl", am.slack.webhook_url),
        "webhook": ("alertmanager.webhook.url", am.webhook.url),
    }
    for severity, channels in s.routes().items():
        for channel in channels:
            key, value = configured[channel]
            if value is None:
                problems.add(
                    f"alertmanager.{severity}",
                    f"routes to {channel}, which needs the secret {PROJECT}:{key} "
                    f"(pulumi config set --secret --path '{key}' <value>)",
                )
        for dup in sorted({c for c in channels if channels.count(c) > 1}):
            problems.add(f"alertmanager.{severity}", f"lists {dup!r} twice")

    r = s.redis
    if s.redis_container and redis_size_bytes(r.maxmemory) >= r.memory_mb * 1024 * 1024 * 0.9:
        problems.add(
            "redis.maxmemory",
            f"must stay below 90% of redis.memoryMb ({r.memory_mb} MB) to leave room for "
            f"Redis' own overhead, got {r.maxmemory!r}",
        )

    published: dict[int, str] = {}
    for key, value in _published_ports(s):
        if value in published:
            problems.add(key, f"uses host port {value}, already taken by {PROJECT}:{published[value]}")
        else:
            published[value] = key

    seen: dict[tuple[str, str], int] = {}
    for i, t in enumerate(s.targets):
        if (t.job, t.address) in seen:
            problems.add(
                f"targets[{i}].address", f"repeats targets[{seen[(t.job, t.address)]}] ({t.address} in job {t.job})"
            )
        seen.setdefault((t.job, t.address), i)
        first = next(x for x in s.targets if x.job == t.job)
        if (t.metrics_path, t.scheme) != (first.metrics_path, first.scheme):
            problems.add(
                f"targets[{i}]",
                f"shares job {t.job!r} with another target but not its metricsPath and scheme "
                f"({first.scheme}://...{first.metrics_path}); give it its own job",
            )
        if t.job in RESERVED_JOBS:
            problems.add(
                f"targets[{i}].job", f"must not reuse a built-in job name ({', '.join(RESERVED_JOBS)}), got {t.job!r}"
            )

    _check_cdn(s.cdn, problems)


# What each plan lacks, in the order plans grow (FACTS.md §3; Cloudflare's plan pages).
CDN_FEATURE_PLAN = {
    "polish": "pro",
    "webp": "pro",
    "imageTransformations": "pro",
    "regionalTieredCache": "enterprise",
}


def _check_cdn(cdn: CdnSettings, problems: Problems) -> None:
    if not cdn.enabled:
        return
    if cdn.zone_id is None:
        problems.add("cdn.zoneId", "is required when cdn.enabled is true (the zone's id, 32 hex characters)")
    if cdn.manage_zone and not cdn.hostnames:
        problems.add("cdn.hostnames", "is required when cdn.manageZone is true: the hostnames the rules cover")
    rank = CDN_PLANS.index(cdn.plan)
    asked = {
        "polish": cdn.polish not in (None, "off"),
        "webp": bool(cdn.webp),
        "imageTransformations": bool(cdn.image_transformations),
        "regionalTieredCache": cdn.regional_tiered_cache,
    }
    for key, wanted in asked.items():
        needs = CDN_FEATURE_PLAN[key]
        if wanted and rank < CDN_PLANS.index(needs):
            problems.add(f"cdn.{key}", f"needs the {needs} plan or higher; cdn.plan is {cdn.plan}")
    if cdn.webp and cdn.polish == "off":
        problems.add("cdn.webp", "needs cdn.polish lossless or lossy (WebP is part of Polish)")


RESERVED_JOBS = ("prometheus", "alertmanager", "grafana", "redis", "postgres")


def _published_ports(s: Settings) -> Iterator[tuple[str, int]]:
    for name in ("prometheus", "alertmanager", "grafana", "redis", "redisExporter", "postgresExporter"):
        attr = {"redisExporter": "redis_exporter", "postgresExporter": "postgres_exporter"}.get(name, name)
        if name == "redis" and not s.redis_container:
            continue
        if name == "postgresExporter" and not s.postgres_enabled:
            continue
        value = getattr(s, attr).port
        if value is not None:
            yield f"{name}.port", value


# --- Sources ------------------------------------------------------------------------------


def from_pulumi() -> Settings:
    """Read this stack's config from the Pulumi engine (secrets arrive decrypted)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    prefix = f"{PROJECT}:"
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    raw: dict[str, Any] = {}
    secret_keys: set[str] = set()
    known = top_level_keys()
    for full_key in sorted(k for k in keys if k.startswith(prefix)):
        name = full_key[len(prefix) :]
        value = runtime_config.get_config(full_key)
        if value is None:
            continue
        f = known.get(name)
        o: Opt | None = f.metadata["opt"] if f else None
        # Pulumi hands every value over as text; objects and lists as JSON text.
        if o is not None and (o.section is not None or o.many):
            with contextlib.suppress(json.JSONDecodeError):  # the section parser reports the wrong form
                value = json.loads(value)
        raw[name] = value
        if runtime_config.is_config_secret(full_key):
            secret_keys.add(name)
    return load(pulumi.get_stack(), raw, secret_keys)


def stack_file(root: Path, stack: str) -> Path:
    return root / "stacks" / f"Pulumi.{stack}.yaml"


def from_stack_file(root: Path, stack: str) -> Settings:
    """Read ``stacks/Pulumi.<stack>.yaml`` without Pulumi; encrypted values become placeholders."""
    path = stack_file(root, stack)
    if not path.is_file():
        available = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (root / "stacks").glob("Pulumi.*.yaml"))
        raise SettingsError([f"no stack file {path} (stacks: {', '.join(available) or 'none'})"])
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError([f"{path} is not valid YAML: {exc}"]) from None
    config = data.get("config") or {}
    if not isinstance(config, Mapping):
        raise SettingsError([f"{path}: 'config' must be a mapping of keys to values"])
    prefix = f"{PROJECT}:"
    raw: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for full_key, value in config.items():
        if not str(full_key).startswith(prefix):
            continue  # provider config such as docker:host
        name = str(full_key)[len(prefix) :]
        if isinstance(value, Mapping) and set(value) == {SECURE}:
            # A whole top-level key encrypted: nothing to validate beyond its presence.
            secret_keys.add(name)
            value = None
        raw[name] = value
    return load(stack, raw, secret_keys)
