"""The metrics contract: names, buckets, and that no metric name is written twice."""

from __future__ import annotations

import re

from conftest import ROOT

from perfstack.telemetry import contract


def test_the_plans_metric_names_and_labels_are_in_the_contract() -> None:
    assert contract.API_REQUESTS.name == "api_requests_total"
    assert contract.API_REQUESTS.labels == ("method", "endpoint", "status")
    assert contract.API_REQUEST_DURATION.name == "api_request_duration_seconds"
    assert contract.API_REQUEST_DURATION.labels == ("method", "endpoint")
    assert contract.DB_QUERY_DURATION.labels == ("operation",)
    assert contract.CACHE_REQUESTS.labels == ("cache", "result")
    assert contract.CACHE_RESULTS == ("hit", "miss", "error")


def test_counters_end_in_total_and_durations_are_in_seconds() -> None:
    for spec in contract.ALL:
        if spec.kind == "counter":
            assert spec.name.endswith("_total"), spec.name
        else:
            assert not spec.name.endswith("_total"), spec.name
        if spec.kind == "histogram":  # every histogram here measures time
            assert spec.name.endswith("_seconds"), spec.name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name), spec.name


def test_histogram_buckets_hold_every_target_boundary_with_neighbours_on_both_sides() -> None:
    for spec, targets in (
        (contract.API_REQUEST_DURATION, (0.1,)),
        (contract.DB_QUERY_DURATION, (0.05, 0.1, 0.5)),
    ):
        buckets = spec.buckets
        assert list(buckets) == sorted(buckets)
        for t in targets:
            i = buckets.index(t)
            assert 0 < i < len(buckets) - 1, f"{spec.name}: {t} needs a bucket below and above"
            assert buckets[i + 1] <= t * 2.5 and buckets[i - 1] >= t / 2.5, f"{spec.name}: coarse around {t}"


def test_cache_ttls_are_the_plans() -> None:
    assert contract.CACHE_TTLS == {
        "feature_flags": 300,
        "merchant_data": 600,
        "user_preferences": 1800,
        "dashboard_stats": 60,
    }


def test_no_metric_name_is_typed_outside_the_contract() -> None:
    sources = [p for folder in ("perfstack", "service") for p in (ROOT / folder).rglob("*.py")]
    sources = [p for p in sources if p.name != "contract.py"]
    assert len(sources) > 10
    for spec in contract.ALL:
        for series in {spec.name, spec.base_name}:
            offenders = [str(p.relative_to(ROOT)) for p in sources if f'"{series}' in p.read_text()]
            assert not offenders, f"{series} typed in {offenders}: import it from perfstack.telemetry.contract"
