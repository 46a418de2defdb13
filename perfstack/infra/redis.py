"""Redis for the application cache, and redis_exporter watching it (or a managed Redis)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from ..configs import redis as cfg
from ..configs.base import SERVICES
from ..settings import RedisExporterSettings, RedisSettings
from .prometheus import _url
from .service import FileSet, ServiceSpec, StackContext, data_volume, service_container, wget_check


@dataclass
class RedisArgs:
    settings: RedisSettings
    exporter: RedisExporterSettings
    files: FileSet
    password: pulumi.Output[str]  # the `default` user's, for the application
    exporter_password: pulumi.Output[str]
    context: StackContext


class Redis(pulumi.ComponentResource):
    container: docker.Container | None
    volume: docker.Volume | None
    exporter: docker.Container
    url: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("perfstack:index:Redis", name, None, opts)
        r, ctx = args.settings, args.context
        self.container = self.volume = None
        if r.external_url is None:
            self.volume = data_volume(self, name, ctx, "redis")
            _, self.container = service_container(
                self,
                name,
                ctx,
                ServiceSpec(
                    service="redis",
                    image=r.image,
                    memory_mb=r.memory_mb,
                    cpus=r.cpus,
                    host_port=r.port,
                    command=cfg.command(),
                    working_dir=cfg.DATA_DIR,
                    uploads=args.files.uploads("redis"),
                    volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=cfg.DATA_DIR)],
                    # The password-less `healthcheck` ACL user may run PING and nothing else.
                    healthcheck=[
                        "CMD-SHELL",
                        f"redis-cli --user {cfg.HEALTHCHECK_USER} --pass nopass --no-auth-warning ping | grep -q PONG",
                    ],
                ),
            )
            exporter_env = [
                f"REDIS_ADDR=redis://{SERVICES['redis'].address}",
                f"REDIS_USER={cfg.EXPORTER_USER}",
                pulumi.Output.secret(args.exporter_password).apply(lambda pw: f"REDIS_PASSWORD={pw}"),
            ]
            self.url = pulumi.Output.from_input(_url(ctx.bind_address, r.port).replace("http://", "redis://"))
            self.password = pulumi.Output.secret(args.password)
        else:
            external = r.external_url.reveal()
            exporter_env = [pulumi.Output.secret(f"REDIS_ADDR={external}")]
            self.url = pulumi.Output.from_input("(external: see redis.externalUrl)")
            self.password = pulumi.Output.secret("")
        e = args.exporter
        _, self.exporter = service_container(
            self,
            f"{name}-exporter",
            ctx,
            ServiceSpec(
                service="redis-exporter",
                image=e.image,
                memory_mb=e.memory_mb,
                cpus=e.cpus,
                host_port=e.port,
                envs=exporter_env,
                healthcheck=wget_check(SERVICES["redis-exporter"].port, "/health"),
                start_period="10s",
            ),
        )
        self.register_outputs({"url": self.url, "password": self.password})
