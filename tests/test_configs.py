"""The renderers: what each file says for a given stack, and which files count as secret."""

from __future__ import annotations

import configparser
from typing import Any

import pytest
import yaml

from perfstack.configs import Content, placeholder_secrets, render
from perfstack.configs.prometheus import command
from perfstack.settings import load


def files_for(raw: dict[str, Any], secret_keys: set[str] = frozenset(), content: Content | None = None) -> dict:  # type: ignore[assignment]
    settings = load("dev", raw, secret_keys)
    return render(settings, content or Content(), placeholder_secrets(settings))


def prometheus_yml(raw: dict[str, Any], secret_keys: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    return yaml.safe_load(files_for(raw, secret_keys)["prometheus/prometheus.yml"].content)


def test_rendered_files_say_do_not_edit() -> None:
    for key, f in files_for({}).items():
        if key.endswith((".yml", ".ini", ".conf")):
            assert "DO NOT EDIT" in f.content.splitlines()[0], key


def test_remote_write_carries_basic_auth_and_makes_prometheus_yml_secret() -> None:
    files = files_for(
        {
            "prometheus": {
                "remoteWrite": [
                    {
                        "url": "https://mimir.example.com/api/v1/push",
                        "name": "mimir",
                        "username": "tenant-1",
                        "password": "pw",
                    },
                    {"url": "https://vm.example.com/api/v1/write", "bearerToken": "tok"},
                ]
            }
        },
        {"prometheus"},
    )
    f = files["prometheus/prometheus.yml"]
    rw = yaml.safe_load(f.content)["remote_write"]
    assert rw[0] == {
        "url": "https://mimir.example.com/api/v1/push",
        "name": "mimir",
        "basic_auth": {"username": "tenant-1", "password": "SECRET-prometheus-remoteWrite-0-password"},
    }
    assert rw[1]["authorization"] == {"type": "Bearer", "credentials": "SECRET-prometheus-remoteWrite-1-bearerToken"}
    assert f.secret and f.permissions == "0600"


def test_prometheus_yml_without_credentials_is_not_secret() -> None:
    f = files_for({})["prometheus/prometheus.yml"]
    assert not f.secret and "remote_write" not in yaml.safe_load(f.content)


def test_external_labels_are_added_to_the_stack_label() -> None:
    config = prometheus_yml({"prometheus": {"externalLabels": {"region": "eu"}}})
    assert config["global"]["external_labels"] == {"stack": "dev", "region": "eu"}


def test_targets_are_grouped_into_one_job_each_with_their_labels() -> None:
    config = prometheus_yml(
        {
            "targets": [
                {"address": "a:8000", "labels": {"service": "pay"}},
                {"address": "b:8000"},
                {"address": "c:9000", "job": "worker", "metricsPath": "/internal/metrics", "scheme": "https"},
            ]
        }
    )
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["api"]["static_configs"] == [
        {"targets": ["a:8000"], "labels": {"service": "pay"}},
        {"targets": ["b:8000"]},
    ]
    assert jobs["worker"]["metrics_path"] == "/internal/metrics" and jobs["worker"]["scheme"] == "https"


def test_rule_files_are_listed_in_name_order() -> None:
    settings = load("dev", {})
    content = Content(rule_files={"slo.yml": "groups: []\n", "api.yml": "groups: []\n"})
    files = render(settings, content, placeholder_secrets(settings))
    assert yaml.safe_load(files["prometheus/prometheus.yml"].content)["rule_files"] == [
        "rules/api.yml",
        "rules/slo.yml",
    ]
    assert files["prometheus/rules/slo.yml"].container_path == "/etc/prometheus/rules/slo.yml"


def test_retention_flags_follow_settings() -> None:
    args = command(load("dev", {"prometheus": {"retention": "30d", "retentionSize": "20GB"}}))
    assert "--storage.tsdb.retention.time=30d" in args and "--storage.tsdb.retention.size=20GB" in args
    assert not any("retention.size" in a for a in command(load("dev", {})))


def test_alertmanager_inhibits_warning_when_critical_fires_for_the_same_alert() -> None:
    am = yaml.safe_load(files_for({})["alertmanager/alertmanager.yml"].content)
    (rule,) = am["inhibit_rules"]
    assert rule["source_matchers"] == ['severity="critical"'] and rule["target_matchers"] == ['severity="warning"']
    assert "alertname" in rule["equal"]


def test_alertmanager_webhook_receiver_is_rendered_for_both_severities() -> None:
    files = files_for(
        {
            "alertmanager": {
                "critical": ["webhook"],
                "warning": ["webhook"],
                "webhook": {"url": "https://hooks.example.com/am"},
                "groupBy": ["alertname", "service"],
                "repeatInterval": "1h",
            }
        },
        {"alertmanager"},
    )
    f = files["alertmanager/alertmanager.yml"]
    am = yaml.safe_load(f.content)
    receivers = {r["name"]: r for r in am["receivers"]}
    assert receivers["critical"]["webhook_configs"] == [
        {"url": "https://secret.invalid/alertmanager-webhook-url", "send_resolved": True}
    ]
    assert am["route"]["group_by"] == ["alertname", "service"] and am["route"]["repeat_interval"] == "1h"
    assert f.secret


def test_grafana_ini_turns_off_anonymous_access_and_sign_up() -> None:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(
        files_for({"grafana": {"adminUser": "ops", "rootUrl": "https://grafana.example.com/"}})[
            "grafana/grafana.ini"
        ].content
    )
    assert ini["auth.anonymous"]["enabled"] == "false" and ini["users"]["allow_sign_up"] == "false"
    assert ini["security"]["admin_user"] == "ops" and ini["server"]["root_url"] == "https://grafana.example.com/"


def test_grafana_datasources_have_fixed_uids_and_prometheus_is_default() -> None:
    ds = yaml.safe_load(
        files_for({"prometheus": {"scrapeInterval": "30s", "scrapeTimeout": "10s"}})[
            "grafana/provisioning/datasources/perfstack.yml"
        ].content
    )
    by_uid = {d["uid"]: d for d in ds["datasources"]}
    assert set(by_uid) == {"prometheus", "alertmanager"}
    assert by_uid["prometheus"]["isDefault"] and by_uid["prometheus"]["jsonData"]["timeInterval"] == "30s"
    assert by_uid["alertmanager"]["jsonData"]["implementation"] == "prometheus"


@pytest.mark.parametrize(("appendonly", "expected"), [(True, "appendonly yes"), (False, "appendonly no")])
def test_redis_persistence_follows_appendonly(appendonly: bool, expected: str) -> None:
    conf = files_for({"redis": {"appendonly": appendonly, "maxmemory": "100mb"}})["redis/redis.conf"].content
    assert expected in conf.splitlines() and "maxmemory 100mb" in conf.splitlines()


def test_no_redis_conf_for_an_external_redis() -> None:
    files = files_for({"redis": {"externalUrl": "redis://cache:6379"}}, {"redis"})
    assert "redis/redis.conf" not in files


def test_files_holding_a_secret_are_marked_and_readable_only_by_the_image_user() -> None:
    files = files_for({})
    secret = {k for k, f in files.items() if f.secret}
    assert secret == {"redis/redis.conf", "grafana/secrets/admin_password"}
    assert files["redis/redis.conf"].owner == "999" and files["grafana/secrets/admin_password"].owner == "472"


def test_render_refuses_to_run_without_every_secret() -> None:
    settings = load("dev", {})
    with pytest.raises(KeyError, match=r"redis\.password"):
        render(settings, Content(), {"grafana.adminPassword": "x", "redis.exporterPassword": "y"})


def test_a_short_secret_value_does_not_make_every_file_secret() -> None:
    settings = load(
        "dev",
        {"alertmanager": {"critical": ["pagerduty"], "pagerduty": {"routingKey": "k"}}},
        {"alertmanager"},
    )
    values = {**placeholder_secrets(settings), "alertmanager.pagerduty.routingKey": "k"}
    files = render(settings, Content(), values)
    assert {k for k, f in files.items() if f.secret} == {
        "alertmanager/alertmanager.yml",
        "redis/redis.conf",
        "grafana/secrets/admin_password",
    }
    assert "routing_key: k" in files["alertmanager/alertmanager.yml"].content
