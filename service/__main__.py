"""``python -m service``: migrate, seed and serve the reference API.

    python -m service migrate                      # alembic upgrade head
    python -m service seed --users 100000 --merchants 10000 --tickets 1000000
    python -m service serve --port 8000 [--workers 2]   # migrates first

Configured by the environment: DATABASE_URL, REDIS_URL, DB_POOL_SIZE (20), DB_MAX_OVERFLOW (40),
DB_POOL_TIMEOUT (30), DB_POOL_PRE_PING (true), CACHE_ENABLED (true), REDIS_TIMEOUT_MS (250).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from .config import Config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service", description="The perfstack reference API.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the schema migrations")
    s = sub.add_parser("seed", help="load realistic volumes (replaces existing rows)")
    s.add_argument("--users", type=int, default=100_000)
    s.add_argument("--merchants", type=int, default=10_000)
    s.add_argument("--tickets", type=int, default=1_000_000)
    r = sub.add_parser("serve", help="migrate, then serve with uvicorn")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=8000)
    r.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    config = Config.from_env()

    from .db import make_engine, migrate

    if args.command == "migrate":
        migrate(config.database_url)
        print("migrated")
        return 0
    if args.command == "seed":
        from .seed import Sizes, seed

        for name in ("users", "merchants", "tickets"):
            if getattr(args, name) < 1:
                print(f"error: --{name} must be at least 1", file=sys.stderr)
                return 2
        migrate(config.database_url)
        engine = make_engine(config)
        timings = seed(engine, Sizes(args.users, args.merchants, args.tickets))
        print(" ".join(f"{k}={v:.1f}s" for k, v in timings.items()))
        return 0

    import uvicorn

    migrate(config.database_url)
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every worker writes its metrics here; /metrics sums them (prometheus_client multiprocess mode).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="perfstack-metrics-")
    uvicorn.run(
        "service.asgi:app", host=args.host, port=args.port, workers=args.workers, access_log=False, log_level="warning"
    )
    return 0


def run(argv: list[str] | None = None) -> int:
    """``main`` with unreachable databases reported in one line, not a traceback."""
    from sqlalchemy.exc import OperationalError

    try:
        return main(argv)
    except OperationalError as exc:
        url = Config.from_env().database_url
        safe = url.split("@", 1)[-1]  # never print a password
        print(f"error: cannot use the database at {safe} (DATABASE_URL): {exc.orig}".splitlines()[0], file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
