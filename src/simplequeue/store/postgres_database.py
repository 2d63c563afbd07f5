"""The PostgreSQL store's hold on its database: the schema, the pool, the clock, the LISTEN.

`Database` opens the database (creating or migrating the schema in one transaction under an
advisory lock, so that servers starting together never race), runs each store call on a
pooled connection, and turns the failures that mean "not now" into `Unavailable`: the
connection lost, PostgreSQL restarting or out of connection slots, no pooled connection free or
no answer within ``timeout`` seconds. That is a 503 with Retry-After; nothing is acknowledged
before its commit. A deadlock or serialization failure is first tried again a few times. After
a lost connection the pool's idle connections are checked, so that the broken ones are replaced
and the next call works once the database is back.

Time: `Database.now` is this machine's clock corrected by its offset from the database's
clock, measured at open and again by the watcher, so that servers whose clocks disagree still
agree on when a lease ends. `Database.watch` LISTENs on a connection of its own, outside the
pool; a trigger NOTIFYs in the transaction of each change that makes a job available.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from simplequeue.errors import Unavailable
from simplequeue.store.base import StoreUnusable
from simplequeue.store.postgres_rows import Row
from simplequeue.store.sql import load_queries

__all__ = [
    "CLAIM_ANY",
    "CLAIM_IN",
    "CLOCK_EVERY",
    "EXPIRE",
    "FINISH",
    "QUERIES",
    "SCHEMA_VERSION",
    "SUBMIT",
    "Connection",
    "Database",
    "Q",
    "SchemaTooNew",
    "fetch_all",
    "fetch_one",
    "list_query",
]

T = TypeVar("T")
logger = logging.getLogger("simplequeue.store")
Connection = psycopg.AsyncConnection[Row]

Q = load_queries("postgres.sql")


def _composed(name: str, **parts: str) -> str:
    """The block ``name`` with each ``{part}`` replaced by ``parts``, then ``{job}`` by the job
    columns."""
    query = Q[name]
    for part, text in parts.items():
        query = query.replace("{" + part + "}", text)
    return query.replace("{job}", Q["job"])


SUBMIT = _composed("submit_many")
CLAIM_ANY = _composed("claim", candidates=Q["candidates_any"])
CLAIM_IN = _composed("claim", candidates=Q["candidates_in"])
FINISH = _composed("finish", end_attempts=Q["end_attempts"])
EXPIRE = _composed("expire", end_attempts=Q["end_attempts"])
QUERIES = {name: _composed(name) for name in Q if name != "job"}

_LISTS: dict[tuple[bool, bool, bool, bool], str] = {}
"""The text of `PostgresStore.list_jobs`'s query per filter used and order, made once each."""


def list_query(states: bool, queues: bool, prefix: bool, newest_first: bool) -> str:
    key = (states, queues, prefix, newest_first)
    if (query := _LISTS.get(key)) is None:
        named = ("list_in_states", states), ("list_in_queues", queues), ("list_with_prefix", prefix)
        filters = "\n".join(Q[name] for name, used in named if used)
        direction = "DESC" if newest_first else "ASC"
        query = _LISTS[key] = _composed("list", filters=filters, direction=direction)
    return query


SCHEMA_VERSION = 1
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
              "keepalives_count": 3}  # fmt: skip
"""libpq's TCP keepalive settings, unless the URL sets its own."""
RETRIES = 3
"""Times a transaction that PostgreSQL aborted (a deadlock, a serialization failure) is run."""
CLOCK_EVERY = 60.0
"""Seconds between measures of the offset from the database's clock."""
RECONNECT_FIRST, RECONNECT_MAX = 0.1, 5.0
"""The watcher's wait before reconnecting: doubled after each failure, up to the most."""


class SchemaTooNew(StoreUnusable):
    pass


def _local_now() -> datetime:
    """This machine's clock (a test sets it wrong, to see the database's clock win)."""
    return datetime.now(UTC)


def _line(exc: BaseException) -> str:
    """PostgreSQL's message for ``exc`` on one line (libpq's spans several)."""
    return " ".join(str(exc).split())


def _where(params: dict[str, Any]) -> str:
    """Which database a URL names, for messages: host, port and name, never the password."""
    host = params.get("host") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or params.get('user')}"


READ_ONLY = "25006"
"""SQLSTATE of a write refused by a read-only transaction: a standby after a failover."""


def _is_unavailable(exc: psycopg.Error) -> bool:
    """Whether ``exc`` means "not now" (the connection, the server's resources, a shutdown, a
    standby) rather than a fault: psycopg raises `OperationalError` for all but the standby."""
    return isinstance(exc, psycopg.OperationalError) or exc.sqlstate == READ_ONLY


def _connection_lost(exc: psycopg.Error) -> bool:
    return exc.sqlstate is None or exc.sqlstate.startswith("08")


def _unavailable(exc: psycopg.Error | TimeoutError, timeout: float) -> Unavailable:
    if isinstance(exc, PoolTimeout):
        reason = (
            f"no connection to PostgreSQL within {timeout:g}s (all busy, or it cannot be reached)"
        )
    elif isinstance(exc, pg_errors.QueryCanceled | TimeoutError):
        reason = f"PostgreSQL did not answer within {timeout:g}s"
    else:
        reason = f"PostgreSQL is unavailable ({_line(exc)})"
    return Unavailable(f"{reason}; nothing was acknowledged, try again shortly")


async def fetch_all(
    conn: Connection, query: str, params: dict[str, Any] | None = None
) -> list[Row]:
    return await (await conn.execute(query, params)).fetchall()


async def fetch_one(
    conn: Connection, query: str, params: dict[str, Any] | None = None
) -> Row | None:
    return await (await conn.execute(query, params)).fetchone()


class Database:
    def __init__(self, url: str, *, pool_max: int, timeout: float) -> None:
        self.url = url
        self.pool_max = pool_max
        self.timeout = timeout
        self._conninfo = ""
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._channel = ""
        self._offset = timedelta(0)
        self._checking = asyncio.Lock()

    async def open(self) -> None:
        """Connect, and create or migrate the schema. A database that cannot be reached or
        used raises `StoreUnusable` with one line naming it."""
        try:
            params = conninfo_to_dict(self.url)
        except psycopg.ProgrammingError as exc:
            raise StoreUnusable(f"cannot read the PostgreSQL URL: {_line(exc)}") from None
        # Give up on an unreachable server as a store call would (libpq's default: never).
        params.setdefault("connect_timeout", max(1, round(self.timeout)))
        params.setdefault("application_name", "simplequeue")
        # A database host that vanishes without closing its sockets (a power cut, a network
        # partition) is noticed by TCP within about a minute, not the kernel's fifteen.
        for key, value in KEEPALIVES.items():
            params.setdefault(key, value)
        self._conninfo = make_conninfo("", **params)
        where = _where(params)
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StoreUnusable(f"cannot connect to PostgreSQL at {where}: {_line(exc)}") from None
        try:
            async with conn:
                await self._migrate(conn, where)
                self._channel = str((await fetch_all(conn, Q["channel"]))[0][0])
                await self._measure(conn)
                await self._check_settings(conn, where)
        except psycopg.Error as exc:
            raise StoreUnusable(f"cannot use PostgreSQL at {where}: {_line(exc)}") from None
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self.pool_max,
            timeout=self.timeout,
            kwargs={"autocommit": True},
            configure=self._configure,
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=self.timeout)
        except PoolTimeout as exc:
            await pool.close()
            raise StoreUnusable(f"cannot connect to PostgreSQL at {where}: {_line(exc)}") from None
        self._pool = pool

    async def _migrate(self, conn: Connection, where: str) -> None:
        async with conn.transaction():
            await conn.execute(Q["lock"])
            ((schema, encoding, known),) = await fetch_all(conn, Q["schema"])
            if schema is None:
                raise StoreUnusable(
                    f"PostgreSQL at {where} has no schema to create the tables in: its "
                    "search_path names none that exists"
                )
            if encoding != "UTF8":
                raise StoreUnusable(
                    f"PostgreSQL at {where} stores text as {encoding}; simplequeue needs a "
                    "UTF8 database"
                )
            version = await self._version(conn, where, schema) if known else 0
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"PostgreSQL at {where} (schema {schema}) holds simplequeue schema version "
                    f"{version}; this simplequeue knows only up to {SCHEMA_VERSION}: upgrade "
                    "simplequeue"
                )
            # Each step takes the schema one version up, in order, in this one transaction.
            for step in range(version + 1, SCHEMA_VERSION + 1):
                await conn.execute(Q[f"migrate_{step}"])
                await conn.execute(Q["set_version"], {"version": step})

    @staticmethod
    async def _check_settings(conn: Connection, where: str) -> None:
        """Warn about a database setting that makes a queue slow down as it works: without
        autovacuum, every job's dead row versions stay, and claims walk past them."""
        ((autovacuum,),) = await fetch_all(conn, Q["autovacuum"])
        if autovacuum != "on":
            logger.warning(
                "PostgreSQL at %s has autovacuum off: the queue's tables will fill with dead "
                "rows and every claim will slow down; turn it on (autovacuum = on) or VACUUM "
                "sq_jobs regularly",
                where,
            )

    @staticmethod
    async def _version(conn: Connection, where: str, schema: str) -> int:
        """The schema version ``sq_meta`` records; `StoreUnusable` for a table without one (a
        schema made half way by hand, or an operator's stray DELETE), which no migration can
        safely build on."""
        try:
            ((version,),) = await fetch_all(conn, Q["version"])
        except ValueError:  # no row (a lost connection is the caller's "cannot use")
            version = None
        if not isinstance(version, int) or version < 1:
            raise StoreUnusable(
                f"PostgreSQL at {where} (schema {schema}) has a table sq_meta that records no "
                "simplequeue schema version: use another database or schema, or drop the sq_ "
                "tables left there"
            )
        return version

    async def _configure(self, conn: Connection) -> None:
        # Times come back in UTC; a statement that waits longer than a call may is cancelled.
        await conn.execute(Q["configure"], {"statement_timeout": f"{round(self.timeout * 1000)}ms"})

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """``work`` on a pooled connection; run again if PostgreSQL aborted it as a deadlock
        or serialization failure (it changed nothing), `Unavailable` if the database is."""
        if self._pool is None:
            raise RuntimeError("the store is not open")
        # One deadline for the whole call, retries included, as SQLite keeps: the wait for a
        # connection and every statement. Past it the statement is cancelled on the server
        # (psycopg does that for a cancelled task) and rolled back, so a claim cannot commit
        # long after its worker stopped waiting for the answer.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        for _ in range(RETRIES):
            try:
                async with asyncio.timeout_at(deadline):
                    async with self._pool.connection(timeout=deadline - loop.time()) as conn:
                        return await work(conn)
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
                continue
            except TimeoutError as exc:
                raise _unavailable(exc, self.timeout) from None
            except psycopg.Error as exc:
                if not _is_unavailable(exc):
                    raise
                if _connection_lost(exc) and not isinstance(exc, PoolTimeout):
                    await self._check()
                raise _unavailable(exc, self.timeout) from None
        raise Unavailable(
            f"PostgreSQL aborted the transaction {RETRIES} times (deadlocks or serialization "
            "failures under concurrent writers); nothing was changed, try again shortly"
        )

    async def _check(self) -> None:
        """Drop the pool's broken idle connections (one check at a time), so that the next call
        gets a working one, or a new one, rather than another that was cut with this one."""
        if self._pool is not None and not self._checking.locked():
            async with self._checking:
                # Bounded: a host that vanished without closing its sockets must not hold it.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.timeout):
                        await self._pool.check()

    # -- the database's clock, and its notifications -----------------------------------------

    def now(self) -> datetime:
        return _local_now() + self._offset

    async def _measure(self, conn: Connection) -> None:
        """The offset from the database's clock, read against the midpoint of the round trip."""
        sent = _local_now()
        ((there,),) = await fetch_all(conn, Q["clock"])
        received = _local_now()
        self._offset = there - (sent + (received - sent) / 2)

    async def watch(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process may have made a job available, until
        cancelled; and measure the clock's offset again every `CLOCK_EVERY` seconds. Without
        the connection (it dropped, or the database is down) ``wake`` is called too, and the
        server's periodic look stands in while this reconnects."""
        listen = sql.SQL("LISTEN {}").format(sql.Identifier(self._channel))
        delay = RECONNECT_FIRST
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(listen)
                    delay = RECONNECT_FIRST
                    wake()  # a job may have come while nobody listened
                    while True:
                        async with asyncio.timeout(self.timeout):
                            await self._measure(conn)
                        async for _ in conn.notifies(timeout=CLOCK_EVERY):
                            wake()
            except Exception as exc:
                # Whatever it was (the connection lost, the database down, a clock read that
                # timed out): the waiters look now, and this connects again. Never ends, or no
                # other server's job would wake this one's waiters before the periodic look.
                logger.warning("listening for other servers' jobs failed: %s", _line(exc))
                wake()
            await asyncio.sleep(delay)
            delay = min(2 * delay, RECONNECT_MAX)
