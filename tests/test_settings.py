"""Settings: defaults, every parser's error message, secrets, cross-key rules, stack files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, STACKS

from perfstack.schema import Secret, SettingsError
from perfstack.settings import from_stack_file, load


def problems(raw: dict[str, Any], secret_keys: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    with pytest.raises(SettingsError) as caught:
        load("dev", raw, secret_keys)
    return caught.value.problems


def test_an_empty_stack_gets_the_documented_defaults() -> None:
    s = load("dev", {})
    assert s.bind_address == "127.0.0.1" and s.protect_data is False
    assert s.prometheus.retention == "15d" and s.prometheus.scrape_interval == "15s"
    assert s.redis.maxmemory == "256mb" and s.redis.maxmemory_policy == "allkeys-lru"
    assert s.routes() == {"critical": (), "warning": ()}
    assert s.redis_container and not s.postgres_enabled


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (
            {"prometheus": {"retention": "15 days"}},
            "perfstack:prometheus.retention must be a duration such as 15d, 6h or 30s, got '15 days'",
        ),
        ({"prometheus": {"retentionSize": "10G"}}, "perfstack:prometheus.retentionSize must be a size such as 10GB"),
        ({"prometheus": {"image": "prom/prometheus"}}, "perfstack:prometheus.image must be an image pinned by tag"),
        ({"grafana": {"image": "grafana/grafana:latest"}}, "perfstack:grafana.image must be an image pinned by tag"),
        ({"redis": {"image": "redis:7@sha256:abc"}}, "perfstack:redis.image must be an image pinned by tag"),
        ({"alertmanager": {"port": 0}}, "perfstack:alertmanager.port must be a port number from 1 to 65535"),
        ({"alertmanager": {"port": "9093"}}, "perfstack:alertmanager.port must be a port number"),
        ({"grafana": {"memoryMb": -5}}, "perfstack:grafana.memoryMb must be a positive whole number, got -5"),
        ({"grafana": {"cpus": "lots"}}, "perfstack:grafana.cpus must be a positive number of CPUs"),
        ({"bindAddress": "localhost"}, "perfstack:bindAddress must be an IP address such as 127.0.0.1"),
        ({"grafana": {"memoryMb": None}}, "perfstack:grafana.memoryMb must be a positive whole number, got null"),
        ({"protectData": "yes"}, "perfstack:protectData must be true or false, got 'yes'"),
        ({"redis": {"maxmemory": "lots"}}, "perfstack:redis.maxmemory must be a memory size such as 256mb"),
        ({"redis": {"maxmemoryPolicy": "lru"}}, "perfstack:redis.maxmemoryPolicy must be one of allkeys-lru"),
        ({"alertmanager": {"critical": ["email"]}}, "perfstack:alertmanager.critical must be a list drawn from"),
        ({"alertmanager": {"groupBy": []}}, "perfstack:alertmanager.groupBy must be a non-empty list of label names"),
        ({"prometheus": {"externalLabels": {"__x": "y"}}}, "perfstack:prometheus.externalLabels must be an object"),
        (
            {"prometheus": {"externalLabels": {"stack": "x"}}},
            "perfstack:prometheus.externalLabels.stack is set by perfstack",
        ),
        ({"targets": [{"address": "api"}]}, "perfstack:targets[0].address must be host:port"),
        ({"targets": [{}]}, "perfstack:targets[0].address is required, such as host.docker.internal:8000"),
        (
            {"targets": [{"address": "a:1", "metricsPath": "metrics"}]},
            "perfstack:targets[0].metricsPath must be a URL path",
        ),
        ({"targets": {"address": "a:1"}}, "perfstack:targets must be a list of objects"),
        (
            {"prometheus": {"remoteWrite": [{"url": "mimir:9009"}]}},
            "perfstack:prometheus.remoteWrite[0].url must be an http(s) URL",
        ),
        (
            {"prometheus": {"scrapeTimeout": "20s"}},
            "perfstack:prometheus.scrapeTimeout must not exceed prometheus.scrapeInterval",
        ),
        (
            {"redis": {"maxmemory": "512mb", "memoryMb": 512}},
            "perfstack:redis.maxmemory must stay below 90% of redis.memoryMb",
        ),
        (
            {"grafana": {"port": 9090}},
            "perfstack:grafana.port uses host port 9090, already taken by perfstack:prometheus.port",
        ),
        ({"targets": [{"address": "a:1"}, {"address": "a:1"}]}, "perfstack:targets[1].address repeats targets[0]"),
        (
            {"targets": [{"address": "a:1", "job": "redis"}]},
            "perfstack:targets[0].job must not reuse a built-in job name",
        ),
        (
            {"targets": [{"address": "a:1"}, {"address": "b:1", "scheme": "https"}]},
            "perfstack:targets[1] shares job 'api' with another target but not its metricsPath and scheme",
        ),
        ({"cdn": {"enabled": True}}, "perfstack:cdn.zoneId is required when cdn.enabled is true"),
        ({"prometheus": {"retenion": "30d"}}, "perfstack:prometheus.retenion is not a known setting; expected one of:"),
        ({"promethues": {}}, "perfstack:promethues is not a known setting"),
        ({"prometheus": ["30d"]}, "perfstack:prometheus must be an object with keys image, port"),
    ],
)
def test_each_invalid_value_is_named_with_what_was_given_and_the_expected_form(raw: dict[str, Any], line: str) -> None:
    found = problems(raw)
    assert any(p.startswith(line) for p in found), found


def test_every_problem_is_reported_in_one_run() -> None:
    found = problems({"prometheus": {"retention": "x", "scrapeInterval": "y"}, "grafana": {"port": -1}})
    assert [p.split(" ")[0] for p in found] == [
        "perfstack:prometheus.retention",
        "perfstack:prometheus.scrapeInterval",
        "perfstack:grafana.port",
    ]


def test_a_secret_in_plain_text_is_refused_without_echoing_it() -> None:
    found = problems({"alertmanager": {"slack": {"webhookUrl": "https://hooks.slack.com/services/SECRET"}}})
    assert found == [
        "perfstack:alertmanager.slack.webhookUrl is a secret and must be stored encrypted: "
        "pulumi config set --secret --path 'alertmanager.slack.webhookUrl' <value>"
    ]


def test_a_malformed_secret_is_refused_without_echoing_it() -> None:
    found = problems({"alertmanager": {"webhook": {"url": "not a url with token-123"}}}, {"alertmanager"})
    assert len(found) == 1 and "alertmanager.webhook.url must be an http(s) URL" in found[0]
    assert "token-123" not in found[0] and "<hidden secret>" in found[0]


def test_secrets_held_as_secrets_are_kept_and_never_shown_by_repr() -> None:
    s = load("dev", {"grafana": {"adminPassword": "pa55word"}}, {"grafana"})
    assert isinstance(s.grafana.admin_password, Secret)
    assert s.grafana.admin_password.reveal() == "pa55word"
    assert "pa55word" not in repr(s) and "pa55word" not in str(s.grafana.admin_password)


def test_routing_to_a_channel_needs_its_secret() -> None:
    found = problems({"alertmanager": {"warning": ["slack", "webhook"]}})
    assert any(
        "alertmanager.warning routes to slack, which needs the secret perfstack:alertmanager.slack.webhookUrl" in p
        for p in found
    )
    assert any("routes to webhook" in p for p in found)


def test_valid_values_of_each_form_are_accepted() -> None:
    s = load(
        "prod",
        {
            "bindAddress": "0.0.0.0",
            "prometheus": {
                "image": "quay.io/prometheus/prometheus:v3.5.0@sha256:" + "a" * 64,
                "retention": "1y2w",
                "retentionSize": "512MB",
                "scrapeInterval": "1m",
                "scrapeTimeout": "30s",
                "cpus": 1.5,
                "externalLabels": {"region": "eu-west-1"},
                "remoteWrite": [{"url": "https://mimir.example.com/api/v1/push", "username": "t1", "password": "x"}],
            },
            "redis": {"maxmemory": "1GB", "memoryMb": 2048, "port": None},
            "targets": [{"address": "[::1]:8000", "labels": {"service": "a"}}, {"address": "10.0.0.2:8000"}],
        },
        {"prometheus"},
    )
    assert s.prometheus.cpus == "1.5" and s.prometheus.external_labels == (("region", "eu-west-1"),)
    assert s.redis.maxmemory == "1gb" and s.redis.port is None
    assert s.prometheus.remote_write[0].password is not None


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_file_is_valid_and_holds_no_secret(stack: str) -> None:
    text = (ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text()
    assert "secure:" not in text
    s = from_stack_file(ROOT, stack)
    assert s.stack == stack


def test_only_prod_protects_its_data() -> None:
    assert [from_stack_file(ROOT, s).protect_data for s in STACKS] == [False, False, True]


def test_stack_file_secrets_become_placeholders(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(
        "config:\n  perfstack:redis:\n    password:\n      secure: v1:abcdef\n  docker:host: unix:///var/run/docker.sock\n"
    )
    s = from_stack_file(tmp_path, "dev")
    assert s.redis.password is not None and s.redis.password.value is None
    assert s.redis.password.reveal() == "SECRET-redis-password"


def test_a_missing_stack_file_names_the_stacks_that_exist() -> None:
    with pytest.raises(SettingsError) as caught:
        from_stack_file(ROOT, "qa")
    assert "Pulumi.qa.yaml" in str(caught.value) and "dev, prod, staging" in str(caught.value)
