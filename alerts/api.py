"""API rules: request rate, errors, latency, the availability and latency SLOs and their burn rates."""

from perfstack import slo
from perfstack.rules import Alert, Group, Recording
from perfstack.telemetry import contract as c

REQUESTS = c.API_REQUESTS.name
DURATION = c.API_REQUEST_DURATION.name
ERRORS = 'status=~"5.."'  # availability SLI: a 5xx is a failed request; 4xx are the client's
GUARD = f"job:api_requests:rate{{w}} > {slo.fmt(slo.MIN_REQUEST_RATE)}"
QUANTILES = (0.5, 0.95, 0.99)
LATENCY_LE = slo.fmt(slo.LATENCY_THRESHOLD_SECONDS)
AVAILABILITY_BUDGET = slo.budget(slo.AVAILABILITY_OBJECTIVE)
LATENCY_BUDGET = slo.budget(slo.LATENCY_OBJECTIVE)


def _sli_rules() -> list[Recording]:
    rules: list[Recording] = []
    for w in slo.sli_windows():
        rules += [
            Recording(f"job:api_requests:rate{w}", f"sum by (job) (rate({REQUESTS}[{w}]))"),
            # `or ... * 0`: an API that never failed has no 5xx series; its error rate is 0, not absent.
            Recording(
                f"job:api_request_errors:rate{w}",
                f"sum by (job) (rate({REQUESTS}{{{ERRORS}}}[{w}]))\n  or sum by (job) (rate({REQUESTS}[{w}])) * 0",
            ),
            Recording(
                f"job:api_request_errors:ratio_rate{w}", f"job:api_request_errors:rate{w} / job:api_requests:rate{w}"
            ),
            Recording(
                f"job:api_slow_requests:ratio_rate{w}",
                f'1 - sum by (job) (rate({DURATION}_bucket{{le="{LATENCY_LE}"}}[{w}]))\n'
                f"  / sum by (job) (rate({DURATION}_count[{w}]))",
            ),
        ]
    return rules


def _quantiles(level: str, by: str) -> list[Recording]:
    source = f"{level}_le:{DURATION}_bucket:rate5m"
    rules = [Recording(source, f"sum by ({by}, le) (rate({DURATION}_bucket[5m]))")]
    for q in QUANTILES:
        rules.append(
            Recording(
                f"{level}_quantile:{DURATION}:histogram_quantile5m",
                f"histogram_quantile({slo.fmt(q)}, {source})",
                {"quantile": slo.fmt(q)},
            )
        )
    return rules


def _budget_remaining(kind: str, bad: str, objective: float) -> Recording:
    return Recording(
        f"job:api_{kind}_error_budget:remaining{slo.SLO_PERIOD}",
        f"1 - (\n  sum_over_time({bad}[{slo.SLO_PERIOD}])\n  / sum_over_time(job:api_requests:rate5m[{slo.SLO_PERIOD}])\n"
        f") / {slo.fmt(slo.budget(objective))}",
    )


def _burn_alerts(name: str, sli: str, objective: float, what: str) -> list[Alert]:
    budget = slo.budget(objective)
    alerts = []
    for tier in ("page", "ticket"):
        windows = [b for b in slo.BURN_RATE_WINDOWS if b.tier == tier]
        clauses = [
            f"(\n  job:{sli}:ratio_rate{b.long} > {slo.fmt(b.factor * budget)}\n"
            f"  and job:{sli}:ratio_rate{b.short} > {slo.fmt(b.factor * budget)}\n"
            f"  and {GUARD.format(w=b.long)}\n)"
            for b in windows
        ]
        rates = " or ".join(f"{slo.fmt(b.factor)}x over {b.long} and {b.short}" for b in windows)
        spent = " / ".join(f"{slo.percent(b.budget_spent())} in {b.long}" for b in windows)
        alerts.append(
            Alert(
                name,
                "\nor\n".join(clauses),
                severity=windows[0].severity,
                for_=slo.FOR[f"{name}.{tier}"],
                summary=f"The API is spending its {what} error budget too fast.",
                description=(
                    f"{{{{ $labels.job }}}}: {{{{ $value | humanizePercentage }}}} of requests are {what_bad(what)}, "
                    f"burning the {slo.percent(objective)} {what} objective's {slo.SLO_PERIOD} budget at more than "
                    f"{rates} the sustainable rate ({spent} of the budget)."
                ),
            )
        )
    return alerts


def what_bad(what: str) -> str:
    return (
        "failing (5xx)" if what == "availability" else f"slower than {slo.fmt(slo.LATENCY_THRESHOLD_SECONDS * 1000)}ms"
    )


groups = [
    Group(
        "api.rules",
        [
            Recording("job_endpoint:api_requests:rate5m", f"sum by (job, endpoint) (rate({REQUESTS}[5m]))"),
            Recording(
                "job_endpoint:api_request_errors:ratio_rate5m",
                f"(\n  sum by (job, endpoint) (rate({REQUESTS}{{{ERRORS}}}[5m]))\n"
                f"  or sum by (job, endpoint) (rate({REQUESTS}[5m])) * 0\n)\n"
                f"/ sum by (job, endpoint) (rate({REQUESTS}[5m]))",
            ),
            *_quantiles("job", "job"),
            *_quantiles("job_endpoint", "job, endpoint"),
        ],
    ),
    Group(
        "slo.rules",
        [
            *_sli_rules(),
            Recording(
                "job:api_slow_requests:rate5m",
                f"sum by (job) (rate({DURATION}_count[5m]))\n"
                f'  - sum by (job) (rate({DURATION}_bucket{{le="{LATENCY_LE}"}}[5m]))',
            ),
        ],
    ),
    Group(
        # 30 days of samples per evaluation: once a minute is plenty for a budget.
        "slo_budget.rules",
        [
            _budget_remaining("availability", "job:api_request_errors:rate5m", slo.AVAILABILITY_OBJECTIVE),
            _budget_remaining("latency", "job:api_slow_requests:rate5m", slo.LATENCY_OBJECTIVE),
        ],
        interval="1m",
    ),
    Group(
        "api.alerts",
        [
            *_burn_alerts(
                "ApiAvailabilityBudgetBurn", "api_request_errors", slo.AVAILABILITY_OBJECTIVE, "availability"
            ),
            *_burn_alerts("ApiLatencyBudgetBurn", "api_slow_requests", slo.LATENCY_OBJECTIVE, "latency"),
            Alert(
                "ApiHighErrorRate",
                f"job:api_request_errors:ratio_rate5m > {slo.fmt(slo.ERROR_RATE)}\nand {GUARD.format(w='5m')}",
                severity="warning",
                for_=slo.FOR["ApiHighErrorRate"],
                summary=f"More than {slo.percent(slo.ERROR_RATE)} of API requests are failing.",
                description=(
                    "{{ $labels.job }}: {{ $value | humanizePercentage }} of requests failed (5xx) over the last 5m, "
                    f"above the plan's {slo.percent(slo.ERROR_RATE)} for {slo.FOR['ApiHighErrorRate']}. "
                    f"Held there, the {slo.percent(slo.AVAILABILITY_OBJECTIVE)} budget lasts "
                    f"{slo.fmt(slo.days_to_exhaust(slo.ERROR_RATE))} days: the burn-rate alerts decide whether to page."
                ),
            ),
            Alert(
                "ApiHighLatencyP95",
                f'job_quantile:{DURATION}:histogram_quantile5m{{quantile="0.95"}} > {slo.fmt(slo.API_P95_SECONDS)}\n'
                f"and on (job) {GUARD.format(w='5m')}",
                severity="warning",
                for_=slo.FOR["ApiHighLatencyP95"],
                summary=f"API p95 latency is above {slo.fmt(slo.API_P95_SECONDS * 1000)}ms.",
                description=(
                    "{{ $labels.job }}: p95 latency is {{ $value | humanizeDuration }} over the last 5m, above "
                    f"{slo.fmt(slo.API_P95_SECONDS * 1000)}ms for {slo.FOR['ApiHighLatencyP95']}."
                ),
            ),
        ],
    ),
]
