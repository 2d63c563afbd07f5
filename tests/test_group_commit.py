"""Group commit in the SQLite store (store/sqlite.py `_drain`, `_commit_group`): the writer
thread takes every pending write into one transaction, each in a savepoint of its own, and
answers each only after the COMMIT that holds it.

The store is driven directly, on asyncio. To make a group certain, the writer thread is first
held by a task of the test's own (`writer_held`): every write made meanwhile queues, and the
next drain takes them all. What the writer's connection runs is seen through SQLite's trace
(``set_trace_callback``, as tests/test_bugs.py bug 18 does). The last test crashes a real
`sq serve` (``kill -9``) under producers of single and batch submits.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from simplequeue.errors import Unavailable
from simplequeue.models import JobState, StoredJob
from simplequeue.store import NewJob, SqliteStore
from simplequeue.store.base import Outcome
from simplequeue.store.sqlite import GROUP_LIMIT
from tests.servers import ServerProcess, totals

T = TypeVar("T")
EXPIRE = Outcome(JobState.SUBMITTED, JobState.FAILED, error="lease expired")
BOUND = 30.0
"""Seconds anything here may take before it counts as never (far above what it needs)."""


def new(job_id: str, data: Any = None) -> NewJob:
    text = None if data is None else msgspec.json.encode(data)
    return NewJob(job_id, None, text, datetime.now(UTC))


def raw(data: Any) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(data))


def run(scenario: Callable[[SqliteStore], Coroutine[Any, Any, None]], store: SqliteStore) -> None:
    """``scenario(store)`` on a fresh event loop, with the store opened and closed around it."""

    async def main() -> None:
        await store.open()
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


async def on_writer(store: SqliteStore, work: Callable[[], T]) -> T:
    """``work`` on the writer thread (whose connection may be used on that thread only)."""
    return await asyncio.get_running_loop().run_in_executor(store._writer, work)


async def trace(store: SqliteStore, hook: Callable[[str], None] | None = None) -> list[str]:
    """Every statement the writer's connection runs from now on, in order (``hook`` is called
    with each, on the writer thread, before SQLite runs it)."""
    statements: list[str] = []

    def traced(sql: str) -> None:
        statements.append(sql)
        if hook is not None:
            hook(sql)

    def install() -> None:
        assert store._conn is not None
        store._conn.set_trace_callback(traced)

    await on_writer(store, install)
    return statements


@contextlib.asynccontextmanager
async def writer_held(store: SqliteStore) -> AsyncIterator[None]:
    """The writer thread busy with a task of the test's own until the block ends: writes made
    in the block all wait, and the drain after it takes them together."""
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(BOUND)

    held = asyncio.get_running_loop().run_in_executor(store._writer, hold)
    try:
        assert await asyncio.to_thread(started.wait, BOUND)
        yield
    finally:
        release.set()
        await held


async def queued(store: SqliteStore, count: int) -> None:
    """Until ``count`` writes wait for the writer (each task has reached `_write`)."""
    deadline = time.monotonic() + BOUND
    while len(store._pending) < count:
        assert time.monotonic() < deadline, f"only {len(store._pending)} of {count} queued"
        await asyncio.sleep(0.001)
    assert len(store._pending) == count


def starting(statements: list[str], prefix: str) -> int:
    return sum(statement.startswith(prefix) for statement in statements)


def rows(db: Path) -> dict[str, str | None]:
    """The jobs table as another connection sees it: what is committed."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT job_id, description FROM jobs ORDER BY seq"))


# -- each write answered with its own result -------------------------------------------------


def test_many_concurrent_submits_are_all_committed_each_answered_with_its_own(
    tmp_path: Path,
) -> None:
    db = tmp_path / "queue.db"

    async def scenario(store: SqliteStore) -> None:
        statements = await trace(store)
        # 200 new jobs, and 20 of them sent again with other data, all at once.
        calls = [store.submit(new(f"j{n}", {"n": n})) for n in range(200)]
        calls += [store.submit(new(f"j{n}", {"again": n})) for n in range(0, 200, 10)]
        answers = await asyncio.gather(*calls)
        for n, (job, created) in enumerate(answers[:200]):
            assert isinstance(job, StoredJob)  # not a pruned job's tombstone
            assert (job.job_id, created, job.data) == (f"j{n}", True, raw({"n": n}))
        for n, (job, created) in zip(range(0, 200, 10), answers[200:], strict=True):
            # The original, queued before it, was committed first: the stored job is that one.
            assert isinstance(job, StoredJob)
            assert (job.job_id, created, job.data) == (f"j{n}", False, raw({"n": n}))
        assert list(rows(db)) == [f"j{n}" for n in range(200)]
        assert (await store.stats(datetime.now(UTC))).submitted == 200
        # However they were grouped, no more transactions than writes, each one committed.
        assert 1 <= starting(statements, "BEGIN IMMEDIATE") == starting(statements, "COMMIT")
        assert starting(statements, "BEGIN IMMEDIATE") <= len(calls)

    run(scenario, SqliteStore(str(db), synchronous="normal"))


@pytest.mark.parametrize("writes", [200, GROUP_LIMIT + 44])
def test_writes_queued_together_share_one_transaction_up_to_the_group_limit(
    tmp_path: Path, writes: int
) -> None:
    db = tmp_path / "queue.db"

    async def scenario(store: SqliteStore) -> None:
        statements = await trace(store)
        async with writer_held(store):
            tasks = [asyncio.create_task(store.submit(new(f"j{n}"))) for n in range(writes)]
            await queued(store, writes)
            statements.clear()
        answers = await asyncio.gather(*tasks)
        assert [(job.job_id, created) for job, created in answers] == [
            (f"j{n}", True) for n in range(writes)
        ]
        groups = -(-writes // GROUP_LIMIT)  # ceil: a group takes at most GROUP_LIMIT writes
        assert starting(statements, "BEGIN IMMEDIATE") == groups
        assert starting(statements, "COMMIT") == groups
        assert starting(statements, "SAVEPOINT") == writes
        assert len(rows(db)) == writes

    run(scenario, SqliteStore(str(db), synchronous="normal"))


# -- a failing write in a group ---------------------------------------------------------------


def test_a_write_that_raises_gets_its_own_error_and_the_rest_of_its_group_commits(
    tmp_path: Path,
) -> None:
    db = tmp_path / "queue.db"

    def tamper(conn: sqlite3.Connection) -> None:
        # It changes rows written before it in the same transaction, then fails: all of its
        # own work must be undone, and none of theirs.
        conn.execute("UPDATE jobs SET description = 'tampered'")
        conn.execute("INSERT INTO queue_counts (queue, state, n) VALUES ('q', 'bogus', 1)")
        raise ValueError("this write fails")

    async def scenario(store: SqliteStore) -> None:
        statements = await trace(store)
        async with writer_held(store):
            first = asyncio.create_task(store.submit(new("before")))
            failing = asyncio.create_task(store._write(tamper))
            last = asyncio.create_task(store.submit(new("after")))
            await queued(store, 3)
            statements.clear()
        with pytest.raises(ValueError, match="this write fails"):
            await failing
        assert [(job.job_id, created) for job, created in (await first, await last)] == [
            ("before", True),
            ("after", True),
        ]
        # One group held all three: one transaction, one savepoint each, one rolled back.
        assert starting(statements, "BEGIN IMMEDIATE") == 1
        assert starting(statements, "SAVEPOINT") == 3
        assert starting(statements, "ROLLBACK TO") == 1
        assert starting(statements, "COMMIT") == 1
        assert rows(db) == {"before": None, "after": None}
        with contextlib.closing(sqlite3.connect(db)) as conn:
            bogus = "SELECT count(*) FROM queue_counts WHERE state = 'bogus'"
            assert conn.execute(bogus).fetchone()[0] == 0
        assert (await store.stats(datetime.now(UTC))).total == 2

    run(scenario, SqliteStore(str(db), synchronous="normal"))


# -- deadlines --------------------------------------------------------------------------------


def test_a_write_whose_deadline_passed_while_queued_is_503_without_running(
    tmp_path: Path,
) -> None:
    db = tmp_path / "queue.db"
    timeout = 0.5
    ran = threading.Event()

    def work(conn: sqlite3.Connection) -> None:
        ran.set()
        conn.execute("UPDATE jobs SET description = 'late'")

    async def scenario(store: SqliteStore) -> None:
        await store.submit(new("known"))
        statements = await trace(store)
        async with writer_held(store):
            late = asyncio.create_task(store._write(work))
            await queued(store, 1)
            await asyncio.sleep(timeout * 1.5)  # its deadline passes while the writer is busy
            fresh = asyncio.create_task(store.submit(new("fresh")))  # its deadline is ahead
            await queued(store, 2)
            statements.clear()
        with pytest.raises(Unavailable, match="busy") as refused:
            await late
        assert refused.value.status_code == 503
        assert not ran.is_set()
        assert (await fresh)[1] is True  # the same group went on without it
        assert rows(db) == {"known": None, "fresh": None}
        # Only the fresh write was started (alone, it needs no savepoint of its own).
        assert starting(statements, "BEGIN") == 1
        assert not any("late" in statement for statement in statements)

    run(scenario, SqliteStore(str(db), synchronous="normal", timeout=timeout))


# -- claims and expiry that find nothing ------------------------------------------------------


def test_an_empty_claim_answers_at_once_while_a_write_waits_for_another_process(
    tmp_path: Path,
) -> None:
    db = tmp_path / "queue.db"

    async def scenario(store: SqliteStore) -> None:
        other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            waiting = asyncio.create_task(store.submit(new("blocked")))
            await asyncio.sleep(0.2)  # the submit now waits for the lock, up to 3 s
            assert await store.claim(datetime.now(UTC), lease_seconds=60) == []
            assert not waiting.done()  # answered while the submit still waits for the lock
            other.execute("ROLLBACK")
            assert (await waiting)[1] is True
        finally:
            other.close()

    run(scenario, SqliteStore(str(db), synchronous="normal", timeout=3))


def test_an_empty_claim_or_expiry_never_takes_the_write_lock(tmp_path: Path) -> None:
    async def scenario(store: SqliteStore) -> None:
        statements = await trace(store)
        looked: list[str] = []
        assert store._peek is not None
        store._peek.set_trace_callback(looked.append)
        now = datetime.now(UTC)
        assert await store.claim(now, lease_seconds=60) == []
        assert await store.claim(now, lease_seconds=60, limit=50) == []
        assert await store.expire(now, EXPIRE) == 0
        assert len(looked) == 3  # it looked, on the event loop's own connection
        assert statements == []  # and the writer did nothing at all
        assert starting(statements, "SAVEPOINT") == 0
        # The same calls with work to do take the lock: the trace would have shown it.
        await store.submit(new("due"))
        statements.clear()
        later = datetime.now(UTC)
        assert [job.job_id for job in await store.claim(later, lease_seconds=60)] == ["due"]
        assert starting(statements, "BEGIN IMMEDIATE") == 1

    run(scenario, SqliteStore(str(tmp_path / "queue.db"), synchronous="normal"))


def test_an_empty_claim_never_queues_behind_a_busy_writer(tmp_path: Path) -> None:
    async def scenario(store: SqliteStore) -> None:
        statements = await trace(store)
        async with writer_held(store):
            claims = [store.claim(datetime.now(UTC), lease_seconds=60) for _ in range(10)]
            # Answered while the writer is still busy: they never joined its queue.
            assert await asyncio.gather(*claims) == [[]] * 10
            assert not store._pending
        assert starting(statements, "BEGIN") == 0

    run(scenario, SqliteStore(str(tmp_path / "queue.db"), synchronous="normal"))


# -- no answer before its COMMIT --------------------------------------------------------------


def test_no_answer_arrives_before_the_commit_that_holds_it(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    events: list[str] = []
    lock = threading.Lock()
    pause = 0.3
    answered_at_commit: list[int] = []

    def hook(sql: str) -> None:
        if sql.startswith("COMMIT"):
            # Hold the writer just before it commits: an answer sent before the COMMIT would
            # reach the (idle) event loop meanwhile, and be seen here.
            time.sleep(pause)
            with lock:
                answered_at_commit.append(sum(e.startswith("answer") for e in events))
                events.append("COMMIT")

    async def scenario(store: SqliteStore) -> None:
        await trace(store, hook)
        visible_when_answered: list[bool] = []

        def answered(job_id: str) -> Callable[[asyncio.Future[Any]], None]:
            def done(_: asyncio.Future[Any]) -> None:
                with lock:
                    events.append(f"answer {job_id}")
                visible_when_answered.append(job_id in rows(db))

            return done

        async with writer_held(store):
            tasks = []
            for n in range(20):
                task = asyncio.create_task(store.submit(new(f"j{n}")))
                task.add_done_callback(answered(f"j{n}"))
                tasks.append(task)
            await queued(store, 20)
        await asyncio.gather(*tasks)
        # Writes made while that group commits form the next group: the same holds for them.
        more = [asyncio.create_task(store.submit(new(f"k{n}"))) for n in range(5)]
        for n, task in enumerate(more):
            task.add_done_callback(answered(f"k{n}"))
        await asyncio.gather(*more)

        assert answered_at_commit[0] == 0  # nothing of the held group before its COMMIT
        assert events.index("COMMIT") < min(events.index(f"answer j{n}") for n in range(20))
        assert len(visible_when_answered) == 25
        assert all(visible_when_answered)  # each, when answered, was committed for everyone

    run(scenario, SqliteStore(str(db), synchronous="normal"))


# -- kill -9 under producers of singles and batches -------------------------------------------

PRODUCERS = 8
BATCH = 50
MAX_REQUESTS = 2_000
"""Per producer: the load is bounded in count as well as in time."""


class Producers:
    """Threads submitting to one server, each with its own client: half send one job per
    request, half arrays of `BATCH`. What the server acknowledged, and what was in flight."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: dict[str, dict[str, Any]] = {}  # job id -> data it was submitted with
        self.batches_acked = 0
        self.in_flight: dict[int, list[str]] = {}  # producer -> the ids of its unanswered call
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.failures: list[str] = []

    def produce(self, producer: int) -> None:
        batch = producer % 2 == 1
        with httpx.Client(base_url=self.url, timeout=BOUND) as http:
            for n in range(MAX_REQUESTS):
                if self.stop.is_set():
                    return
                size = BATCH if batch else 1
                jobs: list[dict[str, Any]] = [
                    {"jobId": f"p{producer}-{n}-{i}", "data": {"p": producer, "n": n, "i": i}}
                    for i in range(size)
                ]
                with self.lock:
                    self.in_flight[producer] = [job["jobId"] for job in jobs]
                try:
                    response = http.post("/jobs/submit", json=jobs if batch else jobs[0])
                except httpx.TransportError:
                    return  # the server died with this request unanswered
                if not self.accepted(response, batch, len(jobs)):
                    with self.lock:
                        self.failures.append(f"{response.status_code} {response.text[:300]}")
                    return
                with self.lock:
                    del self.in_flight[producer]
                    self.acked.update((job["jobId"], job["data"]) for job in jobs)
                    self.batches_acked += batch

    @staticmethod
    def accepted(response: httpx.Response, batch: bool, size: int) -> bool:
        if not batch:
            return response.status_code == 201
        if response.status_code != 200:
            return False
        answer = response.json()
        return len(answer) == size and all(item["status"] == 201 for item in answer)

    def progress(self) -> tuple[int, int]:
        with self.lock:
            return len(self.acked) - self.batches_acked * BATCH, self.batches_acked


def all_jobs(http: httpx.Client) -> dict[str, Any]:
    jobs: dict[str, Any] = {}
    url: str | None = "/jobs?limit=1000"
    for _ in range(10_000):  # bounded: far more pages than the load can make
        if url is None:
            return jobs
        response = http.get(url)
        assert response.status_code == 200, response.text
        jobs.update((job["jobId"], job) for job in response.json())
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    raise AssertionError("the pages never ended")


@pytest.mark.slow
def test_acknowledged_singles_and_batches_survive_kill_9_with_group_commit(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    db = str(tmp_path / "queue.db")
    first = serve(db)  # the default durability: --synchronous full
    load = Producers(first.url)
    threads = [threading.Thread(target=load.produce, args=(p,)) for p in range(PRODUCERS)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while (progress := load.progress())[0] < 300 or progress[1] < 20:
            assert time.monotonic() < deadline, f"the load never got going: {progress}"
            assert not load.failures, load.failures
            time.sleep(0.01)
        first.kill()  # while requests are in flight
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=BOUND)
    assert not any(thread.is_alive() for thread in threads)
    assert not load.failures, load.failures

    second = serve(db)
    with httpx.Client(base_url=second.url, timeout=BOUND) as http:
        stored = all_jobs(http)
        stats = totals(http.get("/stats").json())
    missing = sorted(set(load.acked) - set(stored))
    assert missing == []  # nothing acknowledged was lost
    for job_id, data in load.acked.items():
        assert (stored[job_id]["data"], stored[job_id]["state"]) == (data, "submitted")
    # What was in flight at the kill is there or not; a batch is all there or not at all (one
    # commit). Nothing else is there.
    unanswered = [job_id for ids in load.in_flight.values() for job_id in ids]
    for ids in load.in_flight.values():
        assert len({job_id in stored for job_id in ids}) == 1, ids
    assert set(stored) <= set(load.acked) | set(unanswered)
    assert stats == {
        "submitted": len(stored),
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "total": len(stored),
    }
