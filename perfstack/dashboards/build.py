"""Build ``dashboards/generated/<name>.json`` from ``dashboards/<name>.dashboard.py``.

Output is deterministic (sorted keys, two-space indent, trailing newline, no volatile fields),
so the committed JSON changes only when a dashboard does.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder

from .. import generated
from .style import Panel

SUFFIX = ".dashboard.py"


@dataclass
class Built:
    name: str  # "api"
    source: Path
    data: dict[str, Any]
    panels: dict[str, Panel]  # title -> house-style panel (faults_only, needs)

    @property
    def text(self) -> str:
        return render_json(self.data)


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def sources(root: Path) -> list[Path]:
    return sorted((root / "dashboards").glob(f"*{SUFFIX}"))


def load(path: Path) -> Built:
    name = path.name.removesuffix(SUFFIX)
    spec = importlib.util.spec_from_file_location(f"perfstack_dashboard_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    board = getattr(module, "dashboard", None)
    if board is None:
        raise ValueError(f"{path}: must define a module-level `dashboard`")
    data = json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder))
    data.pop("id", None)  # assigned by Grafana
    data["version"] = 1  # provisioned dashboards are versioned by git, not by Grafana
    panels = {p.panel.title: p for r in getattr(board, "perfstack_rows", []) for p in r.panels}
    return Built(name, path, data, panels)


def build(root: Path) -> dict[Path, Built]:
    out: dict[Path, Built] = {}
    uids: dict[str, str] = {}
    for path in sources(root):
        built = load(path)
        uid = built.data.get("uid")
        if uid in uids:
            raise ValueError(f"{path.name} and {uids[uid]} share the dashboard uid {uid!r}")
        uids[uid] = path.name
        out[root / "dashboards" / "generated" / f"{built.name}.json"] = built
    return out


def stale(root: Path) -> list[str]:
    folder = root / "dashboards" / "generated"
    expected = {p: b.text for p, b in build(root).items()}
    return generated.stale(root, expected, folder, "*.json", f"has no source in dashboards/*{SUFFIX}")


def write(root: Path) -> list[Path]:
    expected = {p: b.text for p, b in build(root).items()}
    return generated.write(expected, root / "dashboards" / "generated", "*.json")
