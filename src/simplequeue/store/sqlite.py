"""The embedded default store: one SQLite file, in WAL mode.

Writes run on one dedicated thread that owns the writing connection, so the event loop never
waits on the disk and each write is one ``BEGIN IMMEDIATE`` transaction: SQLite takes the write
lock before reading, so no two claims or submits can interleave, even across server processes
sharing the file. Reads run on a small pool of their own connections: in WAL mode a reader sees
the last commit and never waits for a writer, so ``/stats`` and ``GET /jobs/{id}`` answer while a
write is stuck behind another process's lock.

Every call has a deadline, ``timeout`` seconds after it was made (`STORE_TIMEOUT` by default).
A write still waiting for the lock then gives up, changes nothing, and raises `Unavailable`
(503 with ``Retry-After``); so does one that was queued behind others for that long, without
touching the file. The SDK waits longer than that for an answer (docs/sdk.md), so the server
gives up first, and a claim can never commit after its caller stopped listening. A full disk is
`Unavailable` too: the transaction is rolled back and nothing acknowledged is lost.

Durability is SQLite's ``synchronous`` setting. ``full`` (the default) syncs the WAL to disk on
every commit, so an acknowledged job survives power loss as well as a crash of the server.
``normal`` syncs only at checkpoints: an acknowledged job survives a crash or ``kill -9`` of the
server (the WAL is in the operating system's hands), but the last commits can be lost if the
machine itself loses power.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import msgspec

from simplequeue.errors import Unavailable
from simplequeue.models import (
    DEFAULT_LEASE_SECONDS,
    MAX_ERRORS_KEPT,
    STORE_TIMEOUT,
    ClaimedJob,
    JobState,
    QueueStats,
    Stats,
    StoredJob,
)
from simplequeue.store.base import (
    EXPIRE_BATCH,
    NO_TOTALS,
    PROMOTE_BATCH,
    PRUNE_BYTES,
    Ending,
    Finish,
    Finished,
    Loaded,
    Move,
    Moved,
    MovedChunk,
    NewJob,
    Outcome,
    Record,
    Selection,
    StoreUnusable,
    Tombstone,
    Totals,
    UnknownCursor,
    decide,
    fingerprint,
    kept,
    utcnow,
    without_others,
)
from simplequeue.store.rows import Row, job_fields, maybe, tombstone
from simplequeue.store.sql import load_queries

__all__ = ["READERS", "SCHEMA_VERSION", "STORE_TIMEOUT", "SqliteStore", "Synchronous"]

T = TypeVar("T")
Synchronous = Literal["full", "normal"]

SCHEMA_VERSION = 3
READERS = 2
"""Reading connections, each on its own thread, beside the one writer."""
BUSY_SLACK_MS = 50
"""How far the writer's lock wait may drift from a write's deadline before it is set again."""
GROUP_LIMIT = 256
"""The most writes one transaction (one fsync) takes: a group never holds the lock long."""
GROUP_ROWS = 4000
"""The most rows (about) one transaction takes: four batches of 1,000 jobs fill a group."""
Q = load_queries("sqlite.sql")

# SQLite's primary result codes that mean "not now" rather than "wrong": another connection
# holds the lock, or the disk (or the file's page limit) is full, or the disk failed a write.
_BUSY, _LOCKED, _IOERR, _FULL = 5, 6, 10, 13
_UNAVAILABLE = {
    _BUSY: "the store is locked by another writer",
    _LOCKED: "the store is locked by another writer",
    _FULL: "the store is full (no space left for the database)",
    _IOERR: "the store could not write to its disk",
}


def _timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _datetime(value: str | None) -> datetime | None:
    return maybe(value, datetime.fromisoformat)


def _job(row: Row) -> StoredJob:
    return StoredJob(**job_fields(row, datetime.fromisoformat))


def _claimed(row: Row) -> ClaimedJob:
    return ClaimedJob(**job_fields(row, datetime.fromisoformat), lease_id=row[15])


def _tombstone(row: Row) -> Tombstone:
    return tombstone(row, datetime.fromisoformat)


def _loaded(record: Record, now: str) -> dict[str, Any]:
    """The parameters of ``load`` for one exported job, ``now`` the load's time."""
    job = record.job

    def stamp(value: datetime | None) -> str | None:
        return None if value is None else _timestamp(value)

    errors = [{"attempt": e.attempt, "at": _timestamp(e.at), "error": e.error} for e in job.errors]
    return {
        "job_id": job.job_id,
        "description": job.description,
        "data": None if job.data is None else bytes(job.data).decode(),
        "state": job.state.value,
        "created_at": _timestamp(job.created_at),
        "started_at": stamp(job.started_at),
        "finished_at": stamp(job.finished_at),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "lease_expires_at": stamp(job.lease_expires_at),
        "result": None if job.result is None else bytes(job.result).decode(),
        "errors": msgspec.json.encode(errors).decode(),
        "queue": job.queue,
        "priority": job.priority,
        "run_at": _timestamp(job.run_at),
        "lease_id": record.lease_id,
        "lease_seconds": record.lease_seconds,
        "max_attempts_sent": record.max_attempts_sent,
        "now": now,
    }


def _buried(tombstone: Tombstone) -> dict[str, Any]:
    """The parameters of ``load_tombstone``."""
    return {
        "job_id": tombstone.job_id,
        "queue": tombstone.queue,
        "priority": tombstone.priority,
        "max_attempts": tombstone.max_attempts,
        "description_hash": tombstone.description_hash,
        "data_hash": tombstone.data_hash,
        "state": tombstone.state.value,
        "created_at": _timestamp(tombstone.created_at),
        "finished_at": _timestamp(tombstone.finished_at),
        "attempts": tombstone.attempts,
    }


def _tombstone_of(conn: sqlite3.Connection, job_id: str) -> Tombstone | None:
    row = conn.execute(Q["tombstone"], {"job_id": job_id}).fetchone()
    return None if row is None else _tombstone(row)


def _candidates(queues: Sequence[str]) -> str:
    """The ready jobs a claim picks from, in hand-out order: the head of one index for any
    queue; the head of each named queue's part of another, merged, for named queues (each part
    holds at most :limit rows, so a claim never reads more than that per queue)."""
    if not queues:
        return Q["candidates_any"]
    return " UNION ALL ".join(
        f"SELECT * FROM ({Q['candidates_in'].replace('{n}', str(n))})" for n in range(len(queues))
    )


def _claim_query(queues: int) -> str:
    candidates = _candidates([""] * queues)
    order = "priority DESC, run_at, seq"
    return (
        f"WITH candidates AS ({candidates}), picked AS (SELECT seq, row_number() OVER "
        f"(ORDER BY {order}) - 1 AS n FROM candidates ORDER BY {order} LIMIT :limit) " + Q["claim"]
    )


_CLAIMS: dict[int, str] = {}
"""The claim's text per number of queues named, made once each."""


def _claim_for(queues: int) -> str:
    if (query := _CLAIMS.get(queues)) is None:
        query = _CLAIMS[queues] = _claim_query(queues)
    return query


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


def _unavailable(exc: sqlite3.Error) -> Unavailable | None:
    """The 503 an SQLite error means, or ``None`` when it is a real fault."""
    code = getattr(exc, "sqlite_errorcode", None)
    reason = None if code is None else _UNAVAILABLE.get(code & 0xFF)
    if reason is None:
        return None
    return Unavailable(f"{reason}; nothing was changed, try again shortly")


def _gave_up(timeout: float) -> Unavailable:
    return Unavailable(
        f"the store stayed busy for {timeout:g}s (another writer holds its lock, or too many "
        "requests are waiting); nothing was changed, try again shortly"
    )


def _refusal(exc: BaseException) -> BaseException:
    """What a write that raised ``exc`` answers: a 503 for an SQLite error that means "not
    now", else the error itself."""
    if isinstance(exc, sqlite3.Error):
        return _unavailable(exc) or exc
    return exc


class _Write:
    """One write waiting for the writer thread, and, once run, its outcome."""

    __slots__ = (
        "deadline",
        "future",
        "loop",
        "otherwise",
        "outcome",
        "rows",
        "unless",
        "value",
        "work",
    )

    def __init__(
        self,
        work: Callable[[sqlite3.Connection], Any],
        deadline: float,
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
        unless: Callable[[sqlite3.Connection], bool] | None,
    ) -> None:
        self.work = work
        self.deadline = deadline
        self.future = future
        self.loop = loop
        self.unless = unless
        self.otherwise: Any = None
        self.rows = 1
        self.value: Any = None
        self.outcome: tuple[bool, Any] | None = None

    def settle(self, value: Any) -> None:
        self.outcome = (True, value)

    def fail(self, exc: BaseException) -> None:
        self.outcome = (False, exc)


def _answer(group: list[_Write]) -> None:
    """Hand each write's outcome to its caller: one wake-up per event loop, not per write."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Write]] = {}
    for write in group:
        by_loop.setdefault(write.loop, []).append(write)
    for loop, writes in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_deliver, writes)


def _deliver(writes: list[_Write]) -> None:
    for write in writes:
        if write.future.done() or write.outcome is None:
            continue  # cancelled by its caller (the write itself went ahead regardless)
        succeeded, value = write.outcome
        if succeeded:
            write.future.set_result(value)
        else:
            write.future.set_exception(value)


def _leased(job_id: str, lease_id: str | None, outcome: Outcome, at: str) -> dict[str, Any]:
    """The parameters of ``finish_leased``: the common ending, by a worker under its lease (or
    naming none), to a final state whatever the attempts, with no error to record (a success)."""
    return {
        "job_id": job_id,
        "lease_id": lease_id,
        "state": outcome.then.value,
        "finished_at": at,
        "result": None if outcome.result is None else outcome.result.decode(),
    }


class SchemaTooNew(StoreUnusable):
    pass


class SqliteStore:
    def __init__(
        self, path: str, *, synchronous: Synchronous = "full", timeout: float = STORE_TIMEOUT
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simplequeue-sqlite")
        # An in-memory database exists only for its one connection: reads go to the writer.
        self._readers = (
            None
            if path == ":memory:"
            else ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="simplequeue-read")
        )
        # A connection of the event loop's own, for one cheap look before a write that may find
        # nothing to do (an empty queue's claim): no thread hop, no wait behind other writes.
        self._peek: sqlite3.Connection | None = None
        self._pending: deque[_Write] = deque()
        self._busy_ms = int(timeout * 1000)  # the writer's busy_timeout, as last set
        self._draining = False
        self._reader = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()

    # The servers sharing a file share a machine, and so its clock. Another process's submit
    # is found by the server's periodic look: SQLite cannot tell a connection about it.
    now = staticmethod(utcnow)
    watch = staticmethod(without_others)

    # -- running calls on the store's threads ----------------------------------------------

    async def _write(
        self,
        work: Callable[[sqlite3.Connection], T],
        *,
        unless: Callable[[sqlite3.Connection], bool] | None = None,
        otherwise: T | None = None,
        rows: int = 1,
    ) -> T:
        """Run ``work`` in a write transaction on the writer thread, before the deadline, and
        return once that transaction is committed (group commit: see `_commit_group`).

        ``unless``, if given, is a read made first without taking the lock: when it is true,
        ``work`` is not run and ``otherwise`` is the answer, so an empty queue's claim never
        takes the lock nor waits for other writes. It is made on the event loop's own
        connection where there is one (a file), else on the writer's before its group.
        ``rows`` is about how many rows ``work`` writes: a group holds a bounded number.
        """
        if unless is not None and self._peek is not None:
            try:
                if unless(self._peek):
                    return otherwise  # type: ignore[return-value]
            except sqlite3.Error:
                pass  # busy at this instant (a checkpoint, say): the writer looks instead
            unless = None
        loop = asyncio.get_running_loop()
        write = _Write(work, time.monotonic() + self.timeout, loop.create_future(), loop, unless)
        write.otherwise = otherwise
        write.rows = rows
        self._pending.append(write)
        if not self._draining:
            self._draining = True
            try:
                self._writer.submit(self._drain)
            except RuntimeError:  # the store was closed: its writer takes no more work
                self._draining = False
                self._pending.remove(write)
                raise RuntimeError("the store is closed") from None
        result: T = await write.future
        return result

    def _drain(self) -> None:
        """On the writer thread: commit what is pending, in groups, until nothing is.

        Writes are appended by the event loop's thread, which sets ``_draining`` after the
        append; this thread clears it and then looks once more, so no write is ever left
        pending with no drain to take it."""
        try:
            while True:
                group: list[_Write] = []
                rows = 0
                while self._pending and len(group) < GROUP_LIMIT and rows < GROUP_ROWS:
                    group.append(write := self._pending.popleft())
                    rows += write.rows
                if not group:
                    self._draining = False
                    if not self._pending:
                        return
                    self._draining = True
                    continue
                try:
                    self._commit_group(group)
                except BaseException as exc:  # a fault of the store itself: answer, never hang
                    self._recover(group, exc)
        except BaseException:
            # Only if something escaped even that: the next write starts a new drain.
            self._draining = False
            raise

    def _recover(self, group: list[_Write], exc: BaseException) -> None:
        conn = self._conn
        with contextlib.suppress(sqlite3.Error):
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
        for write in group:
            if write.outcome is None:
                write.fail(exc)
        _answer(group)

    def _commit_group(self, group: list[_Write]) -> None:
        """Run every write of ``group`` in one transaction, each in a savepoint of its own, and
        answer each only after the COMMIT that holds it.

        One fsync then covers the whole group: under load, the writes that queued up during
        one commit share the next. Each write is still decided as if it ran alone (a failing
        one is rolled back to its savepoint and answered with its error, the others go on), and
        none is answered before it is durable, so what an acknowledgement means is unchanged.
        """
        conn = self._conn
        if conn is None:
            raise RuntimeError("the store is closed")
        live: list[_Write] = []
        settled: list[_Write] = []
        for write in group:
            if write.future.cancelled() and write.unless is not None:
                continue  # nobody waits, and it would change nothing anyway
            if write.unless is not None:
                try:
                    if write.unless(conn):
                        write.settle(write.otherwise)
                        settled.append(write)
                        continue
                except sqlite3.Error as exc:
                    write.fail(_unavailable(exc) or exc)
                    settled.append(write)
                    continue
            live.append(write)
        _answer(settled)  # now, not after the others' lock wait and commit
        try:
            live = self._begin(conn, live)
        except BaseException as exc:
            for write in live:
                write.fail(exc)
            live = []
        if live:
            self._run_group(conn, live)
        _answer(group)

    def _begin(self, conn: sqlite3.Connection, live: list[_Write]) -> list[_Write]:
        """``BEGIN IMMEDIATE`` for ``live``, waiting for another process's lock no longer than
        the earliest deadline; writes whose deadline passes meanwhile give up (503, nothing
        changed) and the rest wait on. Returns the writes still to run (a transaction is open
        when there are any)."""
        while live:
            now = time.monotonic()
            expired = [write for write in live if write.deadline <= now]
            for write in expired:  # queued behind others for the whole timeout: not started
                write.fail(_gave_up(self.timeout))
            live = [write for write in live if write.deadline > now]
            if not live:
                break
            remaining = min(write.deadline for write in live) - now
            # SQLite waits for a busy lock up to this long; then BEGIN fails with SQLITE_BUSY.
            # (Set only when it moved: the pragma is a statement of its own, on every group.)
            wanted = max(1, int(remaining * 1000))
            if abs(wanted - self._busy_ms) > BUSY_SLACK_MS:
                conn.execute(f"PRAGMA busy_timeout = {wanted}")
                self._busy_ms = wanted
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_BUSY, _LOCKED):
                    continue  # the earliest deadline has passed: fail those, try for the rest
                raise _unavailable(exc) or exc from None
            break
        return live

    def _run_group(self, conn: sqlite3.Connection, live: list[_Write]) -> None:
        done: list[_Write] = []
        # A write alone is the transaction's only work: the transaction is its savepoint.
        alone = len(live) == 1
        for write in live:
            if not alone:
                conn.execute("SAVEPOINT one_write")
            try:
                write.value = write.work(conn)
            except BaseException as exc:
                if alone and conn.in_transaction:
                    conn.execute("ROLLBACK")
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (a full disk can do that): the
                    # writes before this one are undone too, and nothing was answered yet.
                    for other in [*done, *live[live.index(write) :]]:
                        other.fail(_refusal(exc))
                    return
                conn.execute("ROLLBACK TO one_write")
                conn.execute("RELEASE one_write")
                write.fail(_refusal(exc))
                continue
            if not alone:
                conn.execute("RELEASE one_write")
            done.append(write)
        self._commit(conn, done)

    @staticmethod
    def _commit(conn: sqlite3.Connection, done: list[_Write]) -> None:
        """Commit the group's transaction, then settle each of its writes: none before."""
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # A commit that failed writing (a disk error, not a full disk, which SQLite finds
            # before it writes) may still be in the WAL, and replayed: the honest answer is the
            # 500's "the server failed", never a 503's "nothing changed".
            error: BaseException
            if exc.sqlite_errorcode & 0xFF == _IOERR:
                error = RuntimeError(f"the store failed while committing: {exc}")
            else:
                error = _unavailable(exc) or exc
            for write in done:
                write.fail(error)
            return
        for write in done:
            write.settle(write.value)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on a reading connection: it sees the last commit, and waits for none."""
        deadline = time.monotonic() + self.timeout
        loop = asyncio.get_running_loop()
        if self._readers is None:
            return await loop.run_in_executor(self._writer, self._on_writer, work, deadline)
        return await loop.run_in_executor(self._readers, self._on_reader, work, deadline)

    def _on_writer(self, work: Callable[[sqlite3.Connection], T], deadline: float) -> T:
        conn = self._conn
        assert conn is not None, "the store is not open"
        if time.monotonic() >= deadline:
            raise _gave_up(self.timeout)
        return work(conn)

    def _on_reader(self, work: Callable[[sqlite3.Connection], T], deadline: float) -> T:
        if time.monotonic() >= deadline:  # queued behind other reads for the whole timeout
            raise _gave_up(self.timeout)
        try:
            conn: sqlite3.Connection | None = getattr(self._reader, "conn", None)
            if conn is None:
                conn = self._reader.conn = self._open_reader()
            return work(conn)
        except sqlite3.Error as exc:
            raise _unavailable(exc) or exc from None

    def _open_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        with self._reader_lock:
            self._reader_conns.append(conn)
        return conn

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the file, check it, and create or migrate the schema. A file that cannot be
        used (corrupt, too new, not a database, in a place that cannot be written) raises
        `StoreUnusable` with one line that says what is wrong, before anything is served."""
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._writer, self._connect)
        if self.path != ":memory:":
            self._peek = self._open_peek()

    def _open_peek(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 0")  # never wait: the writer looks instead
            conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: no implicit transactions; each operation says BEGIN itself.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as exc:
            raise StoreUnusable(f"cannot open the database {self.path}: {exc}") from None
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            # SQLite's own structural check, before anything is written: a damaged file is
            # refused at start, not found out after it has acknowledged jobs.
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise StoreUnusable(
                    f"the database {self.path} is corrupt (SQLite's quick_check: "
                    f"{'; '.join(problems)}); restore it from a backup"
                )
            if self.path != ":memory:":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreUnusable(f"could not put {self.path} in WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            self._migrate(conn)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_BUSY, _LOCKED):
                raise StoreUnusable(
                    f"the database {self.path} stayed locked by another process for "
                    f"{self.timeout:g}s; try again when it lets go"
                ) from None
            raise StoreUnusable(
                f"cannot use the database {self.path}: {exc} (is it a simplequeue database, "
                "and can this user write to it and to its directory?)"
            ) from None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self.path} has schema version {version}; this simplequeue knows only up "
                    f"to {SCHEMA_VERSION}: upgrade simplequeue"
                )
            now = datetime.now(UTC)
            params = {
                "now": _timestamp(now),
                "lease_seconds": DEFAULT_LEASE_SECONDS,
                "lease_expires_at": _timestamp(now + timedelta(seconds=DEFAULT_LEASE_SECONDS)),
            }
            # Each step takes the file one version up, in order, in this one transaction.
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _statements(Q[f"migrate_{step}"]):
                    conn.execute(statement, params if ":" in statement else ())
                conn.execute(f"PRAGMA user_version = {step}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._readers is not None:
            await asyncio.to_thread(self._readers.shutdown, wait=True)
            with self._reader_lock:
                conns, self._reader_conns = self._reader_conns, []
            for reader in conns:
                reader.close()
        if self._peek is not None:
            peek, self._peek = self._peek, None
            peek.close()
        if self._conn is not None:
            # On the writer thread, after the writes queued before it have been committed.
            await loop.run_in_executor(self._writer, self._close_writer)
        await asyncio.to_thread(self._writer.shutdown, wait=True)

    def _close_writer(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- the queue's operations ------------------------------------------------------------
    # Each turns its rows into jobs inside the transaction: anything that fails does so before
    # the COMMIT, so an error answer always means nothing changed.

    async def submit(self, job: NewJob) -> tuple[StoredJob | Tombstone, bool]:
        return (await self.submit_many([job]))[0]

    async def submit_many(self, jobs: Sequence[NewJob]) -> list[tuple[StoredJob | Tombstone, bool]]:
        # One statement inserts them all, in order (one pass of SQLite's, not one per job);
        # the ids it did not insert (already stored, repeated in the batch, or pruned) are
        # read back.
        stamps: dict[datetime, str] = {}

        def stamp(value: datetime) -> str:
            return stamps.get(value) or stamps.setdefault(value, _timestamp(value))

        rows = msgspec.json.encode(
            [
                (
                    job.job_id,
                    job.description,
                    None if job.data is None else job.data.decode(),
                    stamp(job.created_at),
                    job.max_attempts,
                    job.queue,
                    job.priority,
                    stamp(job.due),
                    job.due <= job.created_at,
                )
                for job in jobs
            ]
        ).decode()

        first = {job.job_id: job for job in reversed(jobs)}  # an id's first job is inserted

        def insert_or_read(conn: sqlite3.Connection) -> list[tuple[StoredJob | Tombstone, bool]]:
            inserted = {row[0]: row for row in conn.execute(Q["submit_many"], {"jobs": rows})}
            for job in first.values():
                if job.job_id in inserted and job.description and "\x00" in job.description:
                    # json_extract ends a text at U+0000: such a description is written again,
                    # as a bound parameter (rare: the fast path stays one statement).
                    conn.execute(Q["set_description"], (job.description, job.job_id))
                    row = inserted[job.job_id]
                    inserted[job.job_id] = (row[0], job.description, *row[2:])
            done: list[tuple[StoredJob | Tombstone, bool]] = []
            for job in jobs:
                if (row := inserted.pop(job.job_id, None)) is not None:
                    done.append((_job(row), True))
                elif stored := conn.execute(Q["get"], {"job_id": job.job_id}).fetchone():
                    done.append((_job(stored), False))
                else:
                    buried = _tombstone_of(conn, job.job_id)
                    assert buried is not None  # the insert skips only stored or buried ids
                    done.append((buried, False))
            return done

        return await self._write(insert_or_read, rows=len(jobs))

    async def claim(
        self,
        now: datetime,
        *,
        lease_seconds: int,
        limit: int = 1,
        queues: Collection[str] = (),
    ) -> list[ClaimedJob]:
        at = _timestamp(now)
        until = _timestamp(now + timedelta(seconds=lease_seconds))
        named = sorted(set(queues))
        query = _claim_for(len(named))

        def claim(conn: sqlite3.Connection) -> list[ClaimedJob]:
            # Scheduled jobs that fell due join the order first; then one statement claims them
            # all, each under a lease id of its own, made here (Python's CSPRNG, not SQLite's),
            # by its place in the hand-out order.
            conn.execute(Q["promote"], {"now": at, "limit": PROMOTE_BATCH})
            params: dict[str, Any] = {
                "now": at,
                "until": until,
                "limit": limit,
                "lease_seconds": lease_seconds,
                "lease_ids": msgspec.json.encode(
                    [secrets.token_urlsafe(18) for _ in range(limit)]
                ).decode(),
            }
            params.update((f"queue_{n}", name) for n, name in enumerate(named))
            rows = conn.execute(query, params).fetchall()
            rows.sort(key=lambda row: (-row[13], row[14], row[-1]))  # priority, run_at, seq
            return [_claimed(row) for row in rows]

        if named:
            look, look_params = Q["any_due_in"], {"now": at, "queues": msgspec.json.encode(named)}
        else:
            look, look_params = Q["any_due"], {"now": at}

        def nothing_due(conn: sqlite3.Connection) -> bool:
            return not conn.execute(look, look_params).fetchone()[0]

        # An empty queue is answered without taking the write lock.
        return await self._write(claim, unless=nothing_due, otherwise=[], rows=limit)

    async def heartbeat(
        self, job_id: str, lease_id: str, now: datetime, lease_seconds: int | None
    ) -> Finished:
        def renew(conn: sqlite3.Connection) -> Finished:
            row = conn.execute(Q["attempt"], {"job_id": job_id}).fetchone()
            if row is None:
                return Finished(Finish.UNKNOWN, None)
            seq, state, _, _, current, length, _ = row
            if state != JobState.RUNNING or current != lease_id:
                return Finished(
                    Finish.LEASE_LOST, _job(conn.execute(Q["get"], {"job_id": job_id}).fetchone())
                )
            length = lease_seconds or length
            params = {
                "seq": seq,
                "until": _timestamp(now + timedelta(seconds=length)),
                "lease_seconds": length,
            }
            return Finished(Finish.APPLIED, _claimed(conn.execute(Q["renew"], params).fetchone()))

        return await self._write(renew)

    async def finish(
        self, job_id: str, lease_id: str | None, outcome: Outcome, now: datetime
    ) -> Finished:
        return (await self.finish_many([Ending(job_id, lease_id, outcome)], now))[0]

    async def finish_many(self, endings: Sequence[Ending], now: datetime) -> list[Finished]:
        at = _timestamp(now)

        def finish(conn: sqlite3.Connection) -> list[Finished]:
            done = []
            for job_id, lease_id, outcome in endings:
                if (
                    outcome.error is None
                    and outcome.then == outcome.otherwise
                    and (
                        row := conn.execute(
                            Q["finish_leased"], _leased(job_id, lease_id, outcome, at)
                        ).fetchone()
                    )
                ):
                    done.append(Finished(Finish.APPLIED, _job(row)))
                else:
                    done.append(self._finish(conn, job_id, lease_id, outcome, now, keep_lease=True))
            return done

        return await self._write(finish, rows=len(endings))

    @staticmethod
    def _finish(
        conn: sqlite3.Connection,
        job_id: str,
        lease_id: str | None,
        outcome: Outcome,
        now: datetime,
        *,
        keep_lease: bool,
    ) -> Finished:
        row = conn.execute(Q["attempt"], {"job_id": job_id}).fetchone()
        if row is None:
            return Finished(Finish.UNKNOWN, None)
        seq, state, attempts, max_attempts, current, _, errors = row
        finish, new_state = decide(state, current, lease_id, attempts, max_attempts, outcome)
        if new_state is None:
            return Finished(finish, _job(conn.execute(Q["get"], {"job_id": job_id}).fetchone()))
        if outcome.error is not None:
            entry = {"attempt": attempts, "at": _timestamp(now), "error": outcome.error}
            errors = msgspec.json.encode(kept(msgspec.json.decode(errors), entry)).decode()
        requeued = new_state == JobState.SUBMITTED
        params = {
            "seq": seq,
            "state": new_state.value,
            "finished_at": None if requeued else _timestamp(now),
            "run_at": _timestamp(outcome.run_at) if requeued and outcome.run_at else None,
            # Due again at once (a lease taken back), or later (a retry's backoff).
            "ready": not (requeued and outcome.run_at is not None and outcome.run_at > now),
            "result": None if outcome.result is None else outcome.result.decode(),
            "errors": errors,
            "lease_id": lease_id if keep_lease else None,
        }
        return Finished(Finish.APPLIED, _job(conn.execute(Q["finish"], params).fetchone()))

    async def release(self, job_id: str, lease_id: str) -> None:
        await self._write(
            lambda conn: conn.execute(Q["release"], {"job_id": job_id, "lease_id": lease_id})
        )

    async def expire(self, now: datetime, outcome: Outcome) -> int:
        at = _timestamp(now)
        params = {"now": at, "limit": EXPIRE_BATCH}

        def expire(conn: sqlite3.Connection) -> int:
            expired = conn.execute(Q["expired"], params).fetchall()
            for job_id, lease_id in expired:
                self._finish(conn, job_id, lease_id, outcome, now, keep_lease=False)
            return len(expired)

        def none_expired(conn: sqlite3.Connection) -> bool:
            return conn.execute(Q["expired"], {"now": at, "limit": 1}).fetchone() is None

        # Most calls find nothing: they look first, and take the lock only for work.
        return await self._write(expire, unless=none_expired, otherwise=0)

    async def next_due(self, now: datetime) -> datetime | None:
        def read(conn: sqlite3.Connection) -> datetime | None:
            row = conn.execute(Q["next_due"], {"now": _timestamp(now)}).fetchone()
            return None if row is None else _datetime(row[0])

        return await self._read(read)

    async def move(self, job_ids: Sequence[str], move: Move, now: datetime) -> list[Moved]:
        def apply(conn: sqlite3.Connection) -> list[Moved]:
            found: dict[str, tuple[int, str]] = {}
            for job_id in job_ids:
                if job_id not in found and (
                    row := conn.execute(Q["movable"], {"job_id": job_id}).fetchone()
                ):
                    found[job_id] = row
            movable = [seq for seq, state in found.values() if state in move.sources]
            moved = {row[0]: _job(row) for row in self._move(conn, movable, move, now)}
            answers = []
            for job_id in job_ids:
                if job_id in moved:
                    answers.append(Moved(moved.pop(job_id), True))
                elif job_id in found:
                    answers.append(
                        Moved(_job(conn.execute(Q["get"], {"job_id": job_id}).fetchone()), False)
                    )
                else:
                    answers.append(Moved(None, False, _tombstone_of(conn, job_id)))
            return answers

        return await self._write(apply, rows=len(job_ids))

    @staticmethod
    def _move(conn: sqlite3.Connection, seqs: list[int], move: Move, now: datetime) -> list[Row]:
        if not seqs:
            return []
        params: dict[str, Any] = {
            "seqs": msgspec.json.encode(seqs).decode(),
            "now": _timestamp(now),
        }
        if move.target == JobState.FAILED:
            params.update(kept=MAX_ERRORS_KEPT, error=move.error)
            return conn.execute(Q["move_to_failed"], params).fetchall()
        return conn.execute(Q["move_to_submitted"], params).fetchall()

    async def move_matching(
        self, selection: Selection, move: Move, now: datetime, *, after: int, limit: int
    ) -> MovedChunk:
        states = selection.states & move.sources
        params: dict[str, Any] = {"after": after, "limit": limit}
        # A window of one state's jobs (the queue asks one state at a time): it walks only the
        # jobs the action could change, never the history of finished ones.
        if len(states) == 1:
            window, params["state"] = Q["window_in_state"], next(iter(states)).value
        else:
            window = Q["window_all"]
        queue, prefix = selection.queue, selection.prefix

        def apply(conn: sqlite3.Connection) -> MovedChunk:
            rows = conn.execute(window, params).fetchall()
            seqs = [
                seq
                for seq, state, job_id, in_queue in rows
                if state in states
                and (queue is None or in_queue == queue)
                and (prefix is None or job_id.startswith(prefix))
            ]
            moved = len(self._move(conn, seqs, move, now))
            return MovedChunk(moved, rows[-1][0] if len(rows) == limit else None)

        return await self._write(apply, rows=limit)

    async def prune(self, state: JobState, finished_before: datetime, limit: int) -> int:
        params = {"state": state.value, "before": _timestamp(finished_before), "limit": limit}

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            # Read and fingerprint on a reading connection, without the write lock: hashing a
            # large job's canonical data takes a while. At most about PRUNE_BYTES of them.
            rows, size = [], 0
            for row in conn.execute(Q["prunable"], params):
                rows.append(row)
                size += len(row[5] or "") + len(row[6] or "")
                if size >= PRUNE_BYTES:
                    break
            tombstones = []
            for row in rows:
                _, job_id, queue, priority, max_attempts, description, data = row[:7]
                job_state, created_at, finished_at, attempts = row[7:]
                description_hash, data_hash = fingerprint(
                    description, None if data is None else data.encode()
                )
                tombstones.append(
                    {
                        "seq": row[0],
                        "job_id": job_id,
                        "queue": queue,
                        "priority": priority,
                        "max_attempts": max_attempts,
                        "description_hash": description_hash,
                        "data_hash": data_hash,
                        "state": job_state,
                        "created_at": created_at,
                        "finished_at": finished_at,
                        "attempts": attempts,
                    }
                )
            return tombstones

        tombstones = await self._read(read)
        if not tombstones:
            return 0
        seqs = msgspec.json.encode([tombstone["seq"] for tombstone in tombstones]).decode()

        def bury(conn: sqlite3.Connection) -> int:
            # Only the jobs still as they were read (a retry since then keeps its job).
            deleted = {seq for (seq,) in conn.execute(Q["delete"], {**params, "seqs": seqs})}
            conn.executemany(Q["bury"], [t for t in tombstones if t["seq"] in deleted])
            return len(deleted)

        return await self._write(bury, rows=len(tombstones))

    async def load(
        self,
        records: Sequence[Record],
        tombstones: Sequence[Tombstone],
        now: datetime,
        *,
        extra: Totals = NO_TOTALS,
    ) -> Loaded:
        at = _timestamp(now)
        jobs = [_loaded(record, at) for record in records]
        buried = [_buried(tombstone) for tombstone in tombstones]

        def load(conn: sqlite3.Connection) -> Loaded:
            # executemany's rowcount adds up the rows each insert wrote (a skipped id: none).
            added = conn.executemany(Q["load"], jobs).rowcount if jobs else 0
            kept = conn.executemany(Q["load_tombstone"], buried).rowcount if buried else 0
            if kept or extra != NO_TOTALS:
                submitted, completed = extra
                params = {"tombstones": kept, "submitted": submitted, "completed": completed}
                conn.execute(Q["load_totals"], params)
            return Loaded(added + kept, len(jobs) + len(buried) - added - kept)

        return await self._write(load, rows=len(jobs) + len(buried))

    async def promote(self, now: datetime, limit: int) -> int:
        params = {"now": _timestamp(now), "limit": limit}

        def promote(conn: sqlite3.Connection) -> int:
            return conn.execute(Q["promote"], params).rowcount

        def none_due(conn: sqlite3.Connection) -> bool:
            return conn.execute(Q["next_waiting"], params).fetchone() is None

        return await self._write(promote, unless=none_due, otherwise=0, rows=limit)

    async def max_attempts_sent(self, job_id: str) -> int | None:
        def read(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(Q["max_attempts_sent"], {"job_id": job_id}).fetchone()
            return None if row is None else int(row[0])

        return await self._read(read)

    async def tombstone(self, job_id: str) -> Tombstone | None:
        return await self._read(lambda conn: _tombstone_of(conn, job_id))

    async def get(self, job_id: str) -> StoredJob | None:
        def read(conn: sqlite3.Connection) -> StoredJob | None:
            row = conn.execute(Q["get"], {"job_id": job_id}).fetchone()
            return None if row is None else _job(row)

        return await self._read(read)

    async def list_jobs(
        self,
        states: Collection[JobState],
        limit: int,
        after: str | None,
        *,
        before: str | None = None,
        newest_first: bool = False,
        prefix: str | None = None,
        queues: Collection[str] = (),
    ) -> list[StoredJob]:
        def seq_of(conn: sqlite3.Connection, job_id: str) -> int:
            row = conn.execute(Q["seq_of"], {"job_id": job_id}).fetchone()
            if row is None:
                raise UnknownCursor(job_id)
            seq: int = row[0]
            return seq

        def work(conn: sqlite3.Connection) -> list[StoredJob]:
            # One read transaction, so the cursors and the page see the same snapshot.
            conn.execute("BEGIN")
            try:
                params: dict[str, Any] = {
                    "after_seq": 0 if after is None else seq_of(conn, after),
                    "before_seq": _MAX_SEQ if before is None else seq_of(conn, before),
                    "limit": limit,
                    "states": None,
                    "queues": None,
                }
                if states:
                    params["states"] = msgspec.json.encode([s.value for s in states]).decode()
                if queues:
                    params["queues"] = msgspec.json.encode(sorted(set(queues))).decode()
                if prefix is not None:
                    params.update(prefix=prefix, prefix_end=_prefix_end(prefix))
                    name = "list_prefix"
                elif queues:
                    name = "list_in_queues"
                else:
                    name = "list_in_states" if states else "list_all"
                query = Q[f"{name}_desc" if newest_first else name]
                rows = conn.execute(query, params).fetchall()
            finally:
                conn.execute("COMMIT")
            return [_job(row) for row in rows]

        return await self._read(work)

    async def stats(self, now: datetime) -> Stats:
        def work(conn: sqlite3.Connection) -> Stats:
            # One read transaction, so the counts and the ages are of the same moment.
            conn.execute("BEGIN")
            try:
                per_queue: dict[str, dict[str, int]] = {}
                for queue, state, n in conn.execute(Q["stats"]):
                    per_queue.setdefault(queue, dict.fromkeys(JobState, 0))[state] = n
                oldest = {
                    queue: conn.execute(Q["oldest_due"], {"queue": queue}).fetchone()[0]
                    for queue, counts in per_queue.items()
                    if counts[JobState.SUBMITTED]
                }
                totals = Totals(*conn.execute(Q["totals"]).fetchone())
            finally:
                conn.execute("COMMIT")
            return _stats(per_queue, oldest, totals, now)

        return await self._read(work)

    async def totals(self) -> Totals:
        def read(conn: sqlite3.Connection) -> Totals:
            return Totals(*conn.execute(Q["totals"]).fetchone())

        return await self._read(read)

    async def export(self, after: int, limit: int) -> tuple[list[Record], int | None]:
        def read(conn: sqlite3.Connection) -> tuple[list[Record], int | None]:
            rows = conn.execute(Q["export"], {"after": after, "limit": limit}).fetchall()
            records = [Record(_job(row), row[15], row[16], row[17]) for row in rows]
            return records, rows[-1][18] if len(rows) == limit else None

        return await self._read(read)

    async def export_tombstones(self, after: str | None, limit: int) -> list[Tombstone]:
        params = {"after": "" if after is None else after, "limit": limit}  # no id is empty

        def read(conn: sqlite3.Connection) -> list[Tombstone]:
            return [_tombstone(row) for row in conn.execute(Q["export_tombstones"], params)]

        return await self._read(read)


def _stats(
    per_queue: dict[str, dict[str, int]], oldest: dict[str, str], totals: Totals, now: datetime
) -> Stats:
    def age(queue: str) -> float | None:
        due = _datetime(oldest.get(queue))
        return None if due is None or due > now else (now - due).total_seconds()

    queues = {
        name: QueueStats(**counts, oldest_due_age_seconds=age(name))
        for name, counts in sorted(per_queue.items())
    }
    in_state = {state: sum(q[state] for q in per_queue.values()) for state in JobState}
    return Stats(
        **in_state,
        total=sum(in_state.values()),
        queues=queues,
        submitted_ever=totals.submitted,
        completed_ever=totals.completed,
    )
