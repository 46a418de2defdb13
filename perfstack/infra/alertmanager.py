"""Alertmanager: severity routing and receivers from config, state on a named volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from ..configs import alertmanager as cfg
from ..configs.base import SERVICES
from ..settings import AlertmanagerSettings
from .prometheus import _url
from .service import FileSet, ServiceSpec, StackContext, data_volume, service_container, wget_check


@dataclass
class AlertmanagerArgs:
    settings: AlertmanagerSettings
    routing: str  # configs.alertmanager.describe_routes(settings)
    files: FileSet
    context: StackContext


class Alertmanager(pulumi.ComponentResource):
    container: docker.Container
    volume: docker.Volume
    url: pulumi.Output[str]
    routing: pulumi.Output[str]

    def __init__(self, name: str, args: AlertmanagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("perfstack:index:Alertmanager", name, None, opts)
        a, ctx = args.settings, args.context
        self.volume = data_volume(self, name, ctx, "alertmanager")
        self.image, self.container = service_container(
            self,
            name,
            ctx,
            ServiceSpec(
                service="alertmanager",
                image=a.image,
                memory_mb=a.memory_mb,
                cpus=a.cpus,
                host_port=a.port,
                command=cfg.command(),
                uploads=args.files.uploads("alertmanager"),
                volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=cfg.DATA_DIR)],
                healthcheck=wget_check(SERVICES["alertmanager"].port, "/-/ready"),
            ),
        )
        self.url = pulumi.Output.from_input(_url(ctx.bind_address, a.port))
        self.routing = pulumi.Output.from_input(args.routing)
        self.register_outputs({"url": self.url, "routing": self.routing})
