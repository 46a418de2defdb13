"""Shared fixtures: the repository root, stack-file config, and the program under Pulumi mocks.

The mocks fail loudly (FACTS.md §1.3): an unknown resource type or an invoke the program is not
expected to make raises, so a typo in a type token or an accidental registry lookup cannot pass
silently; the recorded inputs are the wire (camelCase) names the engine would receive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc

# Real PostgreSQL and Redis servers, for every test module (tests/services.py).
from services import pg_url, postgres_server, redis_server, redis_url  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "perfstack"
STACKS = ("dev", "staging", "prod")
FAKE_SECRET = "fake-secret-from-stack-file"

# How Pulumi marks a secret value on the wire (FACTS.md §1.3 trap 3): the SDK's own constants.
SECRET_SIG, SECRET_MARK = rpc._special_sig_key, rpc._special_secret_sig

KNOWN_TYPES = {
    "docker:index/container:Container",
    "docker:index/network:Network",
    "docker:index/volume:Volume",
    "docker:index/remoteImage:RemoteImage",
    "random:index/randomPassword:RandomPassword",
    "perfstack:index:Prometheus",
    "perfstack:index:Alertmanager",
    "perfstack:index:Grafana",
    "perfstack:index:Redis",
    "perfstack:index:PostgresExporter",
    "perfstack:index:Cdn",
    "cloudflare:index/ruleset:Ruleset",
    "cloudflare:index/zoneSetting:ZoneSetting",
    "cloudflare:index/tieredCache:TieredCache",
    "cloudflare:index/argoTieredCaching:ArgoTieredCaching",
    "cloudflare:index/regionalTieredCache:RegionalTieredCache",
}


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    opts: dict[str, Any] = field(default_factory=dict)


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ not in KNOWN_TYPES:
            raise AssertionError(f"unexpected resource type {args.typ} ({args.name})")
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs)))
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs.update(imageId=f"sha256:{args.name}", repoDigest=f"{args.inputs['name']}@sha256:fake")
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"generated-{args.name}"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        raise AssertionError(f"unexpected invoke {args.token}")

    def of_type(self, suffix: str) -> list[Registered]:
        return [r for r in self.resources if r.typ.endswith(suffix)]

    def named(self, name: str) -> Registered:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {[r.name for r in self.resources]}"
        return found[0]


def stack_config(stack: str, root: Path = ROOT) -> tuple[dict[str, str], list[str]]:
    """A stack file's config as the engine passes it: text values, objects as JSON, secure
    values replaced by a fake secret and their keys listed as secret."""
    data = yaml.safe_load((root / "stacks" / f"Pulumi.{stack}.yaml").read_text()) or {}
    config: dict[str, str] = {}
    secret_keys: list[str] = []

    def unsecure(value: Any) -> tuple[Any, bool]:
        if isinstance(value, dict) and set(value) == {"secure"}:
            return FAKE_SECRET, True
        if isinstance(value, dict):
            pairs = {k: unsecure(v) for k, v in value.items()}
            return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
        if isinstance(value, list):
            items = [unsecure(v) for v in value]
            return [v for v, _ in items], any(s for _, s in items)
        return value, False

    for key, value in (data.get("config") or {}).items():
        plain, is_secret = unsecure(value)
        if isinstance(plain, bool):
            config[key] = "true" if plain else "false"
        elif isinstance(plain, (dict, list)):
            config[key] = json.dumps(plain)
        else:
            config[key] = str(plain)
        if is_secret:
            secret_keys.append(key)
    return config, secret_keys


@dataclass
class ProgramRun:
    mocks: RecordingMocks
    outputs: dict[str, Any]
    secret_outputs: set[str]
    options: dict[str, dict[str, Any]]  # resource name -> observed resource options


def run_program(
    stack: str,
    config: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    root: Path = ROOT,
) -> ProgramRun:
    """Run perfstack.program.build() under mocks with ``config`` (default: the stack file's).

    ``config`` values may be Python objects; they are passed to the engine as text/JSON.
    """
    from perfstack import program

    if config is None:
        raw, keys = stack_config(stack, root)
    else:
        raw = {
            (k if ":" in k else f"{PROJECT}:{k}"): (
                json.dumps(v)
                if isinstance(v, (dict, list))
                else ("true" if v is True else "false" if v is False else str(v))
            )
            for k, v in config.items()
        }
        keys = [k if ":" in k else f"{PROJECT}:{k}" for k in (secret_keys or [])]
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_all_config(raw, keys)

    options: dict[str, dict[str, Any]] = {}

    def observe(args: pulumi.ResourceTransformationArgs) -> None:
        options[args.name] = {
            "protect": bool(args.opts.protect),
            "retain_on_delete": bool(args.opts.retain_on_delete),
            "delete_before_replace": bool(args.opts.delete_before_replace),
            "parent": args.opts.parent,
        }
        return None

    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        pulumi.runtime.register_stack_transformation(observe)
        result = program.build(root)

        async def secrets() -> None:
            for name, value in result.items():
                if isinstance(value, pulumi.Output) and await value.is_secret():
                    secret_outputs.add(name)

        return (
            pulumi.Output.all(**result)
            .apply(lambda values: outputs.update(values))
            .apply(lambda _: pulumi.Output.from_input(secrets()))
        )

    run()
    return ProgramRun(mocks, outputs, secret_outputs, options)


@pytest.fixture
def root() -> Path:
    return ROOT
