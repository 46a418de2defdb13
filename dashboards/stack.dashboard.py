"""Stack health: scrape targets, Prometheus itself, rule evaluation, Alertmanager notifications."""

from perfstack.dashboards.style import Threshold, dashboard, query, row, timeseries
from perfstack.telemetry import exporters as x

dashboard = dashboard(
    __file__,
    "Stack health",
    "Is the monitoring itself working: targets up, scrape durations, Prometheus series and ingestion, "
    "rule failures, Alertmanager notifications.",
    rows=[
        row(
            "Targets",
            [
                timeseries(
                    "Targets up",
                    "1 when the last scrape of a target succeeded, 0 when it failed.",
                    "short",
                    [query(f"{x.UP}", "{{job}} {{instance}}")],
                    thresholds=[Threshold(1, good_below=False)],
                    minimum=0,
                    maximum=1,
                ),
                timeseries(
                    "Scrape duration",
                    "How long each scrape took; close to the scrape timeout means samples may be lost.",
                    "s",
                    [query(f"{x.SCRAPE_DURATION}", "{{job}} {{instance}}")],
                ),
            ],
        ),
        row(
            "Prometheus",
            [
                timeseries(
                    "Series in the head block",
                    "Active series in memory; growth without new targets means a label is unbounded.",
                    "short",
                    [query(f"{x.PROMETHEUS_HEAD_SERIES}", "{{instance}}")],
                ),
                timeseries(
                    "Samples ingested per second",
                    "Samples appended to the TSDB per second.",
                    "ops",
                    [query(f"rate({x.PROMETHEUS_SAMPLES_APPENDED}[$__rate_interval])", "{{instance}}")],
                ),
                timeseries(
                    "Rule evaluation failures",
                    "Failed rule evaluations per second by rule group; alerts of a failing group cannot fire.",
                    "ops",
                    [
                        query(
                            f"sum by (rule_group) (rate({x.PROMETHEUS_RULE_FAILURES}[$__rate_interval]))",
                            "{{rule_group}}",
                        )
                    ],
                    thresholds=[Threshold(0.000001)],
                    width=24,
                ),
            ],
        ),
        row(
            "Alertmanager",
            [
                timeseries(
                    "Notifications sent",
                    "Notifications per second by integration (pagerduty, slack, webhook).",
                    "ops",
                    [
                        query(
                            f"sum by (integration) (rate({x.ALERTMANAGER_NOTIFICATIONS}[$__rate_interval]))",
                            "{{integration}}",
                        )
                    ],
                ),
                timeseries(
                    "Notifications failed",
                    "Failed notifications per second by integration.",
                    "ops",
                    [
                        query(
                            f"sum by (integration) (rate({x.ALERTMANAGER_NOTIFICATIONS_FAILED}[$__rate_interval]))",
                            "{{integration}}",
                        )
                    ],
                    thresholds=[Threshold(0.000001)],
                ),
            ],
        ),
    ],
    tags=["meta"],
)
