"""Load realistic volumes quickly: the rows are generated inside PostgreSQL
(``INSERT ... SELECT generate_series``), one statement per table, then ANALYZE.

Merchant statuses are skewed as in production (90 % active, 8 % pending, 2 % suspended), so
the status index is selective for the statuses people filter on; tickets spread over a year.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

FLAGS = [
    ("new_checkout", True, "New checkout flow"),
    ("instant_payouts", False, "Instant payouts for eligible merchants"),
    ("dashboard_v2", True, "Second-generation merchant dashboard"),
    ("fraud_scoring_v3", True, "Third fraud-scoring model"),
    ("dark_mode", False, "Dark mode in the admin UI"),
]


@dataclass(frozen=True)
class Sizes:
    users: int = 100_000
    merchants: int = 10_000
    tickets: int = 1_000_000


def seed(engine: Engine, sizes: Sizes = Sizes(), reset: bool = True) -> dict[str, float]:
    """Fill the tables; returns seconds per table."""
    timings: dict[str, float] = {}
    with engine.begin() as conn:
        if reset:
            conn.execute(text("TRUNCATE support_tickets, merchants, users, feature_flags RESTART IDENTITY CASCADE"))

        def timed(name: str, sql: str, **params: int) -> None:
            start = time.perf_counter()
            conn.execute(text(sql), params)
            timings[name] = time.perf_counter() - start

        timed(
            "users",
            """
            INSERT INTO users (id, email, name, preferences, created_at)
            SELECT g, 'user' || g || '@example.com', 'User ' || g,
                   jsonb_build_object('theme', (ARRAY['light','dark'])[1 + g % 2],
                                      'locale', (ARRAY['en','de','fr','es'])[1 + g % 4],
                                      'notifications', g % 3 <> 0),
                   now() - (g % 1000) * interval '1 day'
            FROM generate_series(1::bigint, :n) AS g
            """,
            n=sizes.users,
        )
        timed(
            "merchants",
            """
            INSERT INTO merchants (id, name, status, country, created_at, updated_at)
            SELECT g, 'Merchant ' || g,
                   CASE WHEN g % 50 = 0 THEN 'suspended' WHEN g % 50 < 5 THEN 'pending' ELSE 'active' END,
                   (ARRAY['US','GB','DE','FR','ES','NL','SE','IE'])[1 + g % 8],
                   now() - (g % 700) * interval '1 day', now() - (g % 30) * interval '1 day'
            FROM generate_series(1::bigint, :n) AS g
            """,
            n=sizes.merchants,
        )
        timed(
            "support_tickets",
            """
            INSERT INTO support_tickets (id, user_id, merchant_id, subject, status, priority, created_at)
            SELECT g, 1 + (g * 7919) % :users, 1 + (g * 104729) % :merchants,
                   'Ticket ' || g || ': ' || (ARRAY['payout delayed','refund request','API error',
                                                   'login issue','fee question'])[1 + g % 5],
                   CASE WHEN g % 10 < 2 THEN 'open' WHEN g % 10 = 2 THEN 'pending' ELSE 'closed' END,
                   1 + g % 4,
                   now() - ((g * 2654435761) % 31536000) * interval '1 second'
            FROM generate_series(1::bigint, :n) AS g
            """,
            n=sizes.tickets,
            users=sizes.users,
            merchants=sizes.merchants,
        )
        for name, enabled, description in FLAGS:
            conn.execute(
                text("INSERT INTO feature_flags (name, enabled, description) VALUES (:n, :e, :d)"),
                {"n": name, "e": enabled, "d": description},
            )
        for table in ("users", "merchants", "support_tickets"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    start = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE users, merchants, support_tickets, feature_flags"))
    timings["analyze"] = time.perf_counter() - start
    return timings
