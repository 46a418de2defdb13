"""``perfstack dashboards diff``: the semantic, PR-readable diff of dashboards/generated/*.json.

Each test takes the real generated dashboards, edits a copy the way a pull request would, commits
both versions in a throw-away git repository and diffs the two commits (or two folders). The
repository itself is never written to.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from perfstack import cli
from perfstack.dashboards import diff
from perfstack.dashboards.build import render_json

ROOT = Path(__file__).resolve().parents[1]
REAL = {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "dashboards" / "generated").glob("*.json"))}


# --- helpers --------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    return root


def write(folder: Path, boards: dict[str, dict[str, Any]]) -> None:
    """Replace folder/*.json with ``boards`` (name -> dashboard), written as the build writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    for name, board in boards.items():
        (folder / f"{name}.json").write_text(render_json(board))


def commit(repo: Path, boards: dict[str, dict[str, Any]]) -> str:
    write(repo / "dashboards" / "generated", boards)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "dashboards")
    return git(repo, "rev-parse", "HEAD")


def board(name: str = "api") -> dict[str, Any]:
    return copy.deepcopy(REAL[name])


def panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    """The panel called ``title``, looked for inside collapsed rows too."""
    for p in dashboard["panels"]:
        for q in [p, *(p.get("panels") or [])]:
            if q["title"] == title:
                return q
    raise KeyError(title)


def set_expr(p: dict[str, Any], expr: str, ref: str = "A") -> None:
    """Change a query the way grafanalib writes it: ``expr`` and its copy ``query``."""
    target = next(t for t in p["targets"] if t["refId"] == ref)
    target["expr"] = target["query"] = expr


def run(repo: Path, capsys: pytest.CaptureFixture[str], base: str | None, head: str | None) -> tuple[int, str, str]:
    code = diff.main(argparse.Namespace(base=base, head=head), repo)
    out = capsys.readouterr()
    return code, out.out, out.err


def bullets(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("- ")]


def diff_of(
    repo: Path, capsys: pytest.CaptureFixture[str], old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> tuple[int, str]:
    base, head = commit(repo, old), commit(repo, new)
    code, out, err = run(repo, capsys, base, head)
    assert err == ""
    return code, out


# --- the acceptance case --------------------------------------------------------------------

ACCEPTANCE = """\
## Dashboard changes

2 changes in 1 dashboard.

### perfstack / API (`perfstack-api`)

- Panel **Latency p50 / p95 / p99 by endpoint**: thresholds `green, red from 0.1` -> `green, red from 0.25`
- Panel **5xx by endpoint and status**: query A changed

  before:
  ```promql
  sum by (endpoint, status) (
    rate(api_requests_total{endpoint=~"$endpoint",job=~"$job",status=~"5.."}[$__rate_interval])
  )
  ```

  after:
  ```promql
  sum by (endpoint) (
    rate(api_requests_total{endpoint=~"$endpoint",job=~"$job",status=~"5.."}[$__rate_interval])
  )
  ```
"""


def test_one_query_and_one_threshold_changed_read_as_exactly_those_two_changes(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = board()
    set_expr(
        panel(new, "5xx by endpoint and status"),
        'sum by (endpoint) (rate(api_requests_total{job=~"$job", endpoint=~"$endpoint", status=~"5.."}[$__rate_interval]))',
    )
    panel(new, "Latency p50 / p95 / p99 by endpoint")["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] = (
        0.25
    )

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert len(bullets(out)) == 2, out
    assert out == ACCEPTANCE


# --- what is not a change -------------------------------------------------------------------


def test_ids_version_and_query_spelling_alone_are_no_change(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = {name: board(name) for name in REAL}
    for b in new.values():
        b["version"] = 7
        for i, p in enumerate(b["panels"]):
            p["id"] = 1000 - i
    # Same query, spelled differently: spacing and label-matcher order.
    set_expr(
        panel(new["api"], "5xx by endpoint and status"),
        'sum  by(endpoint,status)(rate(api_requests_total{status=~"5..",endpoint=~"$endpoint",job=~"$job"}[$__rate_interval]))',
    )

    code, out = diff_of(repo, capsys, {name: board(name) for name in REAL}, new)

    assert code == 0
    assert "No dashboard changes." in out
    assert bullets(out) == []


def test_grid_positions_alone_are_one_layout_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = board()
    a, b = panel(new, "Error ratio by endpoint"), panel(new, "5xx by endpoint and status")
    a["gridPos"], b["gridPos"] = b["gridPos"], a["gridPos"]
    panel(new, "4xx by endpoint and status")["gridPos"]["h"] = 12

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert bullets(out) == ["- layout: 3 panels moved or resized"]


# --- panels ---------------------------------------------------------------------------------


def test_a_renamed_panel_is_matched_by_its_queries(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = board()
    panel(new, "Error ratio by endpoint")["title"] = "Error ratio per endpoint"

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert bullets(out) == [
        "- Panel **Error ratio per endpoint**: renamed from **Error ratio by endpoint** to **Error ratio per endpoint** (same queries)"
    ]


def test_a_panel_moved_to_another_row(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = board()
    moved = panel(new, "Request rate by endpoint")
    new["panels"].remove(moved)
    new["panels"].append(moved)  # after the Errors row's children
    moved["gridPos"] = {"h": 8, "w": 24, "x": 0, "y": 35}

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert bullets(out) == ["- Panel **Request rate by endpoint**: moved from row *Traffic* to row *Errors*"]


def test_added_and_removed_panels_show_their_queries(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = board()
    new["panels"].remove(panel(new, "4xx by endpoint and status"))
    extra = copy.deepcopy(panel(new, "Error ratio by endpoint"))
    extra["title"] = "Timeouts"
    set_expr(extra, 'sum(rate(api_timeouts_total{job=~"$job"}[$__rate_interval]))')
    new["panels"].append(extra)

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert bullets(out) == [
        "- Panel **4xx by endpoint and status** (timeseries, unit `reqps`) removed from row *Errors*",
        "- Panel **Timeouts** (timeseries, unit `percentunit`) added to row *Errors*",
    ]
    assert '  sum(rate(api_timeouts_total{job=~"$job"}[$__rate_interval]))\n' in out


def test_unit_threshold_colour_and_description_changes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = board()
    p = panel(new, "Latency p50 / p95 / p99 by endpoint")
    p["fieldConfig"]["defaults"]["unit"] = "ms"
    p["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["color"] = "orange"
    old_description, p["description"] = p["description"], "Slow."  # long: shown cut to 80 characters

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert bullets(out) == [
        "- Panel **Latency p50 / p95 / p99 by endpoint**: unit `s` -> `ms`",
        "- Panel **Latency p50 / p95 / p99 by endpoint**: thresholds `green, red from 0.1` -> `green, orange from 0.1`",
        f"- Panel **Latency p50 / p95 / p99 by endpoint**: description `{old_description[:77]}...` -> `Slow.`",
    ]


def test_any_other_setting_is_reported_and_a_type_change_hides_its_option_churn(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = board()
    panel(new, "Error ratio by endpoint")["fieldConfig"]["defaults"]["custom"]["fillOpacity"] = 30
    panel(new, "Error ratio by endpoint")["targets"][0]["instant"] = True
    stat = panel(new, "4xx by endpoint and status")
    stat["type"], stat["options"] = "stat", {"colorMode": "background"}

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert bullets(out) == [
        "- Panel **Error ratio by endpoint**: query A settings: `instant` `false` -> `true`",
        "- Panel **Error ratio by endpoint**: settings: `fieldConfig.defaults.custom.fillOpacity` `10` -> `30`",
        "- Panel **4xx by endpoint and status**: type `timeseries` -> `stat`",
    ]


def test_legend_and_unparsable_query(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = board()
    p = panel(new, "Error ratio by endpoint")
    p["targets"][0]["legendFormat"] = "{{endpoint}} errors"
    set_expr(p, "sum(rate(api_requests_total[5m])")

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert bullets(out) == [
        "- Panel **Error ratio by endpoint**: query A changed (the new query does not parse as PromQL; shown as written)",
        "- Panel **Error ratio by endpoint**: query A legend `{{endpoint}}` -> `{{endpoint}} errors`",
    ]
    assert "  sum(rate(api_requests_total[5m])\n" in out


def test_children_of_a_collapsed_row_are_still_compared(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def collapse(b: dict[str, Any]) -> dict[str, Any]:
        errors = panel(b, "Errors")
        children = b["panels"][b["panels"].index(errors) + 1 :]
        del b["panels"][b["panels"].index(errors) + 1 :]
        errors["collapsed"], errors["panels"] = True, children
        return b

    new = collapse(board())
    set_expr(panel(new, "4xx by endpoint and status"), "sum(rate(api_requests_total[5m]))")

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert bullets(out) == ["- Row *Errors* collapsed", "- Panel **4xx by endpoint and status**: query A changed"]


# --- dashboards and variables ---------------------------------------------------------------


def test_template_variables_added_removed_and_changed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = board()
    variables = new["templating"]["list"]
    variables[1]["query"] = "label_values(up, job)"
    variables.remove(variables[2])  # endpoint
    variables.append(dict(copy.deepcopy(variables[1]), name="instance", query="label_values(up, instance)"))

    code, out = diff_of(repo, capsys, {"api": board()}, {"api": new})

    assert code == 1
    assert bullets(out) == [
        '- Variable `$endpoint` removed (query `label_values(api_requests_total{job=~"$job"}, endpoint)`)',
        "- Variable `$instance` added (query `label_values(up, instance)`)",
        "- Variable `$job` query `label_values(api_requests_total, job)` -> `label_values(up, job)`",
    ]


def test_dashboard_fields_and_added_and_removed_dashboards(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = board()
    api["title"] = "perfstack / HTTP API"
    api["refresh"] = "1m"

    code, out = diff_of(repo, capsys, {"api": board(), "cache": board("cache")}, {"api": api, "stack": board("stack")})

    assert code == 1
    assert "### perfstack / HTTP API (`perfstack-api`)" in out
    assert "### perfstack / Cache (`perfstack-cache`)" in out
    assert bullets(out) == [
        "- Dashboard title `perfstack / API` -> `perfstack / HTTP API`",
        "- Dashboard refresh `30s` -> `1m`",
        "- Dashboard removed (8 panels)",
        "- Dashboard added (7 panels)",
    ]


# --- sides: folders, refs, defaults, errors --------------------------------------------------


def test_folder_against_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = board()
    panel(new, "Latency distribution")["fieldConfig"]["defaults"]["unit"] = "ms"
    write(tmp_path / "old", {"api": board()})  # a folder of JSON
    write(tmp_path / "new" / "dashboards" / "generated", {"api": new})  # a checkout

    assert set(diff.load_side(str(tmp_path / "new"), tmp_path)) == {"perfstack-api"}
    code, out, err = run(tmp_path, capsys, str(tmp_path / "old"), str(tmp_path / "new"))

    assert (code, err) == (1, "")
    assert bullets(out) == ["- Panel **Latency distribution**: unit `s` -> `ms`"]


def test_an_unknown_ref_is_exit_2_with_a_message(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = commit(repo, {"api": board()})

    code, out, err = run(repo, capsys, "no-such-branch", head)

    assert (code, out) == (2, "")
    assert "'no-such-branch' is neither a folder nor a git ref" in err


def test_the_cli_diffs_refs_and_defaults_to_merge_base_against_the_working_tree(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERFSTACK_ROOT", str(repo))
    base = commit(repo, {"api": board()})
    new = board()
    panel(new, "Request rate by endpoint")["fieldConfig"]["defaults"]["unit"] = "ops"
    head = commit(repo, {"api": new})

    assert cli.main(["dashboards", "diff", "--base", base, "--head", head]) == 1
    out = capsys.readouterr().out
    assert bullets(out) == ["- Panel **Request rate by endpoint**: unit `reqps` -> `ops`"]

    # No flags: base = merge base of HEAD with main (HEAD itself here), head = the working tree.
    assert cli.main(["dashboards", "diff"]) == 0
    assert "No dashboard changes." in capsys.readouterr().out
    write(repo / "dashboards" / "generated", {"api": board()})  # uncommitted edit
    assert cli.main(["dashboards", "diff"]) == 1
    assert bullets(capsys.readouterr().out) == ["- Panel **Request rate by endpoint**: unit `ops` -> `reqps`"]


# --- PromQL normalisation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('rate(x{b="1",a=~"$job"}[$__rate_interval])', 'rate(x{a=~"$job",b="1"}[$__rate_interval])'),
        (
            "sum_over_time(x[${__range}]) / avg_over_time(x[$__interval])",
            "sum_over_time(x[$__range]) / avg_over_time(x[$__interval])",
        ),
    ],
)
def test_normalise_keeps_grafana_variables(expr: str, expected: str) -> None:
    assert diff.normalise(expr) == (expected, True)


def test_normalise_returns_unparsable_text_as_written() -> None:
    assert diff.normalise("  rate(x[$window]) ") == ("rate(x[$window])", False)


@pytest.mark.parametrize("stand_in", diff._STAND_INS.values())
def test_the_stand_in_durations_survive_prettify(stand_in: str) -> None:
    """normalise() swaps the stand-ins back by text, so prettify() must print them unchanged."""
    assert promql_parser.parse(f"rate(x[{stand_in}])").prettify() == f"rate(x[{stand_in}])"
