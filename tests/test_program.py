"""The Pulumi program under mocks, for every stack file, asserted on what the engine receives.

These assertions read the recorded wire inputs (camelCase names, numbers as floats, secrets
wrapped), not perfstack's own objects, so they check the program independently of the code
that builds it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from conftest import FAKE_SECRET, ROOT, SECRET_MARK, SECRET_SIG, STACKS, Registered, run_program, stack_config

PINNED = re.compile(r"^[a-z0-9./_:-]+:(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]*(@sha256:[0-9a-f]{64})?$")


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARK


def unwrap(value: Any) -> Any:
    return value["value"] if is_secret(value) else value


def stack_section(stack: str, key: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    return data.get(f"perfstack:{key}") or {}


def containers(run: Any) -> list[Registered]:
    found = run.mocks.of_type("container:Container")
    assert found, "no containers registered"
    return found


def uploads_secret(container: Registered) -> bool:
    """Pulumi marks the whole ``uploads`` list secret when any file in it is."""
    return is_secret(container.inputs.get("uploads"))


def upload(container: Registered, path: str) -> Any:
    files = unwrap(container.inputs.get("uploads", []))
    for u in files:
        if u["file"] == path:
            return {k: unwrap(v) for k, v in u.items()}
    raise AssertionError(f"{container.name} uploads no {path}: {[u['file'] for u in files]}")


@pytest.fixture(scope="module", params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> Any:
    return request.param, run_program(request.param)


def test_every_container_runs_a_pinned_image_by_its_id(stack_run: Any) -> None:
    stack, run = stack_run
    images = {r.name: r for r in run.mocks.of_type("remoteImage:RemoteImage")}
    for c in containers(run):
        image_name = c.name.replace("-container", "-image")
        assert image_name in images, f"{c.name}: no RemoteImage {image_name}"
        ref = images[image_name].inputs["name"]
        assert PINNED.match(ref), f"{image_name}: image {ref!r} is not pinned by tag"
        assert c.inputs["image"] == f"sha256:{image_name}", f"{c.name} does not run the pulled image's id"
    configured = stack_section(stack, "prometheus").get("image")
    assert images["prometheus-image"].inputs["name"] == (configured or "prom/prometheus:v3.5.0")


def test_every_container_has_healthcheck_restart_limits_labels_and_non_root_user(stack_run: Any) -> None:
    stack, run = stack_run
    for c in containers(run):
        i = c.inputs
        urn = f"{stack}/{c.name}"
        assert i["healthcheck"]["tests"][0] in ("CMD", "CMD-SHELL"), f"{urn}: no healthcheck"
        assert i["restart"] == "unless-stopped", urn
        assert i["memory"] > 0 and float(i["cpus"]) > 0, f"{urn}: no memory/CPU limit"
        labels = {lbl["label"]: lbl["value"] for lbl in i["labels"]}
        assert labels["stack"] == stack and labels["component"], f"{urn}: labels {labels}"
        assert i["user"] not in ("", "0", "root") and not i["user"].startswith("0:"), f"{urn}: runs as root"
        assert i["wait"] is True and i["mustRun"] is True, f"{urn}: up does not wait for health"


def test_healthchecks_use_tools_present_in_each_image(stack_run: Any) -> None:
    _, run = stack_run
    images = {r.name: r.inputs["name"] for r in run.mocks.of_type("remoteImage:RemoteImage")}
    for c in containers(run):
        tests = c.inputs["healthcheck"]["tests"]
        image = images[c.name.replace("-container", "-image")]
        if image.startswith("redis:"):
            assert "redis-cli" in " ".join(tests), c.name
        else:
            assert tests[1] == "wget" and tests[-1].startswith("http://127.0.0.1:"), c.name
        if "redis_exporter" in image:
            assert image.split(":")[1].endswith("-alpine"), "the scratch redis_exporter image has no wget"


def test_memory_limits_follow_the_stack_file(stack_run: Any) -> None:
    stack, run = stack_run
    expected = stack_section(stack, "prometheus").get("memoryMb", 1024)
    assert run.mocks.named("prometheus-container").inputs["memory"] == expected


def test_published_ports_bind_to_loopback_on_the_configured_ports(stack_run: Any) -> None:
    stack, run = stack_run
    for c in containers(run):
        for p in c.inputs.get("ports", []):
            assert p["ip"] == "127.0.0.1", f"{stack}/{c.name} publishes on {p['ip']}"
    defaults = {"prometheus": 9090, "alertmanager": 9093, "grafana": 3000, "redis": 6379}
    for component, default in defaults.items():
        ports = run.mocks.named(f"{component}-container").inputs["ports"]
        assert [p["external"] for p in ports] == [stack_section(stack, component).get("port", default)]
    assert "ports" not in run.mocks.named("redis-exporter-container").inputs, "exporter published by default"


def test_containers_share_one_network_per_stack(stack_run: Any) -> None:
    stack, run = stack_run
    (network,) = run.mocks.of_type("network:Network")
    assert network.inputs["name"] == f"perfstack-{stack}"
    for c in containers(run):
        nets = c.inputs["networksAdvanced"]
        assert [n["name"] for n in nets] == [f"perfstack-{stack}"], c.name
        assert nets[0]["aliases"], f"{c.name} has no alias other containers can reach"


def test_prometheus_scrapes_every_component_and_configured_target_by_reachable_names(stack_run: Any) -> None:
    stack, run = stack_run
    prom = run.mocks.named("prometheus-container")
    config = yaml.safe_load(upload(prom, "/etc/prometheus/prometheus.yml")["content"])
    jobs = {j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]] for j in config["scrape_configs"]}
    assert {"prometheus", "alertmanager", "grafana", "redis", "api"} <= set(jobs), jobs
    aliases = {a: c for c in containers(run) for n in c.inputs["networksAdvanced"] for a in n["aliases"]}
    for job in ("alertmanager", "grafana", "redis"):
        for target in jobs[job]:
            host = target.split(":")[0]
            assert host in aliases, f"job {job} scrapes {target}, but no container has alias {host}"
    expected_api = [t["address"] for t in stack_section(stack, "targets") or []]
    assert jobs["api"] == expected_api
    am_targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am_targets[0].split(":")[0] in aliases
    assert config["global"]["external_labels"]["stack"] == stack


def test_prometheus_flags_set_retention_config_path_and_lifecycle(stack_run: Any) -> None:
    stack, run = stack_run
    prom = run.mocks.named("prometheus-container").inputs
    command = prom["command"]
    retention = stack_section(stack, "prometheus").get("retention", "15d")
    assert f"--storage.tsdb.retention.time={retention}" in command
    assert "--web.enable-lifecycle" in command
    config_flag = next(a for a in command if a.startswith("--config.file="))
    assert config_flag.split("=", 1)[1] in [u["file"] for u in prom["uploads"]]
    data_flag = next(a for a in command if a.startswith("--storage.tsdb.path="))
    assert data_flag.split("=", 1)[1] in [v["containerPath"] for v in prom["volumes"]]
    size = stack_section(stack, "prometheus").get("retentionSize")
    assert (f"--storage.tsdb.retention.size={size}" in command) == bool(size)


def test_secret_files_are_uploaded_as_secrets_and_others_in_plain_text(stack_run: Any) -> None:
    _, run = stack_run
    redis = run.mocks.named("redis-container")
    assert uploads_secret(redis), "redis.conf holds passwords but is not uploaded as a secret"
    redis_conf = upload(redis, "/usr/local/etc/redis/redis.conf")
    assert redis_conf["permissions"] == "0600" and redis_conf["owner"] == "999"
    assert "requirepass generated-redis-password" in redis_conf["content"]
    grafana = run.mocks.named("grafana-container")
    assert uploads_secret(grafana), "the admin password file is not uploaded as a secret"
    password = upload(grafana, "/etc/grafana/secrets/admin_password")
    assert password["content"] == "generated-grafana-admin-password" and password["permissions"] == "0600"
    assert password["owner"] == "472"
    prometheus = run.mocks.named("prometheus-container")
    assert not uploads_secret(prometheus), "prometheus.yml holds no secret and should stay reviewable"
    assert upload(prometheus, "/etc/prometheus/prometheus.yml")["permissions"] == "0644"
    ini = upload(run.mocks.named("grafana-container"), "/etc/grafana/grafana.ini")["content"]
    assert "$__file{/etc/grafana/secrets/admin_password}" in ini
    envs = run.mocks.named("grafana-container").inputs.get("envs") or []
    assert not any("PASSWORD" in str(e) for e in envs)


def test_exporter_password_reaches_redis_exporter_only_as_a_secret(stack_run: Any) -> None:
    _, run = stack_run
    wire = run.mocks.named("redis-exporter-container").inputs["envs"]
    assert is_secret(wire), "the exporter's environment holds a password but is not a secret"
    envs = [unwrap(e) for e in unwrap(wire)]
    assert "REDIS_PASSWORD=generated-redis-exporter-password" in envs
    assert "REDIS_USER=exporter" in envs and "REDIS_ADDR=redis://redis:6379" in envs


def test_password_outputs_are_secret_and_urls_are_plain(stack_run: Any) -> None:
    _, run = stack_run
    assert {"grafanaAdminPassword", "redisPassword"} <= run.secret_outputs
    assert not {"grafanaUrl", "prometheusUrl", "alertmanagerUrl", "alertRouting"} & run.secret_outputs
    assert run.outputs["grafanaAdminPassword"] == "generated-grafana-admin-password"


def test_data_volumes_are_protected_in_prod_only(stack_run: Any) -> None:
    stack, run = stack_run
    volumes = run.mocks.of_type("volume:Volume")
    assert {v.name for v in volumes} == {"prometheus-data", "alertmanager-data", "grafana-data", "redis-data"}
    for v in volumes:
        opts = run.options[v.name]
        protected = stack == "prod"
        assert opts["protect"] is protected and opts["retain_on_delete"] is protected, f"{stack}/{v.name}: {opts}"


def test_data_lives_on_the_named_volumes(stack_run: Any) -> None:
    stack, run = stack_run
    paths = {
        "prometheus": "/prometheus",
        "alertmanager": "/alertmanager",
        "grafana": "/var/lib/grafana",
        "redis": "/data",
    }
    for component, path in paths.items():
        volumes = run.mocks.named(f"{component}-container").inputs["volumes"]
        assert volumes == [{"volumeName": f"perfstack-{stack}-{component}-data", "containerPath": path}]


def test_containers_are_children_of_components_and_replaced_delete_first(stack_run: Any) -> None:
    _, run = stack_run
    for c in containers(run):
        opts = run.options[c.name]
        assert opts["parent"] is not None, f"{c.name} has no parent component"
        assert opts["delete_before_replace"], f"{c.name}: a fixed-name container must be deleted before replacement"


def test_a_stack_without_receivers_routes_to_null_and_says_so(stack_run: Any) -> None:
    _, run = stack_run
    assert "null receiver" in run.outputs["alertRouting"]
    container = run.mocks.named("alertmanager-container")
    am = yaml.safe_load(upload(container, "/etc/alertmanager/alertmanager.yml")["content"])
    assert [r["name"] for r in am["receivers"]] == ["null", "watchdog"]


def test_no_postgres_exporter_without_a_dsn(stack_run: Any) -> None:
    _, run = stack_run
    assert not [c for c in containers(run) if "postgres" in c.name]


# --- Config variations -----------------------------------------------------------------------


def with_dev(**changes: Any) -> dict[str, Any]:
    config, _ = stack_config("dev")
    merged: dict[str, Any] = {k.split(":", 1)[1]: yaml.safe_load(v) for k, v in config.items()}
    merged.update(changes)
    return merged


def test_receivers_from_secret_config_route_critical_and_warning() -> None:
    config = with_dev(
        alertmanager={
            "critical": ["pagerduty", "slack"],
            "warning": ["slack"],
            "pagerduty": {"routingKey": "pd-key-123"},
            "slack": {"webhookUrl": "https://hooks.slack.com/services/T/B/C", "channel": "#oncall"},
        }
    )
    run = run_program("dev", config, secret_keys=["alertmanager"])
    container = run.mocks.named("alertmanager-container")
    assert uploads_secret(container), "alertmanager.yml with receiver credentials must be a secret"
    am = yaml.safe_load(upload(container, "/etc/alertmanager/alertmanager.yml")["content"])
    receivers = {r["name"]: r for r in am["receivers"]}
    assert receivers["critical"]["pagerduty_configs"][0]["routing_key"] == "pd-key-123"
    assert receivers["critical"]["slack_configs"][0]["channel"] == "#oncall"
    assert "pagerduty_configs" not in receivers["warning"]
    routes = {r["matchers"][0]: r["receiver"] for r in am["route"]["routes"]}
    assert routes['severity="critical"'] == "critical" and routes['severity="warning"'] == "warning"
    assert routes['alertname="Watchdog"'] == "watchdog"
    assert run.outputs["alertRouting"] == "critical -> pagerduty, slack; warning -> slack"


def test_configured_passwords_replace_generated_ones() -> None:
    config = with_dev(grafana={"adminPassword": "test-admin-password"}, redis={"password": "test-redis-password"})
    run = run_program("dev", config, secret_keys=["grafana", "redis"])
    generated = {r.name for r in run.mocks.of_type("randomPassword:RandomPassword")}
    assert generated == {"redis-exporter-password"}
    assert run.outputs["grafanaAdminPassword"] == "test-admin-password"
    assert {"grafanaAdminPassword", "redisPassword"} <= run.secret_outputs
    redis = run.mocks.named("redis-container")
    conf = upload(redis, "/usr/local/etc/redis/redis.conf")["content"]
    assert uploads_secret(redis) and "requirepass test-redis-password" in conf


def test_postgres_exporter_is_created_with_a_secret_dsn_and_scraped() -> None:
    dsn = "postgresql://monitor:pw@host.docker.internal:5432/app?sslmode=disable"
    run = run_program("dev", with_dev(postgresExporter={"dsn": dsn}), secret_keys=["postgresExporter"])
    exporter = run.mocks.named("postgres-exporter-container").inputs
    assert is_secret(exporter["envs"])
    assert [unwrap(e) for e in unwrap(exporter["envs"])] == [f"DATA_SOURCE_NAME={dsn}"]
    assert "--collector.stat_statements" in exporter["command"]
    prom = yaml.safe_load(upload(run.mocks.named("prometheus-container"), "/etc/prometheus/prometheus.yml")["content"])
    assert "postgres" in [j["job_name"] for j in prom["scrape_configs"]]


def test_external_redis_replaces_the_container_and_the_exporter_watches_it() -> None:
    url = "rediss://:pw@cache.example.com:6380/0"
    run = run_program("dev", with_dev(redis={"externalUrl": url}), secret_keys=["redis"])
    names = {r.name for r in run.mocks.resources}
    assert "redis-container" not in names and "redis-data" not in names
    wire = run.mocks.named("redis-exporter-container").inputs["envs"]
    assert is_secret(wire) and [unwrap(e) for e in unwrap(wire)] == [f"REDIS_ADDR={url}"]
    assert not run.mocks.of_type("randomPassword:RandomPassword") or all(
        "redis" not in r.name for r in run.mocks.of_type("randomPassword:RandomPassword")
    )


def test_rule_files_in_alerts_generated_are_uploaded_and_referenced(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    (tmp_path / "alerts" / "generated").mkdir(parents=True)
    rules = "groups:\n- name: example.rules\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n"
    (tmp_path / "alerts" / "generated" / "example.yml").write_text(rules)
    (tmp_path / "dashboards" / "generated").mkdir(parents=True)
    (tmp_path / "dashboards" / "generated" / "api.json").write_text('{"uid": "api", "title": "API"}\n')
    run = run_program("dev", root=tmp_path)
    prom = run.mocks.named("prometheus-container")
    assert upload(prom, "/etc/prometheus/rules/example.yml")["content"] == rules
    config = yaml.safe_load(upload(prom, "/etc/prometheus/prometheus.yml")["content"])
    assert config["rule_files"] == ["rules/example.yml"]
    grafana = run.mocks.named("grafana-container")
    assert upload(grafana, "/etc/grafana/dashboards/api.json")["content"].startswith('{"uid": "api"')
    provider = yaml.safe_load(upload(grafana, "/etc/grafana/provisioning/dashboards/perfstack.yml")["content"])
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"


# --- Invalid config: a clear error and nothing registered -------------------------------------


BAD = [
    ({"prometheus": {"retention": "15 days"}}, [], "perfstack:prometheus.retention must be a duration such as 15d"),
    (
        {"prometheus": {"image": "prom/prometheus:latest"}},
        [],
        "perfstack:prometheus.image must be an image pinned by tag",
    ),
    ({"grafana": {"port": 70000}}, [], "perfstack:grafana.port must be a port number"),
    ({"bindAddress": "localhost"}, [], "perfstack:bindAddress must be an IP address"),
    ({"redis": {"password": "hunter2"}}, [], "perfstack:redis.password is a secret and must be stored encrypted"),
    ({"alertmanager": {"critical": ["pagerduty"]}}, [], "perfstack:alertmanager.critical routes to pagerduty"),
    ({"targets": [{"address": "no-port"}]}, [], "perfstack:targets[0].address must be host:port"),
    ({"prometheus": {"retenion": "30d"}}, [], "perfstack:prometheus.retenion is not a known setting"),
    ({"redis": {"maxmemory": "1gb", "memoryMb": 512}}, [], "perfstack:redis.maxmemory must stay below 90%"),
    ({"prometheus": "30d"}, [], "perfstack:prometheus must be an object"),
]


@pytest.mark.parametrize(("config", "secret_keys", "message"), BAD, ids=[m.split(" ")[0] for _, _, m in BAD])
def test_invalid_config_fails_with_a_clear_error_and_registers_nothing(
    config: dict[str, Any], secret_keys: list[str], message: str
) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        run_program("dev", config, secret_keys=secret_keys)
    text = str(caught.value)
    assert message in text
    assert "hunter2" not in text


def test_invalid_config_registers_no_resource() -> None:
    from conftest import RecordingMocks

    import perfstack.program as program

    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="perfstack", stack="dev", preview=False)
    pulumi.runtime.set_all_config({"perfstack:prometheus": '{"retention": "15 days"}'}, [])

    @pulumi.runtime.test
    def run() -> Any:
        return program.build(ROOT)

    with pytest.raises(pulumi.RunError):
        run()
    assert mocks.resources == []


def test_fake_secret_helper_marks_encrypted_stack_values() -> None:
    # Guards the fixture itself: an encrypted value in a stack file becomes a secret key.
    config, keys = stack_config("dev")
    assert FAKE_SECRET not in "".join(config.values()) and keys == []
