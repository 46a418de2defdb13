"""The generated alert and recording rules, checked and unit-tested by the real promtool.

- ``promtool check rules --lint=all --lint-fatal`` on every ``alerts/generated/*.yml``;
- ``promtool test rules`` on every ``alerts/tests/*_test.yml`` (one test per file, run
  concurrently: the SLO files evaluate days of history and take several seconds each);
- every alert of the generated files has unit tests: its name appears in an ``alertname:``,
  with at least one case where it fires and one where it does not, and every severity it
  can fire with is expected somewhere (a new alert or burn-rate tier without a test fails here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "alerts" / "generated"
TESTS = ROOT / "alerts" / "tests"
RULE_FILES = sorted(GENERATED.glob("*.yml"))
TEST_FILES = sorted(TESTS.glob("*_test.yml"))
TIMEOUT = 120


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (make debian-packages installs it)")
    return path


def run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def generated_alerts() -> dict[str, set[str]]:
    """Every alert name in the generated files, with the severities it is declared with."""
    alerts: dict[str, set[str]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts.setdefault(rule["alert"], set()).add(rule.get("labels", {}).get("severity", ""))
    return alerts


def alert_cases() -> list[tuple[str, str, dict]]:
    """(test file, test name, alert_rule_test entry) for every alert case of every test file."""
    cases = []
    for path in sorted(TESTS.glob("*.yml")):
        for test in yaml.safe_load(path.read_text()).get("tests") or []:
            for case in test.get("alert_rule_test") or []:
                cases.append((path.name, test.get("name", ""), case))
    return cases


# --- promtool check rules ---------------------------------------------------------------------


@pytest.mark.tools
def test_there_are_rule_files_and_test_files() -> None:
    assert RULE_FILES, f"no rule files in {GENERATED}"
    assert TEST_FILES, f"no *_test.yml files in {TESTS}"


@pytest.mark.tools
@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_generated_rules_pass_promtool_check_with_all_lints(rule_file: Path) -> None:
    result = run(["check", "rules", "--lint=all", "--lint-fatal", str(rule_file)])
    text = result.stdout + result.stderr
    assert result.returncode == 0, output(result)
    assert "SUCCESS" in result.stdout, output(result)
    assert "lint" not in text.lower(), output(result)
    assert "warning" not in text.lower(), output(result)


# --- promtool test rules ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def unit_test_runs() -> Iterator[dict[Path, Future[subprocess.CompletedProcess[str]]]]:
    """Start ``promtool test rules`` for every test file at once (one process each)."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(TEST_FILES), os.cpu_count() or 1))) as pool:
        # Run from the test folder, as a developer would; rule_files are relative to it anyway.
        yield {path: pool.submit(run, ["test", "rules", path.name], TESTS) for path in TEST_FILES}


@pytest.mark.tools
@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_rule_unit_tests_pass(
    test_file: Path, unit_test_runs: dict[Path, Future[subprocess.CompletedProcess[str]]]
) -> None:
    result = unit_test_runs[test_file].result(timeout=TIMEOUT)
    assert result.returncode == 0, f"promtool test rules {test_file.name} failed:\n{output(result)}"
    assert "SUCCESS" in result.stdout, output(result)


# --- coverage of the alerts by the unit tests ----------------------------------------------------


@pytest.mark.tools
def test_every_generated_alert_has_a_unit_test() -> None:
    tested = {case["alertname"] for _, _, case in alert_cases()}
    untested = sorted(set(generated_alerts()) - tested)
    assert not untested, f"alerts without an alert_rule_test in alerts/tests/*.yml: {untested}"


@pytest.mark.tools
def test_every_alert_is_tested_firing_and_not_firing_at_every_severity() -> None:
    firing: dict[str, set[str]] = {}
    quiet: set[str] = set()
    for _, _, case in alert_cases():
        expected = case.get("exp_alerts") or []
        if not expected:
            quiet.add(case["alertname"])
        for alert in expected:
            firing.setdefault(case["alertname"], set()).add((alert.get("exp_labels") or {}).get("severity", ""))
    problems = []
    for name, severities in sorted(generated_alerts().items()):
        if name not in firing:
            problems.append(f"{name}: no case where it fires")
        elif missing := severities - firing[name]:
            problems.append(f"{name}: no case where it fires with severity {sorted(missing)}")
        # The Watchdog fires unconditionally: there is no case where it is quiet.
        if name not in quiet and name != "Watchdog":
            problems.append(f"{name}: no case where it does not fire (exp_alerts: [])")
    assert not problems, "\n".join(problems)


@pytest.mark.tools
def test_every_unit_test_is_named_with_a_sentence() -> None:
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text()).get("tests") or []:
            name = test.get("name", "")
            assert name[:1].isupper() and name.endswith("."), f"{path.name}: name is not a sentence: {name!r}"
