"""Grafana: provisioned datasources and dashboards, admin password as a secret."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from ..configs import grafana as cfg
from ..configs.base import SERVICES
from ..settings import GrafanaSettings
from .prometheus import _url
from .service import FileSet, ServiceSpec, StackContext, data_volume, service_container, wget_check


@dataclass
class GrafanaArgs:
    settings: GrafanaSettings
    files: FileSet  # includes secrets/admin_password, rendered from admin_password
    admin_password: pulumi.Output[str]
    context: StackContext


class Grafana(pulumi.ComponentResource):
    container: docker.Container
    volume: docker.Volume
    url: pulumi.Output[str]
    admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("perfstack:index:Grafana", name, None, opts)
        g, ctx = args.settings, args.context
        self.volume = data_volume(self, name, ctx, "grafana")
        self.image, self.container = service_container(
            self,
            name,
            ctx,
            ServiceSpec(
                service="grafana",
                image=g.image,
                memory_mb=g.memory_mb,
                cpus=g.cpus,
                host_port=g.port,
                uploads=args.files.uploads("grafana"),
                volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=cfg.DATA_DIR)],
                healthcheck=wget_check(SERVICES["grafana"].port, "/api/health"),
                start_period="60s",  # database migrations on first start
            ),
        )
        self.url = pulumi.Output.from_input(_url(ctx.bind_address, g.port))
        self.admin_password = pulumi.Output.secret(args.admin_password)
        self.register_outputs({"url": self.url, "admin_password": self.admin_password})
