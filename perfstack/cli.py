"""The ``perfstack`` command.

perfstack render --stack dev --out build/dev     # the files the stack puts into containers
perfstack validate --stack prod                  # render, then promtool/amtool/redis-server
perfstack alerts build|check                     # alerts/generated/*.yml from alerts/*.py
perfstack dashboards build|check|diff            # dashboards/generated/*.json; a PR-readable diff
perfstack cdn purge --changed-from OLD --changed-to NEW --base-url URL   # after pulumi up
perfstack loadtest run --profile smoke --host URL          # Locust load test gated on the SLO
perfstack loadtest report --jtl results.jtl --profile plan # the same gate on JMeter results
perfstack docs --write                           # refresh the config reference
perfstack preflight                              # what `make up` needs, and what is missing
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .paths import project_root
from .rules.model import RuleError
from .schema import SettingsError


def _render(args: argparse.Namespace) -> int:
    from .render import render_stack, write

    root = project_root()
    _, files = render_stack(root, args.stack)
    written = write(files, Path(args.out))
    secret = sum(1 for f in files.values() if f.secret)
    print(
        f"rendered {len(written)} files for stack {args.stack} into {args.out} "
        f"({secret} hold secrets, written as placeholders); see {Path(args.out) / 'MANIFEST'}"
    )
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .validate import validate

    results = validate(project_root(), args.stack, Path(args.keep) if args.keep else None)
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'}  {r.name}")
        if r.detail and (not r.ok or args.verbose):
            for line in r.detail.splitlines():
                print(f"      {line}")
    failed = sum(not r.ok for r in results)
    print(f"stack {args.stack}: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _docs(args: argparse.Namespace) -> int:
    from .docs import markdown, targets

    if not args.write and not args.check:
        print(markdown())
        return 0
    stale = []
    for path, text in targets(project_root()).items():
        if path.read_text() != text:
            stale.append(path)
            if args.write:
                path.write_text(text)
    if args.check and stale:
        print("config reference out of date in: " + ", ".join(str(p) for p in stale) + " (run perfstack docs --write)")
        return 1
    print(f"config reference: {len(stale)} file(s) {'updated' if args.write else 'stale'}")
    return 0


def _build_or_check(action: str, module: object, what: str, folder: str, source: str) -> int:
    """``perfstack alerts|dashboards build|check``: one shape for every generated folder."""
    root = project_root()
    if action == "build":
        changed = module.write(root)  # type: ignore[attr-defined]
        for path in changed:
            print(f"wrote {path.relative_to(root)}")
        print(f"{what}: {len(changed)} file(s) changed")
        return 0
    problems = module.stale(root)  # type: ignore[attr-defined]
    for line in problems:
        print(line)
    if problems:
        print(f"{folder} differs from {source}: run `perfstack {what} build` and commit the result")
        return 1
    print(f"{what}: {folder} matches {source}")
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from .rules import build

    return _build_or_check(args.action, build, "alerts", "alerts/generated/", "alerts/*.py")


def _dashboards(args: argparse.Namespace) -> int:
    from .dashboards import build

    if args.action == "diff":
        from .dashboards import diff

        return diff.main(args, project_root())
    return _build_or_check(args.action, build, "dashboards", "dashboards/generated/", "dashboards/*.dashboard.py")


def _preflight(args: argparse.Namespace) -> int:
    """What `make up` needs on this machine, each missing piece named with how to get it."""
    import shutil
    import subprocess

    missing = []
    if shutil.which("pulumi") is None:
        missing.append("the Pulumi CLI (pulumi) is not on PATH: install it from https://www.pulumi.com/docs/install/")
    if shutil.which("docker") is None:
        missing.append("the Docker CLI (docker) is not on PATH: install Docker Engine or Docker Desktop")
    else:
        proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
        if proc.returncode != 0 or not proc.stdout.strip():
            reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
            missing.append(f"no Docker engine answers (docker info: {reason}): start Docker or set DOCKER_HOST")
    for line in missing:
        print(f"missing: {line}")
    if missing:
        print(f"make up cannot run: {len(missing)} prerequisite(s) missing")
        return 1
    print("preflight: pulumi and a Docker engine are available")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="perfstack", description="Monitoring as code for one API.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="write every file a stack puts into its containers")
    r.add_argument("--stack", required=True, help="stack name: dev, staging or prod (stacks/Pulumi.<stack>.yaml)")
    r.add_argument("--out", required=True, help="folder to write into")
    r.set_defaults(func=_render)

    v = sub.add_parser("validate", help="render a stack and check it with promtool, amtool and redis-server")
    v.add_argument("--stack", required=True, help="stack name: dev, staging or prod")
    v.add_argument("--keep", metavar="DIR", help="render into DIR and keep it, instead of a temporary folder")
    v.add_argument("-v", "--verbose", action="store_true", help="print each tool's output")
    v.set_defaults(func=_validate)

    a = sub.add_parser("alerts", help="build alerts/generated/*.yml from alerts/*.py, or check they match")
    a.add_argument("action", choices=["build", "check"])
    a.set_defaults(func=_alerts)

    db = sub.add_parser("dashboards", help="build, check or diff the dashboards")
    db.add_argument("action", choices=["build", "check", "diff"])
    db.add_argument("--base", help="diff: git ref or folder of the old dashboards (default: merge base with main)")
    db.add_argument("--head", help="diff: git ref or folder of the new dashboards (default: the working tree)")
    db.set_defaults(func=_dashboards)

    f = sub.add_parser("preflight", help="check that the Pulumi CLI and a Docker engine are available")
    f.set_defaults(func=_preflight)

    d = sub.add_parser("docs", help="print the config reference, or refresh it in Pulumi.yaml and README.md")
    g = d.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help="update Pulumi.yaml and README.md")
    g.add_argument("--check", action="store_true", help="exit 1 when either file is out of date")
    d.set_defaults(func=_docs)
    from .cdn import purge as cdn_purge

    cdn_purge.add_parser(sub)

    from .loadtest import cli as loadtest_cli
    from .loadtest import jmeter

    loadtest_cli.add_parser(sub)  # perfstack loadtest run ...
    jmeter.add_report_parser(loadtest_cli.SUBCOMMANDS)  # perfstack loadtest report --jtl FILE ...
    jmeter.add_plan_parser(loadtest_cli.SUBCOMMANDS)  # perfstack loadtest jmeter-plan ...
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"error: invalid stack configuration:\n{exc}", file=sys.stderr)
        return 2
    except RuleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
