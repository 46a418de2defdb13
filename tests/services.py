"""Real PostgreSQL 15 and Redis 7 servers for tests, on free 127.0.0.1 ports, always stopped.

Nothing here is mocked: each server is the Debian binary, started in a throw-away directory and
polled with a deadline (never a fixed sleep). Use the pytest fixtures at the bottom, re-exported
by a conftest or bound in the test module (by assignment: importing them by name makes ruff report
F811 on every test parameter that uses one)::

    import services

    pg_url, postgres_server = services.pg_url, services.postgres_server
    redis_server, redis_url = services.redis_server, services.redis_url

    def test_something(pg_url: str, redis_url: str) -> None:
        engine = sqlalchemy.create_engine(pg_url)  # a fresh, empty database for this test
        client = redis.Redis.from_url(redis_url)  # a Redis of its own for this test

or the classes directly, as context managers (``with RedisServer() as server: ...``).

- ``postgres_server`` is one PostgreSQL for the whole session (initdb costs about a second);
  ``pg_url`` gives every test its own ``test_<uuid>`` database on it, dropped afterwards.
- ``redis_server`` is one Redis per test (it starts in milliseconds). ``stop()`` and ``start()``
  mid-test simulate Redis going down and coming back on the same port; ``pause()`` and
  ``resume()`` simulate a hung Redis (connections open but nothing answers, so clients time out).

A missing binary fails the test and names the Debian package to install: ``make test`` installs
them, so a skip would only hide a broken environment.
"""

from __future__ import annotations

import abc
import atexit
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import psycopg
import pytest
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT = 30.0  # seconds a server may take to accept connections
STOP_TIMEOUT = 15.0  # seconds a server may take to shut down before it is killed

# Test data only: trade durability for speed. pg_stat_statements must be preloaded before
# ``CREATE EXTENSION pg_stat_statements`` works.
PG_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "shared_preload_libraries": "pg_stat_statements",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class ServiceError(RuntimeError):
    """A test server could not be started; the message says why and shows its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def dies_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A ``preexec_fn`` asking the kernel to send ``sig`` to the child when this process dies.

    Fixture teardown and atexit stop the servers whenever Python gets to run; this also covers a
    test run killed outright (SIGKILL, a CI timeout), which would otherwise orphan the servers.
    """

    def preexec() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, int(sig))

    return preexec


def log_tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def require(binary: Path | str, package: str) -> None:
    if not Path(binary).is_file():
        raise ServiceError(f"{binary} not found: install the Debian package {package!r} (apt-get install {package})")


class _Service(abc.ABC):
    """Context-manager and at-exit plumbing shared by the servers: ``stop()`` always runs."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def _started(self) -> None:
        # A safety net if the owner never calls stop(); stop() unregisters it.
        atexit.register(self.stop)

    def _stopped(self) -> None:
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresServer(_Service):
    """A PostgreSQL 15 cluster in a temp directory; superuser ``postgres``, trust authentication.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user and
    initdb/postgres run as that user (``Popen(user=...)``, what ``runuser`` would do); otherwise as
    the current user. The postmaster is a child of this process rather than a ``pg_ctl start``
    daemon: it is reaped by ``stop()``, so it never lingers as an orphan or a zombie.
    ``start()`` and ``stop()`` are idempotent; every start is a fresh, empty cluster.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def dsn_for(self, dbname: str) -> str:
        """libpq URL of ``dbname`` (for psycopg)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL of ``dbname`` (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def start(self) -> None:
        if self.proc is not None:
            return
        require(PG_BIN / "postgres", "postgresql")
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError("no 'postgres' user: install the Debian package 'postgresql'") from None
            as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
        self.dir = Path(tempfile.mkdtemp(prefix="perfstack-pg-"))  # short: a socket path is <108 bytes
        if as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        data, log = self.dir / "data", self.dir / "log"
        self._started()
        try:
            # --no-sync: nothing to make durable; --locale=C: identical on every machine.
            initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
            initdb += ["-E", "UTF8", "--locale=C", "--no-sync"]
            # cwd: the postgres user may not be allowed into the caller's working directory.
            init = subprocess.run(
                initdb, cwd=self.dir, capture_output=True, text=True, timeout=START_TIMEOUT, **as_user
            )
            if init.returncode != 0:
                raise ServiceError(f"initdb failed ({init.returncode}):\n{init.stdout}{init.stderr}")
            cmd = [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.dir)]
            for key, value in PG_SETTINGS.items():
                cmd += ["-c", f"{key}={value}"]
            with log.open("wb") as out:
                self.proc = subprocess.Popen(
                    cmd,
                    cwd=self.dir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    preexec_fn=dies_with_parent(signal.SIGQUIT),  # immediate shutdown, frees shared memory
                    **as_user,
                )
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if self.proc.poll() is not None:
                    raise ServiceError(
                        f"postgres exited with {self.proc.returncode} on port {self.port}; log tail:\n{log_tail(log)}"
                    )
                try:
                    psycopg.connect(self.dsn, connect_timeout=2).close()
                    return
                except psycopg.OperationalError as exc:  # not listening yet, or "starting up"
                    if time.monotonic() > deadline:
                        raise ServiceError(
                            f"PostgreSQL did not accept connections on 127.0.0.1:{self.port} within "
                            f"{START_TIMEOUT:.0f}s ({exc}); log tail:\n{log_tail(log)}"
                        ) from None
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Fast shutdown (SIGINT: disconnect clients, exit), SIGKILL if it lingers; remove the directory."""
        try:
            if self.proc is not None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()  # its backends exit on their own once the postmaster is gone
                    self.proc.wait(STOP_TIMEOUT)
        finally:
            self.proc = None
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
            self._stopped()

    def admin(self) -> psycopg.Connection:
        """An autocommit connection to the ``postgres`` database (CREATE/DROP DATABASE need it)."""
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)

    def create_database(self, name: str) -> str:
        """Create an empty database ``name``; return its SQLAlchemy URL."""
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` even if clients are still connected: their sessions are terminated first."""
        with self.admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            # WITH (FORCE) also terminates a session that reconnected in between (e.g. a pool).
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class RedisServer(_Service):
    """A redis-server 7 child process on a fixed port: no persistence, logs in a temp directory.

    The port is chosen once, so ``stop()`` then ``start()`` brings Redis back where clients expect
    it. Both are idempotent. Each start gets a fresh directory, so a restarted Redis is empty.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, timeout: float = 1.0) -> redis.Redis:
        """A client that fails fast: no retries, ``timeout`` seconds to connect and per reply."""
        return redis.Redis.from_url(
            self.url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )

    def start(self) -> None:
        if self.proc is not None:
            return
        require(REDIS_SERVER, "redis-server")
        self.dir = Path(tempfile.mkdtemp(prefix="perfstack-redis-"))
        log = self.dir / "redis.log"
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--daemonize", "no", "--dir", str(self.dir)]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=dies_with_parent(signal.SIGKILL),
            )
        self._started()
        try:
            deadline = time.monotonic() + START_TIMEOUT
            with self.client(timeout=0.5) as probe:
                while True:
                    if self.proc.poll() is not None:
                        raise ServiceError(
                            f"redis-server exited with {self.proc.returncode} on port {self.port}:\n{log_tail(log)}"
                        )
                    try:
                        if probe.ping():
                            return
                    except redis.RedisError:
                        pass
                    if time.monotonic() > deadline:
                        raise ServiceError(
                            f"redis-server did not answer PING on 127.0.0.1:{self.port} within "
                            f"{START_TIMEOUT:.0f}s; log tail:\n{log_tail(log)}"
                        )
                    time.sleep(0.02)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM (Redis shuts down cleanly, saving nothing), SIGKILL if it lingers; then wait."""
        if self.proc is None:
            return
        try:
            self.resume()  # a stopped (paused) process would not act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        finally:
            self.proc = None
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
            self._stopped()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): the port still accepts connections but nothing answers."""
        assert self.proc is not None, "RedisServer is not started"
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause()`` (SIGCONT); harmless if not paused."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)


def _start_or_fail(server: _Service) -> None:
    """Start ``server``; turn a startup problem into a clean test failure (never a skip)."""
    try:
        server.start()
        return
    except ServiceError as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)  # outside `except`: no "during handling" traceback chain


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the whole test session; stopped at the end even if tests failed."""
    server = PostgresServer()
    try:
        _start_or_fail(server)
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh ``test_<uuid>`` database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of this test's own; the test may stop/start/pause it, and it is stopped afterwards."""
    server = RedisServer()
    try:
        _start_or_fail(server)
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of this test's ``redis_server``."""
    return redis_server.url


# --- Child processes of the live tests (the API, exporters, Prometheus, Alertmanager) ----------


def start_process(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """A child process writing to ``log`` (a file, not a pipe: a full pipe would block it); it is
    sent SIGTERM if the test process dies without cleaning up."""
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=dies_with_parent(signal.SIGTERM),
        )


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 15 s; a process that already ended is left alone."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_until(check: Callable[[], object], timeout: float, what: str, log: Path | None = None) -> object:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds naming
    ``what`` (and the tail of ``log``). HTTP and lookup errors count as "not yet"."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            pass
        time.sleep(0.2)
    tail = f"; log tail:\n{log_tail(log)}" if log else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")


class PromClient:
    """Instant queries against a test's Prometheus (its HTTP API)."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        import httpx

        self.url = url
        self.client = httpx.Client(base_url=url, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def query(self, expr: str) -> list[dict]:
        body = self.client.get("/api/v1/query", params={"query": expr}).json()
        assert body["status"] == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def show(self, exprs: list[str], limit: int = 8) -> str:
        """What each expression returns now (for failure messages)."""
        import httpx

        lines = []
        for e in exprs:
            try:
                lines.append(f"    {e} = {[(r['metric'], r['value'][1]) for r in self.query(e)][:limit]}")
            except (httpx.HTTPError, AssertionError) as exc:
                lines.append(f"    {e}: {exc}")
        return "\n".join(lines)


def prom_query(url: str, expr: str) -> list[dict]:
    """One instant query against the Prometheus at ``url``."""
    client = PromClient(url)
    try:
        return client.query(expr)
    finally:
        client.close()
