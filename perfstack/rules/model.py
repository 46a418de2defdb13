"""Rules as data: recording rules, alerts and groups, validated when built.

::

    Group("api.rules", [Recording("job:api_requests:rate5m", "sum by (job) (rate(api_requests_total[5m]))")])
    Group("api.alerts", [Alert("ApiHighErrorRate", expr, for_="10m", severity="warning",
                               summary="...", description="...")])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("critical", "warning", "info")
RECORD_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")
ALERT_NAME = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$")
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_]*\.(rules|alerts)$")


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not RECORD_NAME.match(self.record):
            raise RuleError(f"recording rule {self.record!r} must be named level:metric:operations")
        metric = self.record.split(":")[1]
        ops = self.record.split(":")[2]
        if metric.endswith("_total") and "rate" in ops:
            raise RuleError(f"recording rule {self.record!r}: drop _total after rate (Prometheus naming)")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            out["labels"] = dict(self.labels)
        return out


@dataclass(frozen=True)
class Alert:
    alert: str
    expr: str
    severity: str
    summary: str  # static: one sentence, no templating
    description: str  # templated: built from the same constants as expr
    for_: str = "0s"
    labels: dict[str, str] = field(default_factory=dict)
    keep_firing_for: str | None = None

    def __post_init__(self) -> None:
        if not ALERT_NAME.match(self.alert):
            raise RuleError(f"alert {self.alert!r} must be CamelCase with its component first (ApiHighErrorRate)")
        if self.severity not in SEVERITIES:
            raise RuleError(f"alert {self.alert}: severity must be one of {', '.join(SEVERITIES)}")
        if "{{" in self.summary:
            raise RuleError(f"alert {self.alert}: summary must be static; put templating in description")
        if not self.summary.endswith(".") or not self.description:
            raise RuleError(f"alert {self.alert}: summary must be one sentence ending in '.', description non-empty")

    def to_dict(self, runbook_url: str) -> dict[str, Any]:
        out: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_ not in ("0s", "0m", ""):
            out["for"] = self.for_
        if self.keep_firing_for:
            out["keep_firing_for"] = self.keep_firing_for
        out["labels"] = {"severity": self.severity, **self.labels}
        out["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": runbook_url,
        }
        return out


@dataclass(frozen=True)
class Group:
    name: str
    rules: list[Recording | Alert]
    interval: str | None = None

    def __post_init__(self) -> None:
        if not GROUP_NAME.match(self.name):
            raise RuleError(f"group {self.name!r} must be named <area>.rules or <area>.alerts")
        kinds = {type(r) for r in self.rules}
        if self.name.endswith(".rules") and kinds - {Recording}:
            raise RuleError(f"group {self.name}: a .rules group holds recording rules only")
        if self.name.endswith(".alerts") and kinds - {Alert}:
            raise RuleError(f"group {self.name}: an .alerts group holds alerts only")
