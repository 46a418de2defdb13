"""Rendered files: settings + content + secrets -> the files each container receives.

One code path serves ``pulumi up`` (which uploads the files) and ``perfstack render``
(which writes them to a folder for promtool, amtool and redis-server)::

    from perfstack.configs import render, placeholder_secrets
    files = render(settings, content, placeholder_secrets(settings))
    files["prometheus/prometheus.yml"].content

Every secret reaches the renderers through ``secrets`` (never from ``Settings`` directly),
so the same call with placeholders tells which files hold a secret: exactly those whose
text contains a placeholder. Those files are uploaded as Pulumi secrets, mode 0600.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..settings import Settings
from .alertmanager import alertmanager_files
from .base import Content, File, load_content, placeholder_secrets, secret_fields
from .grafana import grafana_files
from .prometheus import prometheus_files
from .redis import redis_files

__all__ = ["Content", "File", "load_content", "placeholder_secrets", "render", "secret_fields"]


def render(settings: Settings, content: Content, secrets: Mapping[str, str]) -> dict[str, File]:
    """All files of the stack, keyed by their path relative to the render folder."""
    _check_alert_names(settings, content)
    placeholders = placeholder_secrets(settings)
    missing = sorted(set(placeholders) - set(secrets))
    if missing:
        raise KeyError(f"render needs values for secrets: {', '.join(missing)}")
    # Which files hold a secret is decided on the placeholder render, whatever the real
    # values look like (a short secret such as "k" must not make every file secret).
    flagged = {
        f.key: f.with_secret(any(p in f.content for p in placeholders.values()))
        for f in _files(settings, content, placeholders)
    }
    if dict(secrets) == placeholders:
        return flagged
    return {f.key: f.with_secret(flagged[f.key].secret) for f in _files(settings, content, secrets)}


def _check_alert_names(settings: Settings, content: Content) -> None:
    """perfstack:alerts names alerts that exist in the rule files the stack runs."""
    from ..rules.build import alert_names
    from ..schema import Problems

    known = alert_names(dict(content.rule_files))
    problems = Problems()
    named = [("alerts.disabled", n) for n in settings.alerts.disabled]
    named += [(f"alerts.routes.{n}", n) for n, _ in settings.alerts.routes]
    for key, name in named:
        if name not in known:
            problems.add(key, f"names no alert in alerts/generated/: {name!r} (known: {', '.join(sorted(known))})")
    problems.raise_if_any()


def _files(settings: Settings, content: Content, secrets: Mapping[str, str]) -> list[File]:
    files: list[File] = []
    files += prometheus_files(settings, content, secrets)
    files += alertmanager_files(settings, secrets)
    files += grafana_files(settings, content, secrets)
    if settings.redis_container:
        files += redis_files(settings, secrets)
    return files
