"""redis.conf for the application cache.

Three users: ``default`` (the application, password), ``exporter`` (redis_exporter, read-only
introspection) and ``healthcheck`` (PING only, no password: the healthcheck needs no secret
in the container's environment, and the user can do nothing else).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..settings import Settings
from .base import HEADER, SERVICES, File

CONFIG_PATH = "/usr/local/etc/redis/redis.conf"
DATA_DIR = "/data"
EXPORTER_USER = "exporter"
HEALTHCHECK_USER = "healthcheck"

# What redis_exporter runs: INFO, CONFIG GET maxmemory, SLOWLOG, LATENCY, CLIENT LIST.
EXPORTER_ACL = " ".join(
    [
        "-@all",
        "+info",
        "+ping",
        "+select",
        "+config|get",
        "+client|list",
        "+client|setname",
        "+slowlog|get",
        "+slowlog|len",
        "+latency|latest",
        "+latency|histogram",
        "+memory|stats",
        "+cluster|info",
    ]
)


def command() -> list[str]:
    return ["redis-server", CONFIG_PATH]


def redis_conf(settings: Settings, secrets: Mapping[str, str]) -> str:
    r = settings.redis
    header = HEADER.format(stack=settings.stack, what="Redis configuration")
    persistence = (
        "appendonly yes\nappendfsync everysec\n"
        if r.appendonly
        else "# A pure cache: no snapshots, no append-only file.\nappendonly no\n"
    )
    return f"""# {header}
bind * -::*
port {SERVICES["redis"].port}
protected-mode yes
# dir: the working directory, {DATA_DIR} (the image's WORKDIR and the volume), so this
# file also loads as-is outside the container (perfstack validate).

maxmemory {r.maxmemory}
maxmemory-policy {r.maxmemory_policy}
save ""
{persistence}
requirepass {secrets["redis.password"]}
user {EXPORTER_USER} on >{secrets["redis.exporterPassword"]} ~* &* {EXPORTER_ACL}
user {HEALTHCHECK_USER} on nopass -@all +ping
"""


def redis_files(settings: Settings, secrets: Mapping[str, str]) -> list[File]:
    return [File("redis", "redis.conf", CONFIG_PATH, redis_conf(settings, secrets), SERVICES["redis"].user)]
