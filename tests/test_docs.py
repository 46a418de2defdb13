"""The config reference in Pulumi.yaml and README.md matches the settings schema."""

from __future__ import annotations

import re

from conftest import ROOT

from perfstack import docs


def test_pulumi_yaml_and_readme_carry_the_current_config_reference() -> None:
    for path, expected in docs.targets(ROOT).items():
        assert path.read_text() == expected, f"{path.name} is stale: run `perfstack docs --write`"


def test_every_key_is_documented_with_a_default_and_a_description() -> None:
    readme = (ROOT / "README.md").read_text()
    keys = [key for key, _, _ in docs.rows()]
    assert "prometheus.retention" in keys and "alertmanager.slack.webhookUrl" in keys
    for key, default, doc in docs.rows():
        assert default and doc.strip(), key
        assert f"| `perfstack:{key}` | `{default}` |" in readme, key


def test_pulumi_yaml_declares_the_project_layout() -> None:
    text = (ROOT / "Pulumi.yaml").read_text()
    assert re.search(r"^name: perfstack$", text, re.M)
    assert re.search(r"^stackConfigDir: stacks$", text, re.M)
    assert "virtualenv: .venv" in text
