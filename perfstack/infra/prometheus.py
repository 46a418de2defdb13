"""The Prometheus server: rendered config and rules, TSDB on a named volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from ..configs import prometheus as cfg
from ..configs.base import SERVICES
from ..settings import PrometheusSettings
from .service import FileSet, ServiceSpec, StackContext, data_volume, service_container, wget_check


@dataclass
class PrometheusArgs:
    settings: PrometheusSettings
    command: list[str]  # configs.prometheus.command(settings)
    files: FileSet
    context: StackContext


class Prometheus(pulumi.ComponentResource):
    container: docker.Container
    volume: docker.Volume
    url: pulumi.Output[str]

    def __init__(self, name: str, args: PrometheusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("perfstack:index:Prometheus", name, None, opts)
        p, ctx = args.settings, args.context
        self.volume = data_volume(self, name, ctx, "prometheus")
        self.image, self.container = service_container(
            self,
            name,
            ctx,
            ServiceSpec(
                service="prometheus",
                image=p.image,
                memory_mb=p.memory_mb,
                cpus=p.cpus,
                host_port=p.port,
                command=args.command,
                uploads=args.files.uploads("prometheus"),
                volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=cfg.DATA_DIR)],
                healthcheck=wget_check(SERVICES["prometheus"].port, "/-/ready"),
                host_gateway=True,
            ),
        )
        self.url = pulumi.Output.from_input(_url(ctx.bind_address, p.port))
        self.register_outputs({"url": self.url})


def _url(bind: str, port: int | None) -> str:
    if port is None:
        return "(not published)"
    host = "127.0.0.1" if bind == "0.0.0.0" else (f"[{bind}]" if ":" in bind else bind)
    return f"http://{host}:{port}"
