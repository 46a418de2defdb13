"""The Cloudflare component: cache rules, compression rules, image and protocol settings.

Created only by the stack that owns the zone (``cdn.manageZone: true``): a zone has one
entry-point ruleset per phase and its settings are singletons, so two stacks managing the same
zone would fight. Other stacks use the zone only to purge (``perfstack cdn purge``).

Everything a plan lacks was refused by the settings already; this module only asks for what
the plan has (``features()``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cf

from ..settings import CDN_PLANS, CdnSettings

YEAR = 31_536_000
ASSET_EXTENSIONS = (
    "css", "js", "mjs", "map", "woff", "woff2", "ttf", "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico",
)  # fmt: skip
COMPRESSIBLE = (
    "text/html", "text/css", "text/plain", "text/javascript", "application/javascript",
    "application/json", "application/xml", "image/svg+xml",
)  # fmt: skip


@dataclass(frozen=True)
class Features:
    """What this stack turns on, given its plan and settings."""

    polish: str
    webp: bool
    image_transformations: bool
    status_code_ttls: bool  # per-status edge TTLs: enterprise in Cloudflare's older docs, so enterprise only here
    regional_tiered_cache: bool


def features(cdn: CdnSettings) -> Features:
    pro = CDN_PLANS.index(cdn.plan) >= CDN_PLANS.index("pro")
    polish = cdn.polish if cdn.polish is not None else ("lossless" if pro else "off")
    return Features(
        polish=polish,
        webp=cdn.webp if cdn.webp is not None else (pro and polish != "off"),
        image_transformations=cdn.image_transformations if cdn.image_transformations is not None else pro,
        status_code_ttls=cdn.plan == "enterprise",
        regional_tiered_cache=cdn.regional_tiered_cache,
    )


def _quoted(values: tuple[str, ...] | list[str]) -> str:
    return "{" + " ".join(f'"{v}"' for v in values) + "}"


def _starts(paths: tuple[str, ...]) -> str:
    return " or ".join(f'starts_with(http.request.uri.path, "{p}")' for p in paths)


def expressions(cdn: CdnSettings) -> dict[str, str]:
    """The rule expressions, in Cloudflare's rules language."""
    hosts = f"http.host in {_quoted(cdn.hostnames)}"
    return {
        "api_bypass": f'({hosts} and starts_with(http.request.uri.path, "/api/"))',
        "api_cacheable": f'({hosts} and http.request.method eq "GET" and ({_starts(cdn.cacheable_api_paths)}))',
        "versioned_assets": (
            f"({hosts} and http.request.uri.path.extension in {_quoted(ASSET_EXTENSIONS)}"
            f' and ({_starts(cdn.versioned_paths)} or http.request.uri.query contains "v="))'
        ),
        "html": f'({hosts} and (ends_with(http.request.uri.path, "/") or http.request.uri.path.extension eq "html"))',
    }


def cache_rules(cdn: CdnSettings, feats: Features) -> list[cf.RulesetRuleArgs]:
    """Rules run in order and later matches override earlier ones: bypass the API first, then
    re-enable caching for the cacheable GET endpoints."""
    ex = expressions(cdn)
    A = cf.RulesetRuleActionParametersArgs
    status_ttl = cf.RulesetRuleActionParametersEdgeTtlStatusCodeTtlArgs
    status_range = cf.RulesetRuleActionParametersEdgeTtlStatusCodeTtlStatusCodeRangeArgs
    error_ttls = (
        [
            status_ttl(status_code_range=status_range(from_=400, to=499), value=60),
            status_ttl(status_code_range=status_range(from_=500, to=599), value=-1),  # -1: no-store
        ]
        if feats.status_code_ttls
        else None
    )
    armour = cf.RulesetRuleActionParametersCacheKeyArgs(cache_deception_armor=True, ignore_query_strings_order=True)
    return [
        cf.RulesetRuleArgs(
            ref="api_bypass",
            description="API responses are not cached unless a later rule says so",
            expression=ex["api_bypass"],
            action="set_cache_settings",
            action_parameters=A(cache=False),
            enabled=True,
        ),
        cf.RulesetRuleArgs(
            ref="api_cacheable",
            description="The plan's cacheable GET endpoints follow the origin's Cache-Control",
            expression=ex["api_cacheable"],
            action="set_cache_settings",
            action_parameters=A(
                cache=True,
                edge_ttl=cf.RulesetRuleActionParametersEdgeTtlArgs(mode="respect_origin", status_code_ttls=error_ttls),
                browser_ttl=cf.RulesetRuleActionParametersBrowserTtlArgs(mode="respect_origin"),
                cache_key=armour,
            ),
            enabled=True,
        ),
        cf.RulesetRuleArgs(
            ref="versioned_assets",
            description="Content-hashed assets: a year at the edge and in browsers",
            expression=ex["versioned_assets"],
            action="set_cache_settings",
            action_parameters=A(
                cache=True,
                edge_ttl=cf.RulesetRuleActionParametersEdgeTtlArgs(
                    mode="override_origin", default=YEAR, status_code_ttls=error_ttls
                ),
                browser_ttl=cf.RulesetRuleActionParametersBrowserTtlArgs(mode="override_origin", default=YEAR),
                cache_key=armour,
                respect_strong_etags=True,
            ),
            enabled=True,
        ),
        cf.RulesetRuleArgs(
            ref="html",
            description="HTML: a short edge TTL, served stale while it revalidates",
            expression=ex["html"],
            action="set_cache_settings",
            action_parameters=A(
                cache=True,
                edge_ttl=cf.RulesetRuleActionParametersEdgeTtlArgs(
                    mode="override_origin", default=cdn.html_edge_ttl, status_code_ttls=error_ttls
                ),
                browser_ttl=cf.RulesetRuleActionParametersBrowserTtlArgs(mode="respect_origin"),
                serve_stale=cf.RulesetRuleActionParametersServeStaleArgs(disable_stale_while_updating=False),
                cache_key=armour,
            ),
            enabled=True,
        ),
    ]


def zone_settings(feats: Features) -> dict[str, str]:
    settings = {
        "always_use_https": "on",
        "min_tls_version": "1.2",
        "http3": "on",
        "early_hints": "on",
        "polish": feats.polish,
    }
    if feats.polish != "off":
        settings["webp"] = "on" if feats.webp else "off"
    if feats.image_transformations:
        settings["image_resizing"] = "on"
    return settings


@dataclass
class CdnArgs:
    settings: CdnSettings  # enabled, manage_zone, zone_id set (validated)


class Cdn(pulumi.ComponentResource):
    def __init__(self, name: str, args: CdnArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("perfstack:index:Cdn", name, None, opts)
        cdn = args.settings
        assert cdn.zone_id is not None
        feats = features(cdn)
        child = pulumi.ResourceOptions(parent=self)
        self.cache_rules = cf.Ruleset(
            f"{name}-cache-rules",
            zone_id=cdn.zone_id,
            name="perfstack cache rules",
            description="Managed by perfstack; edit stacks/, not the dashboard",
            kind="zone",
            phase="http_request_cache_settings",
            rules=cache_rules(cdn, feats),
            opts=child,
        )
        self.compression_rules = cf.Ruleset(
            f"{name}-compression-rules",
            zone_id=cdn.zone_id,
            name="perfstack compression rules",
            kind="zone",
            phase="http_response_compression",
            rules=[
                cf.RulesetRuleArgs(
                    ref="compress_text",
                    description="zstd, then brotli, then gzip; auto last as the fallback",
                    expression=f"(http.response.content_type.media_type in {_quoted(COMPRESSIBLE)})",
                    action="compress_response",
                    action_parameters=cf.RulesetRuleActionParametersArgs(
                        algorithms=[
                            cf.RulesetRuleActionParametersAlgorithmArgs(name=n)
                            for n in ("zstd", "brotli", "gzip", "auto")
                        ]
                    ),
                    enabled=True,
                )
            ],
            opts=child,
        )
        self.settings = [
            cf.ZoneSetting(
                f"{name}-{sid.replace('_', '-')}", zone_id=cdn.zone_id, setting_id=sid, value=value, opts=child
            )
            for sid, value in zone_settings(feats).items()
        ]
        # Smart Tiered Cache sits on top of Tiered Caching: both on.
        self.tiered = cf.ArgoTieredCaching(f"{name}-tiered-caching", zone_id=cdn.zone_id, value="on", opts=child)
        self.smart_tiered = cf.TieredCache(f"{name}-smart-tiered-cache", zone_id=cdn.zone_id, value="on", opts=child)
        if feats.regional_tiered_cache:
            cf.RegionalTieredCache(f"{name}-regional-tiered-cache", zone_id=cdn.zone_id, value="on", opts=child)
        self.register_outputs({})
