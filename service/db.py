"""Engine, sessions and migrations for the reference API."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from perfstack.telemetry.metrics import Metrics
from perfstack.telemetry.sqlalchemy import InstrumentedQueuePool, instrument_engine

from .config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(config: Config, metrics: Metrics | None = None) -> Engine:
    """The plan's pool: QueuePool, pool_size 20, max_overflow 40, pre-ping (all configurable)."""
    engine = create_engine(
        config.database_url,
        poolclass=InstrumentedQueuePool,
        pool_size=config.pool_size,
        max_overflow=config.max_overflow,
        pool_timeout=config.pool_timeout,
        pool_pre_ping=config.pool_pre_ping,
    )
    return instrument_engine(engine, metrics)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(database_url: str) -> None:
    """Apply every migration in service/migrations (alembic upgrade head)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(cfg, "head")
