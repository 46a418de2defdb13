"""RUNBOOK.md matches the rules: one section per alert, working runbook links, real rule names."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "RUNBOOK.md"
RULES = [
    rule
    for path in sorted((ROOT / "alerts" / "generated").glob("*.yml"))
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
]
ALERTS = {r["alert"] for r in RULES if "alert" in r}
RECORDS = {r["record"] for r in RULES if "record" in r}
SUBSECTIONS = ("Meaning", "Impact", "First checks", "Mitigation")
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
# A recording-rule name as perfstack.rules.model.RECORD_NAME defines it, as a whole token.
RECORD_NAME = re.compile(r"(?<![\w:])[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*(?![\w:])")


def prose(text: str) -> str:
    """The text without fenced code blocks, whose comment lines could look like headings."""
    return FENCE.sub("", text)


def sections(text: str) -> dict[str, list[str]]:
    """Level-2 heading -> the bodies of every section with that heading."""
    found: dict[str, list[str]] = {}
    for part in re.split(r"^## ", prose(text), flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        found.setdefault(heading.strip(), []).append(body)
    return found


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def code_spans(text: str) -> list[str]:
    """Everything quoted in backticks: fenced blocks and inline code."""
    blocks = FENCE.findall(text)
    return blocks + re.findall(r"`([^`\n]+)`", FENCE.sub("", text))


def test_every_alert_has_exactly_one_section() -> None:
    found = sections(RUNBOOK.read_text())
    assert ALERTS, "no alerts found in alerts/generated"
    assert {a: len(found.get(a, [])) for a in ALERTS} == dict.fromkeys(ALERTS, 1)


def test_no_section_for_an_alert_that_does_not_exist() -> None:
    camel_case = {h for h in sections(RUNBOOK.read_text()) if re.fullmatch(r"[A-Z][A-Za-z0-9]+", h)}
    assert camel_case - ALERTS == set()


def test_every_runbook_url_points_at_a_section_of_this_runbook() -> None:
    anchors = {github_anchor(h) for h in sections(RUNBOOK.read_text())}
    urls = {r["annotations"]["runbook_url"] for r in RULES if "alert" in r}
    assert len(urls) == len(ALERTS)
    for url in urls:
        page, _, anchor = url.partition("#")
        assert page.endswith("/RUNBOOK.md"), url
        assert anchor in anchors, url


def test_every_alert_section_has_meaning_impact_first_checks_and_mitigation() -> None:
    found = sections(RUNBOOK.read_text())
    for alert in sorted(ALERTS):
        for body in found.get(alert, []):
            labels = set(re.findall(r"^(?:\*\*|###\s+)([A-Z][a-z ]+?)(?:\*\*)?\s*$", body, re.M))
            assert set(SUBSECTIONS) <= labels, f"{alert} lacks {set(SUBSECTIONS) - labels}"


def test_every_quoted_recording_rule_name_exists() -> None:
    quoted = {name for span in code_spans(RUNBOOK.read_text()) for name in RECORD_NAME.findall(span)}
    assert quoted, "the runbook quotes no recording rule"
    assert quoted - RECORDS == set()
