"""JMeter, for teams that use it: the load profile as a JMeter 5.6 test plan, and the SLO gate on its results.

The plan (``loadtest/test_plan.jmx``, generated from the ``plan`` profile, never edited by hand)::

    jmeter -n -t loadtest/test_plan.jmx -l results.jtl                 # against 127.0.0.1:8000
    jmeter -n -t loadtest/test_plan.jmx -Jhost=api.internal -Jport=80 -l results.jtl
    perfstack loadtest report --jtl results.jtl --profile plan        # the same gate as a Locust run

How the plan maps the profile (core JMeter elements only, no plugins):

- one ``ThreadGroup`` per stage: ``profile.users`` threads started over ``profile.ramp_up``
  seconds, scheduler on for ``ramp_up + duration`` seconds, looping until then;
- a ``ConstantThroughputTimer`` paces the arrivals at ``profile.rate * 60`` samples per minute,
  shared by all active threads. It can only slow threads down: when responses are slower than
  ``users / rate`` seconds the plan falls short, and the report's achieved-rate check says so.
  During ramp-up JMeter ramps *threads*, not the arrival rate: the timer asks for the full rate
  from the first thread on, so the rate reaches the plateau as soon as enough threads run;
- the endpoint mix (:data:`MIX`): loadtest/locustfile.py's, request for request (a test
  compares the weights): one ``ThroughputController`` per request in percent mode, shared by all
  threads of the group, the percentages summing to 100; an id lookup is two controllers under one
  label (90 % among the hot ids, 10 % among all), the writes (PUT preferences, PATCH merchant)
  send a JSON body; samplers are named as the Locust report names endpoints (``GET /api/v1/...``);
- ``${__P(host,...)}``, ``${__P(port,...)}`` and ``${__P(scheme,...)}`` in the user defined
  variables, so ``-Jhost=``, ``-Jport=``, ``-Jscheme=`` override the target;
- no listener: results go to the CSV file named by ``-l``.

The ``stress`` profile becomes one thread group per step, each started by the scheduler's delay at
the step's start and run for one step's duration (JMeter runs them consecutively, no plugin
needed); a thread group is named ``step NN: R req/s`` so its samples' ``threadName`` tells the
report which step they belong to. The report then judges each step and names the knee.

The report (``perfstack loadtest report --jtl FILE``) reads JMeter's documented CSV result layout
(the default of ``-l``): a header line, then one line per sample, columns found by name.
``timeStamp`` is in milliseconds since the epoch; JMeter 5.6's ``jmeter.properties`` sets
``sampleresult.timestamp.start=true``, so it is the sample's start. It judges what the Locust
runner judges, with the same gate: the plateau after the profile's ramp-up (stress: each step
after its first seconds), and writes the Locust runner's report files (report.md, report.json
of :class:`perfstack.loadtest.report.Report`, latency.png, throughput.png). An error is a
sample JMeter marked failed, a 5xx, or no HTTP response at all; the plan's assertions let a 404
of a random id pass. JMeter's CPU is not in a JTL, so the generator-CPU check does not apply.

JMeter 5.6 cannot run on the project's machines (Debian ships 2.13, whose ``jmeter`` fails under
Java 17): the tests check the plan's structure, run the report on JTL files in the 5.6 layout,
and, where Debian's JMeter 2.13 is installed, run a generated plan with it through a shim.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import generated, slo
from ..paths import project_root
from . import gate
from .profiles import PROFILES, Profile, get
from .report import Report, StageReport

# --- The plan -----------------------------------------------------------------------------------

PLAN_FILE = Path("loadtest") / "test_plan.jmx"  # relative to the project root
PLAN_PROFILE = "plan"  # the profile the committed plan is generated from

CONNECT_TIMEOUT_MS = 5_000  # a connection that takes longer is a transport error
RESPONSE_TIMEOUT_MS = 10_000  # so is a response that takes longer (far past every gate limit)

# Calculation modes of the Constant Throughput Timer (the ordinal of ConstantThroughputTimer.Mode).
CALC_ALL_ACTIVE_THREADS = 1
CALC_ALL_ACTIVE_THREADS_IN_GROUP = 2

# The data the mix addresses: what `python -m service seed` loads by default, and the hot sets of
# loadtest/locustfile.py (PACE): 90 % of id lookups go to the first 20 merchants / 50 users.
SEED_MERCHANTS = 10_000  # merchant ids 1..N exist
SEED_USERS = 100_000  # user ids 1..N exist, with email user<N>@example.com
HOT_MERCHANTS = 20
HOT_USERS = 50
HOT_SHARE = 0.9

# Random choices, as the locustfile makes them: the plan's user defined variables NAME_1..NAME_n
# hold the values, and ${__V(NAME_${__Random(1,n)})} picks one per request.
CHOICES: dict[str, tuple[str, ...]] = {
    "STATUS": ("active", "active", "pending", "suspended"),  # service.models.MERCHANT_STATUSES (a test checks)
    "OFFSET": ("0",) * 7 + ("20",) * 2 + ("40",),  # pages of 20: the first far more often
    "DAYS": ("7", "7", "30"),
    "LIMIT": ("20", "20", "50"),
    "THEME": ("light", "dark"),
}


@dataclass(frozen=True)
class Endpoint:
    """One request of the mix: its sampler name (the JTL ``label``), request and share."""

    label: str  # method and route template, as the Locust report names the endpoint
    path: str  # may hold JMeter functions (random ids)
    weight: float  # percent of all requests (the locustfile's weight per 1000, divided by 10)
    query: tuple[tuple[str, str], ...] = ()  # name, value (may hold JMeter functions)
    accept_404: bool = False  # a random id or email may miss in a smaller seed: a 404 is not an error
    method: str = "GET"
    body: str | None = None  # a JSON body (PUT, PATCH)


def _random(low: int, high: int, variable: str = "") -> str:
    """JMeter's ``__Random``: a whole number from ``low`` to ``high``, new each request (and
    stored in ``variable`` when one is named)."""
    return "${__Random(" + f"{low},{high}" + (f",{variable}" if variable else "") + ")}"


def _pick(name: str) -> str:
    """One of ``CHOICES[name]``, drawn per request."""
    return "${__V(" + name + "_" + _random(1, len(CHOICES[name])) + ")}"


def _split(label: str, path: str, weight: float, hot: int, seeded: int, **kw: Any) -> tuple[Endpoint, ...]:
    """An id lookup as two shares of one label: ``HOT_SHARE`` of it among the hot ids, the rest
    among every seeded id (``{}`` in ``path`` is the id)."""
    return (
        Endpoint(label, path.format(_random(1, hot)), round(weight * HOT_SHARE, 3), **kw),
        Endpoint(label, path.format(_random(1, seeded)), round(weight * (1 - HOT_SHARE), 3), **kw),
    )


MERCHANTS_PAGE = (("limit", "20"), ("offset", _pick("OFFSET")))
# loadtest/locustfile.py's mix, request for request (a test compares the weights).
MIX: tuple[Endpoint, ...] = (
    Endpoint("GET /api/v1/feature-flags", "/api/v1/feature-flags", 15.0),
    Endpoint("GET /api/v1/merchants", "/api/v1/merchants", 4.0, MERCHANTS_PAGE),  # a third: no filter
    Endpoint("GET /api/v1/merchants", "/api/v1/merchants", 8.0, (("status", _pick("STATUS")), *MERCHANTS_PAGE)),
    *_split("GET /api/v1/merchants/{id}", "/api/v1/merchants/{}", 20.0, HOT_MERCHANTS, SEED_MERCHANTS, accept_404=True),
    Endpoint("GET /api/v1/admin/dashboard/overview", "/api/v1/admin/dashboard/overview", 8.0),
    Endpoint("GET /api/v1/analytics/merchants-by-status", "/api/v1/analytics/merchants-by-status", 5.0),
    Endpoint(
        "GET /api/v1/analytics/tickets-per-day", "/api/v1/analytics/tickets-per-day", 5.0, (("days", _pick("DAYS")),)
    ),
    *_split(
        "GET /api/v1/users/{id}/preferences",
        "/api/v1/users/{}/preferences",
        15.0,
        HOT_USERS,
        SEED_USERS,
        accept_404=True,
    ),
    Endpoint(
        "GET /api/v1/users/by-email",
        "/api/v1/users/by-email",
        10.0,
        (("email", "user" + _random(1, SEED_USERS) + "@example.com"),),
        accept_404=True,
    ),
    Endpoint("GET /api/v1/support-tickets/recent", "/api/v1/support-tickets/recent", 9.4, (("limit", _pick("LIMIT")),)),
    # Writes that invalidate cache entries: one preferences key; every merchant and dashboard entry.
    *_split(
        "PUT /api/v1/users/{id}/preferences",
        "/api/v1/users/{}/preferences",
        0.5,
        HOT_USERS,
        SEED_USERS,
        accept_404=True,
        method="PUT",
        body='{"preferences": {"theme": "' + _pick("THEME") + '", "locale": "en", "notifications": true}}',
    ),
    Endpoint(
        "PATCH /api/v1/merchants/{id}",
        "/api/v1/merchants/" + _random(1, HOT_MERCHANTS, "MERCHANT_ID"),
        0.1,
        accept_404=True,
        method="PATCH",
        body='{"name": "Merchant ${MERCHANT_ID}"}',  # its own name again: unchanged, but invalidated
    ),
)
assert round(sum(e.weight for e in MIX), 6) == 100, "the weights of MIX must sum to 100"


def _java_hash(text: str) -> int:
    """Java's ``String.hashCode``: JMeter names the entries of a string collection with it."""
    data, h = text.encode("utf-16-be"), 0
    for i in range(0, len(data), 2):  # UTF-16 code units, as Java counts characters
        h = (31 * h + int.from_bytes(data[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _num(value: float) -> str:
    """A whole number without ``.0``; otherwise at most 3 decimals (no float noise in the file)."""
    value = round(value, 3)
    return str(int(value)) if value == int(value) else repr(value)


def _seconds(value: float) -> str:
    """JMeter's thread group takes whole seconds."""
    return str(round(value))


class _Builder:
    """Appends JMeter's property elements to an ElementTree element."""

    @staticmethod
    def element(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
        return ET.SubElement(parent, tag, attrs)

    @staticmethod
    def string(parent: ET.Element, name: str, value: str) -> None:
        ET.SubElement(parent, "stringProp", {"name": name}).text = value

    @staticmethod
    def boolean(parent: ET.Element, name: str, value: bool) -> None:
        ET.SubElement(parent, "boolProp", {"name": name}).text = "true" if value else "false"

    @staticmethod
    def integer(parent: ET.Element, name: str, value: int) -> None:
        ET.SubElement(parent, "intProp", {"name": name}).text = str(value)

    @staticmethod
    def typed(parent: ET.Element, tag: str, name: str, value: str) -> None:
        """``<doubleProp>``/``<FloatProperty>``: name, value and savedValue as child elements."""
        prop = ET.SubElement(parent, tag)
        ET.SubElement(prop, "name").text = name
        ET.SubElement(prop, "value").text = value
        ET.SubElement(prop, "savedValue").text = "0.0"


_b = _Builder


def _node(tree: ET.Element, tag: str, guiclass: str, testclass: str, testname: str) -> tuple[ET.Element, ET.Element]:
    """A test element and the ``hashTree`` of its children, appended to ``tree`` (a hashTree)."""
    el = _b.element(tree, tag, guiclass=guiclass, testclass=testclass, testname=testname, enabled="true")
    return el, _b.element(tree, "hashTree")


def _argument(collection: ET.Element, name: str, value: str) -> None:
    arg = _b.element(collection, "elementProp", name=name, elementType="Argument")
    _b.string(arg, "Argument.name", name)
    _b.string(arg, "Argument.value", value)
    _b.string(arg, "Argument.metadata", "=")


def _empty_arguments(parent: ET.Element, name: str, guiclass: str) -> None:
    prop = _b.element(
        parent,
        "elementProp",
        name=name,
        elementType="Arguments",
        guiclass=guiclass,
        testclass="Arguments",
        testname="User Defined Variables",
        enabled="true",
    )
    _b.element(prop, "collectionProp", name="Arguments.arguments")


def _sampler(tree: ET.Element, endpoint: Endpoint) -> None:
    el, children = _node(tree, "HTTPSamplerProxy", "HttpTestSampleGui", "HTTPSamplerProxy", endpoint.label)
    args = _b.element(
        el,
        "elementProp",
        name="HTTPsampler.Arguments",
        elementType="Arguments",
        guiclass="HTTPArgumentsPanel",
        testclass="Arguments",
        testname="User Defined Variables",
        enabled="true",
    )
    collection = _b.element(args, "collectionProp", name="Arguments.arguments")
    if endpoint.body is not None:  # the raw body: one argument without a name
        arg = _b.element(collection, "elementProp", name="", elementType="HTTPArgument")
        _b.boolean(arg, "HTTPArgument.always_encode", False)
        _b.string(arg, "Argument.value", endpoint.body)
        _b.string(arg, "Argument.metadata", "=")
    for name, value in endpoint.query:
        arg = _b.element(collection, "elementProp", name=name, elementType="HTTPArgument")
        _b.boolean(arg, "HTTPArgument.always_encode", True)
        _b.string(arg, "Argument.value", value)
        _b.string(arg, "Argument.metadata", "=")
        _b.boolean(arg, "HTTPArgument.use_equals", True)
        _b.string(arg, "Argument.name", name)
    for prop in ("domain", "port", "protocol", "contentEncoding"):
        _b.string(el, f"HTTPSampler.{prop}", "")  # empty: HTTP Request Defaults apply
    _b.string(el, "HTTPSampler.path", endpoint.path)
    _b.string(el, "HTTPSampler.method", endpoint.method)
    _b.boolean(el, "HTTPSampler.postBodyRaw", endpoint.body is not None)
    _b.boolean(el, "HTTPSampler.follow_redirects", False)
    _b.boolean(el, "HTTPSampler.auto_redirects", False)
    _b.boolean(el, "HTTPSampler.use_keepalive", True)
    _b.boolean(el, "HTTPSampler.DO_MULTIPART_POST", False)
    _b.string(el, "HTTPSampler.embedded_url_re", "")
    _b.string(el, "HTTPSampler.connect_timeout", "")
    _b.string(el, "HTTPSampler.response_timeout", "")

    if endpoint.body is not None:
        headers, _ = _node(children, "HeaderManager", "HeaderPanel", "HeaderManager", "JSON body")
        header_list = _b.element(headers, "collectionProp", name="HeaderManager.headers")
        header = _b.element(header_list, "elementProp", name="Content-Type", elementType="Header")
        _b.string(header, "Header.name", "Content-Type")
        _b.string(header, "Header.value", "application/json")

    # The response code decides: 2xx passes; a 404 too where a random id or email may miss.
    pattern, ignore_status = (r"2\d\d|404", True) if endpoint.accept_404 else (r"2\d\d", False)
    name = "response code 2xx or 404" if endpoint.accept_404 else "response code 2xx"
    assertion, _ = _node(children, "ResponseAssertion", "AssertionGui", "ResponseAssertion", name)
    strings = _b.element(assertion, "collectionProp", name="Asserion.test_strings")  # sic: JMeter's spelling
    _b.string(strings, str(_java_hash(pattern)), pattern)
    _b.string(assertion, "Assertion.custom_message", "")
    _b.string(assertion, "Assertion.test_field", "Assertion.response_code")
    _b.boolean(assertion, "Assertion.assume_success", ignore_status)  # "Ignore Status": lets a 404 pass
    _b.integer(assertion, "Assertion.test_type", 1)  # 1: matches (the whole code against the regex)


def _thread_group(
    tree: ET.Element, name: str, users: int, ramp_up: float, delay: float, run_for: float, rate: float, calc_mode: int
) -> None:
    """One thread group: ``users`` threads started over ``ramp_up`` s after ``delay`` s, stopped
    ``run_for`` s after their start, paced at ``rate`` requests/s, running the mix."""
    tg, children = _node(tree, "ThreadGroup", "ThreadGroupGui", "ThreadGroup", name)
    _b.string(tg, "ThreadGroup.on_sample_error", "continue")
    loop = _b.element(
        tg,
        "elementProp",
        name="ThreadGroup.main_controller",
        elementType="LoopController",
        guiclass="LoopControlPanel",
        testclass="LoopController",
        testname="Loop Controller",
        enabled="true",
    )
    _b.boolean(loop, "LoopController.continue_forever", False)
    _b.integer(loop, "LoopController.loops", -1)  # forever: the scheduler stops the group
    _b.string(tg, "ThreadGroup.num_threads", str(users))
    _b.string(tg, "ThreadGroup.ramp_time", _seconds(ramp_up))
    _b.boolean(tg, "ThreadGroup.scheduler", True)
    _b.string(tg, "ThreadGroup.duration", _seconds(run_for))
    _b.string(tg, "ThreadGroup.delay", _seconds(delay))
    _b.boolean(tg, "ThreadGroup.delayedStart", True)  # create threads when due, not all at the start
    _b.boolean(tg, "ThreadGroup.same_user_on_next_iteration", True)

    timer, _ = _node(
        children, "ConstantThroughputTimer", "TestBeanGUI", "ConstantThroughputTimer", f"pace: {_num(rate)} requests/s"
    )
    _b.integer(timer, "calcMode", calc_mode)
    _b.typed(timer, "doubleProp", "throughput", repr(float(round(rate * 60, 3))))  # samples per MINUTE

    for endpoint in MIX:
        controller, inner = _node(
            children,
            "ThroughputController",
            "ThroughputControllerGui",
            "ThroughputController",
            f"{_num(endpoint.weight)}% {endpoint.label}",
        )
        _b.integer(controller, "ThroughputController.style", 1)  # 1: percent executions
        _b.boolean(controller, "ThroughputController.perThread", False)  # the share holds across threads
        _b.integer(controller, "ThroughputController.maxThroughput", 1)
        _b.typed(controller, "FloatProperty", "ThroughputController.percentThroughput", repr(float(endpoint.weight)))
        _sampler(inner, endpoint)


def _commands(profile: Profile) -> tuple[str, str, str]:
    """How this plan is written, where it is, and how its results are judged."""
    base = PROFILES.get(profile.name)
    if base == profile and profile.name == PLAN_PROFILE:
        return "perfstack loadtest jmeter-plan --write", str(PLAN_FILE), f"--profile {PLAN_PROFILE}"
    scale = profile.rate / base.rate if base and base.rate else 1.0
    args = f"--profile {profile.name}" + (f" --scale {_num(scale)}" if abs(scale - 1) > 1e-9 else "")
    return f"perfstack loadtest jmeter-plan {args} --out FILE", "FILE", args


def plan_xml(profile: Profile, host: str = "127.0.0.1", port: int = 8000, scheme: str = "http") -> str:
    """The JMeter 5.6 test plan (.jmx) of ``profile``; the same input gives the same bytes."""
    stepped = bool(profile.step)
    command, path, judge = _commands(profile)
    shape = (
        f"{len(profile.stages())} steps of {_num(profile.duration)} s from {_num(profile.rate)} to "
        f"{_num(profile.stages()[-1][1])} requests/s, {profile.users} threads each"
        if stepped
        else f"{_num(profile.rate)} requests/s from {profile.users} threads, {_num(profile.ramp_up)} s ramp-up, "
        f"{_num(profile.duration)} s at the plateau"
    )
    comments = (
        f"perfstack load profile '{profile.name}': {shape}. DO NOT EDIT: generated by `{command}` from "
        f"perfstack/loadtest/profiles.py. Run: jmeter -n -t {path} -l results.jtl "
        "[-Jhost=HOST -Jport=PORT -Jscheme=https]; judge: perfstack loadtest report --jtl results.jtl "
        f"{judge}."
    )

    root = ET.Element("jmeterTestPlan", {"version": "1.2", "properties": "5.0", "jmeter": "5.6.3"})
    top = _b.element(root, "hashTree")
    plan, tree = _node(top, "TestPlan", "TestPlanGui", "TestPlan", f"perfstack {profile.name}")
    _b.string(plan, "TestPlan.comments", comments)
    _b.boolean(plan, "TestPlan.functional_mode", False)
    _b.boolean(plan, "TestPlan.tearDown_on_shutdown", True)
    _b.boolean(plan, "TestPlan.serialize_threadgroups", False)  # stress steps are sequenced by their delay
    _empty_arguments(plan, "TestPlan.user_defined_variables", "ArgumentsPanel")
    _b.string(plan, "TestPlan.user_define_classpath", "")

    variables, _ = _node(
        tree, "Arguments", "ArgumentsPanel", "Arguments", "target (override with -Jhost= -Jport= -Jscheme=)"
    )
    collection = _b.element(variables, "collectionProp", name="Arguments.arguments")
    _argument(collection, "HOST", f"${{__P(host,{host})}}")
    _argument(collection, "PORT", f"${{__P(port,{port})}}")
    _argument(collection, "SCHEME", f"${{__P(scheme,{scheme})}}")
    for name, values in CHOICES.items():
        for i, value in enumerate(values, 1):
            _argument(collection, f"{name}_{i}", value)

    defaults, _ = _node(tree, "ConfigTestElement", "HttpDefaultsGui", "ConfigTestElement", "HTTP Request Defaults")
    _empty_arguments(defaults, "HTTPsampler.Arguments", "HTTPArgumentsPanel")
    _b.string(defaults, "HTTPSampler.domain", "${HOST}")
    _b.string(defaults, "HTTPSampler.port", "${PORT}")
    _b.string(defaults, "HTTPSampler.protocol", "${SCHEME}")
    _b.string(defaults, "HTTPSampler.contentEncoding", "")
    _b.string(defaults, "HTTPSampler.path", "")
    _b.string(defaults, "HTTPSampler.connect_timeout", str(CONNECT_TIMEOUT_MS))
    _b.string(defaults, "HTTPSampler.response_timeout", str(RESPONSE_TIMEOUT_MS))

    headers, _ = _node(tree, "HeaderManager", "HeaderPanel", "HeaderManager", "HTTP Header Manager")
    header_list = _b.element(headers, "collectionProp", name="HeaderManager.headers")
    header = _b.element(header_list, "elementProp", name="Accept", elementType="Header")
    _b.string(header, "Header.name", "Accept")
    _b.string(header, "Header.value", "application/json")

    if stepped:
        start = 0.0
        for i, (end, rate) in enumerate(profile.stages(), 1):
            _thread_group(
                tree,
                step_name(i, rate),
                profile.users,
                profile.ramp_up,
                start,
                end - start,
                rate,
                CALC_ALL_ACTIVE_THREADS_IN_GROUP,  # a step's pace ignores the previous step's last threads
            )
            start = end
    else:
        _thread_group(
            tree,
            f"{profile.name}: {profile.users} users",
            profile.users,
            profile.ramp_up,
            0,
            profile.ramp_up + profile.duration,
            profile.rate,
            CALC_ALL_ACTIVE_THREADS,
        )

    ET.indent(root, "  ")
    note = (
        f"DO NOT EDIT: generated from the '{profile.name}' load profile (perfstack/loadtest/profiles.py) "
        "by perfstack loadtest jmeter-plan; the TestPlan comments give the exact command."
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<!-- {note} -->\n" + ET.tostring(root, encoding="unicode", short_empty_elements=True) + "\n"
    )


def step_name(index: int, rate: float) -> str:
    """The thread group of a stress step; its threads are named ``<this> <group>-<thread>``."""
    return f"step {index:02d}: {_num(rate)} req/s"


_STEP = re.compile(r"^step (\d+): ")


def write(root: Path) -> list[Path]:
    """Refresh the committed plan; the files that changed."""
    return generated.write({root / PLAN_FILE: plan_xml(get(PLAN_PROFILE))})


def stale(root: Path) -> list[str]:
    """How the committed plan differs from the profile, one line each (empty when up to date)."""
    return generated.stale(root, {root / PLAN_FILE: plan_xml(get(PLAN_PROFILE))})


# --- Reading JMeter's CSV results (JTL) ---------------------------------------------------------

JTL_HEADER = (
    "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,"
    "bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect"
)
REQUIRED_COLUMNS = ("timeStamp", "elapsed", "label", "responseCode", "success")


class JTLError(ValueError):
    """The file is not a JMeter CSV result file the report can read."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One line of a JTL file."""

    timestamp: float  # seconds since the epoch (JMeter writes milliseconds)
    elapsed: float  # seconds
    label: str
    code: str  # "200", or "Non HTTP response code: java.net.ConnectException" for transport errors
    success: bool
    thread: str = ""
    message: str = ""  # responseMessage ("Non HTTP response message: Connection refused")
    failure: str = ""  # failureMessage: why an assertion failed
    threads: int | None = None  # allThreads: threads running when the sample ended

    @property
    def status(self) -> int | None:
        """The HTTP status, or None when the request got no HTTP response."""
        return int(self.code) if self.code.isdigit() else None

    @property
    def is_error(self) -> bool:
        """What the gate counts: a failed sample, a 5xx, or no HTTP response at all."""
        status = self.status
        return not self.success or status is None or status >= 500

    @property
    def error_kind(self) -> str:
        """How the report groups errors: the transport error, else the status and the endpoint."""
        if self.status is None:
            return f"{self.code} ({self.message})" if self.message else self.code
        return f"{self.code} {self.label}"


EXPECTED = f"expected JMeter's CSV result layout, whose first line is the header {JTL_HEADER}"


def read_jtl(path: str | Path) -> list[Sample]:
    """The samples of a JMeter CSV result file (the columns found by the header, in any order).

    Raises :class:`JTLError` (a ``ValueError``) naming the file when it is missing, empty or not
    a CSV JTL with at least ``timeStamp,elapsed,label,responseCode,success``.
    """
    path = Path(path)
    if not path.is_file():
        raise JTLError(f"{path}: no such file: {EXPECTED}")
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as f:
        first = f.readline()
        if not first.strip():
            if not f.read(1 << 16).strip():
                raise JTLError(f"{path}: empty file: {EXPECTED}")
            raise JTLError(f"{path}: not a JMeter CSV result file (no header line): {EXPECTED}")
        if first.lstrip().startswith("<"):
            raise JTLError(
                f"{path}: an XML result file: the report reads CSV results (JMeter's default; "
                f"-Jjmeter.save.saveservice.output_format=csv): {EXPECTED}"
            )
        names = first.rstrip("\r\n")
        delimiter = next((d for d in (",", "\t", ";", "|") if {"timeStamp", "elapsed"} <= set(names.split(d))), None)
        if delimiter is None:
            raise JTLError(f"{path}: not a JMeter CSV result file (no header line): {EXPECTED}")
        header = next(csv.reader([names], delimiter=delimiter))
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise JTLError(f"{path}: the header lacks {', '.join(missing)}: {EXPECTED}")
        return list(_samples(path, csv.reader(f, delimiter=delimiter), header))


def jtl_host(path: str | Path) -> str:
    """``scheme://host:port`` of the first sample's URL; empty when the URL column is not there."""
    with Path(path).open("r", encoding="utf-8-sig", errors="replace", newline="") as f:
        first = f.readline().rstrip("\r\n")
        delimiter = next((d for d in (",", "\t", ";", "|") if "URL" in first.split(d)), None)
        if delimiter is None:
            return ""
        reader = csv.reader(f, delimiter=delimiter)
        url_col = next(csv.reader([first], delimiter=delimiter)).index("URL")
        row = next(reader, [])
        parts = urlsplit(row[url_col] if url_col < len(row) else "")
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _samples(path: Path, reader: Any, header: list[str]) -> Iterator[Sample]:
    """The rows after the header as samples (line numbers in errors count the header)."""
    col = {name: i for i, name in enumerate(header)}
    ts, el, lb, rc, ok = (col[c] for c in REQUIRED_COLUMNS)
    th, fm, rm = col.get("threadName"), col.get("failureMessage"), col.get("responseMessage")
    at = col.get("allThreads")
    intern = sys.intern  # labels, codes and thread names repeat: one copy each (a plan run has 720k rows)
    width = max(ts, el, lb, rc, ok)

    def optional(row: list[str], index: int | None) -> str:
        return row[index] if index is not None and index < len(row) else ""

    for row in reader:
        if not row or row == [""]:
            continue
        line = reader.line_num + 1
        if len(row) <= width:
            raise JTLError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}: {EXPECTED}")
        try:
            timestamp, elapsed = int(row[ts]) / 1000, int(row[el]) / 1000
        except ValueError:
            raise JTLError(
                f"{path}:{line}: timeStamp and elapsed must be whole milliseconds "
                f"(jmeter.save.saveservice.timestamp_format=ms, the default), got {row[ts]!r}, {row[el]!r}"
            ) from None
        threads = optional(row, at)
        yield Sample(
            timestamp=timestamp,
            elapsed=elapsed,
            label=intern(row[lb]),
            code=intern(row[rc].strip()),
            success=row[ok].strip().lower() == "true",
            thread=intern(optional(row, th)),
            message=intern(optional(row, rm)),
            failure=intern(optional(row, fm)),
            threads=int(threads) if threads.isdigit() else None,
        )


# --- The gate's view of a run -------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def view_from_jtl(samples: Sequence[Sample], target_rate: float | None, skip_ramp_up: float) -> gate.View:
    """What the load generator measured at the plateau, for :func:`perfstack.loadtest.gate.check`.

    As the Locust runner does, the gate judges the measured window only: the samples that
    started ``skip_ramp_up`` seconds or more after the first one. Requests, errors, the
    percentiles (nearest rank) and the achieved rate (requests over the time from the window's
    start to the end of its last sample) all come from that window; ``extra`` also gives the
    whole run's totals.
    """
    start = min((s.timestamp for s in samples), default=0.0)
    window_start = start + skip_ramp_up
    plateau = [s for s in samples if s.timestamp >= window_start]
    end = max((s.timestamp + s.elapsed for s in plateau), default=window_start)
    seconds = end - window_start
    elapsed = sorted(s.elapsed for s in plateau)
    errors = [s for s in plateau if s.is_error]
    kinds = Counter(s.error_kind for s in errors)
    extra: dict[str, Any] = {
        "tool": "jmeter",
        "window": [round(window_start, 3), round(end, 3)],
        "seconds": round(seconds, 3),
        "skipped_ramp_up_seconds": skip_ramp_up,
        "errors_5xx": sum(1 for s in errors if (s.status or 0) >= 500),
        "errors_transport": sum(1 for s in errors if s.status is None),
        "errors_failed": sum(1 for s in errors if s.status is not None and s.status < 500),  # assertion failures
        "errors_4xx": sum(1 for s in plateau if s.status is not None and 400 <= s.status < 500),
        "run_requests": len(samples),
        "run_errors": sum(1 for s in samples if s.is_error),
        "top_errors": [{"what": k, "count": n} for k, n in sorted(kinds.items(), key=lambda x: (-x[1], x[0]))[:5]],
    }
    if samples and not plateau:
        last = max(s.timestamp + s.elapsed for s in samples)
        extra["note"] = f"the run ({last - start:.0f} s) ended before the {skip_ramp_up:g} s ramp-up did"
    return gate.View(
        source="client",
        requests=len(plateau),
        errors=len(errors),
        p50=percentile(elapsed, 50),
        p95=percentile(elapsed, 95),
        p99=percentile(elapsed, 99),
        achieved_rate=len(plateau) / seconds if seconds > 0 else 0.0,
        target_rate=target_rate,
        extra=extra,
    )


def step_settle(profile: Profile) -> float:
    """Seconds left out at the start of each stress step, as the Locust runner does."""
    return min(2, int(profile.duration) // 4)


def step_views(samples: Sequence[Sample], profile: Profile) -> list[gate.View]:
    """One view per step of a stepped (stress) profile, in step order.

    A sample belongs to the step its thread group is named after (``step NN: ...``, see
    :func:`step_name`); samples from threads not so named are placed by their start time against
    the profile's stage boundaries, counted from the first sample. Each step leaves out its first
    :func:`step_settle` seconds.
    """
    stages = profile.stages()
    buckets: list[list[Sample]] = [[] for _ in stages]
    start = min((s.timestamp for s in samples), default=0.0)
    for s in samples:
        m = _STEP.match(s.thread)
        if m and 1 <= int(m.group(1)) <= len(stages):
            index = int(m.group(1)) - 1
        else:
            offset = s.timestamp - start
            index = next((i for i, (end, _) in enumerate(stages) if offset < end), len(stages) - 1)
        buckets[index].append(s)
    return [
        view_from_jtl(bucket, rate, step_settle(profile)) for (_, rate), bucket in zip(stages, buckets, strict=True)
    ]


def endpoints(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Per label over the whole run, busiest first (the Locust report's ``endpoints``)."""
    by_label: dict[str, list[Sample]] = {}
    for s in samples:
        by_label.setdefault(s.label, []).append(s)
    out = []
    for label, group in sorted(by_label.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        times = sorted(s.elapsed for s in group)
        out.append(
            {
                "endpoint": label,
                "requests": len(group),
                "errors": sum(s.is_error for s in group),
                "errors_4xx": sum(1 for s in group if s.status is not None and 400 <= s.status < 500),
                "p50": percentile(times, 50),
                "p95": percentile(times, 95),
                "p99": percentile(times, 99),
            }
        )
    return out


def series(samples: Sequence[Sample], profile: Profile | None) -> list[dict[str, Any]]:
    """One row per second of the run, by sample start (the Locust report's ``series``).

    ``target`` is what the plan asked for: the profile's rate from the first second (JMeter's
    timer paces at the full rate as soon as threads run), or each stress step's rate.
    """
    if not samples:
        return []
    first = int(min(s.timestamp for s in samples))
    last = int(max(s.timestamp for s in samples))
    seconds: dict[int, list[Sample]] = {}
    for s in samples:
        seconds.setdefault(int(s.timestamp), []).append(s)
    stages = profile.stages() if profile else []
    rows = []
    for second in range(first, last + 1):
        group = seconds.get(second, [])
        times = sorted(s.elapsed for s in group)
        t = second - first
        target = next((rate for end, rate in stages if t < end), 0.0) if stages else 0.0
        rows.append(
            {
                "t": t,
                "time": second,
                "target": round(target, 3),
                "achieved": len(group),
                "errors": sum(s.is_error for s in group),
                "errors_4xx": sum(1 for s in group if s.status is not None and 400 <= s.status < 500),
                "p50": percentile(times, 50),
                "p95": percentile(times, 95),
                "p99": percentile(times, 99),
                "generator_cpu": None,  # a JTL does not say
                "machine_cpu": None,
                "users": max((s.threads for s in group), default=None),
            }
        )
    return rows


# --- The report ---------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}/s"


def _markdown(rep: Report, jtl: Path, skip: float, charts: bool) -> str:
    """report.md: the Locust report's sections, said of a JMeter results file."""
    p = rep.profile
    if p.get("name") is None:
        shape = "none given: no target rate, the achieved rate is not judged and nothing is skipped"
    elif rep.kind == "stress":
        shape = (
            f"`{p['name']}`, steps of {p['duration']:g}s from {p['rate']:g}/s by {p['step']:g}/s up to "
            f"{p['max_rate']:g}/s, {p['users']} threads; the first {skip:g}s of each step are left out"
        )
    else:
        shape = (
            f"`{p['name']}`, {p['rate']:g} requests/s from {p['users']} threads, {p['ramp_up']:g}s ramp-up "
            f"(left out), {p['duration']:g}s plateau"
        )
    if rep.scale != 1:
        shape += f" (scaled x{rep.scale:g}: a smaller run than the plan, it does not prove the plan's targets)"
    lines = [
        f"# Load test `{p.get('name') or jtl.name}` (JMeter): {rep.verdict()}",
        "",
        f"- results: `{jtl}`; host: `{rep.host or '-'}`",
        f"- profile: {shape}",
        f"- load generator: JMeter, judged from its CSV results (generator CPU not recorded); duration "
        f"{rep.finished - rep.started:.0f}s",
        f"- gate: p95 <= {_ms(slo.LOAD_P95_SECONDS)}, p99 <= {_ms(slo.LOAD_P99_SECONDS)}, errors (5xx, transport, "
        f"failed assertions) <= {slo.LOAD_ERROR_RATE:.1%}, achieved >= {slo.LOAD_MIN_ACHIEVED:.0%} of target",
        "",
        "## Gate",
        "",
        "| stage | view | target | achieved | p50 | p95 | p99 | errors | error rate | result |",
        "|" + "---|" * 10,
    ]
    for s in rep.stages:
        v = s.client
        if v is None:
            continue
        lines.append(
            f"| {s.name} | {v.source} | {_rate(s.rate)} | {_rate(v.achieved_rate)} | {_ms(v.p50)} | {_ms(v.p95)} | "
            f"{_ms(v.p99)} | {v.errors}/{v.requests} | {v.error_rate:.3%} | {'breach' if s.breaches else 'ok'} |"
        )
    breaches = [(s.name, b) for s in rep.stages for b in s.breaches]
    lines += ["", "Breaches:" if breaches else "Breaches: none.", ""]
    if breaches:
        lines += [f"- {name}: {b.message}" for name, b in breaches] + [""]
    top = [e for s in rep.stages if s.client for e in s.client.extra.get("top_errors", [])]
    if top:
        lines += ["## Most frequent errors", "", *(f"- {e['count']} x `{e['what']}`" for e in top[:5]), ""]
    if rep.endpoints:
        lines += [
            "## Endpoints (client view, whole run)",
            "",
            "| endpoint | requests | p50 | p95 | p99 | errors | 4xx |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| `{e['endpoint']}` | {e['requests']} | {_ms(e['p50'])} | {_ms(e['p95'])} | {_ms(e['p99'])} | "
            f"{e['errors']} | {e['errors_4xx']} |"
            for e in rep.endpoints
        ]
        lines.append("")
    if charts:
        lines += ["## Charts", "", "![latency](latency.png)", "", "![throughput](throughput.png)", ""]
    if rep.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in rep.notes), ""]
    return "\n".join(lines)


def build_report(jtl: str | Path, profile_name: str | None, scale: float) -> tuple[Report, float]:
    """The Locust runner's :class:`~perfstack.loadtest.report.Report` of a JMeter results file,
    and the seconds left out at the start of each measured stage."""
    jtl = Path(jtl)
    profile = get(profile_name).scaled(scale) if profile_name else None
    samples = read_jtl(jtl)
    start = min((s.timestamp for s in samples), default=0.0)
    finish = max((s.timestamp + s.elapsed for s in samples), default=0.0)
    notes = [
        "timeStamp is taken as the sample's start (JMeter 5.6's jmeter.properties sets "
        "sampleresult.timestamp.start=true)",
    ]
    if profile and profile.step:
        skip = step_settle(profile)
        views = step_views(samples, profile)
        stages = [
            StageReport(f"step {i}", v.target_rate or 0.0, v.extra["window"][0], v.extra["window"][1], client=v)
            for i, v in enumerate(views, 1)
        ]
        kind = "stress"
    else:
        skip = profile.ramp_up if profile else 0.0
        v = view_from_jtl(samples, profile.rate if profile else None, skip)
        stages = [StageReport("plateau", v.target_rate, v.extra["window"][0], v.extra["window"][1], client=v)]
        kind = "run"
        if v.extra.get("note"):
            notes.append(v.extra["note"])
    if not profile:
        notes.append("no --profile: the achieved rate is not judged and the whole run is measured")
    rep = Report(
        profile=asdict(profile) if profile else {"name": None},
        kind=kind,
        host=jtl_host(jtl),
        stages=stages,
        series=series(samples, profile),
        endpoints=endpoints(samples),
        scale=scale,
        generator="jmeter",
        started=start,
        finished=finish,
        notes=notes,
    )
    return rep, skip


def write_report(
    jtl: str | Path, profile_name: str | None, scale: float, out_dir: str | Path
) -> tuple[Report, list[Path]]:
    """Judge a JMeter results file and write report.md, report.json and, when matplotlib is
    there, latency.png and throughput.png into ``out_dir``: the Locust runner's report files.

    Raises :class:`JTLError` (a ``ValueError``) before writing anything when the file cannot be read.
    """
    rep, skip = build_report(jtl, profile_name, scale)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.md", out / "report.json"]
    if rep.series:
        try:
            written += rep.charts(out)
        except ImportError:
            rep.notes.append("matplotlib is not installed: no charts")
    _, breaches = _outcome(rep)
    document = {
        **rep.to_dict(),
        "tool": "jmeter",
        "jtl": str(jtl),
        "breaches": [asdict(b) for b in breaches],  # those that fail the run (stages[] has each stage's)
    }
    (out / "report.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(rep, Path(jtl), skip, charts=len(written) > 2))
    return rep, written


def report(
    jtl: str | Path, profile_name: str | None, scale: float, out_dir: str | Path
) -> tuple[gate.View, list[gate.Breach]]:
    """Judge a JMeter results file by the SLO gate and write the report (see :func:`write_report`).

    With a profile, its (scaled) rate is the target and its ramp-up is left out of the
    measurement. A stepped profile (``stress``) is judged per step: the run passes when a step
    passed before the first that broke (the knee). Returns the measured view (stress: the knee's
    step, else the first) and the breaches that fail the run (none when it passes).
    """
    rep, _ = write_report(jtl, profile_name, scale, out_dir)
    stage, breaches = _outcome(rep)
    assert stage.client is not None
    return stage.client, breaches


def _outcome(rep: Report) -> tuple[StageReport, list[gate.Breach]]:
    """The stage that speaks for the run (stress: the knee, else the first step) and the
    breaches that fail it (none when it passes)."""
    if rep.kind == "stress":
        return rep.knee or rep.stages[0], [] if rep.passed else rep.stages[0].breaches
    return rep.stages[0], rep.stages[0].breaches


def _summary(v: gate.View) -> str:
    return (
        f"target {_rate(v.target_rate)} achieved {_rate(v.achieved_rate)}, p50 {_ms(v.p50)} p95 {_ms(v.p95)} "
        f"p99 {_ms(v.p99)}, errors {v.errors}/{v.requests} ({v.error_rate:.3%})"
    )


# --- Command line -------------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def run_report(args: argparse.Namespace) -> int:
    """``perfstack loadtest report``: 0 pass, 1 breach, 2 unreadable input."""
    try:
        rep, written = write_report(args.jtl, args.profile, args.scale, args.out)
    except ValueError as exc:  # JTLError, an unknown profile
        print(f"error: {exc}", file=sys.stderr)
        return 2
    broke = rep.breaking_step
    for s in rep.stages:
        if s.client is not None:
            print(f"{s.name} client: {_summary(s.client)}")
    for s in rep.stages if rep.kind != "stress" else rep.stages[: rep.stages.index(broke) + 1] if broke else []:
        for b in s.breaches:
            print(f"breach: {s.name}: {b.message}")
    print(rep.verdict())
    print(f"report: {', '.join(str(p) for p in written)}")
    return rep.exit_code


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``report`` on the ``loadtest`` subparsers; the handler is ``args.func(args)``."""
    p = subparsers.add_parser(
        "report",
        help="judge a JMeter result file (CSV JTL) by the load-test gate",
        description="Apply the load-test gate (perfstack.slo) to JMeter's CSV results: exit 0 pass, 1 breach, "
        "2 unreadable input.",
    )
    p.add_argument("--jtl", required=True, metavar="FILE", help="JMeter CSV results (jmeter -n -t ... -l FILE)")
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help="the profile the plan was generated from: gives the target rate and the ramp-up to skip",
    )
    p.add_argument("--scale", type=_positive, default=1.0, help="the --scale the plan was generated with (default 1)")
    p.add_argument("--out", default="build/loadtest-jmeter", metavar="DIR", help="where report.md/.json go")
    p.set_defaults(func=run_report)
    return p


def run_plan(args: argparse.Namespace) -> int:
    """``perfstack loadtest jmeter-plan``: print, write or check the JMeter plan."""
    if (args.write or args.check) and (args.profile != PLAN_PROFILE or args.scale != 1.0):
        print(
            f"error: --write and --check concern {PLAN_FILE}, generated from the '{PLAN_PROFILE}' profile at "
            "scale 1: use --out FILE for another profile or scale",
            file=sys.stderr,
        )
        return 2
    root = project_root()
    if args.check:
        problems = stale(root)
        for line in problems:
            print(line)
        if problems:
            print(
                f"{PLAN_FILE} differs from the '{PLAN_PROFILE}' profile: run `perfstack loadtest jmeter-plan --write`"
            )
            return 1
        print(f"{PLAN_FILE} matches the '{PLAN_PROFILE}' profile")
        return 0
    if args.write:
        changed = write(root)
        print(f"{'wrote' if changed else 'unchanged:'} {PLAN_FILE}")
        return 0
    text = plan_xml(get(args.profile).scaled(args.scale))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out} (profile {args.profile}, scale {_num(args.scale)})")
    else:
        sys.stdout.write(text)
    return 0


def add_plan_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``jmeter-plan`` on the ``loadtest`` subparsers; the handler is ``args.func(args)``."""
    p = subparsers.add_parser(
        "jmeter-plan",
        help=f"print, write or check the JMeter test plan ({PLAN_FILE})",
        description=f"The JMeter 5.6 test plan of a load profile. {PLAN_FILE} is generated from the "
        f"'{PLAN_PROFILE}' profile: --write refreshes it, --check exits 1 when it is out of date.",
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default=PLAN_PROFILE, help="default: plan")
    p.add_argument("--scale", type=_positive, default=1.0, help="multiply the rate and the users (default 1)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help=f"refresh {PLAN_FILE}")
    g.add_argument("--check", action="store_true", help=f"exit 1 when {PLAN_FILE} is out of date")
    g.add_argument("--out", metavar="FILE", help="write the plan to FILE instead of printing it")
    p.set_defaults(func=run_plan)
    return p
