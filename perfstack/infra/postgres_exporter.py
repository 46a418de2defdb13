"""postgres_exporter for the application's database, with the pg_stat_statements collector."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from ..configs.base import SERVICES
from ..settings import PostgresExporterSettings
from .service import ServiceSpec, StackContext, service_container, wget_check


@dataclass
class PostgresExporterArgs:
    settings: PostgresExporterSettings  # dsn is set: the program creates this only then
    context: StackContext


def command() -> list[str]:
    return ["--collector.stat_statements", "--no-collector.stat_statements.include_query"]


class PostgresExporter(pulumi.ComponentResource):
    container: docker.Container

    def __init__(self, name: str, args: PostgresExporterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("perfstack:index:PostgresExporter", name, None, opts)
        s, ctx = args.settings, args.context
        assert s.dsn is not None
        _, self.container = service_container(
            self,
            name,
            ctx,
            ServiceSpec(
                service="postgres-exporter",
                image=s.image,
                memory_mb=s.memory_mb,
                cpus=s.cpus,
                host_port=s.port,
                command=command(),
                envs=[pulumi.Output.secret(f"DATA_SOURCE_NAME={s.dsn.reveal()}")],
                healthcheck=wget_check(SERVICES["postgres-exporter"].port, "/"),
                host_gateway=True,  # a database on the Docker host is host.docker.internal
                start_period="10s",
            ),
        )
        self.register_outputs({})
