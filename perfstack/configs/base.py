"""Shared pieces of the renderers: the File record, repository content and secrets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..schema import Secret, placeholder
from ..settings import Settings

HEADER = "DO NOT EDIT: rendered by perfstack from stacks/Pulumi.{stack}.yaml ({what})."

# Passwords perfstack generates (pulumi-random) when the stack does not set them.
GENERATED = {
    "grafana.adminPassword": "grafana",
    "redis.password": "redis",
    "redis.exporterPassword": "redis",
}


@dataclass(frozen=True)
class File:
    """One file for one container."""

    component: str  # prometheus | alertmanager | grafana | redis
    path: str  # relative to the component's folder in a render
    container_path: str  # absolute path inside the container
    content: str
    owner: str  # numeric uid of the image's user: the file is readable by it alone when secret
    secret: bool = False

    @property
    def key(self) -> str:
        return f"{self.component}/{self.path}"

    @property
    def permissions(self) -> str:
        return "0600" if self.secret else "0644"

    def with_secret(self, secret: bool) -> File:
        return dataclasses.replace(self, secret=secret)


@dataclass(frozen=True)
class Content:
    """What users edit at the top of the repository and perfstack ships into containers."""

    rule_files: Mapping[str, str] = field(default_factory=dict)  # "api.yml" -> text
    dashboards: Mapping[str, str] = field(default_factory=dict)  # "api.json" -> text


def load_content(root: Path) -> Content:
    """Generated rule files (alerts/generated/*.yml) and dashboards (dashboards/generated/*.json)."""
    rules = {p.name: p.read_text() for p in sorted((root / "alerts" / "generated").glob("*.yml"))}
    dashboards = {p.name: p.read_text() for p in sorted((root / "dashboards" / "generated").glob("*.json"))}
    return Content(rule_files=rules, dashboards=dashboards)


def _walk(value: Any) -> Iterator[Secret]:
    if isinstance(value, Secret):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _walk(item)


def secret_fields(settings: Settings) -> dict[str, Secret | None]:
    """Every secret the renderers may need: configured ones, and generated ones (None)."""
    found: dict[str, Secret | None] = {s.key: s for s in _walk(settings)}
    for key, component in GENERATED.items():
        if component == "redis" and not settings.redis_container:
            continue
        found.setdefault(key, None)
    return found


def placeholder_secrets(settings: Settings) -> dict[str, str]:
    """Stand-ins of the right form for every secret (what ``perfstack render`` writes)."""
    return {key: placeholder(key, s.kind if s is not None else "text") for key, s in secret_fields(settings).items()}


def dump_yaml(data: Any, header: str) -> str:
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)
    return f"# {header}\n{body}"


@dataclass(frozen=True)
class Service:
    """How a component is reached on the stack's network, and who runs it in its image."""

    alias: str  # network alias, also the host name other containers use
    port: int  # port inside the container
    user: str  # the image's own non-root user (FACTS.md §5)

    @property
    def address(self) -> str:
        return f"{self.alias}:{self.port}"


SERVICES = {
    "prometheus": Service("prometheus", 9090, "65534"),  # nobody
    "alertmanager": Service("alertmanager", 9093, "65534"),  # nobody
    "grafana": Service("grafana", 3000, "472"),  # grafana, gid 0
    "redis": Service("redis", 6379, "999"),  # redis
    "redis-exporter": Service("redis-exporter", 9121, "59000"),
    "postgres-exporter": Service("postgres-exporter", 9187, "65534"),  # nobody
}
