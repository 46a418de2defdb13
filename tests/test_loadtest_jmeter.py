"""The JMeter side of the load test: the generated plan's structure, and the gate on JTL results.

JMeter 5.6, the plan's target, cannot run on these machines (Debian ships 2.13, whose ``jmeter``
command fails under Java 17), so the plan is checked element by element with ElementTree, and the
report runs on JTL files written here in JMeter's documented CSV layout (``timeStamp`` in ms since
the epoch, ``elapsed`` in ms, ``success`` true/false, ``Non HTTP response code: ...`` for
transport errors).

Two fixtures in ``tests/data/jmeter/`` are real JMeter output: Debian's JMeter 2.13, started
through ``RunJMeter213.java`` (a shim around the Java 17 failure), ran plans from
:func:`jmeter.plan_xml` with the CSV header and the URL, failure message, idle and connect
columns switched on:

- ``jmeter-2.13-small-seed.jtl``: 20 requests/s for 10 s (4 threads, 1 s ramp-up) against the
  reference API on real PostgreSQL and Redis, seeded with 20 merchants and 50 users, so most
  random ids and emails are 404s that the response assertions let pass;
- ``jmeter-2.13-refused.jtl``: 10 requests/s for 4 s against a closed port (transport errors).

When Debian's JMeter 2.13 is installed, one more test runs a short plan with it end to end.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from perfstack import slo
from perfstack.loadtest import jmeter
from perfstack.loadtest.gate import check
from perfstack.loadtest.profiles import Profile, get

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "jmeter"
COLUMNS = jmeter.JTL_HEADER.split(",")
T0 = 1_760_000_000_000  # ms since the epoch


# --- helpers: the plan ----------------------------------------------------------------------


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


def prop(el: ET.Element, name: str) -> str | None:
    """The value of a JMeter property of ``el`` (stringProp/intProp/boolProp or doubleProp/FloatProperty)."""
    for child in el:
        if child.get("name") == name:
            return child.text or ""
        if child.tag in ("doubleProp", "FloatProperty", "longProp") and child.findtext("name") == name:
            return child.findtext("value")
    return None


def children(hash_tree: ET.Element) -> list[tuple[ET.Element, ET.Element]]:
    """(test element, its hashTree) pairs of a hashTree: JMeter's tree is element, hashTree, element, ..."""
    items = list(hash_tree)
    assert len(items) % 2 == 0, "every test element must be followed by its hashTree"
    pairs = list(zip(items[::2], items[1::2], strict=True))
    for el, tree in pairs:
        assert el.tag != "hashTree" and tree.tag == "hashTree", (el.tag, tree.tag)
    return pairs


def plan_tree(text: str) -> list[tuple[ET.Element, ET.Element]]:
    root = parse(text)
    ((test_plan, tree),) = children(root.find("hashTree"))
    assert test_plan.tag == "TestPlan"
    return children(tree)


def thread_groups(text: str) -> list[tuple[ET.Element, ET.Element]]:
    return [(el, tree) for el, tree in plan_tree(text) if el.tag == "ThreadGroup"]


def mix_of(group_tree: ET.Element) -> list[dict[str, Any]]:
    """Each endpoint of a thread group: percent, sampler name, path, query, assertion."""
    out = []
    for controller, inner in children(group_tree):
        if controller.tag != "ThroughputController":
            continue
        ((sampler, sampler_tree),) = children(inner)
        below = {el.tag: el for el, _ in children(sampler_tree)}
        args = sampler.find("elementProp[@name='HTTPsampler.Arguments']/collectionProp")
        body = [prop(a, "Argument.value") for a in args if a.get("name") == ""]
        out.append(
            {
                "style": prop(controller, "ThroughputController.style"),
                "per_thread": prop(controller, "ThroughputController.perThread"),
                "percent": float(prop(controller, "ThroughputController.percentThroughput")),
                "name": sampler.get("testname"),
                "method": prop(sampler, "HTTPSampler.method"),
                "path": prop(sampler, "HTTPSampler.path"),
                "query": {a.get("name"): prop(a, "Argument.value") for a in args if a.get("name")},
                "body": body[0] if body else None,
                "raw_body": prop(sampler, "HTTPSampler.postBodyRaw"),
                "assertion": below["ResponseAssertion"],
                "headers": below.get("HeaderManager"),
            }
        )
    return out


def app_routes() -> set[str]:
    """The reference API's routes under /api/ as "METHOD /path/{id}", read from service/app.py."""
    routes = re.findall(r'@app\.(get|put|patch)\("(/api/[^"]+)"\)', (ROOT / "service" / "app.py").read_text())
    return {f"{method.upper()} {re.sub(r'{[a-z_]+}', '{id}', path)}" for method, path in routes}


def as_route(method: str, path: str) -> str:
    """A sampler's method and path, its random ids turned back into ``{id}``."""
    return method + " " + re.sub(r"\$\{__Random\(1,\d+(,[A-Z_]+)?\)\}", "{id}", path)


def locust_mix() -> dict[str, int]:
    """loadtest/locustfile.py's weight per endpoint label ("METHOD name", as the Locust report
    names it), read with ast: every ``@task(N)`` method and the request it makes."""
    tree = ast.parse((ROOT / "loadtest" / "locustfile.py").read_text())
    out: Counter[str] = Counter()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        weights = [
            d.args[0].value
            for d in fn.decorator_list
            if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "task" and isinstance(d.args[0], ast.Constant)
        ]
        calls = [
            c
            for c in ast.walk(fn)
            if isinstance(c, ast.Call)
            and isinstance(c.func, ast.Attribute)
            and c.func.attr in ("get", "put", "patch", "post", "delete")
            and getattr(c.func.value, "attr", "") == "client"
        ]
        if not weights or len(calls) != 1:
            continue
        (call,) = calls
        name = next((k.value.value for k in call.keywords if k.arg == "name"), None)
        if name is None:  # no name=: Locust names the request by its (constant) path
            name = call.args[0].value
        out[f"{call.func.attr.upper()} {name}"] += weights[0]
    return dict(out)


# --- the committed plan ---------------------------------------------------------------------


def test_committed_plan_is_up_to_date() -> None:
    assert jmeter.stale(ROOT) == [], "run `perfstack loadtest jmeter-plan --write` and commit loadtest/test_plan.jmx"
    assert (ROOT / "loadtest" / "test_plan.jmx").read_text() == jmeter.plan_xml(get("plan"))


def test_plan_is_deterministic() -> None:
    for name in ("plan", "smoke", "stress"):
        assert jmeter.plan_xml(get(name)) == jmeter.plan_xml(get(name))


def test_plan_is_a_jmeter_5_6_test_plan_with_its_origin_in_a_comment() -> None:
    text = (ROOT / "loadtest" / "test_plan.jmx").read_text()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!-- DO NOT EDIT')
    root = parse(text)
    assert root.tag == "jmeterTestPlan"
    assert root.attrib == {"version": "1.2", "properties": "5.0", "jmeter": "5.6.3"}
    comment = text.split("-->")[0]
    assert "'plan' load profile" in comment and "perfstack loadtest jmeter-plan" in comment
    test_plan = root.find("hashTree/TestPlan")
    notes = prop(test_plan, "TestPlan.comments")
    assert "perfstack loadtest jmeter-plan --write" in notes
    assert "jmeter -n -t loadtest/test_plan.jmx -l results.jtl" in notes
    assert "perfstack loadtest report --jtl results.jtl --profile plan" in notes


def test_thread_group_runs_the_plan_profile() -> None:
    profile = get("plan")
    ((tg, tree),) = thread_groups(jmeter.plan_xml(profile))
    assert prop(tg, "ThreadGroup.num_threads") == "100" == str(profile.users)
    assert prop(tg, "ThreadGroup.ramp_time") == "120"
    assert prop(tg, "ThreadGroup.scheduler") == "true"
    assert prop(tg, "ThreadGroup.duration") == str(int(profile.ramp_up + profile.duration)) == "720"
    assert prop(tg, "ThreadGroup.delay") == "0"
    assert prop(tg, "ThreadGroup.delayedStart") == "true"  # threads are created as the ramp-up needs them
    assert prop(tg, "ThreadGroup.on_sample_error") == "continue"
    loop = tg.find("elementProp[@name='ThreadGroup.main_controller']")
    assert prop(loop, "LoopController.loops") == "-1"  # forever: the scheduler ends the run

    timers = [el for el, _ in children(tree) if el.tag == "ConstantThroughputTimer"]
    assert len(timers) == 1
    assert float(prop(timers[0], "throughput")) == profile.rate * 60 == 60_000  # samples per minute
    assert prop(timers[0], "calcMode") == "1"  # all active threads
    assert timers[0].get("guiclass") == "TestBeanGUI"


def test_mix_sums_to_100_and_covers_the_api_as_the_locustfile_does() -> None:
    ((_, tree),) = thread_groups(jmeter.plan_xml(get("plan")))
    mix = mix_of(tree)
    assert sum(e["percent"] for e in mix) == pytest.approx(100)
    assert all(e["style"] == "1" and e["per_thread"] == "false" for e in mix)  # percent mode, shared
    assert [(e["name"], e["percent"]) for e in mix] == [(ep.label, ep.weight) for ep in jmeter.MIX]
    routes = {as_route(e["method"], e["path"]) for e in mix}
    assert routes == {e["name"] for e in mix}  # each label is its request's route
    assert routes == app_routes() - {"PUT /api/v1/feature-flags/{id}"}  # every API route but flag writes

    # The same mix as the Locust run: weight per 1000 there, percent here.
    percent: Counter[str] = Counter()
    for e in mix:
        percent[e["name"]] += e["percent"]
    assert {label: round(p * 10, 6) for label, p in percent.items()} == locust_mix()


def test_requests_of_the_mix() -> None:
    ((_, tree),) = thread_groups(jmeter.plan_xml(get("plan")))
    mix = mix_of(tree)
    by_path = {(e["method"], e["path"], tuple(e["query"])): e for e in mix}
    assert len(by_path) == len(mix)
    pick = "${__V(%s_${__Random(1,%d)})}"
    unfiltered = by_path["GET", "/api/v1/merchants", ("limit", "offset")]
    assert unfiltered["percent"] == 4 and unfiltered["query"] == {"limit": "20", "offset": pick % ("OFFSET", 10)}
    filtered = by_path["GET", "/api/v1/merchants", ("status", "limit", "offset")]
    assert filtered["percent"] == 8 and filtered["query"]["status"] == pick % ("STATUS", 4)
    # 90 % of id lookups hit the hot set, as in the locustfile.
    assert by_path["GET", "/api/v1/merchants/${__Random(1,20)}", ()]["percent"] == 18
    assert by_path["GET", "/api/v1/merchants/${__Random(1,10000)}", ()]["percent"] == 2
    assert by_path["GET", "/api/v1/users/${__Random(1,50)}/preferences", ()]["percent"] == 13.5
    assert by_path["GET", "/api/v1/users/${__Random(1,100000)}/preferences", ()]["percent"] == 1.5
    email = by_path["GET", "/api/v1/users/by-email", ("email",)]
    assert email["query"] == {"email": "user${__Random(1,100000)}@example.com"}
    assert by_path["GET", "/api/v1/analytics/tickets-per-day", ("days",)]["query"] == {"days": pick % ("DAYS", 3)}
    assert by_path["GET", "/api/v1/support-tickets/recent", ("limit",)]["query"] == {"limit": pick % ("LIMIT", 3)}
    # Writes: a raw JSON body and its Content-Type; GETs have neither.
    put = by_path["PUT", "/api/v1/users/${__Random(1,50)}/preferences", ()]
    body = put["body"].replace(pick % ("THEME", 2), "dark")
    assert json.loads(body) == {"preferences": {"theme": "dark", "locale": "en", "notifications": True}}
    patch = by_path["PATCH", "/api/v1/merchants/${__Random(1,20,MERCHANT_ID)}", ()]
    assert patch["percent"] == 0.1 and json.loads(patch["body"]) == {"name": "Merchant ${MERCHANT_ID}"}
    for e in mix:
        if e["method"] == "GET":
            assert e["body"] is None and e["raw_body"] == "false" and e["headers"] is None
        else:
            assert e["raw_body"] == "true"
            ((header,),) = [e["headers"].findall("collectionProp/elementProp")]
            assert (prop(header, "Header.name"), prop(header, "Header.value")) == ("Content-Type", "application/json")


def test_random_choices_are_plan_variables() -> None:
    from service.models import MERCHANT_STATUSES

    assert set(jmeter.CHOICES["STATUS"]) <= set(MERCHANT_STATUSES)
    variables = next(el for el, _ in plan_tree(jmeter.plan_xml(get("plan"))) if el.tag == "Arguments")
    values = {a.get("name"): prop(a, "Argument.value") for a in variables.find("collectionProp")}
    for name, choices in jmeter.CHOICES.items():
        assert [values[f"{name}_{i}"] for i in range(1, len(choices) + 1)] == list(choices)
        assert f"{name}_{len(choices) + 1}" not in values
    assert sorted(int(values[f"OFFSET_{i}"]) for i in range(1, 11)) == [0] * 7 + [20] * 2 + [40]


def test_target_comes_from_jmeter_properties() -> None:
    items = plan_tree(jmeter.plan_xml(get("plan")))
    variables = next(el for el, _ in items if el.tag == "Arguments")
    values = {a.get("name"): prop(a, "Argument.value") for a in variables.find("collectionProp")}
    assert values["HOST"] == "${__P(host,127.0.0.1)}"
    assert values["PORT"] == "${__P(port,8000)}"
    assert values["SCHEME"] == "${__P(scheme,http)}"
    defaults = next(el for el, _ in items if el.tag == "ConfigTestElement")
    assert defaults.get("guiclass") == "HttpDefaultsGui"
    assert prop(defaults, "HTTPSampler.domain") == "${HOST}"
    assert prop(defaults, "HTTPSampler.port") == "${PORT}"
    assert prop(defaults, "HTTPSampler.protocol") == "${SCHEME}"
    assert prop(defaults, "HTTPSampler.connect_timeout") == "5000"
    assert prop(defaults, "HTTPSampler.response_timeout") == "10000"
    headers = next(el for el, _ in items if el.tag == "HeaderManager")
    ((header,),) = [headers.findall("collectionProp/elementProp")]
    assert (prop(header, "Header.name"), prop(header, "Header.value")) == ("Accept", "application/json")
    # The samplers leave host, port and scheme to the defaults.
    ((_, tree),) = thread_groups(jmeter.plan_xml(get("plan")))
    for controller, inner in children(tree):
        for sampler, _ in children(inner) if controller.tag == "ThroughputController" else []:
            assert prop(sampler, "HTTPSampler.domain") == prop(sampler, "HTTPSampler.port") == ""

    other = plan_tree(jmeter.plan_xml(get("plan"), host="api.internal", port=443, scheme="https"))
    values = {a.get("name"): prop(a, "Argument.value") for a in other[0][0].find("collectionProp")}
    assert values["HOST"] == "${__P(host,api.internal)}" and values["SCHEME"] == "${__P(scheme,https)}"


def test_response_assertions_accept_2xx_and_404_only_where_ids_are_random() -> None:
    ((_, tree),) = thread_groups(jmeter.plan_xml(get("plan")))
    random_ids = {
        "GET /api/v1/merchants/{id}",
        "GET /api/v1/users/by-email",
        "GET /api/v1/users/{id}/preferences",
        "PUT /api/v1/users/{id}/preferences",
        "PATCH /api/v1/merchants/{id}",
    }
    for e in mix_of(tree):
        a = e["assertion"]
        assert a.tag == "ResponseAssertion"
        assert prop(a, "Assertion.test_field") == "Assertion.response_code"
        assert prop(a, "Assertion.test_type") == "1"  # matches: the whole code
        ((pattern,),) = [[s.text for s in a.find("collectionProp[@name='Asserion.test_strings']")]]
        accepted = {code for code in ("200", "204", "404", "422", "500", "503") if re.fullmatch(pattern, code)}
        if e["name"] in random_ids:
            assert accepted == {"200", "204", "404"}
            assert prop(a, "Assertion.assume_success") == "true"  # "Ignore Status": a 404 is not a failure
        else:
            assert accepted == {"200", "204"}
            assert prop(a, "Assertion.assume_success") == "false"


def test_no_listener_writes_results_results_go_to_the_l_file() -> None:
    root = parse(jmeter.plan_xml(get("plan")))
    tags = {el.tag for el in root.iter()}
    assert not tags & {"ResultCollector", "BackendListener", "Summariser"}
    assert tags >= {"TestPlan", "Arguments", "ConfigTestElement", "HeaderManager", "ThreadGroup"}


def test_every_element_has_jmeter_class_attributes() -> None:
    root = parse(jmeter.plan_xml(get("plan")))

    def walk(tree: ET.Element) -> Iterable[ET.Element]:
        for el, sub in children(tree):
            yield el
            yield from walk(sub)

    elements = list(walk(root.find("hashTree")))
    writes = sum(e.body is not None for e in jmeter.MIX)  # each has a Content-Type header manager
    assert len(elements) == 1 + 3 + 1 + 1 + 3 * len(jmeter.MIX) + writes  # plan, config, thread group, timer, mix
    for el in elements:
        assert el.get("testclass") and el.get("guiclass") and el.get("testname"), el.tag
        assert el.get("enabled") == "true"


def test_java_string_hash_names_collection_entries_like_jmeter() -> None:
    assert jmeter._java_hash("200") == 49586  # as JMeter's own templates name it
    assert jmeter._java_hash("Test Plan") == 764597751
    assert jmeter._java_hash("Thread Group") == -1948168983


def test_scaled_plan() -> None:
    text = jmeter.plan_xml(get("plan").scaled(0.1))
    ((tg, tree),) = thread_groups(text)
    assert prop(tg, "ThreadGroup.num_threads") == "10"
    timer = next(el for el, _ in children(tree) if el.tag == "ConstantThroughputTimer")
    assert float(prop(timer, "throughput")) == 6000.0
    assert "--profile plan --scale 0.1 --out FILE" in prop(parse(text).find("hashTree/TestPlan"), "TestPlan.comments")


def test_stress_profile_runs_its_steps_as_consecutive_thread_groups() -> None:
    profile = get("stress")
    groups = thread_groups(jmeter.plan_xml(profile))
    stages = profile.stages()
    assert len(groups) == len(stages) == 40
    start = 0.0
    for i, ((tg, tree), (end, rate)) in enumerate(zip(groups, stages, strict=True), 1):
        assert tg.get("testname") == jmeter.step_name(i, rate)
        assert prop(tg, "ThreadGroup.num_threads") == str(profile.users)
        assert prop(tg, "ThreadGroup.scheduler") == "true"
        assert int(prop(tg, "ThreadGroup.delay")) == start  # starts when the previous step ends
        assert prop(tg, "ThreadGroup.delayedStart") == "true"  # its threads are not created before then
        assert int(prop(tg, "ThreadGroup.duration")) == end - start == profile.duration
        timer = next(el for el, _ in children(tree) if el.tag == "ConstantThroughputTimer")
        assert float(prop(timer, "throughput")) == rate * 60
        assert prop(timer, "calcMode") == "2"  # all active threads in the current thread group
        assert sum(e["percent"] for e in mix_of(tree)) == pytest.approx(100)
        start = end
    assert prop(parse(jmeter.plan_xml(profile)).find("hashTree/TestPlan"), "TestPlan.serialize_threadgroups") == (
        "false"
    )


def test_write_and_stale(tmp_path: Path) -> None:
    assert jmeter.stale(tmp_path) == ["loadtest/test_plan.jmx is missing"]
    assert jmeter.write(tmp_path) == [tmp_path / "loadtest" / "test_plan.jmx"]
    assert jmeter.stale(tmp_path) == []
    assert jmeter.write(tmp_path) == []
    (tmp_path / "loadtest" / "test_plan.jmx").write_text("<jmeterTestPlan/>")
    assert jmeter.stale(tmp_path) == ["loadtest/test_plan.jmx is out of date"]


# --- helpers: JTL files ---------------------------------------------------------------------

PATHS = {
    "GET /api/v1/feature-flags": "/api/v1/feature-flags",
    "GET /api/v1/merchants/{id}": "/api/v1/merchants/42",
    "GET /api/v1/users/by-email": "/api/v1/users/by-email?email=user7%40example.com",
}


def sample(
    ts_ms: int,
    elapsed_ms: int,
    label: str = "GET /api/v1/feature-flags",
    code: str = "200",
    thread: str = "smoke: 20 users 1-1",
) -> dict[str, Any]:
    """One line of a JTL, every column JMeter 5.6 writes by default."""
    transport = not code.isdigit()
    ok = not transport and (code.startswith("2") or code == "404")
    return {
        "timeStamp": ts_ms,
        "elapsed": elapsed_ms,
        "label": label,
        "responseCode": code,
        "responseMessage": "Non HTTP response message: Connection refused" if transport else "OK, fine",
        "threadName": thread,
        "dataType": "text",
        "success": "true" if ok else "false",
        "failureMessage": "" if ok else "Test failed: code expected to match /2\\d\\d/",
        "bytes": 0 if transport else 512,
        "sentBytes": 0 if transport else 160,
        "grpThreads": 20,
        "allThreads": 20,
        "URL": "http://127.0.0.1:8000" + PATHS.get(label, "/api/v1/feature-flags"),
        "Latency": 0 if transport else max(0, elapsed_ms - 1),
        "IdleTime": 0,
        "Connect": 0 if transport else 1,
    }


def run(
    rate: float,
    seconds: float,
    latency: Callable[[int], int] = lambda i: 10 + i % 20,
    code: Callable[[int], str] = lambda i: "200",
    start_ms: int = T0,
    ramp_up: float = 0.0,
) -> list[dict[str, Any]]:
    """Samples of a run at ``rate`` per second (half that during ``ramp_up``), evenly spaced."""
    rows, t, i = [], 0.0, 0
    labels = list(PATHS)
    while t < seconds:
        rows.append(sample(start_ms + round(t * 1000), latency(i), labels[i % len(labels)], code(i)))
        t += 1 / (rate / 2 if t < ramp_up else rate)
        i += 1
    return rows


def write_jtl(path: Path, rows: list[dict[str, Any]], columns: list[str] = COLUMNS, delimiter: str = ",") -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, delimiter=delimiter, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


def report_parser() -> argparse.ArgumentParser:
    """A throwaway ``perfstack loadtest`` with the JMeter subcommands, as perfstack.cli wires them."""
    p = argparse.ArgumentParser(prog="perfstack loadtest")
    sub = p.add_subparsers(dest="loadtest_command", required=True)
    jmeter.add_report_parser(sub)
    jmeter.add_plan_parser(sub)
    return p


def main(*argv: str) -> int:
    args = report_parser().parse_args(list(argv))
    return args.func(args)


# --- reading JTL files ----------------------------------------------------------------------


def test_read_jtl_in_jmeters_documented_layout(tmp_path: Path) -> None:
    text = (
        jmeter.JTL_HEADER + "\n"
        "1760000000000,12,GET /api/v1/feature-flags,200,OK,plan: 100 users 1-1,text,true,,512,160,1,1,"
        "http://127.0.0.1:8000/api/v1/feature-flags,11,0,1\n"
        '1760000000010,3,GET /api/v1/merchants,"Non HTTP response code: java.net.ConnectException",'
        '"Non HTTP response message: Connection refused, twice",plan: 100 users 1-2,text,false,,2310,0,1,1,'
        "http://127.0.0.1:8000/api/v1/merchants?status=active,0,0,0\n"
        "1760000000020,250,GET /api/v1/users/by-email,503,Service Unavailable,plan: 100 users 1-3,text,false,"
        '"Test failed: code expected to match /2\\d\\d|404/",90,160,1,1,http://127.0.0.1:8000/x,249,0,1\n'
    )
    path = tmp_path / "results.jtl"
    path.write_text(text)
    ok, transport, unavailable = jmeter.read_jtl(path)
    assert (ok.timestamp, ok.elapsed, ok.label, ok.code, ok.success) == (
        1_760_000_000.0,
        0.012,
        "GET /api/v1/feature-flags",
        "200",
        True,
    )
    assert ok.status == 200 and not ok.is_error and ok.thread == "plan: 100 users 1-1"
    assert transport.status is None and transport.is_error
    assert transport.message == "Non HTTP response message: Connection refused, twice"
    assert transport.error_kind == (
        "Non HTTP response code: java.net.ConnectException (Non HTTP response message: Connection refused, twice)"
    )
    assert unavailable.status == 503 and unavailable.is_error and "2\\d\\d|404" in unavailable.failure
    assert unavailable.error_kind == "503 GET /api/v1/users/by-email"


def test_read_jtl_reads_columns_by_the_header(tmp_path: Path) -> None:
    rows = run(50, 4)
    reordered = ["label", "success", "elapsed", "responseCode", "threadName", "timeStamp", "URL"]
    a = jmeter.read_jtl(write_jtl(tmp_path / "a.jtl", rows))
    b = jmeter.read_jtl(write_jtl(tmp_path / "b.jtl", rows, reordered))
    c = jmeter.read_jtl(write_jtl(tmp_path / "c.jtl", rows, COLUMNS, delimiter="\t"))
    assert len(a) == 200 and [(s.timestamp, s.elapsed, s.label, s.code, s.success) for s in a] == [
        (s.timestamp, s.elapsed, s.label, s.code, s.success) for s in b
    ]
    assert a == c
    assert jmeter.jtl_host(tmp_path / "b.jtl") == "http://127.0.0.1:8000"
    minimal = write_jtl(tmp_path / "d.jtl", rows, list(jmeter.REQUIRED_COLUMNS))  # no URL, no threadName
    assert jmeter.jtl_host(minimal) == "" and len(jmeter.read_jtl(minimal)) == 200


def test_a_404_where_it_is_accepted_is_no_error_a_404_marked_failed_is() -> None:
    ok = jmeter.Sample(0, 0.01, "GET /api/v1/merchants/{id}", "404", True)
    failed = jmeter.Sample(0, 0.01, "GET /api/v1/feature-flags", "404", False)
    assert not ok.is_error and failed.is_error


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "empty file"),
        ("   \n\n", "empty file"),
        ("hello, world\nthis is not a JTL\n", "no header line"),
        ("\x00\x01\x02garbage\xff", "no header line"),
        ('<?xml version="1.0"?>\n<testResults version="1.2">\n</testResults>\n', "an XML result file"),
        ("timeStamp,elapsed,label\n1,2,x\n", "the header lacks responseCode, success"),
        ("timeStamp,elapsed,label,responseCode,success\n2025-01-01 10:00:00,5,x,200,true\n", "whole milliseconds"),
        ("timeStamp,elapsed,label,responseCode,success\n1760000000000,5\n", ":2: 2 fields"),
    ],
)
def test_read_jtl_refuses_what_is_not_a_csv_jtl(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "results.jtl"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(jmeter.JTLError, match=re.escape(says)) as exc:
        jmeter.read_jtl(path)
    assert str(path) in str(exc.value)


def test_read_jtl_missing_file(tmp_path: Path) -> None:
    with pytest.raises(jmeter.JTLError, match="no such file"):
        jmeter.read_jtl(tmp_path / "nope.jtl")


# --- the gate's view --------------------------------------------------------------------------


def test_view_percentiles_are_nearest_rank_in_seconds() -> None:
    samples = [jmeter.Sample(T0 / 1000 + i * 0.01, (i + 1) / 1000, "x", "200", True) for i in range(200)]
    view = jmeter.view_from_jtl(samples, None, 0)
    assert view.source == "client" and view.requests == 200 and view.errors == 0
    assert (view.p50, view.p95, view.p99) == (0.1, 0.19, 0.198)  # ranks 100, 190, 198 of 1..200 ms
    assert view.target_rate is None
    ((endpoint),) = jmeter.endpoints(samples)
    assert endpoint["endpoint"] == "x" and endpoint["requests"] == 200 and endpoint["p95"] == 0.19


def test_view_achieved_rate_skips_the_ramp_up() -> None:
    # 10 s at 25/s, then 40 s at 50/s: over the plateau 50/s, over the whole run less.
    rows = run(50, 50, ramp_up=10)
    samples = [
        jmeter.Sample(r["timeStamp"] / 1000, r["elapsed"] / 1000, r["label"], r["responseCode"], True) for r in rows
    ]
    plateau = jmeter.view_from_jtl(samples, 50, 10)
    whole = jmeter.view_from_jtl(samples, 50, 0)
    assert 49.5 < plateau.achieved_rate <= 50.0
    assert whole.achieved_rate < 46
    assert plateau.target_rate == 50 and abs(plateau.requests - 2000) <= 1
    assert plateau.extra["run_requests"] == whole.requests == len(rows)
    assert check(plateau) == []


def test_view_of_nothing() -> None:
    view = jmeter.view_from_jtl([], 50, 5)
    assert view.requests == 0 and view.p95 is None and view.achieved_rate == 0
    assert [b.what for b in check(view)] == ["requests"]


def test_view_when_the_run_ended_during_the_ramp_up() -> None:
    samples = [jmeter.Sample(T0 / 1000 + i * 0.1, 0.01, "x", "200", True) for i in range(10)]
    view = jmeter.view_from_jtl(samples, 50, 120)
    assert view.requests == 0 and view.achieved_rate == 0 and "ended before" in view.extra["note"]
    assert [b.message for b in check(view)] == ["client: no request was measured"]


# --- the report: functions and the command --------------------------------------------------


def smoke_run(tmp_path: Path, **kw: Any) -> Path:
    """A JTL of the smoke profile's shape: 5 s ramp-up at half the rate, 40 s at 50/s."""
    profile = get("smoke")
    rows = run(kw.pop("rate", profile.rate), profile.ramp_up + profile.duration, ramp_up=profile.ramp_up, **kw)
    return write_jtl(tmp_path / "results.jtl", rows)


def test_report_passing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jtl = smoke_run(tmp_path)
    out = tmp_path / "out"
    view, breaches = jmeter.report(jtl, "smoke", 1.0, out)
    assert breaches == []
    assert view.target_rate == 50 and view.achieved_rate > 0.95 * 50
    assert view.p95 == 0.028 and view.errors == 0

    # report.json has the Locust runner's shape (perfstack.loadtest.report.Report), plus the JTL.
    doc = json.loads((out / "report.json").read_text())
    assert doc["passed"] is True and doc["exit_code"] == 0 and doc["verdict"] == "PASS"
    assert doc["tool"] == "jmeter" and doc["jtl"] == str(jtl) and doc["kind"] == "run"
    assert doc["profile"]["name"] == "smoke" and doc["profile"]["rate"] == 50 and doc["scale"] == 1.0
    assert doc["host"] == "http://127.0.0.1:8000" and doc["breaches"] == []
    (stage,) = doc["stages"]
    assert stage["name"] == "plateau" and stage["passed"] is True and stage["breaches"] == []
    v = stage["client"]
    for key in ("source", "requests", "errors", "error_rate", "p50", "p95", "p99", "achieved_rate", "target_rate"):
        assert key in v
    assert v["source"] == "client" and v["requests"] == 2000 and v["extra"]["run_requests"] == 2125
    assert stage["window"] == v["extra"]["window"] and stage["window"][0] == T0 / 1000 + 5
    assert {e["endpoint"] for e in doc["endpoints"]} == set(PATHS)
    assert len(doc["series"]) == 45 and doc["series"][10]["achieved"] == 50 and doc["series"][0]["target"] == 50
    md = (out / "report.md").read_text()
    assert md.startswith("# Load test `smoke` (JMeter): PASS")
    assert "`GET /api/v1/merchants/{id}`" in md and "Breaches: none." in md
    assert (out / "latency.png").stat().st_size > 0 and (out / "throughput.png").stat().st_size > 0

    assert main("report", "--jtl", str(jtl), "--profile", "smoke", "--out", str(tmp_path / "cli")) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("plateau client: target 50.0/s achieved 50.0/s, p50 19.0 ms p95 28.0 ms")
    assert printed[0].endswith("errors 0/2000 (0.000%)")
    assert printed[1] == "PASS" and printed[2].startswith(f"report: {tmp_path / 'cli' / 'report.md'}")


def test_report_slow_run_breaches_p95(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jtl = smoke_run(tmp_path, latency=lambda i: 150 if i % 10 == 0 else 20)
    view, breaches = jmeter.report(jtl, "smoke", 1.0, tmp_path / "out")
    assert [b.what for b in breaches] == ["p95"]
    assert view.p95 == 0.15 > slo.LOAD_P95_SECONDS
    assert main("report", "--jtl", str(jtl), "--profile", "smoke", "--out", str(tmp_path / "cli")) == 1
    out = capsys.readouterr().out
    assert "breach: plateau: client: p95 150.0ms is above 100.0ms" in out
    assert "\nFAIL: client: p95 150.0ms is above 100.0ms\n" in out
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Breaches:\n\n- plateau: client: p95 150.0ms is above 100.0ms" in md


def test_report_errors_breach_the_error_rate(tmp_path: Path) -> None:
    jtl = smoke_run(tmp_path, code=lambda i: "500" if i % 100 == 0 else "200")
    view, breaches = jmeter.report(jtl, "smoke", 1.0, tmp_path / "out")
    assert [b.what for b in breaches] == ["error_rate"]
    assert view.errors == 20 and view.extra["run_errors"] == 22 and view.error_rate > slo.LOAD_ERROR_RATE
    assert view.extra["errors_5xx"] == 20
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["passed"] is False and doc["breaches"][0]["what"] == "error_rate"
    assert doc["stages"][0]["client"]["extra"]["top_errors"][0]["what"] == "500 GET /api/v1/feature-flags"


def test_report_transport_errors_count_as_errors(tmp_path: Path) -> None:
    refused = "Non HTTP response code: java.net.ConnectException"
    jtl = smoke_run(tmp_path, code=lambda i: refused if i % 50 == 0 else "200")
    view, breaches = jmeter.report(jtl, "smoke", 1.0, tmp_path / "out")
    assert view.errors == view.extra["errors_transport"] == 40 and [b.what for b in breaches] == ["error_rate"]
    assert refused in (tmp_path / "out" / "report.md").read_text()


def test_report_a_404_of_a_random_id_is_not_an_error(tmp_path: Path) -> None:
    jtl = smoke_run(tmp_path, code=lambda i: "404" if i % 3 == 1 else "200")  # the merchant-by-id label
    view, breaches = jmeter.report(jtl, "smoke", 1.0, tmp_path / "out")
    assert view.errors == 0 and breaches == []


def test_report_below_95_percent_of_the_target_rate(tmp_path: Path) -> None:
    jtl = smoke_run(tmp_path, rate=45)  # 90 % of 50/s
    view, breaches = jmeter.report(jtl, "smoke", 1.0, tmp_path / "out")
    assert [b.what for b in breaches] == ["achieved_rate"]
    assert 44 < view.achieved_rate < 45.1
    # Scaled down, the same run is fast enough.
    view, breaches = jmeter.report(jtl, "smoke", 0.9, tmp_path / "out")
    assert view.target_rate == pytest.approx(45) and breaches == []
    assert "(scaled x0.9: a smaller run than the plan" in (tmp_path / "out" / "report.md").read_text()


def test_report_without_a_profile_judges_no_rate(tmp_path: Path) -> None:
    jtl = smoke_run(tmp_path, rate=10)
    view, breaches = jmeter.report(jtl, None, 1.0, tmp_path / "out")
    assert view.target_rate is None and breaches == []
    assert "not judged" in (tmp_path / "out" / "report.md").read_text()


def test_report_reordered_columns(tmp_path: Path) -> None:
    rows = run(50, 45, ramp_up=5, latency=lambda i: 150 if i % 10 == 0 else 20)
    columns = list(reversed(COLUMNS))
    jtl = write_jtl(tmp_path / "reordered.jtl", rows, columns)
    assert jtl.read_text().startswith("Connect,IdleTime,Latency,URL,")
    view, breaches = jmeter.report(jtl, "smoke", 1.0, tmp_path / "out")
    assert view.requests == 2000 and [b.what for b in breaches] == ["p95"]


def test_report_header_only_is_a_breach_not_a_usage_error(tmp_path: Path) -> None:
    jtl = write_jtl(tmp_path / "results.jtl", [])
    assert main("report", "--jtl", str(jtl), "--out", str(tmp_path / "out")) == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such file"),
        ("", "empty file"),
        ("GIF89a\x01\x00garbage", "not a JMeter CSV result file"),
    ],
)
def test_report_usage_errors_exit_2_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, says: str
) -> None:
    jtl = tmp_path / "results.jtl"
    if content is not None:
        jtl.write_text(content)
    assert main("report", "--jtl", str(jtl), "--out", str(tmp_path / "out")) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"error: {jtl}: {says}")
    assert "timeStamp,elapsed,label,responseCode,responseMessage,threadName" in line
    assert captured.out == ""
    assert not (tmp_path / "out").exists()


def test_report_parser_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    p = report_parser()
    args = p.parse_args(["report", "--jtl", "r.jtl"])
    assert (args.jtl, args.profile, args.scale, args.out) == ("r.jtl", None, 1.0, "build/loadtest-jmeter")
    for bad in (
        ["report"],
        ["report", "--jtl", "r.jtl", "--profile", "nope"],
        ["report", "--jtl", "x", "--scale", "0"],
    ):
        with pytest.raises(SystemExit) as exc:
            p.parse_args(bad)
        assert exc.value.code == 2
    capsys.readouterr()


# --- stress: one view per step, and the knee -----------------------------------------------


def stress_jtl(tmp_path: Path, scale: float, slow_from_step: int) -> Path:
    profile = get("stress").scaled(scale)
    rows, start = [], 0.0
    for i, (end, rate) in enumerate(profile.stages(), 1):
        latency = (lambda j: 600) if i >= slow_from_step else (lambda j: 10 + j % 20)
        for r in run(rate, end - start, latency=latency, start_ms=T0 + round(start * 1000)):
            r["threadName"] = f"{jmeter.step_name(i, rate)} {i}-1"
            rows.append(r)
        start = end
    return write_jtl(tmp_path / "stress.jtl", rows)


def test_stress_report_names_the_knee(tmp_path: Path) -> None:
    jtl = stress_jtl(tmp_path, 0.01, slow_from_step=6)  # steps of 1, 2, ... 40 requests/s
    _, breaches = jmeter.report(jtl, "stress", 0.01, tmp_path / "out")
    assert breaches == []  # the first step passed: a stress run finds a knee, it does not fail
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["kind"] == "stress" and doc["passed"] is True
    assert doc["knee"]["rate"] == pytest.approx(5.0) and doc["knee"]["broke_at"] == pytest.approx(6.0)
    assert len(doc["stages"]) == 40
    assert [s["passed"] for s in doc["stages"][:7]] == [True] * 5 + [False] * 2
    assert doc["stages"][0]["target_rate"] == pytest.approx(1.0) and doc["stages"][0]["name"] == "step 1"
    # Each step leaves out its first 2 s, as the Locust runner does: 18 s of 20.
    assert abs(doc["stages"][4]["client"]["requests"] - 18 * 5) <= 1
    assert "knee at 5.0 requests/s" in (tmp_path / "out" / "report.md").read_text().splitlines()[0]


def test_stress_report_fails_when_the_first_step_fails(tmp_path: Path) -> None:
    jtl = stress_jtl(tmp_path, 0.01, slow_from_step=1)
    _, breaches = jmeter.report(jtl, "stress", 0.01, tmp_path / "out")
    assert [b.what for b in breaches] == ["p95", "p99"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["knee"] is None


def test_step_views_fall_back_to_time_without_step_thread_names(tmp_path: Path) -> None:
    jtl = stress_jtl(tmp_path, 0.01, slow_from_step=3)
    samples = [
        jmeter.Sample(s.timestamp, s.elapsed, s.label, s.code, s.success, "Thread Group 1-1")
        for s in jmeter.read_jtl(jtl)
    ]
    views = jmeter.step_views(samples, get("stress").scaled(0.01))
    assert [v.requests for v in views[:3]] == [18, 36, 54]  # 18 s of each 20 s step
    assert [bool(check(v)) for v in views[:3]] == [False, False, True]


# --- jmeter-plan ----------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root holding Pulumi.yaml and a copy of the committed plan."""
    root = tmp_path / "project"
    (root / "loadtest").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copy(ROOT / "loadtest" / "test_plan.jmx", root / "loadtest" / "test_plan.jmx")
    monkeypatch.setenv("PERFSTACK_ROOT", str(root))
    return root


def test_jmeter_plan_check_and_write(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main("jmeter-plan", "--check") == 0
    plan = project / "loadtest" / "test_plan.jmx"
    plan.write_text(plan.read_text().replace("60000.0", "6000.0"))
    assert main("jmeter-plan", "--check") == 1
    assert "loadtest/test_plan.jmx is out of date" in capsys.readouterr().out
    assert main("jmeter-plan", "--write") == 0
    assert main("jmeter-plan", "--check") == 0
    assert plan.read_text() == jmeter.plan_xml(get("plan"))
    plan.unlink()
    assert main("jmeter-plan", "--check") == 1
    assert "missing" in capsys.readouterr().out


def test_jmeter_plan_prints_or_writes_other_profiles(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main("jmeter-plan", "--profile", "smoke") == 0
    assert capsys.readouterr().out == jmeter.plan_xml(get("smoke"))
    out = project / "build" / "stress.jmx"
    assert main("jmeter-plan", "--profile", "stress", "--scale", "0.5", "--out", str(out)) == 0
    assert out.read_text() == jmeter.plan_xml(get("stress").scaled(0.5))
    capsys.readouterr()
    assert main("jmeter-plan", "--profile", "stress", "--write") == 2
    assert "--write and --check concern loadtest/test_plan.jmx" in capsys.readouterr().err
    assert main("jmeter-plan", "--scale", "0.5", "--check") == 2
    with pytest.raises(SystemExit):
        report_parser().parse_args(["jmeter-plan", "--write", "--check"])


# --- real JMeter output ---------------------------------------------------------------------


def test_report_on_a_real_jmeter_run_against_the_reference_api(tmp_path: Path) -> None:
    samples = jmeter.read_jtl(DATA / "jmeter-2.13-small-seed.jtl")
    assert len(samples) == 187
    counts = Counter(s.label for s in samples)
    weights: Counter[str] = Counter()
    for e in jmeter.MIX:
        weights[e.label] += e.weight
    assert set(weights) - set(counts) == {"PATCH /api/v1/merchants/{id}"}  # 0.1 %: first after 500 iterations
    for label, weight in weights.items():  # the throughput controllers hold the mix
        assert abs(counts[label] - weight * len(samples) / 100) <= 1, label
    # Ids beyond the hot set, and every email, miss in a seed of 20 merchants and 50 users:
    # 404s the assertions let pass.
    assert {(s.code, s.success) for s in samples if s.label == "GET /api/v1/users/by-email"} == {("404", True)}
    for label in ("GET /api/v1/merchants/{id}", "GET /api/v1/users/{id}/preferences"):
        assert {(s.code, s.success) for s in samples if s.label == label} == {("200", True), ("404", True)}
    assert {(s.code, s.success) for s in samples if s.label.startswith("PUT ")} == {("200", True)}
    view = jmeter.view_from_jtl(samples, 20, 1)
    assert view.requests == 164 and view.errors == 0 and view.achieved_rate > 19.5 and check(view) == []
    assert main("report", "--jtl", str(DATA / "jmeter-2.13-small-seed.jtl"), "--out", str(tmp_path)) == 0


def test_report_on_a_real_jmeter_run_against_a_closed_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main("report", "--jtl", str(DATA / "jmeter-2.13-refused.jtl"), "--out", str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert "errors 34/34 (100.000%)" in out and "breach: plateau: client: error rate 100.000%" in out
    assert (
        "Non HTTP response code: java.net.ConnectException (Non HTTP response message: Connection refused)"
        in (tmp_path / "report.md").read_text()
    )


JMETER_213 = Path("/usr/share/jmeter")


class _FakeApi(BaseHTTPRequestHandler):
    """Answers JSON; merchant ids above 5000 are 404s. Records method, path, Content-Type, body."""

    protocol_version = "HTTP/1.1"  # keep-alive, as JMeter asks
    requests: list[tuple[str, str, str | None, str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length).decode() if length else ""
        self.requests.append((self.command, self.path, self.headers.get("Content-Type"), sent))
        m = re.fullmatch(r"/api/v1/merchants/(\d+)", self.path)
        status = 404 if m and int(m.group(1)) > 5000 else 200
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[tuple[int, list[tuple[str, str, str | None, str]]]]:
    _FakeApi.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _FakeApi.requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.tools
def test_jmeter_2_13_runs_a_generated_plan(
    tmp_path: Path, fake_api: tuple[int, list[tuple[str, str, str | None, str]]]
) -> None:
    # make test installs Debian's jmeter (2.13); JMeter 5.6 itself is not packaged here.
    assert (JMETER_213 / "bin" / "ApacheJMeter.jar").is_file(), "JMeter 2.13 not found: apt-get install jmeter"
    assert shutil.which("java"), "java not found: apt-get install default-jre-headless"
    port, requests = fake_api
    profile = Profile("jmeter-e2e", rate=20, users=2, ramp_up=1, duration=4)
    (tmp_path / "plan.jmx").write_text(jmeter.plan_xml(profile))
    classpath = os.pathsep.join(
        [
            str(JMETER_213 / "bin" / "ApacheJMeter.jar"),
            str(JMETER_213 / "lib" / "*"),
            str(JMETER_213 / "lib" / "ext" / "*"),
        ]
    )
    saved = ["print_field_names", "url", "assertion_results_failure_message", "idle_time", "connect_time"]
    proc = subprocess.run(
        ["java", f"-Djmeter.home={JMETER_213}", "-cp", classpath, str(DATA / "RunJMeter213.java")]
        + ["-n", "-t", "plan.jmx", "-l", "results.jtl", "-j", "jmeter.log", f"-Jport={port}"]
        + [f"-Jjmeter.save.saveservice.{name}=true" for name in saved],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Created the tree successfully" in proc.stdout, proc.stdout

    # What is checked is function, not speed: a loaded machine slows a 5-second JMeter run down.
    samples = jmeter.read_jtl(tmp_path / "results.jtl")
    labels = {s.label for s in samples}
    assert len(samples) >= 20 and {e.label for e in jmeter.MIX if e.method == "GET"} <= labels <= {
        e.label for e in jmeter.MIX
    }
    assert all(s.success for s in samples)  # 404s of random merchant ids included
    view = jmeter.view_from_jtl(samples, profile.rate, profile.ramp_up)
    assert view.errors == 0 and view.extra["run_requests"] == len(requests)
    # The JMeter functions of the plan produce what the API accepts.
    paths = [path for method, path, _, _ in requests if method == "GET"]
    assert any(p.startswith("/api/v1/merchants?") for p in paths) and any("by-email?" in p for p in paths)
    for path in paths:
        if path.startswith("/api/v1/merchants?"):
            assert re.fullmatch(
                r"/api/v1/merchants\?(status=(active|pending|suspended)&)?limit=20&offset=(0|20|40)", path
            )
        elif path.startswith("/api/v1/users/by-email?"):
            assert re.fullmatch(r"/api/v1/users/by-email\?email=user\d+%40example\.com", path)
        elif path.startswith("/api/v1/merchants/"):
            assert 1 <= int(path.rsplit("/", 1)[1]) <= 10_000
        elif path.startswith("/api/v1/analytics/tickets-per-day"):
            assert path.endswith(("?days=7", "?days=30"))
        elif path.startswith("/api/v1/support-tickets/recent"):
            assert path.endswith(("?limit=20", "?limit=50"))
    for method, _, content_type, sent in requests:
        if method == "GET":
            assert content_type is None and sent == ""
        else:  # a write: a JSON body (rare in so short a run)
            assert content_type == "application/json" and json.loads(sent)
    expected = 1 if check(jmeter.view_from_jtl(samples, None, 0)) else 0
    assert main("report", "--jtl", str(tmp_path / "results.jtl"), "--out", str(tmp_path / "out")) == expected
