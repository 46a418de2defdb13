"""A semantic diff of the generated dashboards, written as Markdown for a pull-request comment.

A line diff of ``dashboards/generated/*.json`` is hard to review: renumbered panel ids and shifted
grid positions drown the one query that changed. This module compares what a reader of the
dashboard would notice instead::

    perfstack dashboards diff                              # merge base with main -> working tree
    perfstack dashboards diff --base origin/main --head HEAD
    perfstack dashboards diff --base old/ --head new/      # two folders of JSON

How the two sides are compared:

1. Dashboards are matched by ``uid``; one only on one side is added or removed.
2. Panels are flattened out of their rows (children of collapsed rows included), each remembering
   its row's title. They are matched by title, then the leftovers by an identical set of queries
   (a rename), and whatever is still left over was added or removed.
3. A matched pair is compared field by field: row, type, unit, thresholds, datasource,
   description, and each query by ``refId`` (PromQL compared and shown *normalised*, so
   re-indenting a query or reordering its label matchers is not a change). Any other field that
   differs is listed on a ``settings:`` bullet, so no change goes unreported.
4. Panel ids and the dashboard ``version`` are ignored; grid positions are counted and summarised
   as one ``layout:`` line per dashboard.

Exit status of :func:`main`: 0 no change, 1 changes, 2 error (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import promql_parser

GENERATED = "dashboards/generated"


class DiffError(ValueError):
    """A side could not be loaded (unknown ref, unreadable JSON): exit status 2."""


@dataclass(frozen=True)
class Change:
    """One bullet of the report.

    ``text`` is the bullet's Markdown; ``before``/``after`` hold PromQL shown in fenced blocks
    under it (either may be None, e.g. an added query has only ``after``).
    """

    uid: str
    dashboard: str  # the dashboard's title, for the section heading
    text: str
    before: str | None = None
    after: str | None = None


# --- loading --------------------------------------------------------------------------------


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DiffError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DiffError(f"{where} is not a dashboard (expected a JSON object)")
    return data


def _by_uid(files: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """(where, text) pairs -> uid -> dashboard; a dashboard without uid is keyed by its file stem."""
    out: dict[str, dict[str, Any]] = {}
    for where, text in files:
        data = _parse(text, where)
        uid = str(data.get("uid") or Path(where.split(":")[-1]).stem)
        if uid in out:
            raise DiffError(f"two dashboards share the uid {uid!r} (one is {where})")
        out[uid] = data
    return out


def default_base(root: Path) -> str:
    """The merge base of HEAD with ``main`` (else ``origin/main``), else ``HEAD~1``."""
    for branch in ("main", "origin/main"):
        proc = _git(root, "merge-base", "HEAD", branch)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    if _git(root, "rev-parse", "--verify", "--quiet", "HEAD~1^{commit}").returncode == 0:
        return "HEAD~1"
    raise DiffError(f"no default base in {root}: no merge base with main or origin/main, and no HEAD~1 (pass --base)")


def load_side(spec: str | None, root: Path) -> dict[str, dict[str, Any]]:
    """The generated dashboards of one side, uid -> dashboard JSON.

    ``spec`` is None (the working tree: ``root/dashboards/generated``), a folder (its ``*.json``, or
    ``FOLDER/dashboards/generated/*.json`` when that exists), or a git ref of the repository at
    ``root`` (read with ``git ls-tree`` and ``git show``, without touching the working tree).
    """
    if spec is None:
        folder = root / GENERATED
        return _by_uid((str(p), p.read_text()) for p in sorted(folder.glob("*.json")))
    for candidate in (Path(spec), root / spec):
        if candidate.is_dir():
            folder = candidate / GENERATED if (candidate / GENERATED).is_dir() else candidate
            return _by_uid((str(p), p.read_text()) for p in sorted(folder.glob("*.json")))
    if _git(root, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}").returncode != 0:
        raise DiffError(f"{spec!r} is neither a folder nor a git ref known in {root}")
    listing = _git(root, "ls-tree", "--name-only", spec, f"{GENERATED}/")
    if listing.returncode != 0:
        raise DiffError(f"git ls-tree {spec} failed: {listing.stderr.strip()}")
    files = []
    for path in sorted(line for line in listing.stdout.splitlines() if line.endswith(".json")):
        shown = _git(root, "show", f"{spec}:{path}")
        if shown.returncode != 0:
            raise DiffError(f"git show {spec}:{path} failed: {shown.stderr.strip()}")
        files.append((f"{spec}:{path}", shown.stdout))
    return _by_uid(files)


# --- PromQL ---------------------------------------------------------------------------------

# Grafana's interval variables stand where PromQL wants a duration, so the parser rejects them.
# Each gets an unusual stand-in duration for parsing, swapped back afterwards so the reader sees
# the variable (prettify() prints these durations unchanged). `$var` inside a label matcher is a
# string to the parser already and needs nothing.
_STAND_INS = {"__rate_interval": "4h44m44s444ms", "__interval": "3h33m33s333ms", "__range": "2h22m22s222ms"}
_GRAFANA_DURATION = re.compile(r"\$(?:\{(__rate_interval|__interval|__range)\}|(__rate_interval|__interval|__range)\b)")


def normalise(expr: str) -> tuple[str, bool]:
    """``(text, parses)``: the query as promql_parser prettifies it, or the raw text if it does not parse.

    Prettifying fixes the layout and sorts label matchers, so two spellings of one query compare
    equal: ``sum(rate(x{b="1",a="2"}[5m]))`` and ``sum (rate(x{a="2", b="1"}[5m]))``.
    """
    text = expr.strip()
    substituted = _GRAFANA_DURATION.sub(lambda m: _STAND_INS[m.group(1) or m.group(2)], text)
    try:
        pretty = promql_parser.parse(substituted).prettify()
    except Exception:  # the parser raises ValueError with its message; any failure means "does not parse"
        return text, False
    for name, stand_in in _STAND_INS.items():
        pretty = pretty.replace(stand_in, f"${name}")
    return pretty, True


# --- flattening -----------------------------------------------------------------------------


@dataclass
class _Panel:
    title: str
    row: str | None  # title of the row it sits in; None above the first row
    data: dict[str, Any]

    @cached_property
    def queries(self) -> frozenset[str]:
        return frozenset(normalise(t.get("expr") or "")[0] for t in self.data.get("targets") or [])


def _flatten(board: dict[str, Any]) -> tuple[list[_Panel], dict[str, dict[str, Any]]]:
    """(panels in reading order with their row titles, row title -> row panel)."""
    panels: list[_Panel] = []
    rows: dict[str, dict[str, Any]] = {}
    row: str | None = None
    for p in board.get("panels") or []:
        if p.get("type") == "row":
            row = p.get("title") or ""
            rows[row] = p
            panels.extend(_Panel(c.get("title") or "", row, c) for c in p.get("panels") or [])
        else:
            panels.append(_Panel(p.get("title") or "", row, p))
    return panels, rows


def _match(old: list[_Panel], new: list[_Panel]) -> tuple[list[tuple[_Panel, _Panel]], list[_Panel], list[_Panel]]:
    """(matched pairs, removed, added): by title (same row first, for repeated titles), then by query set."""
    pairs: list[tuple[_Panel, _Panel]] = []
    left, right = list(old), list(new)

    def take(same: Callable[[_Panel, _Panel], bool]) -> None:
        for o in list(left):
            n = next((n for n in right if same(o, n)), None)
            if n is not None:
                pairs.append((o, n))
                left.remove(o)
                right.remove(n)

    take(lambda o, n: o.title == n.title and o.row == n.row)
    take(lambda o, n: o.title == n.title)
    take(lambda o, n: bool(o.queries) and o.queries == n.queries)
    return pairs, left, right


# --- comparing ------------------------------------------------------------------------------


def _get(data: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted paths -> leaf values (lists are leaves)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else key))
    return out


def _show(value: Any) -> str:
    """A value inline in Markdown: `code`, short."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"`{text}`" if text else "(empty)"


def _datasource(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("uid") or value.get("type") or "default")
    return str(value) if value else "default"


def _thresholds(panel: dict[str, Any]) -> str:
    """Grafana steps as a reader says them: ``green, red from 0.1`` (the first step is the base colour)."""
    th = _get(panel, "fieldConfig.defaults.thresholds") or {}
    parts = [
        str(s.get("color")) if s.get("value") is None else f"{s.get('color')} from {_number(s['value'])}"
        for s in th.get("steps") or []
    ]
    text = ", ".join(parts) or "none"
    return text if th.get("mode", "absolute") == "absolute" else f"{text} ({th.get('mode')})"


def _number(value: Any) -> str:
    """0.1 as 0.1, 1000.0 as 1000, 1e-06 as 1e-06: the shortest exact form (never rounded)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _others(old: dict[str, Any], new: dict[str, Any], handled: set[str]) -> list[str]:
    """``path old -> new`` for every differing leaf not in ``handled`` (the catch-all)."""
    a, b = _flat(old), _flat(new)
    out = []
    for path in sorted(a.keys() | b.keys()):
        if path.split(".")[0] in handled or path in handled or a.get(path) == b.get(path):
            continue
        out.append(f"`{path}` {_show(a.get(path))} -> {_show(b.get(path))}")
    return out


def _summary(items: list[str], limit: int = 3) -> str:
    more = f", and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# Panel fields reported by name (or not at all: id, gridPos); everything else goes to the catch-all.
_PANEL_HANDLED = {
    "id", "gridPos", "title", "description", "type", "datasource", "targets", "panels", "collapsed",
    "fieldConfig.defaults.unit", "fieldConfig.defaults.thresholds.steps", "fieldConfig.defaults.thresholds.mode",
    "options.yAxis.unit",  # the heatmap's copy of the unit
}  # fmt: skip
_TARGET_HANDLED = {"expr", "query", "legendFormat", "datasource", "refId"}  # `query` is grafanalib's copy of expr
_BOARD_HANDLED = {"id", "uid", "version", "panels", "templating", "title", "description", "tags", "refresh", "time"}
_VARIABLE_HANDLED = {"name", "query", "current", "options"}  # current/options: Grafana's runtime state


def _queries(old: dict[str, Any], new: dict[str, Any]) -> Iterable[tuple[str, str | None, str | None]]:
    """(text, before, after) for each query change, matched by refId."""
    a = {t.get("refId", ""): t for t in old.get("targets") or []}
    b = {t.get("refId", ""): t for t in new.get("targets") or []}
    for ref in sorted(a.keys() | b.keys()):
        t, u = a.get(ref), b.get(ref)
        if t is None or u is None:
            expr, parses = normalise((t or u or {}).get("expr") or "")
            note = "" if parses else " (does not parse as PromQL; shown as written)"
            if t is None:
                yield f"query {ref} added{note}", None, expr
            else:
                yield f"query {ref} removed{note}", expr, None
            continue
        (before, ok_before), (after, ok_after) = normalise(t.get("expr") or ""), normalise(u.get("expr") or "")
        if before != after:
            notes = [
                f"the {side} query does not parse as PromQL"
                for side, ok in (("old", ok_before), ("new", ok_after))
                if not ok
            ]
            yield f"query {ref} changed" + (f" ({'; '.join(notes)}; shown as written)" if notes else ""), before, after
        if t.get("legendFormat") != u.get("legendFormat"):
            yield f"query {ref} legend {_show(t.get('legendFormat'))} -> {_show(u.get('legendFormat'))}", None, None
        if _datasource(t.get("datasource")) != _datasource(u.get("datasource")):
            ds = f"{_show(_datasource(t.get('datasource')))} -> {_show(_datasource(u.get('datasource')))}"
            yield f"query {ref} datasource {ds}", None, None
        others = _others(t, u, _TARGET_HANDLED)
        if others:
            yield f"query {ref} settings: {_summary(others)}", None, None


def _panel_changes(o: _Panel, n: _Panel) -> Iterable[tuple[str, str | None, str | None]]:
    """(text, before, after) for each difference a reader of the two panels would notice."""
    a, b = o.data, n.data
    if o.title != n.title:
        yield f"renamed from **{o.title}** to **{n.title}** (same queries)", None, None
    if o.row != n.row:
        yield f"moved from row *{o.row or '(none)'}* to row *{n.row or '(none)'}*", None, None
    if a.get("type") != b.get("type"):
        yield f"type {_show(a.get('type'))} -> {_show(b.get('type'))}", None, None
    unit_a, unit_b = _get(a, "fieldConfig.defaults.unit"), _get(b, "fieldConfig.defaults.unit")
    if unit_a != unit_b:
        yield f"unit {_show(unit_a)} -> {_show(unit_b)}", None, None
    if _thresholds(a) != _thresholds(b):
        yield f"thresholds {_show(_thresholds(a))} -> {_show(_thresholds(b))}", None, None
    if _datasource(a.get("datasource")) != _datasource(b.get("datasource")):
        ds = f"{_show(_datasource(a.get('datasource')))} -> {_show(_datasource(b.get('datasource')))}"
        yield f"datasource {ds}", None, None
    if (a.get("description") or "") != (b.get("description") or ""):
        yield f"description {_show(a.get('description') or '')} -> {_show(b.get('description') or '')}", None, None
    yield from _queries(a, b)
    # A new type brings its own option set; listing all of it would only repeat "type changed".
    others = _others(a, b, _PANEL_HANDLED) if a.get("type") == b.get("type") else []
    if others:
        yield f"settings: {_summary(others)}", None, None


def _board_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterable[tuple[str, str | None, str | None]]:
    for key in ("title", "description", "tags", "refresh", "time"):
        if old.get(key) != new.get(key):
            yield f"Dashboard {key} {_show(old.get(key))} -> {_show(new.get(key))}", None, None
    others = _others(old, new, _BOARD_HANDLED)
    if others:
        yield f"Dashboard settings: {_summary(others)}", None, None
    a = {v.get("name"): v for v in _get(old, "templating.list") or []}
    b = {v.get("name"): v for v in _get(new, "templating.list") or []}
    for name in sorted(a.keys() | b.keys(), key=str):
        v, w = a.get(name), b.get(name)
        if v is None or w is None:
            query = _show((v or w or {}).get("query") or "")
            yield f"Variable `${name}` {'added' if v is None else 'removed'} (query {query})", None, None
            continue
        if v.get("query") != w.get("query"):
            yield f"Variable `${name}` query {_show(v.get('query'))} -> {_show(w.get('query'))}", None, None
        others = _others(v, w, _VARIABLE_HANDLED)
        if others:
            yield f"Variable `${name}` settings: {_summary(others)}", None, None
    rows_a, rows_b = _flatten(old)[1], _flatten(new)[1]
    for title in sorted(rows_a.keys() | rows_b.keys()):
        r, s = rows_a.get(title), rows_b.get(title)
        if r is None or s is None:
            yield f"Row *{title}* {'added' if r is None else 'removed'}", None, None
        elif bool(r.get("collapsed")) != bool(s.get("collapsed")):
            yield f"Row *{title}* {'collapsed' if s.get('collapsed') else 'expanded'}", None, None


def _describe(p: _Panel) -> str:
    unit = _get(p.data, "fieldConfig.defaults.unit")
    return f"{p.data.get('type')}" + (f", unit `{unit}`" if unit else "")


def _queries_text(p: _Panel) -> str | None:
    return "\n".join(normalise(t.get("expr") or "")[0] for t in p.data.get("targets") or []) or None


def diff_dashboards(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[Change]:
    """Every change between two sides (uid -> dashboard), in a stable order: by uid, then reading order."""
    changes: list[Change] = []
    for uid in sorted(old.keys() | new.keys()):
        a, b = old.get(uid), new.get(uid)
        title = str((b or a or {}).get("title") or uid)

        def add(
            text: str, before: str | None = None, after: str | None = None, uid: str = uid, title: str = title
        ) -> None:
            changes.append(Change(uid, title, text, before, after))

        if a is None or b is None:
            n = len(_flatten(b or a or {})[0])
            add(f"Dashboard {'added' if a is None else 'removed'} ({n} panels)")
            continue
        for text, before, after in _board_changes(a, b):
            add(text, before, after)
        new_panels = _flatten(b)[0]
        reading_order = {id(p): i for i, p in enumerate(new_panels)}
        pairs, removed, added = _match(_flatten(a)[0], new_panels)
        for p in removed:
            add(f"Panel **{p.title}** ({_describe(p)}) removed from row *{p.row or '(none)'}*", _queries_text(p))
        for p in added:
            add(f"Panel **{p.title}** ({_describe(p)}) added to row *{p.row or '(none)'}*", None, _queries_text(p))
        moved = 0
        for o, n in sorted(pairs, key=lambda pair: reading_order[id(pair[1])]):
            for text, before, after in _panel_changes(o, n):
                add(f"Panel **{n.title}**: {text}", before, after)
            moved += o.row == n.row and o.data.get("gridPos") != n.data.get("gridPos")
        if moved:
            add(f"layout: {moved} panel{'s' if moved != 1 else ''} moved or resized")
    return changes


# --- output ---------------------------------------------------------------------------------


def _fenced(label: str, promql: str) -> list[str]:
    return ["", f"  {label}:", "  ```promql", *(f"  {line}" for line in promql.splitlines()), "  ```"]


def render_markdown(changes: list[Change]) -> str:
    """A PR comment: a heading, one section per dashboard, a bullet per change, PromQL fenced."""
    lines = ["## Dashboard changes", ""]
    if not changes:
        return "\n".join([*lines, "No dashboard changes.", ""])
    boards = list(dict.fromkeys((c.uid, c.dashboard) for c in changes))
    count = f"{len(changes)} change{'s' if len(changes) != 1 else ''}"
    lines += [f"{count} in {len(boards)} dashboard{'s' if len(boards) != 1 else ''}.", ""]
    for uid, title in boards:
        lines += [f"### {title} (`{uid}`)", ""]
        for c in (c for c in changes if c.uid == uid):
            lines.append(f"- {c.text}")
            if c.before is not None:
                lines += _fenced("before", c.before)
            if c.after is not None:
                lines += _fenced("after", c.after)
            if c.before is not None or c.after is not None:
                lines.append("")
        if lines[-1] != "":
            lines.append("")
    return "\n".join(lines)


def main(args: argparse.Namespace, root: Path) -> int:
    """``perfstack dashboards diff``: print the Markdown; 0 no change, 1 changes, 2 error."""
    try:
        base = args.base or default_base(root)
        changes = diff_dashboards(load_side(base, root), load_side(args.head, root))
    except (DiffError, OSError) as exc:
        print(f"error: dashboards diff: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_markdown(changes))
    return 1 if changes else 0
