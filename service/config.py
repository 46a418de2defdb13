"""The reference API's settings, from the environment (12-factor)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise SystemExit(f"{name} must not be negative, got {raw!r}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Config:
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/perfstack"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The plan's pool. On a 2-core host a pool near 5 may serve better: see README figures.
    pool_size: int = 20
    max_overflow: int = 40
    pool_timeout: int = 30
    pool_pre_ping: bool = True
    cache_enabled: bool = True
    redis_timeout_ms: int = 250

    @classmethod
    def from_env(cls) -> Config:
        url = os.environ.get("DATABASE_URL", cls.database_url)
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]  # libpq form -> SQLAlchemy + psycopg 3
        return cls(
            database_url=url,
            redis_url=os.environ.get("REDIS_URL", cls.redis_url),
            pool_size=_int("DB_POOL_SIZE", cls.pool_size),
            max_overflow=_int("DB_MAX_OVERFLOW", cls.max_overflow),
            pool_timeout=_int("DB_POOL_TIMEOUT", cls.pool_timeout),
            pool_pre_ping=_bool("DB_POOL_PRE_PING", cls.pool_pre_ping),
            cache_enabled=_bool("CACHE_ENABLED", cls.cache_enabled),
            redis_timeout_ms=_int("REDIS_TIMEOUT_MS", cls.redis_timeout_ms),
        )
