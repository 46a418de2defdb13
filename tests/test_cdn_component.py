"""The Cloudflare component under Pulumi mocks, for each plan, asserted on the wire inputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from conftest import run_program, stack_config

ZONE = "0123456789abcdef0123456789abcdef"
HOSTS = ["www.example.com", "staging.example.com"]


def dev_with(cdn: dict[str, Any]) -> dict[str, Any]:
    import yaml

    config, _ = stack_config("dev")
    merged = {k.split(":", 1)[1]: yaml.safe_load(v) for k, v in config.items()}
    merged["cdn"] = {"enabled": True, "zoneId": ZONE, "hostnames": HOSTS, **cdn}
    return merged


def run(cdn: dict[str, Any]) -> Any:
    return run_program("dev", dev_with(cdn))


def rules(run_: Any, phase: str) -> dict[str, dict[str, Any]]:
    (ruleset,) = [r for r in run_.mocks.of_type("ruleset:Ruleset") if r.inputs["phase"] == phase]
    assert ruleset.inputs["kind"] == "zone" and ruleset.inputs["zoneId"] == ZONE
    return {r["ref"]: r for r in ruleset.inputs["rules"]}


def zone_settings(run_: Any) -> dict[str, Any]:
    return {r.inputs["settingId"]: r.inputs["value"] for r in run_.mocks.of_type("zoneSetting:ZoneSetting")}


def test_no_cloudflare_resource_without_cdn() -> None:
    run_ = run_program("dev")
    assert not [r for r in run_.mocks.resources if r.typ.startswith("cloudflare:")]
    assert run_.outputs["cdn"] == "off"


def test_a_stack_that_does_not_own_the_zone_creates_nothing_and_only_purges() -> None:
    run_ = run({"manageZone": False})
    assert not [r for r in run_.mocks.resources if r.typ.startswith("cloudflare:")]
    assert "purge only" in run_.outputs["cdn"] and run_.outputs["cdnZoneId"] == ZONE


def test_cache_rules_bypass_the_api_then_cache_the_plans_endpoints_assets_and_html() -> None:
    run_ = run({"manageZone": True, "plan": "pro"})
    cache = rules(run_, "http_request_cache_settings")
    assert list(cache) == ["api_bypass", "api_cacheable", "versioned_assets", "html"]
    assert cache["api_bypass"]["actionParameters"] == {"cache": False}
    assert 'starts_with(http.request.uri.path, "/api/")' in cache["api_bypass"]["expression"]
    api = cache["api_cacheable"]
    for path in (
        "/api/v1/feature-flags",
        "/api/v1/merchants",
        "/api/v1/admin/dashboard/overview",
        "/api/v1/analytics/",
    ):
        assert f'"{path}"' in api["expression"]
    assert 'http.request.method eq "GET"' in api["expression"]
    assert api["actionParameters"]["edgeTtl"]["mode"] == "respect_origin"
    assets = cache["versioned_assets"]["actionParameters"]
    assert assets["edgeTtl"] == {"mode": "override_origin", "default": 31536000}
    assert assets["browserTtl"] == {"mode": "override_origin", "default": 31536000}
    assert assets["cacheKey"]["cacheDeceptionArmor"] is True
    html = cache["html"]["actionParameters"]
    assert html["edgeTtl"]["default"] == 60 and html["serveStale"] == {"disableStaleWhileUpdating": False}
    for rule in cache.values():
        assert 'http.host in {"www.example.com" "staging.example.com"}' in rule["expression"]


def test_compression_prefers_zstd_then_brotli_then_gzip_with_auto_last() -> None:
    run_ = run({"manageZone": True})
    (rule,) = rules(run_, "http_response_compression").values()
    assert [a["name"] for a in rule["actionParameters"]["algorithms"]] == ["zstd", "brotli", "gzip", "auto"]
    assert '"application/json"' in rule["expression"]


def test_free_plan_gets_the_free_settings_and_no_image_features() -> None:
    run_ = run({"manageZone": True, "plan": "free"})
    settings = zone_settings(run_)
    assert settings == {
        "always_use_https": "on", "min_tls_version": "1.2", "http3": "on", "early_hints": "on", "polish": "off",
    }  # fmt: skip
    assert run_.mocks.of_type("tieredCache:TieredCache")[0].inputs["value"] == "on"
    assert run_.mocks.of_type("argoTieredCaching:ArgoTieredCaching")[0].inputs["value"] == "on"
    assert not run_.mocks.of_type("regionalTieredCache:RegionalTieredCache")
    cache = rules(run_, "http_request_cache_settings")
    assert "statusCodeTtls" not in cache["versioned_assets"]["actionParameters"]["edgeTtl"]


def test_pro_plan_turns_on_polish_webp_and_image_transformations() -> None:
    settings = zone_settings(run({"manageZone": True, "plan": "pro"}))
    assert settings["polish"] == "lossless" and settings["webp"] == "on" and settings["image_resizing"] == "on"


def test_enterprise_plan_allows_the_extras() -> None:
    run_ = run({"manageZone": True, "plan": "enterprise", "regionalTieredCache": True, "polish": "lossy"})
    assert run_.mocks.of_type("regionalTieredCache:RegionalTieredCache")[0].inputs["value"] == "on"
    ttls = rules(run_, "http_request_cache_settings")["versioned_assets"]["actionParameters"]["edgeTtl"][
        "statusCodeTtls"
    ]
    assert {(t["statusCodeRange"]["from"], t["statusCodeRange"]["to"], t["value"]) for t in ttls} == {
        (400, 499, 60), (500, 599, -1),
    }  # fmt: skip
    assert zone_settings(run_)["polish"] == "lossy"


@pytest.mark.parametrize(
    ("cdn", "message"),
    [
        ({"plan": "free", "polish": "lossless"}, "perfstack:cdn.polish needs the pro plan or higher; cdn.plan is free"),
        ({"plan": "free", "webp": True}, "perfstack:cdn.webp needs the pro plan or higher"),
        ({"plan": "free", "imageTransformations": True}, "perfstack:cdn.imageTransformations needs the pro plan"),
        (
            {"plan": "business", "regionalTieredCache": True},
            "perfstack:cdn.regionalTieredCache needs the enterprise plan",
        ),
        ({"minify": {"js": True}}, "perfstack:cdn.minify must be left unset: Cloudflare retired Auto Minify"),
        ({"brotli": "on"}, "perfstack:cdn.brotli must be left unset: Cloudflare retired the brotli zone setting"),
        ({"plan": "starter"}, "perfstack:cdn.plan must be one of free, pro, business, enterprise"),
        ({"zoneId": "example.com"}, "perfstack:cdn.zoneId must be a Cloudflare zone id"),
        ({"hostnames": []}, "perfstack:cdn.hostnames is required when cdn.manageZone is true"),
    ],
)
def test_a_setting_the_plan_lacks_is_an_error_before_any_resource(cdn: dict[str, Any], message: str) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        run({"manageZone": True, **cdn})
    assert message in str(caught.value)
