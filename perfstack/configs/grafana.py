"""grafana.ini and provisioning: datasources with fixed uids, a file dashboard provider.

The admin password is a file of its own, read by grafana.ini's ``$__file{}`` expansion, so
it is never in the container's environment or in grafana.ini.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..settings import Settings
from .base import HEADER, SERVICES, Content, File, dump_yaml

PROMETHEUS_UID = "prometheus"
ALERTMANAGER_UID = "alertmanager"
CONFIG_DIR = "/etc/grafana"
DATA_DIR = "/var/lib/grafana"
# Outside the data volume, so a dashboard removed from the repository leaves Grafana too.
DASHBOARDS_DIR = "/etc/grafana/dashboards"
PASSWORD_FILE = "/etc/grafana/secrets/admin_password"


def root_url(settings: Settings) -> str:
    g = settings.grafana
    if g.root_url:
        return g.root_url
    host = "localhost" if settings.bind_address in ("127.0.0.1", "0.0.0.0", "::", "::1") else settings.bind_address
    return f"http://{host}:{g.port or SERVICES['grafana'].port}/"


def grafana_ini(settings: Settings) -> str:
    g = settings.grafana
    header = HEADER.format(stack=settings.stack, what="Grafana configuration")
    return f"""; {header}
[server]
http_port = {SERVICES["grafana"].port}
root_url = {root_url(settings)}

[paths]
provisioning = {CONFIG_DIR}/provisioning

[security]
admin_user = {g.admin_user}
admin_password = $__file{{{PASSWORD_FILE}}}
disable_gravatar = true
cookie_samesite = lax

[users]
allow_sign_up = false
allow_org_create = false

[auth.anonymous]
enabled = false

[analytics]
reporting_enabled = false
check_for_updates = false
check_for_plugin_updates = false

[metrics]
enabled = true
"""


def datasources_yml(settings: Settings) -> str:
    data = {
        "apiVersion": 1,
        "prune": True,  # datasources removed here are removed from Grafana
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": PROMETHEUS_UID,
                "access": "proxy",
                "url": f"http://{SERVICES['prometheus'].address}",
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "httpMethod": "POST",
                    "timeInterval": settings.prometheus.scrape_interval,
                    "prometheusType": "Prometheus",
                },
            },
            {
                "name": "Alertmanager",
                "type": "alertmanager",
                "uid": ALERTMANAGER_UID,
                "access": "proxy",
                "url": f"http://{SERVICES['alertmanager'].address}",
                "editable": False,
                "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
            },
        ],
    }
    return dump_yaml(data, HEADER.format(stack=settings.stack, what="Grafana datasources"))


def dashboards_yml(settings: Settings) -> str:
    data = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "perfstack",
                "orgId": 1,
                "folder": "perfstack",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,  # the repository is the source of truth
                "updateIntervalSeconds": 60,
                "options": {"path": DASHBOARDS_DIR},
            }
        ],
    }
    return dump_yaml(data, HEADER.format(stack=settings.stack, what="Grafana dashboard provider"))


def grafana_files(settings: Settings, content: Content, secrets: Mapping[str, str]) -> list[File]:
    uid = SERVICES["grafana"].user
    files = [
        File("grafana", "grafana.ini", f"{CONFIG_DIR}/grafana.ini", grafana_ini(settings), uid),
        File(
            "grafana",
            "provisioning/datasources/perfstack.yml",
            f"{CONFIG_DIR}/provisioning/datasources/perfstack.yml",
            datasources_yml(settings),
            uid,
        ),
        File(
            "grafana",
            "provisioning/dashboards/perfstack.yml",
            f"{CONFIG_DIR}/provisioning/dashboards/perfstack.yml",
            dashboards_yml(settings),
            uid,
        ),
        File("grafana", "secrets/admin_password", PASSWORD_FILE, secrets["grafana.adminPassword"], uid),
    ]
    files += [
        File("grafana", f"dashboards/{name}", f"{DASHBOARDS_DIR}/{name}", text, uid)
        for name, text in sorted(content.dashboards.items())
    ]
    return files
