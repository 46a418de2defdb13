"""Shared plumbing for the benchmarks: server processes, the load generator, a scraper, reporting.

The load generator is ``wrk`` (Debian package ``wrk``) when it is on PATH: it is written in C and
leaves the most CPU to the server on a small machine. Without it, a small asyncio HTTP/1.1
keep-alive client stands in (slower, so its figures are lower bounds; the report names the tool).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/services.py: real PostgreSQL/Redis, free_port, dies_with_parent

import services  # noqa: E402

free_port = services.free_port
dies_with_parent = services.dies_with_parent


def cleanup_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so ``finally`` blocks stop every server as on Ctrl-C."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


# --- machine and report --------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_line() -> str:
    return (
        f"{datetime.date.today().isoformat()}, {cpu_model()} ({os.cpu_count()} cores), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


# --- server processes ----------------------------------------------------------------------------
class ServerProcess:
    """A child process serving HTTP on 127.0.0.1:port; ``start()`` waits until ``ready_path`` answers 200.

    The child dies with this process (PR_SET_PDEATHSIG) and ``stop()`` is idempotent, so a
    benchmark interrupted at any point leaves nothing running.
    """

    def __init__(self, name: str, cmd: list[str], port: int, ready_path: str = "/", env: dict[str, str] | None = None):
        self.name, self.cmd, self.port, self.ready_path = name, cmd, port, ready_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix=f"perfstack-bench-{name}-", suffix=".log")[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=dies_with_parent(signal.SIGTERM),
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(self.base_url + self.ready_path).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} not ready within {timeout:.0f}s:\n{self.log_tail()}")
                time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        return services.log_tail(self.log, lines)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.proc = None
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- load generation -----------------------------------------------------------------------------
@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


WRK_SCRIPT = r"""
-- Paths from a file, sent in order (each thread starts at a different offset); stops a thread
-- after `limit` responses when limit > 0; prints one machine-readable line at the end.
local paths, limit, count, idx = {}, 0, 0, 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  limit = tonumber(args[2])
  idx = (wrk.thread:get("tid") or 0) * 7919 % #paths
end
function setup(thread)
  _tids = (_tids or 0) + 1
  thread:set("tid", _tids)
end
function request()
  idx = idx % #paths + 1
  return wrk.format("GET", paths[idx])
end
function response(status, headers, body)
  count = count + 1
  if limit > 0 and count == limit then
    -- wrk's main thread sleeps for the whole -d: tell the caller, which interrupts it (SIGINT).
    io.write("WRK_LIMIT_REACHED\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def load_tool() -> str:
    return "wrk" if have_wrk() else "asyncio client (wrk not installed)"


def run_load(
    base_url: str,
    paths: Sequence[str],
    concurrency: int,
    requests: int | None = None,
    duration: float | None = None,
) -> LoadResult:
    """GET ``paths`` in turn with ``concurrency`` keep-alive connections, for ``requests`` or ``duration`` s."""
    if (requests is None) == (duration is None):
        raise ValueError("give exactly one of requests or duration")
    if have_wrk():
        return _wrk(base_url, paths, concurrency, requests, duration)
    return _asyncio_load(base_url, paths, concurrency, requests, duration)


def _wrk(
    base_url: str, paths: Sequence[str], concurrency: int, requests: int | None, duration: float | None
) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="perfstack-wrk-") as tmp:
        script, path_file = Path(tmp) / "load.lua", Path(tmp) / "paths.txt"
        script.write_text(WRK_SCRIPT)
        path_file.write_text("\n".join(paths) + "\n")
        seconds = duration if duration is not None else max(60.0, (requests or 0) / 50)  # a bound, not a target
        # One wrk thread: the machine is small and wrk's event loop keeps up with a Python server easily.
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
        cmd += ["-s", str(script), base_url, "--", str(path_file), str(requests or 0)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout = []
            assert proc.stdout is not None
            for line in proc.stdout:
                stdout.append(line)
                if line.startswith("WRK_LIMIT_REACHED"):
                    proc.send_signal(signal.SIGINT)  # ends wrk's sleep: it joins, reports and exits
            stderr = proc.stderr.read() if proc.stderr else ""
            returncode = proc.wait(seconds + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out = "".join(stdout)
    m = re.search(r"^WRK_RESULT (\{.*\})$", out, re.M)
    if returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({returncode}):\n{out}\n{stderr}")
    r = json.loads(m.group(1))
    errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout") if r[k]}
    return LoadResult(
        "wrk",
        r["requests"],
        r["duration_us"] / 1e6,
        r["p50"] / 1000,
        r["p90"] / 1000,
        r["p95"] / 1000,
        r["p99"] / 1000,
        r["max"] / 1000,
        errors,
    )


def _asyncio_load(
    base_url: str, paths: Sequence[str], concurrency: int, requests: int | None, duration: float | None
) -> LoadResult:
    host, port = base_url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors: dict[str, int] = {}
    state = {"issued": 0, "next": 0}

    async def worker(deadline: float) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while True:
                if requests is not None and state["issued"] >= requests:
                    return
                if duration is not None and time.perf_counter() >= deadline:
                    return
                state["issued"] += 1
                path = paths[state["next"] % len(paths)]
                state["next"] += 1
                start = time.perf_counter()
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                hdrs = head.lower()
                if b"content-length:" in hdrs:
                    length = int(hdrs.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                    await reader.readexactly(length)
                else:  # chunked
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        await reader.readexactly(size + 2)
                        if size == 0:
                            break
                latencies.append(time.perf_counter() - start)
                if not 200 <= status < 400:
                    errors["status"] = errors.get("status", 0) + 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors["read"] = errors.get("read", 0) + 1
        finally:
            writer.close()

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + (duration or 0)
        await asyncio.gather(*(worker(deadline) for _ in range(concurrency)))
        return time.perf_counter() - start

    seconds = asyncio.run(main())
    lat = sorted(x * 1000 for x in latencies)
    return LoadResult(
        "asyncio",
        len(lat),
        seconds,
        percentile(lat, 50),
        percentile(lat, 90),
        percentile(lat, 95),
        percentile(lat, 99),
        lat[-1] if lat else float("nan"),
        errors,
    )


# --- background scraper --------------------------------------------------------------------------
class Scraper(threading.Thread):
    """GETs ``url`` every ``interval`` seconds (gzip accepted, like Prometheus) until stopped.

    ``on_body`` sees each body (e.g. to track gauge peaks); ``durations`` holds each scrape's time.
    """

    def __init__(self, url: str, interval: float = 0.1, on_body: Callable[[str], None] | None = None):
        super().__init__(daemon=True)
        self.url, self.interval, self.on_body = url, interval, on_body
        self.durations: list[float] = []
        self.failures = 0
        self.bytes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        headers = {"Accept-Encoding": "gzip", "Accept": "text/plain;version=0.0.4"}
        with httpx.Client(timeout=10.0, headers=headers) as client:
            next_at = time.perf_counter()
            while not self._stop_event.is_set():
                start = time.perf_counter()
                try:
                    r = client.get(self.url)
                    self.durations.append(time.perf_counter() - start)
                    self.bytes = len(r.content)
                    if self.on_body is not None:
                        self.on_body(r.text)
                except httpx.HTTPError:
                    self.failures += 1
                next_at += self.interval
                self._stop_event.wait(max(0.0, next_at - time.perf_counter()))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(15)

    def __enter__(self) -> Scraper:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_metrics(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` for every sample line of a Prometheus text exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            continue
    return out
