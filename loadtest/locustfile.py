"""Locust scenarios for the reference API: the plan's endpoints in a realistic mix, paced by arrival rate.

``perfstack loadtest run`` loads this file and runs :class:`ApiUser` in process (see
loadtest/README.md). For load beyond one machine the same file runs as Locust workers of a
``perfstack loadtest run --workers N`` master::

    locust -f loadtest/locustfile.py --worker --master-host MASTER_IP [--master-port 5557]

Pacing (open model): every user is scheduled ``rate / users`` arrivals per second (each gap
jittered between half and one and a half of the mean). A user whose request was slow starts the
next one at once to get back on schedule; one more than ``MAX_LAG`` seconds behind drops the
missed arrivals, and the run reports an achieved rate below its target (the gate fails it)
instead of quietly sending less load to a slow server.

The mix (weights per 1000 arrivals): reads served from the cache (feature flags, merchants,
dashboard, analytics, preferences), reads that always reach PostgreSQL (users by email, recent
tickets), and a small share of writes that invalidate cache entries (PUT preferences: one key;
PATCH merchant: every merchant and dashboard entry).
"""

from __future__ import annotations

import random
import time
from typing import Any

import gevent
import psutil
from locust import FastHttpUser, events, task
from locust.runners import MasterRunner

PACE_MESSAGE = "perfstack_pace"
MAX_LAG = 1.0  # seconds a user may run behind its schedule before arrivals are dropped

# Set by the runner (a custom message, so workers of a distributed run get it too).
PACE: dict[str, Any] = {
    "per_user": 1.0,  # arrivals per second per user
    "merchants": 10_000,  # ids 1..N exist (python -m service seed defaults)
    "users": 100_000,
    "hot_merchants": 20,  # the hot set most merchant reads hit
    "hot_users": 50,
    "hot_share": 0.9,  # share of id lookups that go to the hot set
}
MERCHANT_STATUSES = (None, None, "active", "active", "pending", "suspended")  # None: no filter
PAGES = (0, 0, 0, 0, 0, 0, 0, 1, 1, 2)  # first pages far more often


def set_pace(data: dict[str, Any]) -> None:
    unknown = set(data) - set(PACE)
    if unknown:
        raise ValueError(f"unknown pace settings {sorted(unknown)}")
    PACE.update(data)


@events.init.add_listener
def _register_pace(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if runner is not None and not isinstance(runner, MasterRunner):
        runner.register_message(PACE_MESSAGE, lambda environment, msg, **kw: set_pace(msg.data))
    if runner is not None and type(runner).__name__ == "WorkerRunner":
        # A worker of a distributed run: send per-second figures with each report to the master.
        from perfstack.loadtest.runner import Recorder

        recorder = Recorder()
        environment.events.request.add_listener(recorder.on_request)
        environment.events.report_to_master.add_listener(
            lambda client_id, data, **kw: data.__setitem__("perfstack", recorder.drain())
        )
        gevent.spawn(_sample_cpu, recorder)


def _sample_cpu(recorder: Any) -> None:
    """This worker's CPU each second (share of one core), sent to the master with the reports."""
    process = psutil.Process()
    process.cpu_percent(None)
    while True:
        second = int(time.time())
        gevent.sleep(second + 1 - time.time())
        recorder.note_cpu(second, process.cpu_percent(None) / 100)


def _interval() -> float:
    per_user = PACE["per_user"]
    return 1.0 / per_user if per_user > 0 else 1.0


class ApiUser(FastHttpUser):
    """One client of the API; the runner sets how many and how fast."""

    connection_timeout = 5.0
    network_timeout = 10.0  # a request hanging longer is a transport error, not an endless wait

    def on_start(self) -> None:
        # A random phase before the first arrival, so users started together do not arrive in lockstep.
        delay = random.random() * _interval()
        self._next_arrival = time.monotonic() + delay
        time.sleep(delay)  # gevent-patched: yields to the other users

    def wait_time(self) -> float:
        now = time.monotonic()
        # Jittered (0.5 to 1.5 intervals, the same mean), so users' phases do not lock together.
        scheduled = getattr(self, "_next_arrival", now) + _interval() * (0.5 + random.random())
        if scheduled < now - MAX_LAG:
            scheduled = now  # too far behind: the missed arrivals are lost (and show as achieved < target)
        self._next_arrival = scheduled
        return max(0.0, scheduled - now)

    # --- ids -----------------------------------------------------------------------------------
    def _merchant_id(self) -> int:
        if random.random() < PACE["hot_share"]:
            return random.randint(1, min(PACE["hot_merchants"], PACE["merchants"]))
        return random.randint(1, PACE["merchants"])

    def _user_id(self) -> int:
        if random.random() < PACE["hot_share"]:
            return random.randint(1, min(PACE["hot_users"], PACE["users"]))
        return random.randint(1, PACE["users"])

    # --- reads (cached) --------------------------------------------------------------------------
    @task(150)
    def feature_flags(self) -> None:
        self.client.get("/api/v1/feature-flags")

    @task(120)
    def merchants_list(self) -> None:
        status = random.choice(MERCHANT_STATUSES)
        query = f"limit=20&offset={20 * random.choice(PAGES)}"
        if status:
            query = f"status={status}&{query}"
        self.client.get(f"/api/v1/merchants?{query}", name="/api/v1/merchants")

    @task(200)
    def merchant(self) -> None:
        self.client.get(f"/api/v1/merchants/{self._merchant_id()}", name="/api/v1/merchants/{id}")

    @task(80)
    def dashboard_overview(self) -> None:
        self.client.get("/api/v1/admin/dashboard/overview")

    @task(50)
    def merchants_by_status(self) -> None:
        self.client.get("/api/v1/analytics/merchants-by-status")

    @task(50)
    def tickets_per_day(self) -> None:
        days = random.choice((7, 7, 30))
        self.client.get(f"/api/v1/analytics/tickets-per-day?days={days}", name="/api/v1/analytics/tickets-per-day")

    @task(150)
    def preferences(self) -> None:
        self.client.get(f"/api/v1/users/{self._user_id()}/preferences", name="/api/v1/users/{id}/preferences")

    # --- reads (database) ------------------------------------------------------------------------
    @task(100)
    def user_by_email(self) -> None:
        n = random.randint(1, PACE["users"])
        self.client.get(f"/api/v1/users/by-email?email=user{n}@example.com", name="/api/v1/users/by-email")

    @task(94)
    def recent_tickets(self) -> None:
        limit = random.choice((20, 20, 50))
        self.client.get(f"/api/v1/support-tickets/recent?limit={limit}", name="/api/v1/support-tickets/recent")

    # --- writes (invalidate cache entries) ---------------------------------------------------------
    @task(5)
    def set_preferences(self) -> None:
        user = self._user_id()
        body = {"preferences": {"theme": random.choice(("light", "dark")), "locale": "en", "notifications": True}}
        self.client.put(f"/api/v1/users/{user}/preferences", json=body, name="/api/v1/users/{id}/preferences")

    @task(1)
    def patch_merchant(self) -> None:
        merchant = random.randint(1, min(PACE["hot_merchants"], PACE["merchants"]))
        # The same name again: the row is unchanged, but the API still invalidates the merchant
        # entries and the dashboard counts, as any merchant update does.
        self.client.patch(
            f"/api/v1/merchants/{merchant}", json={"name": f"Merchant {merchant}"}, name="/api/v1/merchants/{id}"
        )
