"""Load profiles: how much traffic, for how long, in which shape. Numbers come from perfstack.slo.

- ``smoke``: under a minute, for CI: proves the API, the instrumentation and the gate work.
- ``plan``: the plan's load test (100 users, 2-minute ramp-up, 1000 requests/s, 10 minutes).
  ``--scale`` shrinks the rate for a smaller machine (the report says so).
- ``stress``: steps the arrival rate up until the SLO breaks and reports the knee (the highest
  rate that still passed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import slo


@dataclass(frozen=True)
class Profile:
    name: str
    rate: float  # target arrivals per second (at the plateau, or the first step for stress)
    users: int  # concurrent users (a pool big enough to keep the arrival rate when responses slow down)
    ramp_up: float  # seconds to reach the plateau
    duration: float  # seconds at the plateau (for stress: per step)
    step: float = 0.0  # stress: rate added per step
    max_rate: float = 0.0  # stress: stop here at the latest

    def scaled(self, factor: float) -> Profile:
        """The same shape at ``factor`` times the rate (users scaled, never below 1)."""
        if factor <= 0:
            raise ValueError("--scale must be positive")
        return replace(
            self,
            rate=self.rate * factor,
            users=max(1, round(self.users * factor)),
            step=self.step * factor,
            max_rate=self.max_rate * factor,
        )

    def stages(self) -> list[tuple[float, float]]:
        """(end time in seconds, target rate) for each stage, for the run and the JMeter plan."""
        if self.step:
            out, t, rate = [], 0.0, self.rate
            while rate <= self.max_rate + 1e-9:
                t += self.duration
                out.append((t, rate))
                rate += self.step
            return out
        return [(self.ramp_up, self.rate), (self.ramp_up + self.duration, self.rate)]


PROFILES = {
    "smoke": Profile("smoke", rate=50, users=20, ramp_up=5, duration=40),
    "plan": Profile("plan", rate=slo.REQUESTS_PER_SECOND, users=100, ramp_up=120, duration=600),
    "stress": Profile(
        "stress", rate=100, users=200, ramp_up=0, duration=20, step=100, max_rate=4 * slo.REQUESTS_PER_SECOND
    ),
}


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}: expected one of {', '.join(PROFILES)}") from None
