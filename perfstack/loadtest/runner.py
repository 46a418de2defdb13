"""Run a load profile with Locust as a library: paced by arrival rate, measured second by second.

    stages = plan_stages(profiles.get("smoke"))
    result = run(stages, "http://127.0.0.1:8000", users=20)   # imports locust (gevent) here
    plateau = result.stages[-1].client                         # a gate.View for gate.check()

Locust is imported inside :func:`run` only: importing it monkey-patches the process for gevent,
which only the process that generates the load should get. :class:`Recorder` is plain Python,
shared by the in-process run and by the workers of a distributed one (loadtest/locustfile.py).

What is measured: every request Locust completes, bucketed by the wall-clock second it completed
in, with its latency in a histogram (0.1 ms resolution below 100 ms). The achieved rate of a
stage is the requests completed per second inside its window; the generator's CPU is
``psutil.Process().cpu_percent()`` each second, as a share of one core (gevent runs on one), or
the busiest worker's in a distributed run.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .gate import View
from .profiles import Profile

SPAWN_RATE_MAX = 100.0  # users started per second at most (Locust warns above 100)
REPORT_LAG = 4  # seconds: workers report every 3 s, so a distributed window is judged this late
PACE_MESSAGE = "perfstack_pace"  # the locustfile's custom message (per-user rate, id ranges)

OK, CLIENT_ERROR, SERVER_ERROR, TRANSPORT = "ok", "4xx", "5xx", "transport"


def default_locustfile() -> Path:
    from ..paths import project_root

    return project_root() / "loadtest" / "locustfile.py"


# --- measurements ------------------------------------------------------------------------------


def hist_key(ms: float) -> int:
    """A latency's histogram key, in tenths of a millisecond: exact to 0.1 ms below 100 ms, to
    1 ms below 1 s, to 10 ms above (the gate's 100 ms and 500 ms lines fall on exact keys)."""
    tenths = ms * 10
    if tenths < 1000:
        return round(tenths)
    if tenths < 10_000:
        return int(round(tenths, -1))
    return int(round(tenths, -2))


def quantile(hist: Mapping[int, int], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of a histogram of :func:`hist_key` keys, in seconds."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for key in sorted(hist):
        seen += hist[key]
        if seen >= rank:
            return key / 10_000
    return max(hist) / 10_000  # not reached


def classify(status: int, failed: bool) -> str:
    """ok (Locust counted a success), 4xx, 5xx, or transport (no HTTP status: refused, timed out)."""
    if not failed:
        return OK
    if status >= 500:
        return SERVER_ERROR
    if 400 <= status < 500:
        return CLIENT_ERROR
    return TRANSPORT


class Bucket:
    """Requests, errors by kind and a latency histogram: one second, one endpoint or a window."""

    __slots__ = ("e4", "e5", "et", "hist", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.e4 = 0
        self.e5 = 0
        self.et = 0
        self.hist: Counter[int] = Counter()

    @property
    def errors(self) -> int:
        """What the gate counts as errors: 5xx and transport errors (a 4xx is the client's fault)."""
        return self.e5 + self.et

    def add(self, kind: str, key: int) -> None:
        self.requests += 1
        if kind == SERVER_ERROR:
            self.e5 += 1
        elif kind == TRANSPORT:
            self.et += 1
        elif kind == CLIENT_ERROR:
            self.e4 += 1
        self.hist[key] += 1

    def merge(self, other: Bucket) -> None:
        self.requests += other.requests
        self.e4 += other.e4
        self.e5 += other.e5
        self.et += other.et
        self.hist.update(other.hist)

    def quantile(self, q: float) -> float | None:
        return quantile(self.hist, q)

    def to_wire(self) -> list[Any]:
        return [self.requests, self.e4, self.e5, self.et, sorted(self.hist.items())]

    @classmethod
    def from_wire(cls, data: list[Any]) -> Bucket:
        b = cls()
        b.requests, b.e4, b.e5, b.et = (int(x) for x in data[:4])
        b.hist = Counter({int(k): int(n) for k, n in data[4]})
        return b


class Recorder:
    """Every completed request, by the second it completed in and by endpoint.

    In process it listens to Locust's ``request`` event; a worker of a distributed run sends
    :meth:`drain` with each report and the master :meth:`merge`s it.
    """

    def __init__(self) -> None:
        self.seconds: dict[int, Bucket] = {}
        self.endpoints: dict[str, Bucket] = {}
        self.cpu: dict[int, float] = {}  # second -> the busiest generator process's CPU (share of one core)

    def note_cpu(self, second: int, share: float) -> None:
        self.cpu[second] = max(share, self.cpu.get(second, 0.0))

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int = 0,
        response: Any = None,
        context: Any = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        try:
            status = int(getattr(response, "status_code", 0) or 0)
        except (TypeError, ValueError):
            status = 0
        started = start_time if start_time is not None else time.time() - response_time / 1000
        kind = classify(status, exception is not None)
        self.add(started + response_time / 1000, response_time, kind, name, request_type)

    def add(self, end: float, ms: float, kind: str, name: str = "", method: str = "GET") -> None:
        key = hist_key(ms)
        second = int(end)
        bucket = self.seconds.get(second)
        if bucket is None:
            bucket = self.seconds[second] = Bucket()
        bucket.add(kind, key)
        label = f"{method} {name}"
        endpoint = self.endpoints.get(label)
        if endpoint is None:
            endpoint = self.endpoints[label] = Bucket()
        endpoint.add(kind, key)

    def drain(self) -> dict[str, Any]:
        """What was recorded since the last drain (a worker's report), and forget it."""
        wire = {
            "seconds": [[s, b.to_wire()] for s, b in sorted(self.seconds.items())],
            "endpoints": [[n, b.to_wire()] for n, b in sorted(self.endpoints.items())],
            "cpu": sorted(self.cpu.items()),
        }
        self.seconds, self.endpoints, self.cpu = {}, {}, {}
        return wire

    def merge(self, wire: Mapping[str, Any] | None) -> None:
        if not wire:
            return
        for second, data in wire.get("seconds", []):
            self.seconds.setdefault(int(second), Bucket()).merge(Bucket.from_wire(data))
        for name, data in wire.get("endpoints", []):
            self.endpoints.setdefault(str(name), Bucket()).merge(Bucket.from_wire(data))
        for second, share in wire.get("cpu", []):
            self.note_cpu(int(second), float(share))

    def window(self, start: int, end: int) -> Bucket:
        """Everything that completed in the seconds ``start`` <= s < ``end``."""
        out = Bucket()
        for s in range(start, end):
            if s in self.seconds:
                out.merge(self.seconds[s])
        return out


def client_view(
    recorder: Recorder, start: int, end: int, target_rate: float, cpu: Mapping[int, float], source: str = "client"
) -> View:
    """The gate's view of the seconds ``start`` <= s < ``end`` as the load generator saw them."""
    b = recorder.window(start, end)
    seconds = max(1, end - start)
    cpus = [cpu[s] for s in range(start, end) if s in cpu]
    return View(
        source,
        requests=b.requests,
        errors=b.errors,
        p50=b.quantile(0.5),
        p95=b.quantile(0.95),
        p99=b.quantile(0.99),
        achieved_rate=b.requests / seconds,
        target_rate=target_rate,
        generator_cpu=sum(cpus) / len(cpus) if cpus else None,
        extra={
            "window": [start, end],
            "seconds": seconds,
            "errors_5xx": b.e5,
            "errors_transport": b.et,
            "errors_4xx": b.e4,
            "generator_cpu_max": max(cpus) if cpus else None,
        },
    )


# --- stages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    name: str
    duration: int  # whole seconds
    rate: float  # target arrivals per second once every user runs
    measured: bool = False  # judged by the gate (the plateau, or a stress step)
    settle: int = 0  # seconds at its start left out of the measurement


def plan_stages(profile: Profile) -> list[Stage]:
    """The stages of a run: ramp-up then plateau; for a stepped profile (stress) a short warm-up
    while the users start, then one measured stage per step."""
    spawn_seconds = math.ceil(profile.users / SPAWN_RATE_MAX)
    if profile.step:
        rates = [rate for _, rate in profile.stages()]
        if not rates:
            raise ValueError(f"profile {profile.name}: no step between {profile.rate} and {profile.max_rate}")
        duration = max(1, round(profile.duration))
        settle = min(2, duration // 4)
        warm = Stage("warm-up", max(2, spawn_seconds), rates[0])
        return [warm, *(Stage(f"step {i}", duration, r, True, settle) for i, r in enumerate(rates, 1))]
    ramp = max(round(profile.ramp_up), spawn_seconds)
    out = [Stage("ramp-up", ramp, profile.rate)] if ramp > 0 else []
    out.append(Stage("plateau", max(1, round(profile.duration)), profile.rate, True))
    return out


@dataclass
class StageResult:
    stage: Stage
    start: int  # wall-clock seconds (Unix time)
    end: int
    client: View | None = None  # measured stages, once judged
    ran: bool = False


@dataclass
class RunResult:
    host: str
    users: int
    generator: str  # "in process" or "distributed: N workers"
    started: int
    finished: int
    stages: list[StageResult]
    recorder: Recorder
    target: dict[int, float] = field(default_factory=dict)  # second -> target arrivals/s
    users_by_second: dict[int, int] = field(default_factory=dict)
    machine_cpu: dict[int, float] = field(default_factory=dict)  # second -> whole machine busy (0..1)
    stopped: str | None = None  # why the run ended before its last stage

    @property
    def cpu(self) -> dict[int, float]:
        """second -> generator CPU, share of one core (distributed: the busiest worker's)."""
        return self.recorder.cpu

    def series(self) -> list[dict[str, Any]]:
        """One row per second of the run, for the charts and report.json."""
        rows = []
        for s in range(self.started, self.finished):
            b = self.recorder.seconds.get(s, Bucket())
            rows.append(
                {
                    "t": s - self.started,
                    "time": s,
                    "target": round(self.target.get(s, 0.0), 3),
                    "achieved": b.requests,
                    "errors": b.errors,
                    "errors_4xx": b.e4,
                    "p50": b.quantile(0.5),
                    "p95": b.quantile(0.95),
                    "p99": b.quantile(0.99),
                    "generator_cpu": self.cpu.get(s),
                    "machine_cpu": self.machine_cpu.get(s),
                    "users": self.users_by_second.get(s),
                }
            )
        return rows

    def endpoints(self) -> list[dict[str, Any]]:
        return [
            {
                "endpoint": name,
                "requests": b.requests,
                "errors": b.errors,
                "errors_4xx": b.e4,
                "p50": b.quantile(0.5),
                "p95": b.quantile(0.95),
                "p99": b.quantile(0.99),
            }
            for name, b in sorted(self.recorder.endpoints.items(), key=lambda kv: -kv[1].requests)
        ]


# --- progress ----------------------------------------------------------------------------------


class Progress:
    """One line per second on a terminal; otherwise (CI logs) one line per stage only."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty

    def stage(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def tick(self, text: str) -> None:
        if self.tty:
            print(text, file=self.stream, flush=True)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}ms"


def describe(view: View) -> str:
    cpu = "-" if view.generator_cpu is None else f"{view.generator_cpu:.0%}"
    return (
        f"target {view.target_rate or 0:.1f}/s achieved {view.achieved_rate:.1f}/s, p50 {_ms(view.p50)} "
        f"p95 {_ms(view.p95)} p99 {_ms(view.p99)}, errors {view.errors}/{view.requests} "
        f"({view.error_rate:.2%}), generator CPU {cpu}"
    )


# --- the run -------------------------------------------------------------------------------------


def load_locustfile(path: Path) -> Any:
    """The locustfile as a module (imported once per process: it registers Locust listeners)."""
    name = "perfstack_locustfile"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no locustfile at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def run(
    stages: list[Stage],
    host: str,
    *,
    users: int,
    locustfile: Path | None = None,
    data: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    judge: Callable[[StageResult], bool] | None = None,
    workers: int = 0,
    master_bind: str = "127.0.0.1",
    master_port: int = 5557,
    worker_timeout: float = 60.0,
) -> RunResult:
    """Run ``stages`` against ``host`` with ``users`` Locust users; return what was measured.

    ``judge`` is called with each measured stage once its window is complete; returning False
    stops the run there (stress: the first step that breaks the gate). ``data`` goes to the
    locustfile's pace settings (id ranges of the seeded data). ``workers`` > 0 makes this
    process a Locust master that waits for that many ``locust --worker`` processes.
    The run always ends: after the last stage, or at the first stage ``judge`` rejects.
    """
    import gevent
    import locust
    import psutil
    from locust.env import Environment

    if users < 1:
        raise ValueError("users must be at least 1")
    progress = progress or Progress()
    module = load_locustfile(locustfile or default_locustfile())
    env = Environment(user_classes=[module.ApiUser], host=host, events=locust.events)
    recorder = Recorder()
    if workers:
        runner: Any = env.create_master_runner(master_bind_host=master_bind, master_bind_port=master_port)
    else:
        runner = env.create_local_runner()
    locust.events.init.fire(environment=env, runner=runner, web_ui=None)

    def on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        recorder.merge(data.get("perfstack"))

    if workers:
        env.events.worker_report.add_listener(on_worker_report)
    else:
        env.events.request.add_listener(recorder.on_request)
    process = psutil.Process()
    process.cpu_percent(None)
    psutil.cpu_percent(None)
    lag = REPORT_LAG if workers else 0

    try:
        if workers:
            progress.stage(f"master on {master_bind}:{master_port}: waiting for {workers} worker(s)")
            deadline = time.monotonic() + worker_timeout
            while len(runner.clients.ready) < workers:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"only {len(runner.clients.ready)} of {workers} workers connected within {worker_timeout:.0f}s"
                    )
                gevent.sleep(0.5)
        t0 = math.floor(time.time()) + 1
        plan: list[StageResult] = []
        t = t0
        for st in stages:
            plan.append(StageResult(st, t, t + st.duration))
            t += st.duration
        result = RunResult(
            host,
            users,
            f"distributed: {workers} workers" if workers else "in process",
            t0,
            t0,
            plan,
            recorder,
        )
        pending = [sr for sr in plan if sr.stage.measured]
        pace: dict[str, Any] = dict(data or {})
        current: StageResult | None = None
        gevent.sleep(max(0.0, t0 - time.time()))
        s = t0
        last = plan[-1].end + lag
        while s < last:
            sr = next((p for p in plan if p.start <= s < p.end), None)
            if sr is not None and sr is not current:
                current, sr.ran = sr, True
                pace["per_user"] = sr.stage.rate / users
                runner.send_message(PACE_MESSAGE, dict(pace))
                progress.stage(
                    f"[{sr.stage.name}] {sr.stage.duration}s at {sr.stage.rate:.1f} arrivals/s, {users} users"
                )
                if s == t0:
                    first = plan[0].stage
                    spawn_rate = min(SPAWN_RATE_MAX, max(users / max(first.duration, 1), 1.0))
                    if not first.measured and first.name == "warm-up":
                        spawn_rate = min(SPAWN_RATE_MAX, float(users))
                    runner.start(users, spawn_rate=spawn_rate)
            users_before = runner.user_count
            gevent.sleep(max(0.0, s + 1 - time.time()))
            recorder.note_cpu(s, process.cpu_percent(None) / 100)
            result.machine_cpu[s] = psutil.cpu_percent(None) / 100
            n_users = runner.user_count
            result.users_by_second[s] = n_users
            result.target[s] = (users_before + n_users) / 2 * pace.get("per_user", 0.0)
            b = recorder.seconds.get(s - lag, Bucket())
            recent = recorder.window(s - lag - 4, s - lag + 1)
            progress.tick(
                f"  {s - t0 + 1:4d}s {current.stage.name if current else '-'}: target "
                f"{result.target.get(s - lag, 0.0):7.1f}/s achieved {b.requests:5d}/s p95 {_ms(recent.quantile(0.95))} "
                f"errors {b.errors} users {n_users} generator CPU {result.cpu.get(s - lag, 0.0):.0%}"
            )
            s += 1
            result.finished = s
            for p in list(pending):
                if p.end + lag <= s:
                    pending.remove(p)
                    p.client = client_view(
                        recorder, p.start + p.stage.settle, p.end, p.stage.rate, result.cpu, "client"
                    )
                    progress.stage(f"[{p.stage.name}] {describe(p.client)}")
                    if judge is not None and not judge(p):
                        result.stopped = f"{p.stage.name} ({p.stage.rate:.1f}/s) broke the gate"
                        last = s
            if result.stopped:
                break
        result.finished = min(s, max(p.end for p in plan if p.ran))
        return result
    finally:
        runner.quit()
        if workers:
            env.events.worker_report.remove_listener(on_worker_report)
        else:
            env.events.request.remove_listener(recorder.on_request)


def measured(stages: Iterable[StageResult]) -> list[StageResult]:
    return [s for s in stages if s.stage.measured and s.client is not None]
