"""Rules as code: naming conventions, the threshold/bucket build check, drift, per-stack overrides."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from perfstack import configs, slo
from perfstack.cli import main
from perfstack.rules import Alert, Group, Recording
from perfstack.rules import build as rules_build
from perfstack.rules.model import RuleError
from perfstack.schema import SettingsError
from perfstack.settings import load

GENERATED = sorted((ROOT / "alerts" / "generated").glob("*.yml"))
RULES = [r for p in GENERATED for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"]]
ALERT_CONTRACT = {
    "ApiAvailabilityBudgetBurn", "ApiLatencyBudgetBurn", "ApiHighErrorRate", "ApiHighLatencyP95",
    "DbQueryLatencyHigh", "DbSlowQueries", "DbPoolSaturated", "CacheHitRateLow", "RedisDown",
    "RedisMemoryHigh", "RedisEvictions", "TargetDown", "PrometheusRuleFailures",
    "PrometheusConfigReloadFailed", "AlertmanagerFailedToSendAlerts", "Watchdog",
}  # fmt: skip


def test_the_committed_rule_files_match_the_code() -> None:
    assert rules_build.stale(ROOT) == []


def test_every_alert_of_the_contract_exists_and_no_other() -> None:
    assert {r["alert"] for r in RULES if "alert" in r} == ALERT_CONTRACT


def test_every_recording_rule_is_named_level_metric_operations_without_total_after_rate() -> None:
    records = [r["record"] for r in RULES if "record" in r]
    assert len(records) > 40
    for name in records:
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), name
        assert not ("_total:" in name and "rate" in name.split(":")[2]), name


def test_every_alert_has_severity_static_summary_templated_description_and_runbook() -> None:
    for r in (r for r in RULES if "alert" in r):
        assert r["labels"]["severity"] in ("critical", "warning", "info"), r["alert"]
        annotations = r["annotations"]
        assert "{{" not in annotations["summary"], r["alert"]
        assert annotations["runbook_url"].endswith("#" + r["alert"].lower())
        assert annotations["description"]


def test_burn_rate_alerts_page_and_ticket_with_the_workbook_factors() -> None:
    for name in ("ApiAvailabilityBudgetBurn", "ApiLatencyBudgetBurn"):
        severities = sorted(r["labels"]["severity"] for r in RULES if r.get("alert") == name)
        assert severities == ["critical", "warning"]
    page = next(
        r for r in RULES if r.get("alert") == "ApiAvailabilityBudgetBurn" and r["labels"]["severity"] == "critical"
    )
    assert "ratio_rate1h > 0.0072" in page["expr"] and "ratio_rate5m > 0.0072" in page["expr"]  # 14.4 x 0.05 %
    assert "ratio_rate6h > 0.003" in page["expr"]  # 6 x 0.05 %
    assert [(b.factor, b.long, b.short) for b in slo.BURN_RATE_WINDOWS] == [
        (14.4, "1h", "5m"), (6, "6h", "30m"), (3, "1d", "2h"), (1, "3d", "6h"),
    ]  # fmt: skip


def test_rate_based_alerts_carry_the_low_traffic_guard() -> None:
    guarded = {"ApiAvailabilityBudgetBurn", "ApiLatencyBudgetBurn", "ApiHighErrorRate", "ApiHighLatencyP95"}
    for r in (r for r in RULES if r.get("alert") in guarded):
        assert "job:api_requests:rate" in r["expr"] and f"> {slo.fmt(slo.MIN_REQUEST_RATE)}" in r["expr"], r["alert"]


def test_the_plans_numbers_are_consistent_as_documented() -> None:
    assert slo.budget(slo.AVAILABILITY_OBJECTIVE) == 0.0005
    assert slo.days_to_exhaust(slo.ERROR_RATE) == 15


def test_a_latency_threshold_off_the_bucket_boundaries_is_a_build_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slo, "LATENCY_THRESHOLD_SECONDS", 0.12)
    with pytest.raises(RuleError, match=r"0\.12 is not a bucket boundary of api_request_duration_seconds"):
        rules_build.build(ROOT)
    monkeypatch.setattr(slo, "LATENCY_THRESHOLD_SECONDS", 0.1)
    monkeypatch.setattr(slo, "DB_QUERY_MAX_SECONDS", 0.6)
    with pytest.raises(RuleError, match="db_query_duration_seconds"):
        rules_build.build(ROOT)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Recording("api_requests_rate", "x"), "level:metric:operations"),
        (lambda: Recording("job:api_requests_total:rate5m", "x"), "drop _total"),
        (lambda: Alert("api_high", "x", "warning", "S.", "d"), "CamelCase"),
        (lambda: Alert("ApiX", "x", "page", "S.", "d"), "severity"),
        (lambda: Alert("ApiX", "x", "warning", "{{ $labels.job }} is bad.", "d"), "summary must be static"),
        (lambda: Group("api", []), "<area>.rules"),
        (lambda: Group("api.rules", [Alert("ApiX", "x", "warning", "S.", "d")]), "recording rules only"),
    ],
)
def test_rules_that_break_the_conventions_are_refused(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleError, match=message):
        make()


def project_copy(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "README.md"):
        shutil.copy(ROOT / name, tmp_path)
    shutil.copytree(ROOT / "alerts", tmp_path / "alerts", ignore=shutil.ignore_patterns("tests", "__pycache__"))
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    return tmp_path


def test_alerts_check_fails_on_drift_and_build_repairs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project_copy(tmp_path)
    monkeypatch.setenv("PERFSTACK_ROOT", str(root))
    api = root / "alerts" / "generated" / "api.yml"
    api.write_text(api.read_text().replace("> 0.0072", "> 0.01"))
    (root / "alerts" / "generated" / "orphan.yml").write_text("groups: []\n")
    assert main(["alerts", "check"]) == 1
    out = capsys.readouterr().out
    assert "alerts/generated/api.yml is out of date" in out and "orphan.yml has no source module" in out
    assert main(["alerts", "build"]) == 0
    assert main(["alerts", "check"]) == 0
    assert not (root / "alerts" / "generated" / "orphan.yml").exists()


def render(raw: dict) -> dict:  # type: ignore[type-arg]
    settings = load("dev", raw)
    return configs.render(settings, configs.load_content(ROOT), configs.placeholder_secrets(settings))


def test_a_stack_can_disable_an_alert_without_touching_the_rule_code() -> None:
    files = render({"alerts": {"disabled": ["RedisEvictions", "CacheHitRateLow"]}})
    redis_rules = files["prometheus/rules/redis.yml"].content
    assert "alert: RedisEvictions" not in redis_rules and "alert: RedisDown" in redis_rules
    assert "alert: CacheHitRateLow" not in files["prometheus/rules/cache.yml"].content
    assert "alert: CacheHitRateLow" in (ROOT / "alerts" / "generated" / "cache.yml").read_text()


def test_a_stack_can_move_runbook_links() -> None:
    files = render({"alerts": {"runbookBaseUrl": "https://wiki.example.com/runbook"}})
    assert "runbook_url: https://wiki.example.com/runbook#redisdown" in files["prometheus/rules/redis.yml"].content


@pytest.mark.tools
def test_a_stack_can_reroute_one_alert_and_amtool_agrees(tmp_path: Path) -> None:
    settings = load(
        "dev",
        {
            "alertmanager": {"critical": ["pagerduty"], "warning": ["webhook"],
                             "pagerduty": {"routingKey": "k"}, "webhook": {"url": "https://hooks.example.com/x"}},
            "alerts": {"routes": {"DbSlowQueries": "critical", "RedisEvictions": "null"}},
        },
        {"alertmanager"},
    )  # fmt: skip
    files = configs.render(settings, configs.load_content(ROOT), configs.placeholder_secrets(settings))
    am = tmp_path / "alertmanager.yml"
    am.write_text(files["alertmanager/alertmanager.yml"].content)

    def receiver(*labels: str) -> str:
        proc = subprocess.run(
            ["amtool", "config", "routes", "test", f"--config.file={am}", *labels], capture_output=True, text=True
        )
        return proc.stdout.strip()

    assert receiver("alertname=DbSlowQueries", "severity=warning") == "critical"
    assert receiver("alertname=RedisEvictions", "severity=warning") == "null"
    assert receiver("alertname=DbQueryLatencyHigh", "severity=warning") == "warning"
    assert receiver("alertname=Watchdog", "severity=info") == "watchdog"


def test_unknown_alert_names_in_stack_config_are_errors_naming_the_key() -> None:
    with pytest.raises(SettingsError) as caught:
        render({"alerts": {"disabled": ["RedisEviction"], "routes": {"DbSlow": "critical"}}})
    text = str(caught.value)
    assert "perfstack:alerts.disabled names no alert in alerts/generated/: 'RedisEviction'" in text
    assert "perfstack:alerts.routes.DbSlow names no alert" in text
    with pytest.raises(
        SettingsError, match=r"alerts\.routes must be an object of alert names to critical, warning or null"
    ):
        load("dev", {"alerts": {"routes": {"DbSlowQueries": "pager"}}})
