"""``perfstack cdn purge``: empty Cloudflare's cache of what a deploy changed, and say exactly what happened.

Run it after ``pulumi up``::

    export CLOUDFLARE_API_TOKEN=...   # Zone > Cache Purge > Purge; read from the environment only
    perfstack cdn purge --zone-id 0123456789abcdef0123456789abcdef \\
        --wait-for https://www.example.com/version.txt --expect "$GIT_SHA" \\
        --changed-from old/manifest.json --changed-to dist/manifest.json --base-url https://www.example.com \\
        --verify --json > purge-result.json

The steps, in order:

1. **Check the input** (:func:`resolve`): exactly one mode, each URL absolute ``http(s)`` with a
   host, prefixes without a scheme, a batch size the plan allows, a 32-hex zone id, a token.
   Anything wrong is one ``error:`` line naming the flag or variable and the expected form, and
   exit status 2, before any request.
2. **Refuse** ``--everything`` on a zone shared by several environments unless ``--force``.
3. ``--dry-run`` prints the batches, the request count and the shortest duration the plan's rate
   limit allows, and stops there.
4. ``--wait-for`` polls the origin until it serves the new version (:mod:`.origin`); on timeout
   nothing is purged and the exit status is 1.
5. **Purge** in batches, paced by the plan's token bucket and retried on 429/5xx
   (:mod:`.runner`, :mod:`.limits`, :mod:`.api`).
6. ``--verify`` requests a sample of the purged URLs and reports ``cf-cache-status``.
7. **Report**: a summary listing every item not purged (or ``--json``); exit status 1 if any
   item was not purged. Nothing half-applied is reported as success.

The purge modes are those of the API (FACTS.md §4.1): ``--files`` (exact URLs), ``--prefixes``
(``www.example.com/static/``, no scheme), ``--tags`` (``Cache-Tag`` values), ``--hosts``, and
``--everything``; ``--changed-from``/``--changed-to`` computes the URLs from two asset manifests
(:mod:`.manifest`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from . import manifest as manifests
from .api import DEFAULT_BASE_URL, ApiError
from .limits import DEFAULT_BATCH_SIZE, PLANS, Clock, Plan, SystemClock, estimate_seconds
from .report import Output, dump_json, noun, progress_for, result_dict, summary_lines
from .runner import Batch, Outcome, Runner, RunResult

EXIT_OK = 0
EXIT_FAILED = 1  # the API refused or failed, --wait-for timed out, or anything was left unpurged
EXIT_USAGE = 2  # bad flags, input or environment; nothing was sent
EXIT_INTERRUPTED = 130

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
ZONE_ENV = "CLOUDFLARE_ZONE_ID"
BASE_URL_ENV = "CLOUDFLARE_BASE_URL"
ENVIRONMENT_ENV = "PERFSTACK_ENVIRONMENT"
ZONE_RE = re.compile(r"[0-9a-f]{32}")
HOST_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
PERMISSION = "Zone > Cache Purge > Purge"
EVERYTHING = "everything"  # the one pseudo-item of a purge_everything request

EPILOG = f"""\
environment:
  {TOKEN_ENV}   API token with the {PERMISSION} permission (required; never a flag, never printed)
  {ZONE_ENV}     zone id, when --zone-id is not given
  {BASE_URL_ENV}    API base URL, when --api-base-url is not given (default {DEFAULT_BASE_URL})
  {ENVIRONMENT_ENV}  environment name, when --environment is not given

exit status:
  0  everything asked for was purged (--verify warnings do not change it)
  1  something was not purged (the summary lists it), the API refused, or --wait-for timed out
  2  bad flags, input or environment: nothing was sent
  130  interrupted

manifest (--changed-from/--changed-to), JSON:
  {{"assets": {{"/static/app.js": "<hash>", ...}}, "entrypoints": {{"/index.html": ["/static/app.js", ...]}}}}
  purged: assets whose hash changed, assets removed, and every entrypoint that references a changed,
  removed or added asset (or whose references changed). URLs are --base-url + path.
"""


class UsageError(Exception):
    """Bad flags, input or environment: printed as one ``error:`` line, exit status 2."""


# --- The command line ----------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    return parse


def configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``purge`` flags to ``p`` (shared by :func:`build_parser` and :func:`add_parser`)."""
    what = p.add_argument_group("what to purge (exactly one)").add_mutually_exclusive_group()
    what.add_argument("--files", nargs="*", metavar="URL", help="exact URLs, e.g. https://www.example.com/app.js")
    what.add_argument(
        "--files-from", metavar="FILE", help="read URLs from FILE, one per line ('-' for stdin; # comments)"
    )
    what.add_argument(
        "--prefixes", nargs="*", metavar="PREFIX", help="URL prefixes without scheme: www.example.com/static/"
    )
    what.add_argument("--tags", nargs="*", metavar="TAG", help="Cache-Tag values")
    what.add_argument("--hosts", nargs="*", metavar="HOST", help="hostnames, e.g. www.example.com")
    what.add_argument(
        "--everything", action="store_true", help="the whole zone (refused on a shared zone without --force)"
    )
    what.add_argument("--changed-from", metavar="OLD_MANIFEST", help="the manifest of the release being replaced")
    changed = p.add_argument_group("changed assets (with --changed-from)")
    changed.add_argument("--changed-to", metavar="NEW_MANIFEST", help="the manifest of the release just deployed")
    changed.add_argument("--base-url", metavar="URL", help="prefix of the manifest's paths: https://www.example.com")

    cf = p.add_argument_group("Cloudflare")
    cf.add_argument("--zone-id", metavar="ID", help=f"the zone's id, 32 hex characters (default: ${ZONE_ENV})")
    cf.add_argument("--api-base-url", metavar="URL", help=f"API base URL (default: ${BASE_URL_ENV}, else the real API)")
    cf.add_argument(
        "--stack",
        metavar="NAME",
        help="read cdn.zoneId, cdn.plan and cdn.sharedZone from stacks/Pulumi.<NAME>.yaml",
    )
    cf.add_argument(
        "--plan", choices=sorted(PLANS), help="the zone's plan: its rate limits (default: the stack's, else free)"
    )

    limits = p.add_argument_group("limits and retries")
    limits.add_argument(
        "--batch-size",
        type=_count(1),
        metavar="N",
        help=f"items per request (default {DEFAULT_BATCH_SIZE}; at most 100, or 500 URLs with --plan enterprise)",
    )
    limits.add_argument("--max-retries", type=_count(0), default=5, metavar="N", help="retries per batch (default 5)")
    limits.add_argument(
        "--timeout", type=_positive_float, default=30.0, metavar="SECONDS", help="per API request (default 30)"
    )

    around = p.add_argument_group("before and after")
    around.add_argument("--wait-for", metavar="URL", help="first poll URL until its body contains --expect TEXT")
    around.add_argument("--expect", metavar="TEXT", help="the text --wait-for waits for (e.g. the commit id)")
    around.add_argument(
        "--wait-timeout", type=_positive_float, default=300.0, metavar="SECONDS", help="give up, purging nothing (300)"
    )
    around.add_argument(
        "--wait-interval", type=_positive_float, default=5.0, metavar="SECONDS", help="between polls (5)"
    )
    around.add_argument(
        "--verify", action="store_true", help="afterwards GET a sample of purged URLs; report cf-cache-status"
    )
    around.add_argument(
        "--verify-sample", type=_count(1), default=5, metavar="N", help="how many URLs --verify GETs (5)"
    )

    safety = p.add_argument_group("safety")
    safety.add_argument(
        "--zone-shared",
        action="store_true",
        help="the zone serves several environments (also: the stack's cdn.sharedZone, or other stacks on the zone)",
    )
    safety.add_argument(
        "--environment", metavar="NAME", help=f"this deploy's environment (default: ${ENVIRONMENT_ENV}, --stack)"
    )
    safety.add_argument("--force", action="store_true", help="allow --everything on a shared zone")
    safety.add_argument("--dry-run", action="store_true", help="print the batches and the time they need; send nothing")

    p.add_argument("--json", action="store_true", help="print a JSON result on stdout (the summary goes to stderr)")
    return p


DESCRIPTION = """\
Purge Cloudflare's cache after a deploy: by URL, prefix, tag, host, everything, or the assets that
changed between two manifests. Batched and paced for the plan's rate limits, retried on 429 and 5xx;
the summary (or --json) lists every item that was not purged."""


def build_parser(prog: str = "perfstack cdn purge") -> argparse.ArgumentParser:
    """The standalone parser (``python -m perfstack.cdn purge``)."""
    p = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return configure(p)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``cdn purge`` on the ``perfstack`` command's subparsers; the handler is ``args.func(args)``."""
    cdn = subparsers.add_parser("cdn", help="Cloudflare: purge the cache after a deploy")
    actions = cdn.add_subparsers(dest="cdn_command", required=True)
    p = actions.add_parser(
        "purge",
        help="purge by URL, prefix, tag, host, everything, or what changed between two manifests",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(p)
    p.set_defaults(func=run)
    return p


# --- Checking the input --------------------------------------------------------------------


@dataclass
class Job:
    """Everything a run needs, checked."""

    mode: str
    items: list[str]
    zone_id: str | None
    token: str | None
    base_url: str
    plan: Plan
    batch_size: int
    changes: list[dict[str, str]] = field(default_factory=list)  # --changed-from: url, path, reason
    duplicates: int = 0
    shared: bool = False
    environment: str | None = None
    affected: list[str] = field(default_factory=list)  # environments on the same zone, from stacks/

    def batches(self) -> list[Batch]:
        size = self.batch_size
        return [Batch(i // size + 1, tuple(self.items[i : i + size])) for i in range(0, len(self.items), size)]


def check_url(url: str, flag: str, example: str = "https://www.example.com/app.js") -> str:
    """An absolute http(s) URL with a host, as the purge-by-URL API needs it."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise UsageError(f"{flag}: {url!r} is not an absolute http(s) URL with a host (expected e.g. {example})")
    return url


def check_prefix(prefix: str, flag: str = "--prefixes") -> str:
    """``host/path``: no scheme (the API's form for prefixes)."""
    prefix = prefix.strip()
    host = prefix.split("/", 1)[0].rsplit(":", 1)[0] if not prefix.startswith("[") else ""
    if "://" in prefix or not host or not HOST_RE.fullmatch(host) or any(c.isspace() for c in prefix):
        raise UsageError(
            f"{flag}: {prefix!r} is not a URL prefix without scheme (expected e.g. www.example.com/static/)"
        )
    return prefix


def check_host(host: str, flag: str = "--hosts") -> str:
    """A bare hostname: no scheme, port or path."""
    host = host.strip()
    if not HOST_RE.fullmatch(host):
        raise UsageError(f"{flag}: {host!r} is not a hostname (expected e.g. www.example.com, without scheme or path)")
    return host


def check_tag(tag: str, flag: str = "--tags") -> str:
    """One ``Cache-Tag`` value: no commas (the header's separator) and no spaces."""
    tag = tag.strip()
    if not tag or "," in tag or any(c.isspace() for c in tag) or len(tag) > 1024:
        raise UsageError(f"{flag}: {tag!r} is not a cache tag (expected one Cache-Tag value, e.g. release-42)")
    return tag


def _read_lines(source: str, stdin: TextIO) -> list[str]:
    if source == "-":
        text = stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--files-from: cannot read {source}: {exc.strerror or exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _dedupe(items: Sequence[str]) -> tuple[list[str], int]:
    unique = list(dict.fromkeys(items))
    return unique, len(items) - len(unique)


def _stack_cdn(stack: str) -> tuple[Any, list[tuple[str, Any]]]:
    """The stack's CdnSettings, and every stack's (name, CdnSettings) that can be read."""
    from ..paths import project_root
    from ..schema import SettingsError
    from ..settings import from_stack_file

    root = project_root()
    try:
        own = from_stack_file(root, stack).cdn
    except SettingsError as exc:
        raise UsageError(f"--stack {stack}: {exc}".replace("\n", "; ")) from None
    others = []
    for path in sorted((root / "stacks").glob("Pulumi.*.yaml")):
        name = path.name[len("Pulumi.") : -len(".yaml")]
        try:
            others.append((name, from_stack_file(root, name).cdn))
        except Exception:  # another stack's broken file must not block this one's purge
            continue
    return own, others


def resolve(args: argparse.Namespace, env: Mapping[str, str], stdin: TextIO) -> Job:
    """Check every flag and variable; raise :class:`UsageError` naming the first problem."""
    token = (env.get(TOKEN_ENV) or "").strip() or None

    stack_cdn, stacks = _stack_cdn(args.stack) if args.stack else (None, [])
    plan = PLANS[args.plan or (stack_cdn.plan if stack_cdn else "free")]

    # The mode and its items.
    changes: list[dict[str, str]] = []
    if args.changed_to and not args.changed_from:
        raise UsageError("--changed-to needs --changed-from OLD_MANIFEST (the manifest of the release being replaced)")
    if args.base_url and not args.changed_from:
        raise UsageError("--base-url is only used with --changed-from/--changed-to")
    if args.files is not None or args.files_from is not None:
        mode, flag = "files", "--files" if args.files is not None else f"--files-from {args.files_from}"
        raw = args.files if args.files is not None else _read_lines(args.files_from, stdin)
        if not raw:
            raise UsageError(f"{flag}: no URL given (expected absolute URLs such as https://www.example.com/app.js)")
        items = [check_url(u, flag) for u in raw]
    elif args.prefixes is not None:
        mode, items = "prefixes", [check_prefix(p) for p in args.prefixes]
        if not items:
            raise UsageError("--prefixes: no prefix given (expected e.g. www.example.com/static/)")
    elif args.tags is not None:
        mode, items = "tags", [check_tag(t) for t in args.tags]
        if not items:
            raise UsageError("--tags: no tag given (expected Cache-Tag values such as release-42)")
    elif args.hosts is not None:
        mode, items = "hosts", [check_host(h) for h in args.hosts]
        if not items:
            raise UsageError("--hosts: no hostname given (expected e.g. www.example.com)")
    elif args.everything:
        mode, items = "everything", [EVERYTHING]
    elif args.changed_from:
        if not args.changed_to:
            raise UsageError("--changed-from needs --changed-to NEW_MANIFEST (the manifest just deployed)")
        if not args.base_url:
            raise UsageError(
                "--changed-from needs --base-url URL to turn paths into URLs (e.g. https://www.example.com)"
            )
        base = check_url(args.base_url, "--base-url", "https://www.example.com")
        if urlsplit(base).query or urlsplit(base).fragment:
            raise UsageError(
                f"--base-url: {base!r} must not have a query or fragment (expected https://www.example.com)"
            )
        try:
            diff = manifests.diff(manifests.load(args.changed_from), manifests.load(args.changed_to))
        except manifests.ManifestError as exc:
            raise UsageError(str(exc)) from None
        mode = "files"
        changes = [{"url": manifests.url_for(base, c.path), "path": c.path, "reason": c.reason} for c in diff]
        items = [c["url"] for c in changes]
    else:
        raise UsageError(
            "nothing to purge: give one of --files, --files-from, --prefixes, --tags, --hosts, --everything, "
            "or --changed-from/--changed-to"
        )
    items, duplicates = _dedupe(items)

    # Batch size.
    limit = plan.max_batch(mode)
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    if mode == "everything":
        batch_size = 1
    elif batch_size > limit:
        unit = "URLs" if mode == "files" else mode
        more = "; 500 URLs only with --plan enterprise" if mode == "files" and plan.name != "enterprise" else ""
        raise UsageError(
            f"--batch-size {batch_size} is more than Cloudflare allows per request on the {plan.name} plan "
            f"({limit} {unit}{more})"
        )

    # Zone, token, API.
    zone_id, zone_source = None, ""
    stack_zone = stack_cdn.zone_id if stack_cdn else None
    if args.zone_id:
        zone_id, zone_source = args.zone_id.strip(), "--zone-id"
    elif env.get(ZONE_ENV, "").strip():
        zone_id, zone_source = env[ZONE_ENV].strip(), ZONE_ENV
        if stack_zone and stack_zone != zone_id:
            raise UsageError(
                f"{ZONE_ENV} ({zone_id}) differs from cdn.zoneId of stack {args.stack} ({stack_zone}): "
                "pass --zone-id to say which zone"
            )
    elif stack_zone:
        zone_id, zone_source = stack_zone, f"cdn.zoneId of stack {args.stack}"
    if zone_id is not None and not ZONE_RE.fullmatch(zone_id):
        raise UsageError(
            f"{zone_source}: {zone_id!r} is not a Cloudflare zone id "
            "(expected 32 lower-case hex characters, from the zone's Overview page; not the domain name)"
        )
    base_url = (args.api_base_url or env.get(BASE_URL_ENV, "") or DEFAULT_BASE_URL).strip()
    check_url(base_url, "--api-base-url" if args.api_base_url else BASE_URL_ENV, DEFAULT_BASE_URL)
    if not args.dry_run:
        if token is None:
            raise UsageError(
                f"{TOKEN_ENV} is not set: export an API token with the {PERMISSION} permission "
                "(it is read from the environment only)"
            )
        if zone_id is None:
            raise UsageError(f"no zone id: pass --zone-id ID or set {ZONE_ENV} (32 hex characters)")

    # Before and after.
    if args.wait_for and args.expect is None:
        raise UsageError("--wait-for needs --expect TEXT: the text the new version serves (e.g. the commit id)")
    if args.expect is not None and not args.wait_for:
        raise UsageError("--expect needs --wait-for URL")
    if args.expect is not None and not args.expect.strip():
        raise UsageError("--expect: empty text would match any response (expected e.g. the commit id)")
    if args.wait_for:
        check_url(args.wait_for, "--wait-for", "https://www.example.com/version.txt")

    # Safety.
    environment = args.environment or env.get(ENVIRONMENT_ENV) or args.stack
    affected = sorted(name for name, cdn in stacks if zone_id and cdn.zone_id == zone_id)
    # Shared when told so, or when several stack files name this zone.
    shared = bool(args.zone_shared or (stack_cdn and stack_cdn.shared_zone) or len(affected) > 1)
    job = Job(
        mode=mode,
        items=items,
        zone_id=zone_id,
        token=token,
        base_url=base_url,
        plan=plan,
        batch_size=batch_size,
        changes=changes,
        duplicates=duplicates,
        shared=shared,
        environment=environment,
        affected=affected,
    )
    if mode == "everything" and shared and not args.force:
        raise UsageError(
            f"refusing --everything: {shared_zone_text(job)}; purge by --prefixes or --hosts, or add --force"
        )
    return job


def shared_zone_text(job: Job) -> str:
    """Which environments a purge of everything on a shared zone affects."""
    this = job.environment or "not named (--environment)"
    others = [e for e in job.affected if e != job.environment]
    if others:
        who = f"this deploy is {this}; it would also empty the cache of: {', '.join(others)}"
    else:
        who = f"this deploy is {this}; every other environment served from it would lose its cache too"
    return f"zone {job.zone_id} is shared by several environments ({who})"


# --- Running -------------------------------------------------------------------------------


def _explain_fatal(error: ApiError, job: Job) -> str:
    if error.kind == "forbidden":
        return (
            f"Cloudflare refused the purge ({error.describe()}): the token in {TOKEN_ENV} lacks the "
            f"{PERMISSION} permission for zone {job.zone_id}"
        )
    if error.kind == "unauthorized":
        return f"Cloudflare rejected the token ({error.describe()}): {TOKEN_ENV} is not a valid, unexpired API token"
    return (
        f"Cloudflare does not know zone {job.zone_id} ({error.describe()}): check --zone-id / {ZONE_ENV} "
        "(32 hex characters from the zone's Overview page)"
    )


def _dry_run(job: Job, output: Output, as_json: bool, wait_for: tuple[str, str, float] | None = None) -> int:
    batches = job.batches()
    seconds = estimate_seconds(job.plan, job.mode, [len(b.items) for b in batches])
    say = output.err if as_json else output.out
    say("dry run: no request is made")
    zone = job.zone_id or f"(not set: --zone-id or {ZONE_ENV})"
    say(f"would purge {noun(job.mode, len(job.items))} in zone {zone} with {len(batches)} request(s)")
    say(f"{job.plan.describe(job.mode)}: at least {seconds:.1f}s, without retries or latency")
    if job.mode == "everything" and job.shared:
        say(f"warning: {shared_zone_text(job)}")
    if wait_for:
        say(f"first: wait up to {wait_for[2]:g}s for {wait_for[0]} to contain {wait_for[1]!r}")
    for change in job.changes:
        say(f"  {change['reason']:<10} {change['url']}")
    for b in batches:
        if job.mode == "everything":
            say("  request 1: purge_everything")
        else:
            span = b.items[0] if len(b.items) == 1 else f"{b.items[0]} … {b.items[-1]}"
            say(f"  request {b.number}: {noun(job.mode, len(b.items))}: {span}")
    if job.token is None:
        say(f"note: {TOKEN_ENV} is not set; a real run needs it")
    if as_json:
        dump_json(
            output,
            {
                "dry_run": True,
                "mode": job.mode,
                "zone_id": job.zone_id,
                "plan": job.plan.name,
                "batch_size": job.batch_size,
                "items": job.items,
                "changes": job.changes or None,
                "batches": [list(b.items) for b in batches],
                "requests": len(batches),
                "estimated_seconds": round(seconds, 3),
            },
        )
    return EXIT_OK


def _unsent(job: Job, reason: str) -> RunResult:
    result = RunResult(job.mode)
    result.outcomes = [Outcome(b, not_sent=reason) for b in job.batches()]
    result.stopped = reason
    return result


def execute(
    job: Job,
    args: argparse.Namespace,
    output: Output,
    clock: Clock,
    send: Callable[[str, Sequence[str]], str] | None = None,
) -> int:
    """Wait, purge, verify, report; returns the exit status."""
    say = output.err if args.json else output.out
    started = clock.now()
    document: dict[str, Any] = {
        "dry_run": False,
        "mode": job.mode,
        "zone_id": job.zone_id,
        "plan": job.plan.name,
        "batch_size": job.batch_size,
        "requested": len(job.items),
        "duplicates_dropped": job.duplicates,
        "changes": job.changes or None,
        "error": None,
        "wait": None,
        "verify": None,
    }
    if job.mode == "everything" and job.shared:
        output.err(f"warning: --force: {shared_zone_text(job)}")

    if args.wait_for:
        from .origin import wait_for

        output.err(f"waiting up to {args.wait_timeout:g}s for {args.wait_for} to contain {args.expect!r}")
        waited = wait_for(
            args.wait_for,
            args.expect,
            timeout=args.wait_timeout,
            interval=args.wait_interval,
            clock=clock,
            on_poll=lambda n, last: output.err(f"  poll {n}: {last}"),
        )
        document["wait"] = waited.as_dict()
        if not waited.ok:
            document["error"] = (
                f"--wait-for: {args.wait_for} did not contain {args.expect!r} within {args.wait_timeout:g}s "
                f"({waited.attempts} polls; last: {waited.last}); nothing was purged"
            )
            output.error(document["error"])
            result = _unsent(job, "not sent: --wait-for timed out")
            return _finish(job, args, output, result, document, clock.now() - started, say)
        output.err(f"the origin serves {args.expect!r} (after {waited.attempts} poll(s))")

    api = None
    if send is None:
        from .api import PurgeAPI

        api = PurgeAPI(job.token or "", job.zone_id or "", job.base_url, timeout=args.timeout)
        send = api.purge
    runner = Runner(send, job.plan, job.mode, clock=clock, max_retries=args.max_retries, events=progress_for(output))
    try:
        result = runner.run(job.batches())
    finally:
        if api is not None:
            api.close()
    if result.fatal is not None:
        document["error"] = _explain_fatal(result.fatal, job)
        output.error(document["error"])

    if args.verify:
        from .origin import sample, verify

        if job.mode != "files":
            say(f"verify: skipped: a purge by {job.mode} names no URL to request")
        elif result.purged:
            checks = verify(sample(result.purged, args.verify_sample))
            document["verify"] = [c.as_dict() for c in checks]
            for c in checks:
                say(f"verify: {'ok  ' if c.level == 'ok' else 'WARN'} {c.url}: {c.note}")
    return _finish(job, args, output, result, document, clock.now() - started, say)


def _finish(
    job: Job,
    args: argparse.Namespace,
    output: Output,
    result: RunResult,
    document: dict[str, Any],
    seconds: float,
    say: Callable[[str], None],
) -> int:
    code = EXIT_INTERRUPTED if result.interrupted else EXIT_OK if result.ok else EXIT_FAILED
    if job.duplicates:
        say(f"note: {job.duplicates} duplicate item(s) dropped")
    for line in summary_lines(result, job.zone_id or ""):
        say(line)
    if args.json:
        head = {"ok": code == EXIT_OK, "exit_code": code}
        dump_json(output, {**head, **document, **result_dict(result), "seconds": round(seconds, 3)})
    return code


def run(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run a parsed ``purge`` command; returns the exit status (the ``args.func`` of :func:`add_parser`)."""
    env = os.environ if env is None else env
    output = Output(stdout or sys.stdout, stderr or sys.stderr)
    raw_token = env.get(TOKEN_ENV) or ""
    output.add_secret(raw_token)
    output.add_secret(raw_token.strip())
    try:
        job = resolve(args, env, stdin or sys.stdin)
    except UsageError as exc:
        output.error(str(exc))
        if args.json:
            dump_json(output, {"ok": False, "exit_code": EXIT_USAGE, "error": str(exc), "purged": [], "requests": 0})
        return EXIT_USAGE
    if args.dry_run:
        wait = (args.wait_for, args.expect, args.wait_timeout) if args.wait_for else None
        return _dry_run(job, output, args.json, wait)
    try:
        return execute(job, args, output, clock or SystemClock())
    except KeyboardInterrupt:
        output.error("interrupted")
        return EXIT_INTERRUPTED


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``perfstack cdn purge`` on its own: parse ``argv`` and run; returns the exit status (2 for bad flags)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run(args, env=env, clock=clock, stdin=stdin, stdout=stdout, stderr=stderr)


if __name__ == "__main__":
    sys.exit(main())
