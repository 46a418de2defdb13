"""The verdict and the report of a load test: report.md, report.json, latency.png, throughput.png.

    stages = [StageReport("plateau", 50, start, end, client=view, server=server_view, resources=used)]
    report = Report(profile=..., kind="run", host=..., stages=stages, series=rows, endpoints=eps)
    report.passed, report.exit_code        # 0 pass, 1 a breach
    report.write(Path("build/loadtest"))   # the four files

A run passes when every measured stage passes the gate on both views (client, and server when
Prometheus was asked). A stress run passes its steps until the first that breaks: the knee is the
highest step that passed, and the run is inconclusive (exit 1) when no step passed or when the
step that broke did so because the load generator, not the server, ran out of CPU.
Pure Python on synthetic data too: no Locust import (the unit tests build reports directly).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import slo
from .gate import Breach, View, check


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _pct(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:.{digits}%}"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else fmt.format(x)


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}/s"


def judge(client: View | None, server: View | None) -> list[Breach]:
    """Every breach of the gate in either view; a server view Prometheus could not give is one."""
    out: list[Breach] = []
    if client is not None:
        out += check(client)
    if server is not None:
        problem = server.extra.get("problem")
        if problem:
            out.append(Breach("server", "prometheus", 0, 0, f"server: {problem}"))
        else:
            out += check(server)
    return out


@dataclass
class StageReport:
    """One measured stage: the plateau of a run, or one step of a stress run."""

    name: str
    rate: float  # target arrivals per second
    start: float  # Unix seconds: the measured window
    end: float
    client: View | None = None
    server: View | None = None
    resources: dict[str, Any] | None = None

    @property
    def breaches(self) -> list[Breach]:
        return judge(self.client, self.server)

    @property
    def passed(self) -> bool:
        return not self.breaches

    @property
    def generator_limited(self) -> bool:
        return any(b.what == "generator_cpu" for b in self.breaches)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target_rate": self.rate,
            "window": [self.start, self.end],
            "passed": self.passed,
            "client": self.client.to_dict() if self.client else None,
            "server": self.server.to_dict() if self.server else None,
            "resources": self.resources,
            "breaches": [asdict(b) for b in self.breaches],
        }


@dataclass
class Report:
    profile: dict[str, Any]  # the profile as run (after --scale and overrides)
    kind: str  # "run" or "stress"
    host: str
    stages: list[StageReport]
    series: list[dict[str, Any]] = field(default_factory=list)  # one row per second (runner.RunResult.series)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    scale: float = 1.0
    generator: str = "in process"
    started: float = 0.0
    finished: float = 0.0
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)  # cores, busy share, load average (context)

    # --- the verdict -------------------------------------------------------------------------
    @property
    def breaking_step(self) -> StageReport | None:
        """stress: the first step that broke the gate."""
        return next((s for s in self.stages if not s.passed), None)

    @property
    def knee(self) -> StageReport | None:
        """stress: the highest step that passed before the first that broke."""
        knee = None
        for s in self.stages:
            if not s.passed:
                break
            knee = s
        return knee

    @property
    def passed(self) -> bool:
        if not self.stages:
            return False
        if self.kind == "stress":
            broke = self.breaking_step
            return self.knee is not None and (broke is None or not broke.generator_limited)
        return all(s.passed for s in self.stages)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def verdict(self) -> str:
        if self.kind != "stress":
            if not self.stages:
                return "FAIL: nothing was measured"
            return "PASS" if self.passed else "FAIL: " + "; ".join(b.message for s in self.stages for b in s.breaches)
        knee, broke = self.knee, self.breaking_step
        if knee is None:
            first = self.stages[0] if self.stages else None
            why = "; ".join(b.message for b in first.breaches) if first else "nothing was measured"
            return f"FAIL: no step passed, the first already broke the gate ({why})"
        cpu = knee.client.generator_cpu if knee.client else None
        text = f"knee at {knee.rate:.1f} requests/s (generator CPU {_pct(cpu)} there)"
        if broke is None:
            return f"PASS: {text}; no step up to {self.stages[-1].rate:.1f}/s broke the gate"
        why = "; ".join(b.message for b in broke.breaches)
        if broke.generator_limited:
            return (
                f"INCONCLUSIVE: the load generator saturated at {broke.rate:.1f}/s before the server broke "
                f"({why}); the knee is at least {knee.rate:.1f}/s: add workers (distributed mode)"
            )
        return f"PASS: {text}; {broke.name} at {broke.rate:.1f}/s broke it: {why}"

    def _machine_line(self) -> str:
        m = self.machine
        parts = [f"{m.get('cores', '?')} cores"]
        if m.get("busy") is not None:
            parts.append(f"CPU {m['busy']:.0%} busy on average in the measured windows (everything running on it)")
        if m.get("load_average_before") is not None:
            parts.append(f"load average {m['load_average_before']:.1f} before the run")
        return ", ".join(parts)

    # --- files -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        knee, broke = (self.knee, self.breaking_step) if self.kind == "stress" else (None, None)
        return {
            "profile": self.profile,
            "kind": self.kind,
            "host": self.host,
            "scale": self.scale,
            "generator": self.generator,
            "started": self.started,
            "finished": self.finished,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "verdict": self.verdict(),
            "stopped": self.stopped,
            "machine": self.machine,
            "limits": {
                "p95_seconds": slo.LOAD_P95_SECONDS,
                "p99_seconds": slo.LOAD_P99_SECONDS,
                "error_rate": slo.LOAD_ERROR_RATE,
                "min_achieved_share": slo.LOAD_MIN_ACHIEVED,
                "generator_cpu_max": slo.LOAD_GENERATOR_CPU_MAX,
                "cache_hit_ratio": slo.CACHE_HIT_RATIO,
            },
            "knee": None
            if knee is None
            else {
                "rate": knee.rate,
                "generator_cpu": knee.client.generator_cpu if knee.client else None,
                "broke_at": broke.rate if broke else None,
                "generator_limited": broke.generator_limited if broke else False,
            },
            "stages": [s.to_dict() for s in self.stages],
            "endpoints": self.endpoints,
            "series": self.series,
            "notes": self.notes,
        }

    def markdown(self) -> str:
        p = self.profile
        title = f"# Load test `{p.get('name')}`: {self.verdict()}"
        lines = [title, ""]
        scaled = f" (scaled x{self.scale:g} for this machine)" if self.scale != 1 else ""
        if self.kind == "stress":
            shape = (
                f"steps of {p.get('duration'):g}s from {p.get('rate'):g}/s by {p.get('step'):g}/s "
                f"up to {p.get('max_rate'):g}/s, {p.get('users')} users{scaled}"
            )
        else:
            shape = (
                f"{p.get('rate'):g} arrivals/s from {p.get('users')} users, {p.get('ramp_up'):g}s ramp-up, "
                f"{p.get('duration'):g}s plateau{scaled}"
            )
        lines += [
            f"- host: `{self.host}`; profile: {shape}",
            f"- load generator: Locust FastHttpUser, {self.generator}; paced by arrival rate (open model)",
            f"- duration: {self.finished - self.started:.0f}s"
            + (f"; stopped early: {self.stopped}" if self.stopped else ""),
            *([f"- machine: {self._machine_line()}"] if self.machine else []),
            f"- gate: p95 <= {_ms(slo.LOAD_P95_SECONDS)}, p99 <= {_ms(slo.LOAD_P99_SECONDS)}, errors (5xx, transport) "
            f"<= {slo.LOAD_ERROR_RATE:.1%}, achieved >= {slo.LOAD_MIN_ACHIEVED:.0%} of target, generator CPU "
            f"<= {slo.LOAD_GENERATOR_CPU_MAX:.0%} of one core",
            "",
        ]
        header = "| stage | view | target | achieved | p50 | p95 | p99 | errors | error rate | generator CPU | result |"
        lines += ["## Gate", "", header, "|" + "---|" * 11]
        for s in self.stages:
            for v in (s.client, s.server):
                if v is None:
                    continue
                mine = [b for b in s.breaches if b.source == v.source]
                cpu = "-" if v.generator_cpu is None else f"{v.generator_cpu:.0%}"
                lines.append(
                    f"| {s.name} | {v.source} | {_rate(s.rate)} | {_rate(v.achieved_rate)} | {_ms(v.p50)} | "
                    f"{_ms(v.p95)} | {_ms(v.p99)} | {v.errors}/{v.requests} | {_pct(v.error_rate, 3)} | {cpu} | "
                    f"{'breach' if mine else 'ok'} |"
                )
        breaches = [b for s in self.stages for b in s.breaches]
        lines += ["", "Breaches:" if breaches else "Breaches: none.", ""]
        lines += [f"- {s.name}: {b.message}" for s in self.stages for b in s.breaches]
        if breaches:
            lines.append("")
        with_res = [s for s in self.stages if s.resources]
        if with_res:
            lines += [
                "## Service (Prometheus, over each measured window)",
                "",
                "| stage | CPU (cores) | memory max | DB pool checked out avg / max / capacity | waiting max "
                "| DB queries/s | DB query p95 | cache hit ratio | by category |",
                "|" + "---|" * 9,
            ]
            for s in with_res:
                r = s.resources or {}
                mem = r.get("memory_bytes_max")
                pool = " / ".join(
                    _num(r.get(k), "{:.1f}")
                    for k in ("db_pool_checked_out_avg", "db_pool_checked_out_max", "db_pool_capacity")
                )
                cats = ", ".join(
                    f"{k} {_pct(v, 1)}" for k, v in sorted((r.get("cache_hit_ratio_by_category") or {}).items())
                )
                cpu = _num(r.get("cpu_cores"), "{:.2f}")
                memory = _num(None if mem is None else mem / 2**20, "{:.0f} MiB")
                waiting = _num(r.get("db_pool_waiting_max"), "{:.0f}")
                qps = _num(r.get("db_queries_per_second"), "{:.1f}")
                lines.append(
                    f"| {s.name} | {cpu} | {memory} | {pool} | {waiting} | {qps} | "
                    f"{_ms(r.get('db_query_p95'))} | {_pct(r.get('cache_hit_ratio'), 1)} | {cats or '-'} |"
                )
            ratios = {s.name: (s.resources or {}).get("cache_hit_ratio") for s in with_res}
            low = [name for name, ratio in ratios.items() if ratio is not None and ratio < slo.CACHE_HIT_RATIO]
            if low:
                lines.append(
                    f"\nCache hit ratio below the plan's {slo.CACHE_HIT_RATIO:.0%} in: {', '.join(low)} "
                    "(reported, not gated)."
                )
            lines.append("")
        if self.endpoints:
            lines += [
                "## Endpoints (client view, whole run)",
                "",
                "| endpoint | requests | p50 | p95 | p99 | errors | 4xx |",
                "|---|---|---|---|---|---|---|",
            ]
            for e in self.endpoints:
                lines.append(
                    f"| `{e['endpoint']}` | {e['requests']} | {_ms(e['p50'])} | {_ms(e['p95'])} | {_ms(e['p99'])} | "
                    f"{e['errors']} | {e['errors_4xx']} |"
                )
            lines.append("")
        if self.series:
            lines += ["## Charts", "", "![latency](latency.png)", "", "![throughput](throughput.png)", ""]
        if self.notes:
            lines += ["## Notes", "", *(f"- {n}" for n in self.notes), ""]
        return "\n".join(lines)

    def charts(self, folder: Path) -> list[Path]:
        """latency.png (client p50/p95/p99 per second against the limits) and throughput.png
        (target against achieved arrivals per second, errors, generator CPU)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = [row["t"] for row in self.series]
        t0 = self.series[0]["time"] if self.series else self.started

        def col(name: str, scale: float = 1.0) -> list[float]:
            return [math.nan if row.get(name) is None else row[name] * scale for row in self.series]

        def windows(ax: Any) -> None:
            for s in self.stages:
                color = "tab:green" if s.passed else "tab:red"
                ax.axvspan(s.start - t0, s.end - t0, color=color, alpha=0.08, lw=0)

        paths = []
        fig, ax = plt.subplots(figsize=(10, 4.5))
        for name, style in (("p50", "-"), ("p95", "-"), ("p99", "-")):
            ax.plot(t, col(name, 1000), style, label=f"client {name}", lw=1.2)
        ax.axhline(slo.LOAD_P95_SECONDS * 1000, color="tab:orange", ls="--", lw=1, label="p95 limit")
        ax.axhline(slo.LOAD_P99_SECONDS * 1000, color="tab:red", ls="--", lw=1, label="p99 limit")
        for s in self.stages:
            if s.server is not None and s.server.p95 is not None:
                ax.hlines(s.server.p95 * 1000, s.start - t0, s.end - t0, colors="black", lw=2)
        ax.plot([], [], color="black", lw=2, label="server p95 (Prometheus)")
        windows(ax)
        ax.set_yscale("log")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"{self.profile.get('name')}: latency per second (shaded: measured windows)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        paths.append(folder / "latency.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(10, 4.5))
        ax.plot(t, col("target"), color="tab:blue", ls="--", lw=1.2, label="target arrivals/s")
        floor = [x * slo.LOAD_MIN_ACHIEVED for x in col("target")]
        ax.plot(t, floor, color="tab:blue", ls=":", lw=1, label=f"{slo.LOAD_MIN_ACHIEVED:.0%} of target")
        ax.plot(t, col("achieved"), color="tab:green", lw=1.2, label="achieved requests/s")
        ax.plot(t, col("errors"), color="tab:red", lw=1, label="errors/s (5xx, transport)")
        windows(ax)
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("requests per second")
        ax.grid(True, alpha=0.3)
        cpu_ax = ax.twinx()
        cpu_ax.plot(t, col("generator_cpu", 100), color="tab:gray", lw=0.8, alpha=0.7, label="generator CPU %")
        cpu_ax.axhline(slo.LOAD_GENERATOR_CPU_MAX * 100, color="tab:gray", ls="--", lw=0.8)
        cpu_ax.set_ylim(0, 105)
        cpu_ax.set_ylabel("generator CPU (% of one core)")
        handles = ax.get_legend_handles_labels()
        more = cpu_ax.get_legend_handles_labels()
        ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", fontsize=8)
        ax.set_title(f"{self.profile.get('name')}: target against achieved throughput")
        fig.tight_layout()
        paths.append(folder / "throughput.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
        return paths

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        md, js = folder / "report.md", folder / "report.json"
        md.write_text(self.markdown())
        js.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return [md, js, *self.charts(folder)]
