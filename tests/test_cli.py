"""The ``perfstack`` command: render, validate and docs, run in-process and as a real process.

Stack files that break a rule live in a temporary project root (``PERFSTACK_ROOT``) holding a
copy of Pulumi.yaml and one hand-written ``stacks/Pulumi.dev.yaml``; the repository is never
written to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perfstack import cli
from perfstack.schema import placeholder

ROOT = Path(__file__).resolve().parents[1]

RENDERED_FILES = [
    "prometheus/prometheus.yml",
    "alertmanager/alertmanager.yml",
    "grafana/provisioning/datasources/perfstack.yml",
    "grafana/provisioning/dashboards/perfstack.yml",
    "grafana/grafana.ini",
    "redis/redis.conf",
    "MANIFEST",
]


# --- helpers --------------------------------------------------------------------------------


def make_root(tmp_path: Path, stack_yaml: str, stack: str = "dev", rules: dict[str, str] | None = None) -> Path:
    """A project root with Pulumi.yaml and one stack file (and optional generated rule files)."""
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(textwrap.dedent(stack_yaml))
    if rules:
        (root / "alerts" / "generated").mkdir(parents=True)
        for name, text in rules.items():
            (root / "alerts" / "generated" / name).write_text(text)
    return root


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root: Path, *argv: str
) -> tuple[int, str, str]:
    """``perfstack <argv>`` in-process with ``root`` as the project: (exit code, stdout, stderr)."""
    monkeypatch.setenv("PERFSTACK_ROOT", str(root))
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_process(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m perfstack <argv>`` as a real process, to see the real exit status."""
    env = {**os.environ, "PERFSTACK_ROOT": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "perfstack", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=root,
    )


def all_text(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.rglob("*")) if p.is_file())


def is_empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


# --- render ---------------------------------------------------------------------------------


def test_render_writes_every_container_file_and_a_manifest(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(monkeypatch, capsys, ROOT, "render", "--stack", "dev", "--out", str(out))
    assert code == 0, stderr
    missing = [f for f in RENDERED_FILES if not (out / f).is_file()]
    assert not missing
    assert "stack dev" in stdout
    manifest = (out / "MANIFEST").read_text()
    for f in RENDERED_FILES[:-1]:
        assert f in manifest
    assert "stack: dev" in (out / "prometheus" / "prometheus.yml").read_text()


def test_render_as_a_process_exits_zero_and_writes_the_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_process(ROOT, "render", "--stack", "prod", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert all((out / f).is_file() for f in RENDERED_FILES)
    assert "maxmemory 1gb" in (out / "redis" / "redis.conf").read_text()


def test_render_writes_files_holding_secrets_readable_by_the_owner_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, _, stderr = run_cli(monkeypatch, capsys, ROOT, "render", "--stack", "dev", "--out", str(out))
    assert code == 0, stderr
    assert (out / "redis" / "redis.conf").stat().st_mode & 0o777 == 0o600
    assert (out / "grafana" / "secrets" / "admin_password").stat().st_mode & 0o777 == 0o600
    assert (out / "prometheus" / "prometheus.yml").stat().st_mode & 0o777 == 0o644


def test_render_writes_placeholders_never_the_encrypted_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = make_root(
        tmp_path,
        """\
        config:
          perfstack:grafana:
            adminPassword:
              secure: v1:abc
          perfstack:redis:
            password:
              secure: v1:def
        """,
    )
    out = tmp_path / "out"
    code, _, stderr = run_cli(monkeypatch, capsys, root, "render", "--stack", "dev", "--out", str(out))
    assert code == 0, stderr
    text = all_text(out)
    assert "v1:abc" not in text
    assert "v1:def" not in text
    assert (out / "grafana" / "secrets" / "admin_password").read_text() == placeholder("grafana.adminPassword")
    assert f"requirepass {placeholder('redis.password')}\n" in (out / "redis" / "redis.conf").read_text()


def test_a_plaintext_secret_in_a_stack_file_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = make_root(
        tmp_path,
        """\
        config:
          perfstack:redis:
            password: hunter2
        """,
    )
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(monkeypatch, capsys, root, "render", "--stack", "dev", "--out", str(out))
    assert code == 2
    assert "perfstack:redis.password" in stderr
    assert "--secret" in stderr
    assert "hunter2" not in stdout + stderr
    assert is_empty(out)


def test_a_bad_duration_exits_2_naming_key_expected_form_and_value_without_a_traceback(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        """\
        config:
          perfstack:prometheus:
            retention: 15 days
        """,
    )
    out = tmp_path / "out"
    proc = run_process(root, "render", "--stack", "dev", "--out", str(out))
    assert proc.returncode == 2
    assert "perfstack:prometheus.retention must be a duration such as 15d" in proc.stderr
    assert "got '15 days'" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert is_empty(out)


def test_unknown_keys_and_latest_image_tags_are_all_reported_by_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = make_root(
        tmp_path,
        """\
        config:
          perfstack:prometheus:
            retension: 7d
          perfstack:grafanna:
            port: 3000
          perfstack:grafana:
            image: grafana/grafana:latest
        """,
    )
    code, _, stderr = run_cli(monkeypatch, capsys, root, "render", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert code == 2
    lines = stderr.splitlines()
    # One run reports every problem, one line each, each starting with the key.
    assert any(line.startswith("perfstack:prometheus.retension is not a known setting") for line in lines), stderr
    assert any(line.startswith("perfstack:grafanna is not a known setting") for line in lines), stderr
    latest = [line for line in lines if line.startswith("perfstack:grafana.image ")]
    assert latest and "not 'latest'" in latest[0] and "got 'grafana/grafana:latest'" in latest[0], stderr
    assert "Traceback" not in stderr


def test_an_unknown_stack_exits_2_naming_the_missing_stack_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, _, stderr = run_cli(monkeypatch, capsys, ROOT, "render", "--stack", "nosuch", "--out", str(out))
    assert code == 2
    assert str(ROOT / "stacks" / "Pulumi.nosuch.yaml") in stderr
    assert "dev" in stderr  # the stacks that do exist
    assert is_empty(out)


# --- validate -------------------------------------------------------------------------------


@pytest.mark.tools
def test_validate_prod_passes_every_check_with_one_ok_line_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = run_cli(monkeypatch, capsys, ROOT, "validate", "--stack", "prod")
    assert code == 0, stdout + stderr
    lines = stdout.splitlines()
    ok = [line for line in lines if line.startswith("ok ")]
    assert len(ok) == 4, stdout
    assert any("promtool" in line for line in ok)
    assert any("amtool" in line for line in ok)
    assert any("redis-server" in line for line in ok)
    assert any("grafana" in line for line in ok)
    assert not any(line.startswith("FAIL") for line in lines)
    assert lines[-1] == "stack prod: 4 passed, 0 failed"


BROKEN_RULES = """\
groups:
  - name: broken
    rules:
      - alert: Broken
        expr: up == ((
"""


@pytest.mark.tools
def test_validate_fails_with_exit_1_when_a_generated_rule_file_is_broken(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = make_root(tmp_path, "config: {}\n", rules={"broken.yml": BROKEN_RULES})
    code, stdout, stderr = run_cli(monkeypatch, capsys, root, "validate", "--stack", "dev")
    assert code == 1, stdout + stderr
    failed = [line for line in stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and "promtool" in failed[0], stdout
    assert "broken.yml" in stdout  # the tool's output explains the failure
    assert stdout.splitlines()[-1] == "stack dev: 3 passed, 1 failed"


def test_validate_without_the_tools_fails_and_says_which_package_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no promtool, amtool, redis-server
    code, stdout, _ = run_cli(monkeypatch, capsys, ROOT, "validate", "--stack", "dev")
    assert code == 1
    assert "promtool not found on PATH (Debian: apt-get install prometheus)" in stdout
    assert "amtool not found on PATH (Debian: apt-get install prometheus-alertmanager)" in stdout
    assert "redis-server not found on PATH (Debian: apt-get install redis-server)" in stdout
    assert stdout.splitlines()[-1] == "stack dev: 1 passed, 3 failed"


def test_validate_names_the_check_whose_tool_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    _, stdout, _ = run_cli(monkeypatch, capsys, ROOT, "validate", "--stack", "dev")
    failed = [line for line in stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 3, stdout
    assert "promtool" in failed[0] and "amtool" in failed[1] and "redis-server" in failed[2], failed


# --- docs -----------------------------------------------------------------------------------


def test_docs_check_passes_on_the_repository(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, stderr = run_cli(monkeypatch, capsys, ROOT, "docs", "--check")
    assert code == 0, stdout + stderr


README_WITH_MARKERS = """\
# perfstack

<!-- BEGIN config reference (generated by `perfstack docs --write`; edit perfstack/settings.py) -->
<!-- END config reference -->

<!-- BEGIN metrics contract (generated by `perfstack docs --write`; edit perfstack/telemetry/contract.py) -->
<!-- END metrics contract -->
"""


def test_docs_check_fails_until_docs_write_refreshes_the_reference(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = make_root(tmp_path, "config: {}\n")
    (root / "README.md").write_text(README_WITH_MARKERS)
    (root / "Pulumi.yaml").write_text(
        (ROOT / "Pulumi.yaml")
        .read_text()
        .replace("perfstack:prometheus.retention  (default", "perfstack:stale  (default")
    )

    code, stdout, _ = run_cli(monkeypatch, capsys, root, "docs", "--check")
    assert code == 1
    assert "README.md" in stdout

    code, _, stderr = run_cli(monkeypatch, capsys, root, "docs", "--write")
    assert code == 0, stderr
    assert "`perfstack:prometheus.retention` | `15d`" in (root / "README.md").read_text()
    assert "perfstack:prometheus.retention  (default: 15d)" in (root / "Pulumi.yaml").read_text()

    code, stdout, stderr = run_cli(monkeypatch, capsys, root, "docs", "--check")
    assert code == 0, stdout + stderr
