"""Meta-monitoring: targets, Prometheus and Alertmanager themselves, and the dead man's switch."""

from perfstack import slo
from perfstack.rules import Alert, Group
from perfstack.telemetry import exporters as x

groups = [
    Group(
        "stack.alerts",
        [
            Alert(
                "TargetDown",
                f"{x.UP} == 0",
                severity="warning",
                for_=slo.FOR["TargetDown"],
                summary="A scrape target is down.",
                description=(
                    "{{ $labels.job }} target {{ $labels.instance }} has not answered scrapes for "
                    f"{slo.FOR['TargetDown']}."
                ),
            ),
            Alert(
                "PrometheusRuleFailures",
                f"increase({x.PROMETHEUS_RULE_FAILURES}[5m]) > 0",
                severity="warning",
                for_=slo.FOR["PrometheusRuleFailures"],
                summary="Prometheus is failing to evaluate rules.",
                description=(
                    "{{ $labels.instance }}: {{ $value | humanize }} evaluations of rule group {{ $labels.rule_group }} "
                    "failed in the last 5m; alerts from that group cannot fire."
                ),
            ),
            Alert(
                "PrometheusConfigReloadFailed",
                f"{x.PROMETHEUS_CONFIG_RELOAD_OK} == 0",
                severity="warning",
                for_=slo.FOR["PrometheusConfigReloadFailed"],
                summary="Prometheus could not reload its configuration.",
                description=(
                    "{{ $labels.instance }} has been running on its previous configuration for "
                    f"{slo.FOR['PrometheusConfigReloadFailed']}: the last reload failed."
                ),
            ),
            Alert(
                "AlertmanagerFailedToSendAlerts",
                # Alertmanager 0.26+ adds a `reason` label to the failed counter only.
                f"sum without (reason) (rate({x.ALERTMANAGER_NOTIFICATIONS_FAILED}[5m]))\n"
                f"  / rate({x.ALERTMANAGER_NOTIFICATIONS}[5m])\n"
                f"> {slo.fmt(slo.NOTIFICATION_FAILURE_RATIO)}",
                severity="warning",
                for_=slo.FOR["AlertmanagerFailedToSendAlerts"],
                summary="Alertmanager is failing to deliver notifications.",
                description=(
                    "{{ $labels.instance }}: {{ $value | humanizePercentage }} of notifications to "
                    "{{ $labels.integration }} failed over the last 5m."
                ),
            ),
            Alert(
                "Watchdog",
                "vector(1)",
                severity="info",
                summary="The alerting pipeline is working: this alert always fires.",
                description=(
                    "A dead man's switch: it fires as long as Prometheus evaluates rules and reaches "
                    "Alertmanager. Its receiver expects it; its absence is the alert."
                ),
            ),
        ],
    ),
]
