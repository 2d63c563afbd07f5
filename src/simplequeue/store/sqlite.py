"""The embedded default store: one SQLite file, in WAL mode.

Every call runs on one dedicated thread that owns the connection, so the event loop never waits
on the disk and each operation is one ``BEGIN IMMEDIATE`` transaction: SQLite takes the write
lock before reading, so no two claims or submits can interleave, even across server processes
sharing the file.

Durability is SQLite's ``synchronous`` setting. ``full`` (the default) syncs the WAL to disk on
every commit, so an acknowledged job survives power loss as well as a crash of the server.
``normal`` syncs only at checkpoints: an acknowledged job survives a crash or ``kill -9`` of the
server (the WAL is in the operating system's hands), but the last commits can be lost if the
machine itself loses power.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Literal, TypeVar

import msgspec

from simplequeue.models import Job, JobState, Stats
from simplequeue.store.base import NewJob, UnknownCursor
from simplequeue.store.sql import load_queries

__all__ = ["SCHEMA_VERSION", "SqliteStore", "Synchronous"]

T = TypeVar("T")
Synchronous = Literal["full", "normal"]

SCHEMA_VERSION = 1
Q = load_queries("sqlite.sql")
Row = tuple[Any, ...]


def _timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _job(row: Row) -> Job:
    job_id, description, data, state, created_at, started_at, finished_at, attempts = row
    return Job(
        job_id=job_id,
        description=description,
        data=None if data is None else msgspec.json.decode(data),
        state=JobState(state),
        created_at=datetime.fromisoformat(created_at),
        started_at=_datetime(started_at),
        finished_at=_datetime(finished_at),
        attempts=attempts,
    )


_MAX_SEQ = 2**63 - 1
# The first code point after U+D7FF that can be stored: surrogates never occur in text.
_AFTER_SURROGATES = {0xD800: 0xE000}


def _prefix_end(prefix: str) -> str | bytes:
    """The least string above every string that starts with ``prefix``.

    SQLite compares text as UTF-8 bytes, which orders like code points, so it is the prefix with
    its last character incremented. When every character is U+10FFFF there is no such string, but
    SQLite ranks every blob above all text, so an empty blob bounds the range instead.
    """
    chars = list(prefix)
    while chars and chars[-1] == "\U0010ffff":
        chars.pop()
    if not chars:
        return b""
    code = ord(chars[-1]) + 1
    chars[-1] = chr(_AFTER_SURROGATES.get(code, code))
    return "".join(chars)


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT the migration's transaction first; split the script instead,
    # at the ends SQLite itself recognises (a trigger body holds semicolons of its own).
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


class SchemaTooNew(RuntimeError):
    pass


class SqliteStore:
    def __init__(self, path: str, *, synchronous: Synchronous = "full") -> None:
        self.path = path
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simplequeue-sqlite")

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        assert conn is not None, "the store is not open"
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, conn)

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._thread, self._connect)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; each operation says BEGIN itself.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA busy_timeout = 10000")
        if self.path != ":memory:":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"could not put {self.path} in WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        self._migrate(conn)
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self.path} has schema version {version}; this simplequeue knows only up "
                    f"to {SCHEMA_VERSION}: upgrade simplequeue"
                )
            if version == 0:
                for statement in _statements(Q["schema"]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)
        self._thread.shutdown(wait=True)

    # -- the queue's operations ------------------------------------------------------------

    @staticmethod
    def _write(conn: sqlite3.Connection, work: Callable[[], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def submit(self, job: NewJob) -> tuple[Job, bool]:
        params = {
            "job_id": job.job_id,
            "description": job.description,
            "data": None if job.data is None else msgspec.json.encode(job.data).decode(),
            "created_at": _timestamp(job.created_at),
        }

        def work(conn: sqlite3.Connection) -> tuple[Job, bool]:
            def insert_or_read() -> tuple[Job, bool]:
                if row := conn.execute(Q["submit"], params).fetchone():
                    return _job(row), True
                return _job(conn.execute(Q["get"], params).fetchone()), False

            return self._write(conn, insert_or_read)

        return await self._run(work)

    async def next(self, now: datetime) -> Job | None:
        def work(conn: sqlite3.Connection) -> Job | None:
            row = self._write(
                conn, lambda: conn.execute(Q["next"], {"now": _timestamp(now)}).fetchone()
            )
            return None if row is None else _job(row)

        return await self._run(work)

    async def complete(
        self, job_id: str, state: JobState, now: datetime
    ) -> tuple[Job | None, bool]:
        params = {"job_id": job_id, "state": state.value, "now": _timestamp(now)}

        def work(conn: sqlite3.Connection) -> tuple[Job | None, bool]:
            def finish_or_read() -> tuple[Row | None, bool]:
                if row := conn.execute(Q["complete"], params).fetchone():
                    return row, True
                return conn.execute(Q["get"], params).fetchone(), False

            row, changed = self._write(conn, finish_or_read)
            return (None if row is None else _job(row)), changed

        return await self._run(work)

    async def get(self, job_id: str) -> Job | None:
        def work(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(Q["get"], {"job_id": job_id}).fetchone()
            return None if row is None else _job(row)

        return await self._run(work)

    async def list_jobs(
        self,
        states: Collection[JobState],
        limit: int,
        after: str | None,
        *,
        before: str | None = None,
        newest_first: bool = False,
        prefix: str | None = None,
    ) -> list[Job]:
        def seq_of(conn: sqlite3.Connection, job_id: str) -> int:
            row = conn.execute(Q["seq_of"], {"job_id": job_id}).fetchone()
            if row is None:
                raise UnknownCursor(job_id)
            seq: int = row[0]
            return seq

        def work(conn: sqlite3.Connection) -> list[Job]:
            # One read transaction, so the cursors and the page see the same snapshot.
            conn.execute("BEGIN")
            try:
                params: dict[str, Any] = {
                    "after_seq": 0 if after is None else seq_of(conn, after),
                    "before_seq": _MAX_SEQ if before is None else seq_of(conn, before),
                    "limit": limit,
                    "states": None,
                }
                if states:
                    params["states"] = msgspec.json.encode([s.value for s in states]).decode()
                if prefix is not None:
                    params.update(prefix=prefix, prefix_end=_prefix_end(prefix))
                    name = "list_prefix"
                else:
                    name = "list_in_states" if states else "list_all"
                query = Q[f"{name}_desc" if newest_first else name]
                rows = conn.execute(query, params).fetchall()
            finally:
                conn.execute("COMMIT")
            return [_job(row) for row in rows]

        return await self._run(work)

    async def stats(self) -> Stats:
        def work(conn: sqlite3.Connection) -> Stats:
            counts = dict(conn.execute(Q["stats"]).fetchall())
            return Stats(**counts, total=sum(counts.values()))

        return await self._run(work)
