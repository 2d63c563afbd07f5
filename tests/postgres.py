"""The PostgreSQL that tests run against, named by ``$SIMPLEQUEUE_TEST_POSTGRES`` (a URL such as
``postgresql://postgres@127.0.0.1:5432/test``; any database on the server will do). Without it,
the tests that need one skip, saying how to run them.

Each test gets a database of its own (`postgres_db`), created fresh and dropped after, so that
tests never see each other's jobs and may run while others use the same server. Tests that
restart the server (`restarts_postgres`) run only when ``$SIMPLEQUEUE_TEST_POSTGRES_RESTART`` is
``1``: a restart cuts every other user of that server, so CI asks for them, a developer may not.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
import pytest
from psycopg import sql

__all__ = [
    "POSTGRES_ENV",
    "RESTART_ENV",
    "Backend",
    "Cluster",
    "Role",
    "backends_of",
    "fresh_database",
    "postgres_db",
    "restarts_postgres",
    "role_owning",
    "server_url",
]

POSTGRES_ENV = "SIMPLEQUEUE_TEST_POSTGRES"
RESTART_ENV = "SIMPLEQUEUE_TEST_POSTGRES_RESTART"
DEFAULT_PORT = 5432
READY_WAIT = 60.0
"""Seconds PostgreSQL may take to accept connections again after a restart or a start."""

restarts_postgres = pytest.mark.skipif(
    os.environ.get(RESTART_ENV) != "1",
    reason=f"restarts PostgreSQL, cutting everyone else using it: set {RESTART_ENV}=1 to run",
)


def server_url() -> str:
    """``$SIMPLEQUEUE_TEST_POSTGRES``, or the test is skipped."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"needs PostgreSQL: set {POSTGRES_ENV}=postgresql://... to run")
    return url


_schemas: dict[Path, str] = {}
"""The PostgreSQL schema made for each place (see `postgres_url`) during the running test."""


def postgres_url(place: Path) -> str:
    """The URL of a PostgreSQL schema of ``place``'s own (a test's tmp_path, or a path under
    it): made on first use, the same for every later use in the test, so that two stores made
    for one place share their jobs as two servers do; dropped when the test ends. A URL, not a
    key=value string, so that ``--db`` and `store_for` take it for PostgreSQL too. Skips the
    test unless ``$SIMPLEQUEUE_TEST_POSTGRES`` names a server."""
    url = server_url()
    if (schema := _schemas.get(place)) is None:
        schema = _schemas[place] = f"sq_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    options = quote(f"-c search_path={schema} -c synchronous_commit=off")
    return f"{url}{'&' if '?' in url else '?'}options={options}"


@contextmanager
def dropping_postgres_schemas() -> Iterator[None]:
    """Drop the schemas `postgres_url` made meanwhile, at the end: tests/conftest.py wraps
    every test in it (an autouse fixture, set up before, so torn down after, the test's other
    fixtures: its stores are closed by then)."""
    yield
    if _schemas:
        with psycopg.connect(server_url(), autocommit=True) as admin:
            for schema in _schemas.values():
                admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        _schemas.clear()


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped (its connections cut)
    when the block ends."""
    server = server_url()
    name = f"sq_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


@pytest.fixture
def postgres_db() -> Iterator[str]:
    """A fresh database of its own for this test (its URL), dropped after."""
    with fresh_database() as url:
        yield url


@dataclass(frozen=True, slots=True)
class Role:
    """A role of a test's own that owns the test's database: servers connect as it, so that the
    test can refuse their new connections (`login`) while those they hold keep working."""

    name: str
    url: str
    """The database's URL as this role."""
    admin_url: str
    """The database's URL as the test server's user, who made the role."""

    def login(self, allowed: bool) -> None:
        """Let the role open connections again, or not (``NOLOGIN``: its open ones stay)."""
        can = sql.SQL("LOGIN" if allowed else "NOLOGIN")
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(self.name), can))


@contextmanager
def role_owning(url: str) -> Iterator[Role]:
    """A new role (no password: the test server trusts local connections) made the owner of
    ``url``'s database, so that it may create the schema there; dropped when the block ends, its
    objects given back to the test server's user first."""
    parts = urlsplit(url)
    name = f"sq_role_{uuid.uuid4().hex[:16]}"
    role = sql.Identifier(name)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        database = sql.Identifier(parts.path.lstrip("/"))
        admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, role))
    try:
        host = parts.netloc.rpartition("@")[2]
        yield Role(name, parts._replace(netloc=f"{name}@{host}").geturl(), url)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


@dataclass(frozen=True, slots=True)
class Backend:
    """One connection to PostgreSQL, as ``pg_stat_activity`` shows it."""

    pid: int
    application_name: str
    query: str


def backends_of(url: str, process: int) -> list[Backend]:
    """The connections that ``process`` (a pid on this machine) holds to ``url``'s database,
    told apart from other processes' by their client port (read from /proc): servers sharing a
    database look alike to PostgreSQL otherwise."""
    ports = _local_ports(process)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, application_name, query, client_port FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [Backend(pid, name, query) for pid, name, query, port in rows if port in ports]


def _local_ports(process: int) -> set[int]:
    """The local ports of ``process``' TCP sockets."""
    inodes = set()
    for fd in Path(f"/proc/{process}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed since the listing
            continue
        if match := re.fullmatch(r"socket:\[(\d+)\]", target):
            inodes.add(match[1])
    ports = set()
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{process}/net/{table}").read_text().splitlines()[1:]
        for fields in (line.split() for line in lines):
            if fields[9] in inodes:  # local_address is ADDRESS:PORT, the port in hex
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass(frozen=True, slots=True)
class Cluster:
    """The Debian PostgreSQL cluster serving a URL on this machine (``pg_lsclusters``)."""

    version: str
    name: str
    port: int

    @classmethod
    def serving(cls, url: str) -> Cluster:
        """The local cluster listening on ``url``'s port, or the test is skipped."""
        parts = urlsplit(url)
        if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
            pytest.skip(f"restarts PostgreSQL, which only works on this machine, not {url}")
        port = parts.port or DEFAULT_PORT
        listed = subprocess.run(
            ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
        ).stdout
        for line in listed.splitlines():
            version, name, cluster_port, *_ = line.split()
            if int(cluster_port) == port:
                return cls(version, name, port)
        pytest.skip(f"no PostgreSQL cluster of this machine listens on port {port}")

    def restart(self) -> None:
        """Stop the cluster (cutting every connection) and start it again; returns once it
        accepts connections."""
        subprocess.run(["pg_ctlcluster", self.version, self.name, "restart"], check=True)
        self.wait_ready()

    def ensure_up(self) -> None:
        """Started, if it is not, and accepting connections: a test that stopped it must leave
        it as it found it, whatever else went wrong."""
        if not self.ready():
            subprocess.run(["pg_ctlcluster", self.version, self.name, "start"], check=False)
        self.wait_ready()

    def ready(self) -> bool:
        command = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(command, check=False).returncode == 0

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WAIT
        while not self.ready():
            assert time.monotonic() < deadline, f"PostgreSQL {self} is not back up"
            time.sleep(0.1)
