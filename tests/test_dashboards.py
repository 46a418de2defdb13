"""Dashboard lint: PromQL parses and names only known metrics, house style, SLO thresholds, drift."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from conftest import ROOT

from perfstack import slo
from perfstack.dashboards import build
from perfstack.telemetry import contract, exporters

GENERATED = sorted((ROOT / "dashboards" / "generated").glob("*.json"))
BOARDS = {p.stem: json.loads(p.read_text()) for p in GENERATED}
RECORDS = {
    r["record"]
    for p in (ROOT / "alerts" / "generated").glob("*.yml")
    for g in yaml.safe_load(p.read_text())["groups"]
    for r in g["rules"]
    if "record" in r
}
KNOWN = (
    {s for spec in contract.ALL for s in spec.series()}
    | {v for k, v in vars(exporters).items() if k.isupper() and isinstance(v, str)}
    | RECORDS
)
CURRENT_TYPES = {"row", "timeseries", "stat", "heatmap", "table", "gauge", "bargauge", "text"}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels") or [])
    return [p for p in out if p["type"] != "row"]


ALL_PANELS = [(name, p) for name, board in BOARDS.items() for p in panels(board)]
ALL_TARGETS = [(name, p["title"], t) for name, p in ALL_PANELS for t in p["targets"]]


def substitute(expr: str) -> str:
    """Grafana's variables as Prometheus would see them after interpolation."""
    return re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)


def selectors(expr: str) -> list[str]:
    names: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.append(node.name)
        for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, (str, int, float)):
                visit(child)
        for arg in getattr(node, "args", None) or []:
            visit(arg)

    visit(promql_parser.parse(substitute(expr)))
    return names


def test_the_committed_json_matches_the_code() -> None:
    assert build.stale(ROOT) == []
    assert set(BOARDS) == {"overview", "api", "database", "cache", "stack"}


def test_output_is_deterministic_sorted_and_ends_with_a_newline() -> None:
    for path in GENERATED:
        text = path.read_text()
        assert (
            text.endswith("}\n")
            and json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n" == text
        )
        board = json.loads(text)
        assert "id" not in board and board["version"] == 1


def test_panel_titles_are_unique_within_a_dashboard() -> None:
    for name, board in BOARDS.items():
        titles = [p["title"] for p in panels(board)]
        assert len(titles) == len(set(titles)), (name, sorted(t for t in titles if titles.count(t) > 1))


def test_uids_are_unique_and_derived_from_the_file_name() -> None:
    uids = [b["uid"] for b in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    for name, board in BOARDS.items():
        assert board["uid"] == f"perfstack-{name}"


@pytest.mark.parametrize(("board", "panel"), [(n, p["title"]) for n, p in ALL_PANELS])
def test_every_panel_has_a_current_type_datasource_unit_and_description(board: str, panel: str) -> None:
    p = next(p for n, p in ALL_PANELS if n == board and p["title"] == panel)
    assert p["type"] in CURRENT_TYPES, p["type"]
    assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert p["fieldConfig"]["defaults"].get("unit"), "no unit"
    assert len(p["description"]) > 20, "no description"
    assert p["targets"] and all(t["datasource"]["uid"] == "${datasource}" for t in p["targets"])


@pytest.mark.parametrize(
    ("board", "panel", "target"), ALL_TARGETS, ids=[f"{b}:{p}:{t['refId']}" for b, p, t in ALL_TARGETS]
)
def test_every_query_parses_and_names_only_known_metrics(board: str, panel: str, target: dict[str, Any]) -> None:
    names = selectors(target["expr"])
    assert names, f"{board}/{panel}: no metric in {target['expr']}"
    unknown = sorted(set(names) - KNOWN)
    assert not unknown, f"{board}/{panel}: {unknown} are neither contract, exporter nor recording-rule names"
    for m in re.finditer(r"\b(rate|increase)\((\w+)\{[^}]*\}\[([^\]]+)\]", target["expr"]):
        assert m.group(3) == "$__rate_interval", f"{board}/{panel}: raw {m.group(1)}() must use $__rate_interval"


def test_the_template_variables_are_datasource_job_and_endpoint_or_instance() -> None:
    for name, board in BOARDS.items():
        variables = [v["name"] for v in board["templating"]["list"]]
        assert variables[:2] == ["datasource", "job"], name
    assert "endpoint" in [v["name"] for v in BOARDS["api"]["templating"]["list"]]


def thresholds(board: str, title: str) -> list[float]:
    p = next(p for n, p in ALL_PANELS if n == board and p["title"] == title)
    return [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None]


def test_thresholds_are_the_slo_modules_numbers() -> None:
    assert thresholds("overview", "p95 latency") == [slo.API_P95_SECONDS]
    assert thresholds("overview", "Error rate") == [slo.ERROR_RATE]
    assert thresholds("overview", "Cache hit rate") == [slo.CACHE_HIT_RATIO]
    assert thresholds("overview", f"Availability ({slo.SLO_PERIOD})") == [slo.AVAILABILITY_OBJECTIVE]
    assert thresholds("overview", "Availability burn rate") == sorted(
        b.factor for b in slo.BURN_RATE_WINDOWS if b.tier == "page"
    )
    assert thresholds("api", "Latency p50 / p95 / p99 by endpoint") == [slo.API_P95_SECONDS]
    assert thresholds("database", "Query p95 / p99 by operation") == [slo.DB_QUERY_P95_SECONDS]
    assert thresholds("database", "Query average by operation") == [slo.DB_QUERY_AVG_SECONDS]
    assert thresholds("cache", "Hit ratio by cache category") == [slo.CACHE_HIT_RATIO]


def test_slo_panels_read_the_recording_rules() -> None:
    for board, title in [("overview", "p95 latency"), ("overview", "Error rate"), ("api", "Request rate by endpoint"),
                         ("api", "Latency p50 / p95 / p99 by endpoint"), ("database", "Query p95 / p99 by operation")]:  # fmt: skip
        p = next(p for n, p in ALL_PANELS if n == board and p["title"] == title)
        assert all(any(n in RECORDS for n in selectors(t["expr"])) for t in p["targets"]), (board, title)


def test_grafanalibs_own_generate_dashboard_works_on_the_sources(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    tool = Path(sys.executable).with_name("generate-dashboard")
    proc = subprocess.run(
        [str(tool), "-o", str(out), str(ROOT / "dashboards" / "api.dashboard.py")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["uid"] == "perfstack-api"


def test_the_grafana_component_provisions_exactly_these_files() -> None:
    from perfstack import configs
    from perfstack.settings import load

    settings = load("dev", {})
    files = configs.render(settings, configs.load_content(ROOT), configs.placeholder_secrets(settings))
    provisioned = {k.split("/", 2)[2] for k in files if k.startswith("grafana/dashboards/")}
    assert provisioned == {p.name for p in GENERATED}
