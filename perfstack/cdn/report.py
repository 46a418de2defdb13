"""Everything the command prints: progress, the summary, ``--json``, and the token kept out of all of it.

Every line goes through :class:`Output`, which replaces the API token with ``***`` wherever it
appears (an exception message that quoted a header, say), so no code path can print it.

Progress goes to stderr: a rich progress bar when stderr is a terminal, one plain line per batch
otherwise (CI logs). The summary goes to stdout; with ``--json`` stdout holds only the JSON
document and the summary moves to stderr, so ``perfstack cdn purge --json ... > result.json``
works.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from .api import ApiError
from .runner import Batch, Outcome, RunResult

REDACTED = "***"


class Output:
    """stdout and stderr, with every secret in ``secrets`` replaced by ``***``."""

    def __init__(self, stdout: TextIO, stderr: TextIO, secrets: Sequence[str] = ()) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def add_secret(self, secret: str | None) -> None:
        if secret and len(secret) >= 4 and secret not in self.secrets:
            self.secrets.append(secret)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def out(self, line: str = "") -> None:
        print(self.redact(line), file=self.stdout, flush=True)

    def err(self, line: str = "") -> None:
        print(self.redact(line), file=self.stderr, flush=True)

    def error(self, message: str) -> None:
        """The one-line ``error: ...`` form used for every refusal."""
        self.err(f"error: {message}")


def noun(mode: str, n: int) -> str:
    """``30 URLs``, ``1 tag``, ``everything``."""
    if mode == "everything":
        return "everything"
    word = {"files": "URL", "prefixes": "prefix", "tags": "tag", "hosts": "host"}[mode]
    plural = "es" if word == "prefix" else "s"
    return f"{n} {word}{plural if n != 1 else ''}"


class PlainProgress:
    """One line per batch and per retry on stderr: what CI logs want."""

    def __init__(self, output: Output) -> None:
        self.output = output

    def started(self, batches: Sequence[Batch], mode: str) -> None:
        self.mode = mode
        total = sum(len(b.items) for b in batches)
        self.output.err(f"purging {noun(mode, total)} in {len(batches)} request(s)")

    def retrying(self, batch: Batch, attempt: int, error: ApiError, delay: float) -> None:
        self.output.err(
            f"batch {batch.number}: attempt {attempt} failed ({error.describe()}); retrying in {delay:.2f}s"
        )

    def finished_batch(self, outcome: Outcome, done: int, total: int) -> None:
        b = outcome.batch
        what = noun(self.mode, len(b.items))
        if outcome.purged:
            self.output.err(f"batch {b.number}/{total}: purged {what}")
        else:
            self.output.err(f"batch {b.number}/{total}: NOT purged ({what}): {outcome.reason}")

    def finished(self, result: RunResult) -> None:
        pass


class RichProgress(PlainProgress):
    """A progress bar on the terminal; retries and failures are printed above it."""

    def __init__(self, output: Output) -> None:
        super().__init__(output)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(file=output.stderr)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )

    def _print(self, line: str) -> None:
        self.console.print(self.output.redact(line), markup=False, highlight=False)

    def started(self, batches: Sequence[Batch], mode: str) -> None:
        self.mode = mode
        total = sum(len(b.items) for b in batches)
        self.task = self.progress.add_task(f"purging {noun(mode, total)}", total=total or 1)
        self.progress.start()

    def retrying(self, batch: Batch, attempt: int, error: ApiError, delay: float) -> None:
        self._print(f"batch {batch.number}: attempt {attempt} failed ({error.describe()}); retrying in {delay:.2f}s")

    def finished_batch(self, outcome: Outcome, done: int, total: int) -> None:
        self.progress.advance(self.task, len(outcome.batch.items) or 1)
        if not outcome.purged:
            what = noun(self.mode, len(outcome.batch.items))
            self._print(f"batch {outcome.batch.number}/{total}: NOT purged ({what}): {outcome.reason}")

    def finished(self, result: RunResult) -> None:
        self.progress.stop()


def progress_for(output: Output) -> PlainProgress:
    """A progress bar when stderr is a terminal, plain lines otherwise."""
    isatty = getattr(output.stderr, "isatty", None)
    if isatty is not None and isatty():
        return RichProgress(output)
    return PlainProgress(output)


def summary_lines(result: RunResult, zone_id: str) -> list[str]:
    """The human summary: counts, then every item that was not purged and why."""
    mode = result.mode
    purged, missing = result.purged, result.not_purged
    total = len(purged) + len(missing)
    costs = f"{result.requests} request(s), {result.retries} retr{'y' if result.retries == 1 else 'ies'}"
    if mode == "everything":
        head = "purged everything" if result.ok else "everything was NOT purged"
        lines = [f"{head} in zone {zone_id} ({costs})"]
    else:
        lines = [f"purged {len(purged)} of {noun(mode, total)} in zone {zone_id} ({costs})"]
    if result.stopped:
        lines.append(f"stopped: {result.stopped}")
    if missing:
        lines.append(f"NOT purged: {noun(mode, len(missing))}:")
        by_reason: dict[str, list[str]] = {}
        for item, outcome in missing:
            by_reason.setdefault(outcome.reason, []).append(item)
        for reason, items in by_reason.items():
            lines.append(f"  {noun(mode, len(items))}: {reason}")
            lines.extend(f"    {item}" for item in items)
    lines.append("result: OK" if result.ok else "result: FAILED (not everything was purged)")
    return lines


def error_dict(error: ApiError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"kind": error.kind, "status": error.status, "errors": error.errors, "message": error.describe()}


def result_dict(result: RunResult) -> dict[str, Any]:
    """The purge part of ``--json``: purged items, failed items with their errors, the counts."""
    outcomes = result.outcomes
    return {
        "purged": result.purged,
        "failed": [
            {
                "item": item,
                "batch": o.batch.number,
                "attempts": o.attempts,
                "reason": o.reason,
                "error": error_dict(o.error),
            }
            for item, o in result.not_purged
        ],
        "requests": result.requests,
        "retries": result.retries,
        "batches": {
            "total": len(outcomes),
            "purged": sum(o.purged for o in outcomes),
            "failed": sum(1 for o in outcomes if o.error is not None and not o.purged),
            "not_sent": sum(1 for o in outcomes if o.error is None and not o.purged),
        },
        "purge_ids": [o.purge_id for o in outcomes if o.purged],
        "stopped": result.stopped,
        "fatal_error": error_dict(result.fatal),
        "interrupted": result.interrupted,
        "seconds_waiting_for_rate_limit": round(result.rate_limit_wait, 3),
        "seconds_waiting_between_retries": round(result.retry_wait, 3),
    }


def dump_json(output: Output, document: dict[str, Any]) -> None:
    output.out(json.dumps(document, indent=2, sort_keys=False))
