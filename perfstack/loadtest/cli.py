"""``perfstack loadtest run``: load-test the API with Locust and gate the run on the SLO.

    perfstack loadtest run --profile smoke --host http://127.0.0.1:8000
    perfstack loadtest run --profile plan --host URL --scale 0.2 --prometheus http://127.0.0.1:9090
    perfstack loadtest run --profile stress --host URL --scale 0.5 --duration 15 --out build/stress

Exit status: 0 the gate passed (stress: a knee was found, and the server, not the load generator,
broke the step above it); 1 a breach; 2 a usage error (a bad option, the host or Prometheus not
answering). Reports go to ``--out`` (default ``build/loadtest/<profile>``): report.md,
report.json, latency.png, throughput.png.

Wiring: ``perfstack.cli`` calls :func:`add_parser` with its subparsers; other ``loadtest``
subcommands (``loadtest report --jtl``) add themselves to :data:`SUBCOMMANDS` afterwards.
Until then: ``python -m perfstack.loadtest.cli run --profile smoke --host URL``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from . import profiles

# The `loadtest` command's sub-subparsers: `run` is registered here, others may add theirs.
SUBCOMMANDS: Any = None


class UsageError(Exception):
    """A problem with the command line or what it points at: exit status 2."""


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``loadtest`` (with ``run``) on ``subparsers``; returns the ``loadtest`` parser."""
    global SUBCOMMANDS
    lt = subparsers.add_parser("loadtest", help="load-test the API with Locust and gate the run on the SLO")
    SUBCOMMANDS = lt.add_subparsers(dest="loadtest_command", metavar="{run,...}", required=True)
    r = SUBCOMMANDS.add_parser(
        "run",
        help="run a load profile (smoke, plan, stress) against --host; exit 1 when the SLO gate breaks",
        description="Run a Locust load profile paced by arrival rate and gate it on perfstack.slo: "
        "p95, p99, error rate, achieved against target rate, and the generator's own CPU.",
    )
    r.add_argument("--profile", required=True, choices=sorted(profiles.PROFILES), help="the load profile")
    r.add_argument("--host", required=True, help="base URL of the API, e.g. http://127.0.0.1:8000")
    r.add_argument("--scale", type=_positive(float), default=1.0, help="multiply the profile's rates and users")
    r.add_argument("--rate", type=_positive(float), help="target arrivals/s (stress: of the first step)")
    r.add_argument("--users", type=_positive(int), help="concurrent users (the pool that keeps the rate)")
    r.add_argument("--duration", type=_positive(float), help="seconds at the plateau (stress: per step)")
    r.add_argument("--ramp-up", type=float, help="seconds to reach the plateau")
    r.add_argument("--step", type=_positive(float), help="stress: arrivals/s added per step")
    r.add_argument("--max-rate", type=_positive(float), help="stress: the last step's rate at most")
    r.add_argument("--prometheus", metavar="URL", help="also gate the server's view from this Prometheus")
    r.add_argument("--job", default="api", help="the API's scrape job in Prometheus (default: api)")
    r.add_argument("--out", type=Path, help="report folder (default: build/loadtest/<profile>)")
    r.add_argument("--merchants", type=_positive(int), default=10_000, help="merchant ids 1..N exist (seed)")
    r.add_argument("--app-users", type=_positive(int), default=100_000, help="user ids 1..N exist (seed)")
    r.add_argument("--locustfile", type=Path, help="default: loadtest/locustfile.py of the project")
    d = r.add_argument_group("distributed mode (this process is the Locust master)")
    d.add_argument("--workers", type=int, default=0, help="wait for N `locust --worker` processes and use them")
    d.add_argument("--master-bind", default="127.0.0.1", help="interface workers connect to (default 127.0.0.1)")
    d.add_argument("--master-port", type=int, default=5557)
    d.add_argument("--worker-timeout", type=_positive(float), default=60.0, help="seconds to wait for workers")
    r.set_defaults(func=run_command)
    return lt


def build_profile(args: argparse.Namespace) -> profiles.Profile:
    profile = profiles.get(args.profile)
    if args.scale != 1:
        profile = profile.scaled(args.scale)
    changes = {
        name: getattr(args, name)
        for name in ("rate", "users", "duration", "ramp_up", "step", "max_rate")
        if getattr(args, name) is not None
    }
    if args.ramp_up is not None and args.ramp_up < 0:
        raise UsageError("--ramp-up must not be negative")
    if (args.step or args.max_rate) and not profile.step:
        raise UsageError(f"--step and --max-rate apply to a stepped profile (stress), not {profile.name}")
    profile = dataclasses.replace(profile, **changes)
    if profile.step and profile.max_rate < profile.rate:
        profile = dataclasses.replace(profile, max_rate=profile.rate)
    return profile


def _check_host(host: str) -> None:
    url = urllib.parse.urlsplit(host)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise UsageError(f"--host must be an http(s) URL, got {host!r}")
    try:
        with urllib.request.urlopen(host.rstrip("/") + "/health", timeout=5) as resp:
            resp.read()
    except urllib.error.HTTPError:
        return  # it answers (a /health error is the run's business, not a usage error)
    except (urllib.error.URLError, OSError) as exc:
        raise UsageError(f"cannot reach {host}: {getattr(exc, 'reason', exc)}") from None


def run_command(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from .gate import check
    from .prom import Prometheus, PrometheusError, resources, server_view
    from .report import Report, StageReport
    from .runner import Progress, plan_stages, run

    try:
        profile = build_profile(args)
        stages = plan_stages(profile)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.workers < 0:
        raise UsageError("--workers must not be negative")
    _check_host(args.host)
    prom = Prometheus(args.prometheus) if args.prometheus else None
    if prom is not None:
        try:
            prom.check()
        except PrometheusError as exc:
            raise UsageError(str(exc)) from None
    out = args.out or Path("build") / "loadtest" / profile.name
    load_before = os.getloadavg()[0]
    stress = bool(profile.step)
    progress = Progress()
    progress.stage(
        f"loadtest {profile.name} against {args.host}: {len(stages)} stages, "
        f"{sum(s.duration for s in stages)}s at most" + (f", scaled x{args.scale:g}" if args.scale != 1 else "")
    )

    def judge(stage: Any) -> bool:  # stress: stop at the first step the client view breaks
        return not check(stage.client)

    result = run(
        stages,
        args.host,
        users=profile.users,
        locustfile=args.locustfile,
        data={"merchants": args.merchants, "users": args.app_users},
        progress=progress,
        judge=judge if stress else None,
        workers=args.workers,
        master_bind=args.master_bind,
        master_port=args.master_port,
        worker_timeout=args.worker_timeout,
    )
    reports = []
    notes = []
    if prom is not None and not prom.wait_for_scrape(args.job, result.finished):
        notes.append(
            f"Prometheus had not scraped job {args.job} within 30s after the run: the server view may be short"
        )
    for sr in result.stages:
        if not sr.stage.measured or sr.client is None:
            continue
        start, end = sr.start + sr.stage.settle, sr.end
        server = used = None
        if prom is not None:
            try:
                server = server_view(prom, args.job, start, end, sr.stage.rate)
                used = resources(prom, args.job, start, end)
            except PrometheusError as exc:
                notes.append(f"{sr.stage.name}: Prometheus query failed: {exc}")
                server = None
        reports.append(StageReport(sr.stage.name, sr.stage.rate, start, end, sr.client, server, used))
    if prom is None:
        notes.append("no --prometheus: only the client's view was gated")
    windows = [s for r in reports for s in range(round(r.start), round(r.end))]
    busy = [result.machine_cpu[s] for s in windows if s in result.machine_cpu]
    machine = {
        "cores": os.cpu_count(),
        "busy": sum(busy) / len(busy) if busy else None,
        "load_average_before": load_before,
    }
    if machine["busy"] is not None and machine["busy"] > 0.8:
        notes.append(
            f"the machine's CPU was {machine['busy']:.0%} busy during the measured windows: the API, its "
            "database and the load generator competed for it (and so did anything else running): latency "
            "figures include that contention"
        )
    if result.generator != "in process":
        notes.append(f"load generator {result.generator}: generator CPU is the busiest worker's")
    report = Report(
        profile=dataclasses.asdict(profile),
        kind="stress" if stress else "run",
        host=args.host,
        stages=reports,
        series=result.series(),
        endpoints=result.endpoints(),
        scale=args.scale,
        generator=result.generator,
        started=result.started,
        finished=result.finished,
        stopped=result.stopped,
        notes=notes,
        machine=machine,
    )
    written = report.write(out)
    for s in reports:
        for v in (s.client, s.server):
            if v is not None:
                print(f"{s.name} {v.source}: {_summary(v)}")
    for s in reports:
        for b in s.breaches:
            print(f"breach: {s.name}: {b.message}")
    print(report.verdict())
    print(f"report: {', '.join(str(p) for p in written)}")
    return report.exit_code


def _summary(v: Any) -> str:
    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x * 1000:.1f}ms"

    cpu = "" if v.generator_cpu is None else f", generator CPU {v.generator_cpu:.0%}"
    return (
        f"target {v.target_rate or 0:.1f}/s achieved {v.achieved_rate:.1f}/s, p50 {ms(v.p50)} p95 {ms(v.p95)} "
        f"p99 {ms(v.p99)}, errors {v.errors}/{v.requests} ({v.error_rate:.3%}){cpu}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m perfstack.loadtest.cli run ...`` (the same as ``perfstack loadtest run ...``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="perfstack")
    add_parser(parser.add_subparsers(dest="command", required=True))
    if argv[:1] != ["loadtest"]:
        argv = ["loadtest", *argv]
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
