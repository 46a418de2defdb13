"""The reference API: the plan's endpoints, cached where the plan says, instrumented by perfstack.

Run it with ``python -m service serve`` (DATABASE_URL, REDIS_URL; see ``--help``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from perfstack.telemetry import instrument_app
from perfstack.telemetry.cache import Cache
from perfstack.telemetry.metrics import Metrics, default_metrics

from .config import Config
from .db import make_engine, make_sessionmaker
from .models import MERCHANT_STATUSES, FeatureFlag, Merchant, SupportTicket, User


class NoCache:
    """The cache switched off (CACHE_ENABLED=false): every lookup loads, nothing is counted."""

    def get_or_load(self, category: str, key: str, loader: Any, ttl: int | None = None) -> Any:
        return loader()

    def invalidate(self, category: str, *keys: str) -> bool:
        return True

    def invalidate_category(self, category: str) -> bool:
        return True


def _row(obj: Any, *fields: str) -> dict[str, Any]:
    out = {}
    for f in fields:
        value = getattr(obj, f)
        out[f] = value.isoformat() if isinstance(value, datetime) else value
    return out


MERCHANT_FIELDS = ("id", "name", "status", "country", "created_at", "updated_at")


class MerchantPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    status: str | None = Field(default=None, pattern="^(" + "|".join(MERCHANT_STATUSES) + ")$")


class FlagUpdate(BaseModel):
    enabled: bool


class Preferences(BaseModel):
    preferences: dict[str, Any]


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


DB = Annotated[Session, Depends(get_session)]


def releases_session(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Give the request's database connection back as soon as the endpoint returns.

    FastAPI closes a ``yield`` dependency only after it has validated and serialised the
    response, which for a sync endpoint needs a thread of the same pool the endpoints run in.
    Under load every thread can end up waiting for a connection that is held by a finished
    request waiting for a thread: the API stalls until the pool times out. Closing the session
    here, inside the endpoint's own thread, breaks that cycle (and cache hits, which execute no
    statement, never check a connection out at all).
    """

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            kwargs["session"].close()

    return run


class ReleasingRoute(APIRoute):
    """Every endpoint that takes the request's ``session`` gets it closed on return (see
    :func:`releases_session`): the rule holds for routes added later without anyone remembering it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if "session" in inspect.signature(endpoint).parameters and not inspect.iscoroutinefunction(endpoint):
            endpoint = releases_session(endpoint)
        super().__init__(path, endpoint, **kwargs)


def create_app(config: Config | None = None, metrics: Metrics | None = None) -> FastAPI:
    config = config or Config.from_env()
    metrics = metrics or default_metrics()
    engine = make_engine(config, metrics)
    sessions = make_sessionmaker(engine)
    if config.cache_enabled:
        timeout = config.redis_timeout_ms / 1000
        # No client-side retries (redis-py 8 retries 3 times by default): a failing Redis must
        # cost one short timeout, after which the cache bypasses it for a while.
        client = redis.Redis.from_url(
            config.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=None
        )
        cache: Cache | NoCache = Cache(client, metrics)
    else:
        client = None
        cache = NoCache()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        engine.dispose()
        if client is not None:
            client.close()

    app = FastAPI(title="perfstack reference API", version="1.0", lifespan=lifespan)
    app.router.route_class = ReleasingRoute
    app.state.engine, app.state.sessions, app.state.cache, app.state.config = engine, sessions, cache, config
    instrument_app(app, metrics)

    @app.get("/health")
    def health(session: DB) -> dict[str, str]:
        try:
            session.execute(text("SELECT 1"))
        except Exception as exc:
            raise HTTPException(503, f"database unavailable: {type(exc).__name__}") from None
        cache_state = "disabled"
        if client is not None:
            try:
                client.ping()
                cache_state = "ok"
            except redis.RedisError:
                cache_state = "unavailable"
        return {"status": "ok", "database": "ok", "cache": cache_state}

    # --- feature flags (cache: feature_flags, 300 s) --------------------------------------
    @app.get("/api/v1/feature-flags")
    def feature_flags(session: DB) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            rows = session.scalars(
                select(FeatureFlag).order_by(FeatureFlag.name).execution_options(operation="feature_flags")
            )
            return [_row(f, "name", "enabled", "description") for f in rows]

        return cache.get_or_load("feature_flags", "all", load)

    @app.put("/api/v1/feature-flags/{name}")
    def set_feature_flag(name: str, body: FlagUpdate, session: DB) -> dict[str, Any]:
        result = session.execute(
            update(FeatureFlag).where(FeatureFlag.name == name).values(enabled=body.enabled, updated_at=func.now())
        )
        if result.rowcount == 0:
            raise HTTPException(404, f"no feature flag {name!r}")
        session.commit()
        cache.invalidate("feature_flags", "all")
        return {"name": name, "enabled": body.enabled}

    # --- merchants (cache: merchant_data, 600 s) -------------------------------------------
    @app.get("/api/v1/merchants")
    def merchants(
        session: DB,
        status: Annotated[str | None, Query(pattern="^(" + "|".join(MERCHANT_STATUSES) + ")$")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        def load() -> dict[str, Any]:
            q = select(Merchant).order_by(Merchant.id).limit(limit).offset(offset)
            if status:
                q = q.where(Merchant.status == status)
            rows = session.scalars(q.execution_options(operation="merchants_list"))
            return {"items": [_row(m, *MERCHANT_FIELDS) for m in rows], "limit": limit, "offset": offset}

        return cache.get_or_load("merchant_data", f"list:{status or 'all'}:{limit}:{offset}", load)

    @app.get("/api/v1/merchants/{merchant_id}")
    def merchant(merchant_id: int, session: DB) -> dict[str, Any]:
        def load() -> dict[str, Any]:
            m = session.execute(
                select(Merchant).where(Merchant.id == merchant_id).execution_options(operation="merchant_by_id")
            ).scalar_one_or_none()
            if m is None:
                raise HTTPException(404, f"no merchant {merchant_id}")
            return _row(m, *MERCHANT_FIELDS)

        return cache.get_or_load("merchant_data", f"merchant:{merchant_id}", load)

    @app.patch("/api/v1/merchants/{merchant_id}")
    def update_merchant(merchant_id: int, body: MerchantPatch, session: DB) -> dict[str, Any]:
        changes = body.model_dump(exclude_none=True)
        if not changes:
            raise HTTPException(422, "nothing to change: give name and/or status")
        m = session.get(Merchant, merchant_id)
        if m is None:
            raise HTTPException(404, f"no merchant {merchant_id}")
        for key, value in changes.items():
            setattr(m, key, value)
        m.updated_at = func.now()
        session.commit()
        session.refresh(m)
        # The merchant itself, every list page that may show it, and the dashboard counts.
        cache.invalidate("merchant_data", f"merchant:{merchant_id}")
        cache.invalidate_category("merchant_data")
        cache.invalidate_category("dashboard_stats")
        return _row(m, *MERCHANT_FIELDS)

    # --- admin dashboard and analytics (cache: dashboard_stats, 60 s) ----------------------
    @app.get("/api/v1/admin/dashboard/overview")
    def dashboard_overview(session: DB) -> dict[str, Any]:
        def load() -> dict[str, Any]:
            by_status = dict(
                session.execute(
                    select(Merchant.status, func.count())
                    .group_by(Merchant.status)
                    .execution_options(operation="merchants_by_status")
                ).all()
            )
            recent = session.execute(
                text("SELECT count(*) FROM support_tickets WHERE created_at > now() - interval '24 hours'"),
                execution_options={"operation": "tickets_last_24h"},
            ).scalar_one()
            users = session.execute(
                text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'users'"),
                execution_options={"operation": "users_estimate"},
            ).scalar_one()
            return {"merchants_by_status": by_status, "tickets_last_24h": recent, "users_estimate": users}

        return cache.get_or_load("dashboard_stats", "overview", load)

    @app.get("/api/v1/analytics/merchants-by-status")
    def merchants_by_status(session: DB) -> dict[str, int]:
        def load() -> dict[str, int]:
            rows = session.execute(
                select(Merchant.status, func.count())
                .group_by(Merchant.status)
                .execution_options(operation="merchants_by_status")
            )
            return {status: count for status, count in rows}

        return cache.get_or_load("dashboard_stats", "merchants_by_status", load)

    @app.get("/api/v1/analytics/tickets-per-day")
    def tickets_per_day(session: DB, days: Annotated[int, Query(ge=1, le=90)] = 7) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            rows = session.execute(
                text(
                    "SELECT date_trunc('day', created_at) AS day, count(*) AS tickets FROM support_tickets "
                    "WHERE created_at > now() - make_interval(days => :days) GROUP BY 1 ORDER BY 1"
                ),
                {"days": days},
                execution_options={"operation": "tickets_per_day"},
            )
            return [{"day": day.date().isoformat(), "tickets": n} for day, n in rows]

        return cache.get_or_load("dashboard_stats", f"tickets_per_day:{days}", load)

    # --- users (cache: user_preferences, 1800 s) -------------------------------------------
    @app.get("/api/v1/users/by-email")
    def user_by_email(session: DB, email: Annotated[str, Query(min_length=3, max_length=320)]) -> dict[str, Any]:
        u = session.execute(
            select(User).where(User.email == email.lower()).execution_options(operation="user_by_email")
        ).scalar_one_or_none()
        if u is None:
            raise HTTPException(404, "no user with that email")
        return _row(u, "id", "email", "name", "created_at")

    @app.get("/api/v1/users/{user_id}/preferences")
    def user_preferences(user_id: int, session: DB) -> dict[str, Any]:
        def load() -> dict[str, Any]:
            prefs = session.execute(
                select(User.preferences).where(User.id == user_id).execution_options(operation="user_preferences")
            ).scalar_one_or_none()
            if prefs is None:
                raise HTTPException(404, f"no user {user_id}")
            return {"user_id": user_id, "preferences": prefs}

        return cache.get_or_load("user_preferences", f"user:{user_id}", load)

    @app.put("/api/v1/users/{user_id}/preferences")
    def set_user_preferences(user_id: int, body: Preferences, session: DB) -> dict[str, Any]:
        result = session.execute(update(User).where(User.id == user_id).values(preferences=body.preferences))
        if result.rowcount == 0:
            raise HTTPException(404, f"no user {user_id}")
        session.commit()
        cache.invalidate("user_preferences", f"user:{user_id}")
        return {"user_id": user_id, "preferences": body.preferences}

    # --- support tickets ---------------------------------------------------------------------
    @app.get("/api/v1/support-tickets/recent")
    def recent_tickets(session: DB, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
        rows = session.scalars(
            select(SupportTicket)
            .order_by(SupportTicket.created_at.desc())
            .limit(limit)
            .execution_options(operation="recent_tickets")
        )
        return [_row(t, "id", "user_id", "merchant_id", "subject", "status", "priority", "created_at") for t in rows]

    return app
