"""The load-test gate and report on synthetic data: no load, no servers.

gate.check judges one view; report.Report judges a run (every measured stage, both views) or a
stress run (the knee), and writes report.md, report.json and the two charts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfstack import slo
from perfstack.loadtest import cli, profiles
from perfstack.loadtest.gate import View, check
from perfstack.loadtest.report import Report, StageReport
from perfstack.loadtest.runner import (
    Recorder,
    client_view,
    hist_key,
    plan_stages,
    quantile,
)


def view(source: str = "client", **kw: object) -> View:
    base: dict[str, object] = {
        "requests": 10_000,
        "errors": 0,
        "p50": 0.010,
        "p95": 0.040,
        "p99": 0.090,
        "achieved_rate": 100.0,
        "target_rate": 100.0,
        "generator_cpu": 0.30 if source == "client" else None,
    }
    base.update(kw)
    return View(source, **base)  # type: ignore[arg-type]


def stage(name: str = "plateau", rate: float = 100.0, **kw: object) -> StageReport:
    client = kw.pop("client", view(target_rate=rate, achieved_rate=rate))
    server = kw.pop("server", None)
    return StageReport(name, rate, 1_000, 1_020, client, server, **kw)  # type: ignore[arg-type]


def series(seconds: int = 30, rate: float = 100.0) -> list[dict[str, object]]:
    return [
        {
            "t": i,
            "time": 1_000 + i,
            "target": rate,
            "achieved": rate - (i % 3),
            "errors": 0,
            "errors_4xx": 0,
            "p50": 0.004,
            "p95": 0.020 + i / 1000,
            "p99": None if i == 0 else 0.050,
            "generator_cpu": 0.25,
            "users": 20,
        }
        for i in range(seconds)
    ]


# --- gate.check --------------------------------------------------------------------------------


def test_a_good_view_passes() -> None:
    assert check(view()) == []
    assert check(view("server")) == []


def test_each_limit_breaks_with_a_message_naming_value_and_limit() -> None:
    breaches = check(view(p95=0.150, p99=0.800, errors=50))
    assert [b.what for b in breaches] == ["p95", "p99", "error_rate"]
    assert breaches[0].message == "client: p95 150.0ms is above 100.0ms"
    assert breaches[1].message == "client: p99 800.0ms is above 500.0ms"
    assert breaches[2].message == "client: error rate 0.500% is above 0.100%"
    assert breaches[0].limit == slo.LOAD_P95_SECONDS and breaches[1].limit == slo.LOAD_P99_SECONDS


def test_achieved_below_95_percent_of_target_fails_even_when_latency_is_fine() -> None:
    slow_load = view(achieved_rate=94.0, p50=0.002, p95=0.005, p99=0.010)
    (breach,) = check(slow_load)
    assert breach.what == "achieved_rate"
    assert breach.limit == pytest.approx(95.0)
    assert "achieved 94.0 requests/s, below 95% of the 100.0/s target" in breach.message
    assert check(view(achieved_rate=95.0)) == []


def test_a_saturated_generator_cannot_pass() -> None:
    (breach,) = check(view(generator_cpu=0.93))
    assert breach.what == "generator_cpu"
    assert "93% of a core" in breach.message and "cannot pass" in breach.message
    assert check(view(generator_cpu=slo.LOAD_GENERATOR_CPU_MAX)) == []


def test_no_request_is_a_breach() -> None:
    (breach,) = check(view(requests=0, p50=None, p95=None, p99=None, achieved_rate=0.0))
    assert breach.what == "requests"


# --- measuring -----------------------------------------------------------------------------------


def test_histogram_keys_are_exact_at_the_gate_lines() -> None:
    assert hist_key(2.34) == 23  # 0.1 ms below 100 ms
    assert hist_key(100.0) == 1000 and hist_key(500.4) == 5000  # 1 ms below 1 s
    assert hist_key(1234.0) == 12_300  # 10 ms above
    hist = {hist_key(ms): 1 for ms in range(1, 101)}  # 1..100 ms, one each
    assert quantile(hist, 0.95) == pytest.approx(0.095)
    assert quantile(hist, 0.5) == pytest.approx(0.050)
    assert quantile({}, 0.95) is None


def test_recorder_window_and_client_view() -> None:
    rec = Recorder()
    for s in range(100, 110):
        for i in range(50):
            rec.add(s + i / 50, 5.0 if i else 120.0, "ok", "/a")
    rec.add(105.5, 3.0, "5xx", "/a")
    rec.add(105.5, 3.0, "transport", "/a")
    rec.add(105.5, 3.0, "4xx", "/b")
    cpu = {s: 0.2 for s in range(100, 110)} | {109: 0.6}
    v = client_view(rec, 102, 110, 50.0, cpu)
    assert v.requests == 8 * 50 + 3
    assert v.errors == 2 and v.extra["errors_4xx"] == 1  # a 4xx is reported, not counted against the server
    assert v.achieved_rate == pytest.approx((8 * 50 + 3) / 8)
    assert v.p50 == pytest.approx(0.005) and v.p99 == pytest.approx(0.120)
    assert v.generator_cpu == pytest.approx((7 * 0.2 + 0.6) / 8) and v.extra["generator_cpu_max"] == 0.6
    assert check(v) == [next(b for b in check(v) if b.what == "error_rate")]  # 2/403 is above 0.1 %


def test_worker_reports_merge_into_the_masters_recorder() -> None:
    worker, other, master = Recorder(), Recorder(), Recorder()
    for i in range(10):
        worker.add(200.5, float(i), "ok", "/x")
    worker.note_cpu(200, 0.4)
    other.note_cpu(200, 0.7)
    master.note_cpu(200, 0.01)  # the master's own
    master.merge(worker.drain())
    master.merge(other.drain())
    worker.add(200.7, 50.0, "5xx", "/x")
    master.merge(worker.drain())
    assert worker.seconds == {} and worker.cpu == {}
    b = master.window(200, 201)
    assert b.requests == 11 and b.errors == 1
    assert master.endpoints["GET /x"].requests == 11
    assert master.cpu == {200: 0.7}  # the busiest generator process decides


def test_stages_of_the_profiles() -> None:
    smoke = plan_stages(profiles.get("smoke"))
    assert [(s.name, s.duration, s.rate, s.measured) for s in smoke] == [
        ("ramp-up", 5, 50, False),
        ("plateau", 40, 50, True),
    ]
    stress = plan_stages(profiles.get("stress").scaled(0.5))
    assert stress[0].name == "warm-up" and not stress[0].measured
    steps = [s.rate for s in stress[1:]]
    assert steps[:3] == [50, 100, 150] and steps[-1] == 2000
    assert all(s.measured and s.settle == 2 for s in stress[1:])


# --- the report --------------------------------------------------------------------------------


def test_a_run_passes_only_when_both_views_pass(tmp_path: Path) -> None:
    good = Report({"name": "smoke"}, "run", "http://127.0.0.1:1", [stage(server=view("server"))])
    assert good.passed and good.exit_code == 0 and good.verdict() == "PASS"
    bad_server = Report({"name": "smoke"}, "run", "h", [stage(server=view("server", p95=0.2))])
    assert not bad_server.passed and bad_server.exit_code == 1
    assert bad_server.verdict() == "FAIL: server: p95 200.0ms is above 100.0ms"
    no_data = view("server", requests=0, extra={"problem": "only 2 scrapes of job 'api' in the 20s window"})
    unknown = Report({"name": "smoke"}, "run", "h", [stage(server=no_data)])
    assert unknown.exit_code == 1 and "only 2 scrapes" in unknown.verdict()
    assert Report({"name": "smoke"}, "run", "h", []).exit_code == 1


def test_a_run_below_the_target_rate_fails_however_fast_it_was() -> None:
    fast_but_short = view(achieved_rate=80.0, p50=0.001, p95=0.002, p99=0.003)
    report = Report({"name": "plan"}, "run", "h", [stage(client=fast_but_short)])
    assert report.exit_code == 1
    assert "achieved 80.0 requests/s, below 95% of the 100.0/s target" in report.verdict()


def test_a_run_with_a_saturated_generator_cannot_pass() -> None:
    report = Report({"name": "plan"}, "run", "h", [stage(client=view(generator_cpu=0.97))])
    assert report.exit_code == 1 and "the load generator used 97% of a core" in report.verdict()


def step(rate: float, **kw: object) -> StageReport:
    return stage(f"step {int(rate // 100)}", rate, client=view(target_rate=rate, achieved_rate=rate, **kw))


def test_stress_reports_the_knee_below_the_first_breaking_step() -> None:
    report = Report({"name": "stress"}, "stress", "h", [step(100), step(200, generator_cpu=0.4), step(300, p95=0.3)])
    assert report.knee is not None and report.knee.rate == 200
    assert report.passed and report.exit_code == 0
    assert report.verdict().startswith("PASS: knee at 200.0 requests/s (generator CPU 40% there)")
    assert "step 3 at 300.0/s broke it: client: p95 300.0ms" in report.verdict()
    data = report.to_dict()["knee"]
    assert data == {"rate": 200, "generator_cpu": 0.4, "broke_at": 300, "generator_limited": False}


def test_stress_stopped_by_the_generator_is_inconclusive() -> None:
    report = Report({"name": "stress"}, "stress", "h", [step(100), step(200, generator_cpu=0.95)])
    assert report.knee is not None and report.knee.rate == 100
    assert report.exit_code == 1 and report.verdict().startswith("INCONCLUSIVE")
    assert report.to_dict()["knee"]["generator_limited"] is True


def test_stress_where_the_first_step_breaks_has_no_knee() -> None:
    report = Report({"name": "stress"}, "stress", "h", [step(100, errors=100)])
    assert report.knee is None and report.exit_code == 1
    assert report.verdict().startswith("FAIL: no step passed")


def test_report_files(tmp_path: Path) -> None:
    used = {
        "cpu_cores": 0.8,
        "memory_bytes_max": 120 * 2**20,
        "db_pool_checked_out_avg": 1.5,
        "db_pool_checked_out_max": 4.0,
        "db_pool_capacity": 60.0,
        "db_pool_waiting_max": 0.0,
        "db_queries_per_second": 30.0,
        "db_query_p95": 0.002,
        "cache_hit_ratio": 0.75,
        "cache_hit_ratio_by_category": {"merchant_data": 0.9, "user_preferences": 0.5},
    }
    s = stage(client=view(achieved_rate=90.0), server=view("server", achieved_rate=90.0), resources=used)
    report = Report(
        {"name": "smoke", "rate": 100, "users": 20, "ramp_up": 5, "duration": 20},
        "run",
        "http://127.0.0.1:8000",
        [s],
        series=series(),
        endpoints=[
            {
                "endpoint": "GET /a",
                "requests": 10,
                "errors": 0,
                "errors_4xx": 1,
                "p50": 0.001,
                "p95": 0.002,
                "p99": 0.003,
            }
        ],
        scale=0.1,
        started=1_000,
        finished=1_030,
    )
    paths = report.write(tmp_path / "out")
    assert [p.name for p in paths] == ["report.md", "report.json", "latency.png", "throughput.png"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.startswith("# Load test `smoke`: FAIL: client: achieved 90.0 requests/s, below 95% of the 100.0/s target")
    assert "- plateau: server: achieved 90.0 requests/s" in md
    assert "scaled x0.1" in md and "| plateau | 0.80 | 120 MiB | 1.5 / 4.0 / 60.0 | 0 | 30.0 | 2.0 ms | 75.0% |" in md
    assert "Cache hit ratio below the plan's 80% in: plateau" in md
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["exit_code"] == 1 and data["limits"]["p95_seconds"] == slo.LOAD_P95_SECONDS
    assert [b["what"] for b in data["stages"][0]["breaches"]] == ["achieved_rate", "achieved_rate"]
    assert len(data["series"]) == 30
    for png in ("latency.png", "throughput.png"):
        assert (tmp_path / "out" / png).read_bytes()[:4] == b"\x89PNG"


# --- the command line (no load: usage errors only) -----------------------------------------------


def test_scale_and_overrides() -> None:
    args = cli_args("--profile", "plan", "--scale", "0.1", "--duration", "30", "--ramp-up", "0")
    p = cli.build_profile(args)
    assert (p.rate, p.users, p.duration, p.ramp_up) == (100, 10, 30, 0)
    p = cli.build_profile(cli_args("--profile", "stress", "--scale", "0.5", "--rate", "40", "--max-rate", "400"))
    assert (p.rate, p.step, p.max_rate) == (40, 50, 400)


def cli_args(*argv: str) -> object:
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["loadtest", "run", "--host", "http://127.0.0.1:1", *argv])


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--profile", "smoke", "--host", "http://127.0.0.1:1"]) == 2  # nothing listens on port 1
    assert "cannot reach http://127.0.0.1:1" in capsys.readouterr().err
    assert cli.main(["run", "--profile", "smoke", "--host", "ftp://x"]) == 2
    assert cli.main(["run", "--profile", "smoke", "--host", "http://127.0.0.1:1", "--step", "5"]) == 2
    assert "apply to a stepped profile" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--profile", "nope", "--host", "http://127.0.0.1:1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--profile", "smoke", "--host", "http://127.0.0.1:1", "--scale", "0"])
    assert exc.value.code == 2


def test_other_subcommands_can_join_loadtest() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    extra = cli.SUBCOMMANDS.add_parser("report")
    extra.add_argument("--jtl")
    args = parser.parse_args(["loadtest", "report", "--jtl", "x.jtl"])
    assert args.loadtest_command == "report" and args.jtl == "x.jtl"
