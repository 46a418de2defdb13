"""What every perfstack container has in common, in one place.

Each component builds its containers through :func:`service_container`, so the invariants
the tests check hold everywhere: a pinned image, ``restart: unless-stopped``, a memory and
CPU limit, a healthcheck that works with the image's own tools, ``stack``/``component``
labels, the image's non-root user, published ports bound to the stack's address, and a
network alias that the rendered configs use as the host name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_docker as docker

from ..configs import File
from ..configs.base import SERVICES


class FileSet:
    """Rendered files for the containers: plain text where nothing secret is inside, a
    Pulumi secret (from the render with real values) where something is."""

    def __init__(self, plain: dict[str, File], real: pulumi.Output[dict[str, File]]) -> None:
        self.plain = plain
        self.real = real

    def for_component(self, component: str) -> list[File]:
        return [f for f in self.plain.values() if f.component == component]

    def uploads(self, component: str) -> list[docker.ContainerUploadArgs]:
        uploads = []
        for f in self.for_component(component):
            content: pulumi.Input[str] = f.content
            if f.secret:
                content = pulumi.Output.secret(self.real.apply(lambda files, key=f.key: files[key].content))
            uploads.append(
                docker.ContainerUploadArgs(
                    file=f.container_path, content=content, permissions=f.permissions, owner=f.owner
                )
            )
        return uploads


@dataclass
class ServiceSpec:
    """One container of a component."""

    service: str  # key of configs.base.SERVICES
    image: str
    memory_mb: int
    cpus: str
    healthcheck: list[str]
    host_port: int | None = None
    command: list[str] | None = None
    envs: Sequence[pulumi.Input[str]] = ()
    uploads: Sequence[docker.ContainerUploadArgs] = ()
    volumes: Sequence[docker.ContainerVolumeArgs] = ()
    working_dir: str | None = None
    host_gateway: bool = False  # reach APIs on the Docker host as host.docker.internal
    start_period: str = "30s"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class StackContext:
    """Facts every component needs about the stack it belongs to."""

    stack: str
    network: pulumi.Input[str]
    bind_address: str
    protect_data: bool

    def resource_name(self, service: str) -> str:
        return f"perfstack-{self.stack}-{service}"


def data_volume(parent: pulumi.Resource, name: str, ctx: StackContext, service: str) -> docker.Volume:
    """A named volume for a component's data; protected and retained when the stack says so,
    so no update, rename or destroy of the stack deletes TSDB, Grafana or Redis data."""
    return docker.Volume(
        f"{name}-data",
        name=f"{ctx.resource_name(service)}-data",
        labels=[
            docker.VolumeLabelArgs(label="stack", value=ctx.stack),
            docker.VolumeLabelArgs(label="component", value=service),
        ],
        opts=pulumi.ResourceOptions(parent=parent, protect=ctx.protect_data, retain_on_delete=ctx.protect_data),
    )


def service_container(
    parent: pulumi.Resource, name: str, ctx: StackContext, spec: ServiceSpec
) -> tuple[docker.RemoteImage, docker.Container]:
    svc = SERVICES[spec.service]
    image = docker.RemoteImage(
        f"{name}-image",
        name=spec.image,
        keep_locally=True,  # other stacks on the same host use the same image
        opts=pulumi.ResourceOptions(parent=parent),
    )
    ports = []
    if spec.host_port is not None:
        ports.append(docker.ContainerPortArgs(internal=svc.port, external=spec.host_port, ip=ctx.bind_address))
    container = docker.Container(
        f"{name}-container",
        name=ctx.resource_name(spec.service),
        image=image.image_id,
        command=spec.command,
        envs=list(spec.envs) or None,
        user=svc.user,
        working_dir=spec.working_dir,
        uploads=list(spec.uploads) or None,
        volumes=list(spec.volumes) or None,
        ports=ports or None,
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=ctx.network, aliases=[svc.alias])],
        hosts=[docker.ContainerHostArgs(host="host.docker.internal", ip="host-gateway")] if spec.host_gateway else None,
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=spec.healthcheck, interval="15s", timeout="5s", retries=5, start_period=spec.start_period
        ),
        restart="unless-stopped",
        memory=spec.memory_mb,
        cpus=spec.cpus,
        labels=[
            docker.ContainerLabelArgs(label="stack", value=ctx.stack),
            docker.ContainerLabelArgs(label="component", value=spec.service),
            docker.ContainerLabelArgs(label="managed-by", value="perfstack"),
        ],
        must_run=True,
        wait=True,  # `pulumi up` fails unless the healthcheck passes
        wait_timeout=180,
        **spec.extra,
        # The container keeps a fixed name and host port, so the old one must go first.
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
    )
    return image, container


def wget_check(port: int, path: str) -> list[str]:
    """Healthcheck for images with busybox wget (Prometheus, Alertmanager, Grafana, exporters)."""
    return ["CMD", "wget", "-q", "--spider", f"http://127.0.0.1:{port}{path}"]
