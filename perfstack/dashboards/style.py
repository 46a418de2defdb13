"""The perfstack house style over grafanalib (as weave.py sits over core.py).

Panels are data built with keyword arguments; this layer fixes what every dashboard shares:
the Prometheus datasource picked by a ``datasource`` variable, units, colours, thresholds drawn
from :mod:`perfstack.slo`, a description on every panel, and a grid layout computed from rows::

    from perfstack.dashboards.style import dashboard, row, timeseries, query

    dashboard = dashboard(
        __file__, "API", "Request rate, latency and errors by endpoint.",
        rows=[row("Traffic", [timeseries("Request rate", "Requests per second by endpoint.", "reqps",
                                          [query('job_endpoint:api_requests:rate5m{job=~"$job"}', "{{endpoint}}")])])],
    )

Only current panel types (time series, stat, heatmap, table); no Angular ``Graph``/``Row``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grafanalib.core as g

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

GREEN, YELLOW, RED = "green", "#EAB839", "red"


@dataclass
class Threshold:
    """A line a panel is judged against; ``good_below`` says which side is healthy."""

    value: float
    good_below: bool = True
    label: str = ""


@dataclass
class Panel:
    """A panel before layout: ``width`` in grid columns (of 24), ``height`` in rows."""

    panel: Any
    width: int = 12
    height: int = 8
    # Panels that only show data while something is wrong (5xx by status, timeouts):
    # the live check injects a fault before expecting data from them.
    faults_only: bool = False
    # Panels fed by an optional exporter (postgres_exporter): the live check skips them
    # when that exporter is not part of the run.
    needs: str | None = None


@dataclass
class Row:
    title: str
    panels: list[Panel] = field(default_factory=list)
    collapsed: bool = False


def query(expr: str, legend: str = "", ref: str | None = None, instant: bool = False) -> g.Target:
    return g.Target(expr=expr, legendFormat=legend, refId=ref or "", instant=instant, datasource=DATASOURCE)


def _thresholds(thresholds: Sequence[Threshold]) -> list[dict[str, Any]]:
    """Grafana threshold steps: the healthy colour first (value null), then the colour past each line."""
    if not thresholds:
        return [{"color": GREEN, "value": None}]
    good_below = thresholds[0].good_below
    ordered = sorted(thresholds, key=lambda t: t.value)
    if good_below:
        base, colours = GREEN, ([YELLOW, RED] if len(ordered) > 1 else [RED])
    else:
        base, colours = RED, ([YELLOW, GREEN] if len(ordered) > 1 else [GREEN])
    steps: list[dict[str, Any]] = [{"color": base, "value": None}]
    for i, t in enumerate(ordered):
        steps.append({"color": colours[min(i, len(colours) - 1)], "value": t.value})
    return steps


def _targets(targets: Sequence[g.Target]) -> list[g.Target]:
    refs = iter("ABCDEFGHIJKLMNOP")
    out = []
    for t in targets:
        t.refId = t.refId or next(refs)
        out.append(t)
    return out


def timeseries(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[g.Target],
    *,
    thresholds: Sequence[Threshold] = (),
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    faults_only: bool = False,
    needs: str | None = None,
) -> Panel:
    panel = g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=_targets(targets),
        unit=unit,
        thresholds=_thresholds(thresholds),
        thresholdType="absolute",
        thresholdsStyleMode="line+area" if thresholds else "off",
        legendDisplayMode="table",
        legendPlacement="bottom",
        legendCalcs=["mean", "max", "lastNotNull"],
        tooltipMode="multi",
        tooltipSort="desc",
        fillOpacity=10,
        lineWidth=1,
        stacking={"mode": "normal", "group": "A"} if stacked else {"mode": "none"},
        valueMin=minimum,
        valueMax=maximum,
    )
    return Panel(panel, width, height, faults_only, needs)


def stat(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[g.Target],
    *,
    thresholds: Sequence[Threshold] = (),
    width: int = 6,
    height: int = 5,
    decimals: int | None = None,
    needs: str | None = None,
) -> Panel:
    panel = g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=_targets(targets),
        format=unit,
        decimals=decimals,
        colorMode="background",
        graphMode="area",
        reduceCalc="lastNotNull",
        thresholds=_thresholds(thresholds),
    )
    return Panel(panel, width, height, False, needs)


def heatmap(title: str, description: str, unit: str, target: g.Target, *, width: int = 12, height: int = 8) -> Panel:
    target.format = "heatmap"
    panel = g.Heatmap(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=_targets([target]),
        dataFormat="tsbuckets",
        hideZeroBuckets=True,
        extraJson={
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {
                "calculate": False,
                "cellGap": 1,
                "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                "yAxis": {"unit": unit},
                "rowsFrame": {"layout": "auto"},
                "tooltip": {"show": True, "yHistogram": True},
            },
        },
    )
    return Panel(panel, width, height)


def row(title: str, panels: Sequence[Panel], collapsed: bool = False) -> Row:
    return Row(title, list(panels), collapsed)


def template_variables(*, endpoint: bool = False, instance_metric: str | None = None) -> list[g.Template]:
    """The variables every dashboard shares: datasource and job (plus endpoint or instance)."""
    variables = [
        g.Template(name="datasource", label="Datasource", query="prometheus", type="datasource", default="Prometheus"),
        g.Template(
            name="job",
            label="Job",
            query="label_values(api_requests_total, job)",
            dataSource=DATASOURCE,
            includeAll=True,
            multi=True,
            allValue=".+",
            refresh=2,
            sort=1,
        ),
    ]
    if endpoint:
        variables.append(
            g.Template(
                name="endpoint",
                label="Endpoint",
                query='label_values(api_requests_total{job=~"$job"}, endpoint)',
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                allValue=".+",
                refresh=2,
                sort=1,
            )
        )
    if instance_metric:
        variables.append(
            g.Template(
                name="instance",
                label="Instance",
                query=f"label_values({instance_metric}, instance)",
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                allValue=".+",
                refresh=2,
                sort=1,
            )
        )
    return variables


def uid_for(path: str | Path) -> str:
    """A stable uid from the file name: dashboards/api.dashboard.py -> perfstack-api."""
    name = Path(path).name.removesuffix(".dashboard.py")
    return f"perfstack-{name}"[:40]


def layout(rows: Sequence[Row]) -> list[Any]:
    """Row panels and their children with grid positions, ids in reading order."""
    panels: list[Any] = []
    y = 0
    next_id = 1
    for r in rows:
        children: list[Any] = []
        x, line_height = 0, 0
        start_y = y + 1
        cy = start_y
        for p in r.panels:
            if x + p.width > GRID_WIDTH:
                cy += line_height
                x, line_height = 0, 0
            p.panel.gridPos = g.GridPos(h=p.height, w=p.width, x=x, y=cy)
            x += p.width
            line_height = max(line_height, p.height)
            children.append(p.panel)
        end_y = cy + line_height
        row_panel = g.RowPanel(title=r.title, collapsed=r.collapsed, gridPos=g.GridPos(h=1, w=GRID_WIDTH, x=0, y=y))
        row_panel.id = next_id
        next_id += 1
        for child in children:
            child.id = next_id
            next_id += 1
        if r.collapsed:
            row_panel.panels = children
            panels.append(row_panel)
            y += 1
        else:
            panels.append(row_panel)
            panels.extend(children)
            y = end_y
    return panels


def dashboard(
    file: str,
    title: str,
    description: str,
    rows: Sequence[Row],
    *,
    endpoint_variable: bool = False,
    instance_metric: str | None = None,
    tags: Sequence[str] = (),
) -> g.Dashboard:
    built = g.Dashboard(
        title=f"perfstack / {title}",
        description=description,
        uid=uid_for(file),
        tags=["perfstack", *tags],
        timezone="browser",
        refresh="30s",
        time=g.Time("now-3h", "now"),
        graphTooltip=1,  # shared crosshair
        templating=g.Templating(template_variables(endpoint=endpoint_variable, instance_metric=instance_metric)),
        panels=layout(rows),
        editable=False,
    )
    built.perfstack_rows = list(rows)  # the panel metadata (faults_only, needs) for checks
    return built
