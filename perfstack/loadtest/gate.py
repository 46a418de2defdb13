"""The pass/fail gate of a load test, from :mod:`perfstack.slo`.

The same gate judges a Locust run, a JMeter JTL file and the server's own view from Prometheus::

    view = View("client", target_rate=50, achieved_rate=49.2, requests=2000, errors=0,
                p50=0.012, p95=0.041, p99=0.09)
    breaches = check(view)          # [] when the run passes
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import slo


@dataclass
class View:
    """What one side (the load generator, or the server via Prometheus) measured."""

    source: str  # "client" or "server"
    requests: int
    errors: int  # 5xx and transport errors (client); 5xx (server)
    p50: float | None  # seconds
    p95: float | None
    p99: float | None
    achieved_rate: float  # requests per second at the plateau
    target_rate: float | None = None  # arrivals per second asked for (client only)
    generator_cpu: float | None = None  # share of one core the load generator used (client only)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_rate": self.error_rate}


@dataclass(frozen=True)
class Breach:
    source: str
    what: str
    value: float
    limit: float
    message: str


def check(view: View) -> list[Breach]:
    """Every way ``view`` misses the gate; empty when it passes."""
    out: list[Breach] = []
    ms = lambda s: f"{s * 1000:.1f}ms"  # noqa: E731
    if view.requests == 0:
        return [Breach(view.source, "requests", 0, 1, f"{view.source}: no request was measured")]
    if view.p95 is not None and view.p95 > slo.LOAD_P95_SECONDS:
        out.append(
            Breach(
                view.source,
                "p95",
                view.p95,
                slo.LOAD_P95_SECONDS,
                f"{view.source}: p95 {ms(view.p95)} is above {ms(slo.LOAD_P95_SECONDS)}",
            )
        )
    if view.p99 is not None and view.p99 > slo.LOAD_P99_SECONDS:
        out.append(
            Breach(
                view.source,
                "p99",
                view.p99,
                slo.LOAD_P99_SECONDS,
                f"{view.source}: p99 {ms(view.p99)} is above {ms(slo.LOAD_P99_SECONDS)}",
            )
        )
    if view.error_rate > slo.LOAD_ERROR_RATE:
        out.append(
            Breach(
                view.source,
                "error_rate",
                view.error_rate,
                slo.LOAD_ERROR_RATE,
                f"{view.source}: error rate {view.error_rate:.3%} is above {slo.LOAD_ERROR_RATE:.3%}",
            )
        )
    if view.target_rate:
        floor = slo.LOAD_MIN_ACHIEVED * view.target_rate
        if view.achieved_rate < floor:
            out.append(
                Breach(
                    view.source,
                    "achieved_rate",
                    view.achieved_rate,
                    floor,
                    f"{view.source}: achieved {view.achieved_rate:.1f} requests/s, below "
                    f"{slo.LOAD_MIN_ACHIEVED:.0%} of the {view.target_rate:.1f}/s target",
                )
            )
    if view.generator_cpu is not None and view.generator_cpu > slo.LOAD_GENERATOR_CPU_MAX:
        out.append(
            Breach(
                view.source,
                "generator_cpu",
                view.generator_cpu,
                slo.LOAD_GENERATOR_CPU_MAX,
                f"the load generator used {view.generator_cpu:.0%} of a core: it, not the server, may have "
                f"been the bottleneck; the run cannot pass",
            )
        )
    return out
