"""The plan's promises, measured: cache on against off under the same load, cache hit rate, the knee.

    python -m benchmarks.promises            # full run (seed 100k/10k/1M, 150/s, stress to 800/s)
    python -m benchmarks.promises --quick    # smaller seed, 100/s for 15 s, a shorter stress

Starts a real PostgreSQL and Redis (tests/services.py), seeds with ``python -m service seed``,
then serves the API (``python -m service serve``, one worker) with CACHE_ENABLED=true (Redis
flushed first) and with CACHE_ENABLED=false, and drives each with the same fixed arrival rate
through ``python -m perfstack loadtest run --profile smoke`` (Locust, loadtest/locustfile.py's
realistic mix), reading the report.json it writes. The cache hit ratio comes from the API's
/metrics (cache_requests_total by result) around the cache-on run. Then the ``stress`` profile
(cache on) steps the rate up until the SLO gate breaks: the knee is the highest step that passed.

Every process is stopped at the end, on error and on Ctrl-C. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ._harness import (
    ROOT,
    ServerProcess,
    cleanup_on_sigterm,
    dies_with_parent,
    free_port,
    machine_line,
    md_table,
    parse_metrics,
    services,
)

DB_NAME = "perfstack_promises"
EXPECTED = "50-70 %"


@dataclass
class Sizes:
    users: int
    merchants: int
    tickets: int


def serve(env: dict[str, str], cache: bool) -> ServerProcess:
    port = free_port()
    cmd = [sys.executable, "-m", "service", "serve", "--port", str(port)]
    name = "service-cache-" + ("on" if cache else "off")
    return ServerProcess(name, cmd, port, "/health", {**env, "CACHE_ENABLED": "true" if cache else "false"})


def cache_counts(base_url: str) -> dict[str, float]:
    """cache_requests_total summed over caches, by result (hit, miss, ...)."""
    out: dict[str, float] = {}
    for key, value in parse_metrics(httpx.get(base_url + "/metrics", timeout=30).text).items():
        if key.startswith("cache_requests_total{"):
            result = key.partition('result="')[2].partition('"')[0] or "?"
            out[result] = out.get(result, 0.0) + value
    return out


def loadtest(host: str, out: Path, sizes: Sizes, options: list[str], bound: float) -> tuple[dict[str, Any], str]:
    """``python -m perfstack loadtest run ...`` as a child process; its report.json and the command."""
    cmd = [sys.executable, "-m", "perfstack", "loadtest", "run", "--host", host, "--out", str(out)]
    cmd += ["--merchants", str(sizes.merchants), "--app-users", str(sizes.users), *options]
    shown = "python -m perfstack loadtest run --host URL " + " ".join(options)
    print(f"$ {shown}", flush=True)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=dies_with_parent(signal.SIGTERM),
    )  # fmt: skip
    try:
        text, _ = proc.communicate(timeout=bound)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode not in (0, 1) or not (out / "report.json").exists():
        raise RuntimeError(f"loadtest failed ({proc.returncode}):\n{text[-3000:]}")
    for line in text.splitlines():
        if line.startswith(("plateau", "step", "PASS", "FAIL", "INCONCLUSIVE", "breach")):
            print("  " + line, flush=True)
    return json.loads((out / "report.json").read_text()), shown


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.1f}"


def pct(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f} %"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.promises", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller seed, shorter runs")
    p.add_argument("--rate", type=float, help="arrivals/s for cache on/off (default 150; quick 100)")
    p.add_argument("--duration", type=int, help="plateau seconds (default 30; quick 15)")
    a = p.parse_args(argv)
    q = a.quick
    sizes = Sizes(20_000, 2_000, 200_000) if q else Sizes(100_000, 10_000, 1_000_000)
    rate = a.rate or (100.0 if q else 150.0)
    duration = a.duration or (15 if q else 30)
    ramp = 5
    users = max(20, round(rate / 3))  # enough users to keep the rate when responses slow down
    stress = (50, 50, 10, 500) if q else (100, 50, 15, 800)  # start, step, seconds per step, max
    cleanup_on_sigterm()
    began = time.perf_counter()
    load_start = os.getloadavg()
    print(f"machine: {machine_line()}; load average {' '.join(f'{x:.2f}' for x in load_start)}", flush=True)

    pg, rd = services.PostgresServer(), services.RedisServer()
    runs: dict[bool, dict[str, Any]] = {}
    hits: dict[str, float] = {}
    commands: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="perfstack-promises-"))
    try:
        pg.start()
        rd.start()
        pg.create_database(DB_NAME)
        env = {"DATABASE_URL": pg.url_for(DB_NAME), "REDIS_URL": rd.url}
        seed = ["--users", str(sizes.users), "--merchants", str(sizes.merchants), "--tickets", str(sizes.tickets)]
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "service", "seed", *seed],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=900, cwd=ROOT,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"seed failed:\n{done.stdout}\n{done.stderr}")
        commands.append("python -m service seed " + shlex.join(seed))
        print(f"seeded {sizes} in {time.perf_counter() - t:.0f} s", flush=True)

        options = ["--profile", "smoke", "--rate", f"{rate:g}", "--users", str(users)]
        options += ["--duration", str(duration), "--ramp-up", str(ramp)]
        for cache in (True, False):
            if cache:
                rd.client(timeout=5).flushall()
            with serve(env, cache) as api:
                before = cache_counts(api.base_url) if cache else {}
                print(f"cache {'on' if cache else 'off'}: {api.base_url}", flush=True)
                report, shown = loadtest(api.base_url, tmp / f"cache-{cache}", sizes, options, duration + ramp + 120)
                runs[cache] = report
                if cache:
                    after = cache_counts(api.base_url)
                    hits = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        commands.append(f"CACHE_ENABLED=true|false {shown}")

        start, step, secs, top = stress
        options = ["--profile", "stress", "--rate", str(start), "--step", str(step)]
        options += ["--duration", str(secs), "--max-rate", str(top)]
        rd.client(timeout=5).flushall()
        with serve(env, True) as api:
            steps = (top - start) // step + 1
            knee_report, shown = loadtest(api.base_url, tmp / "stress", sizes, options, steps * secs + 180)
        commands.append(f"CACHE_ENABLED=true {shown}")
    finally:
        rd.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    # --- cache on against off ---------------------------------------------------------------
    def client(report: dict[str, Any]) -> dict[str, Any]:
        return report["stages"][-1]["client"] if report["stages"] else {}

    on, off = client(runs[True]), client(runs[False])
    lookups = sum(hits.values())
    hit_ratio = hits.get("hit", 0.0) / lookups if lookups else None
    rows = []
    for name, c in (("on", on), ("off", off)):
        rows.append(
            [
                name,
                f"{c.get('target_rate', 0):.0f}",
                f"{c.get('achieved_rate', 0):.1f}",
                ms(c.get("p50")),
                ms(c.get("p95")),
                ms(c.get("p99")),
                f"{c.get('errors', 0)}/{c.get('requests', 0)} ({pct(c.get('error_rate'), 2)})",
                pct(c.get("generator_cpu")),
                pct(hit_ratio, 1) if name == "on" else "-",
            ]
        )
    cuts = {}
    for q_name in ("p50", "p95", "p99"):
        a_on, a_off = on.get(q_name), off.get(q_name)
        cuts[q_name] = 1 - a_on / a_off if a_on is not None and a_off else None
    rows.append(["reduction", "", "", *(pct(cuts[k]) for k in ("p50", "p95", "p99")), "", "", f"plan: {EXPECTED}"])

    # --- the knee ---------------------------------------------------------------------------
    stages = knee_report["stages"]
    knee_rows = []
    for s in stages:
        c = s["client"] or {}
        knee_rows.append(
            [
                f"{s['target_rate']:.0f}",
                f"{c.get('achieved_rate', 0):.1f}",
                ms(c.get("p50")),
                ms(c.get("p95")),
                ms(c.get("p99")),
                pct(c.get("error_rate"), 2),
                pct(c.get("generator_cpu")),
                "pass" if s["passed"] else "FAIL: " + "; ".join(b["message"] for b in s["breaches"]),
            ]
        )
    knee = knee_report.get("knee")
    broke = next((s for s in stages if not s["passed"]), None)
    knee_stage = next((s for s in stages if knee and s["target_rate"] == knee["rate"]), None)
    knee_cpu = (knee_stage["client"] or {}).get("generator_cpu") if knee_stage else None
    broke_cpu = (broke["client"] or {}).get("generator_cpu") if broke else None

    # --- the Markdown block -----------------------------------------------------------------
    cut_text = ", ".join(f"{k} {pct(v)}" for k, v in cuts.items())
    knee_text = f"{knee['rate']:.0f} requests/s" if knee else "not reached (the first step already failed)"
    if broke is None:
        broke_text = f"no step up to {stress[3]}/s broke the gate"
    elif broke.get("breaches") and all(b["what"] == "generator_cpu" for b in broke["breaches"]):
        broke_text = (
            f"the step at {broke['target_rate']:.0f}/s failed on the generator's CPU, so the knee is a lower bound"
        )
    else:
        broke_text = (
            f"the step at {broke['target_rate']:.0f}/s broke it ("
            + "; ".join(b["message"] for b in broke["breaches"])
            + ")"
        )
    within = all(v is not None and 0.5 <= v <= 0.7 for v in cuts.values())
    above = all(v is not None and v > 0.7 for v in cuts.values())
    verdict = "within" if within else ("above" if above else "not within")
    interpretation = (
        f"Under the same {rate:g} arrivals/s the cache cut client latency by {cut_text}, {verdict} the plan's "
        f"expected {EXPECTED}, with a {pct(hit_ratio, 1)} hit ratio on the realistic mix (cache on, Redis flushed "
        f"before the run, so the figure includes the warm-up misses). "
        f"With the cache on, the knee (highest step with p95 under 100 ms and the whole gate passing) is {knee_text} "
        f"on this {os.cpu_count()}-core machine; {broke_text}. "
        f"The API (one uvicorn worker), PostgreSQL, Redis and the Locust generator share the same cores, the "
        f"generator using {pct(knee_cpu)} of one core at the knee and {pct(broke_cpu)} at the first failing step, "
        "so absolute figures are lower than on a dedicated host while the on/off comparison under identical load "
        "holds."
    )
    out = [
        "",
        "### The plan's promises: cache on/off, hit rate, knee",
        "",
        f"Measured {machine_line()}; load average at start "
        f"{' '.join(f'{x:.2f}' for x in load_start)}. Reference API (1 uvicorn worker), PostgreSQL and Redis on the "
        f"same host; {sizes.users} users, {sizes.merchants} merchants, {sizes.tickets} tickets. Load: Locust "
        "(loadtest/locustfile.py realistic mix, open model) in process, one core. Commands "
        "(`python -m benchmarks.promises" + (" --quick" if q else "") + "`):",
        "",
        "```",
        *commands,
        "```",
        "",
        f"Cache on against off: {rate:g} arrivals/s, {ramp} s ramp-up, {duration} s plateau measured, {users} users "
        "(latency in ms, client side; generator CPU as a share of one core):",
        "",
        md_table(
            ["cache", "target /s", "achieved /s", "p50", "p95", "p99", "errors", "generator CPU", "hit ratio"], rows
        ),
        "",
        f"Knee (stress profile, cache on): from {stress[0]}/s by {stress[1]}/s, {stress[2]} s per step, up to "
        f"{stress[3]}/s, stopping at the first step that breaks the gate:",
        "",
        md_table(["target /s", "achieved /s", "p50", "p95", "p99", "errors", "generator CPU", "gate"], knee_rows),
        "",
        f"Knee: **{knee_text}** (generator CPU {pct(knee_cpu)}); first failing step: "
        + (f"{broke['target_rate']:.0f}/s (generator CPU {pct(broke_cpu)})" if broke else "none")
        + ".",
        "",
        interpretation,
        "",
    ]
    print("\n".join(out))
    print(f"(finished in {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
