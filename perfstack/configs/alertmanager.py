"""alertmanager.yml: severity routing, grouping, inhibition and the configured receivers.

critical pages, warning opens a ticket, info only adds context. A severity with no
channel configured goes to the ``null`` receiver, so a stack with no receiver still starts
(``describe_routes`` says so in a stack output). Only syntax that amtool 0.25 (CI) and
Alertmanager 0.28+ (the image) both accept: classic ``matchers``, no ``url_file``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..settings import Settings
from .base import HEADER, SERVICES, File, dump_yaml

CONFIG_DIR = "/etc/alertmanager"
DATA_DIR = "/alertmanager"
NULL = "null"
WATCHDOG = "watchdog"


def command() -> list[str]:
    return [
        f"--config.file={CONFIG_DIR}/alertmanager.yml",
        f"--storage.path={DATA_DIR}",
        # One node: no gossip listener on 9094.
        "--cluster.listen-address=",
    ]


def describe_routes(settings: Settings) -> str:
    """One line for the stack output ``alertRouting``."""
    routes = settings.routes()
    if not any(routes.values()):
        return "no receiver configured: every alert goes to the null receiver (set alertmanager.critical/warning)"
    return "; ".join(f"{sev} -> {', '.join(chans) if chans else 'null receiver'}" for sev, chans in routes.items())


def _receiver(name: str, channels: tuple[str, ...], settings: Settings, secrets: Mapping[str, str]) -> dict[str, Any]:
    am = settings.alertmanager
    receiver: dict[str, Any] = {"name": name}
    for channel in channels:
        if channel == "pagerduty":
            assert am.pagerduty.routing_key is not None
            receiver["pagerduty_configs"] = [
                {
                    "routing_key": secrets[am.pagerduty.routing_key.key],
                    "send_resolved": True,
                    "severity": "{{ .CommonLabels.severity }}",
                    "description": "{{ .CommonAnnotations.summary }}",
                }
            ]
        elif channel == "slack":
            assert am.slack.webhook_url is not None
            receiver["slack_configs"] = [
                {
                    "api_url": secrets[am.slack.webhook_url.key],
                    "channel": am.slack.channel,
                    "send_resolved": True,
                    "title": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})",
                    "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n"
                    "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}",
                }
            ]
        elif channel == "webhook":
            assert am.webhook.url is not None
            receiver["webhook_configs"] = [{"url": secrets[am.webhook.url.key], "send_resolved": True}]
    return receiver


def alertmanager_yml(settings: Settings, secrets: Mapping[str, str]) -> str:
    am = settings.alertmanager
    watchdog: dict[str, Any] = {"name": WATCHDOG}
    if am.watchdog.url is not None:
        watchdog["webhook_configs"] = [{"url": secrets[am.watchdog.url.key], "send_resolved": False}]
    routes: list[dict[str, Any]] = [
        # The always-firing dead man's switch goes to its own receiver, never to people, and is
        # re-sent often: the switch on the other end alarms when the pings stop.
        {
            "receiver": WATCHDOG,
            "matchers": ['alertname="Watchdog"'],
            "group_wait": "0s",
            "group_interval": "1m",
            "repeat_interval": "1m",
        },
    ]
    receivers: list[dict[str, Any]] = [{"name": NULL}, watchdog]
    severity_receiver = {sev: (sev if chans else NULL) for sev, chans in settings.routes().items()}
    severity_receiver[NULL] = NULL
    for alert, target in settings.alerts.routes:  # per-alert overrides from perfstack:alerts.routes
        routes.append({"receiver": severity_receiver[target], "matchers": [f'alertname="{alert}"']})
    for severity, channels in settings.routes().items():
        if channels:
            receivers.append(_receiver(severity, channels, settings, secrets))
        routes.append({"receiver": severity_receiver[severity], "matchers": [f'severity="{severity}"']})
    routes.append({"receiver": NULL, "matchers": ['severity="info"']})
    config = {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": NULL,
            "group_by": list(am.group_by),
            "group_wait": am.group_wait,
            "group_interval": am.group_interval,
            "repeat_interval": am.repeat_interval,
            "routes": routes,
        },
        "inhibit_rules": [
            {
                # A page already says it: mute the ticket for the same alert on the same target.
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["alertname", "job", "instance"],
            }
        ],
        "receivers": receivers,
    }
    return dump_yaml(config, HEADER.format(stack=settings.stack, what="Alertmanager configuration"))


def alertmanager_files(settings: Settings, secrets: Mapping[str, str]) -> list[File]:
    return [
        File(
            "alertmanager",
            "alertmanager.yml",
            f"{CONFIG_DIR}/alertmanager.yml",
            alertmanager_yml(settings, secrets),
            SERVICES["alertmanager"].user,
        )
    ]
