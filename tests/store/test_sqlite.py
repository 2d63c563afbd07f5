"""What only the SQLite store promises, beside the contract every store keeps
(test_store_contract.py): a WAL file with its schema version, migrations from the files earlier
releases wrote, the durability setting, and counts and claims that never scan the jobs.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from simplequeue.models import JobState, QueueStats
from simplequeue.queue import ACTIONS, TRANSITIONS, Action, Event
from simplequeue.store import SqliteStore
from simplequeue.store import sqlite as sqlite_store
from simplequeue.store.base import Finish, Outcome, Totals, fingerprint
from simplequeue.store.sqlite import SCHEMA_VERSION, Q, SchemaTooNew
from tests.store.conftest import (
    LEASE,
    QUEUES,
    all_jobs,
    at,
    claim,
    finish,
    new,
    random_operations,
    stats_of,
)

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent / "data"
EXPIRE = Outcome(*TRANSITIONS[Event.EXPIRE], error=Event.EXPIRE.value)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


async def opened(path: Path, **kwargs: Any) -> SqliteStore:
    store = SqliteStore(str(path), **kwargs)
    await store.open()
    return store


def pragma(path: Path, name: str) -> Any:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def test_sqlite_file_is_in_wal_mode_with_the_schema_version_recorded(db_path: Path) -> None:
    store = await opened(db_path)
    try:
        assert pragma(db_path, "journal_mode") == "wal"
        assert pragma(db_path, "user_version") == SCHEMA_VERSION >= 1
    finally:
        await store.close()


async def test_sqlite_reopening_a_file_keeps_its_jobs_and_order(db_path: Path) -> None:
    store = await opened(db_path)
    for n, job_id in enumerate(["b", "a", "c"]):
        await store.submit(new(job_id, n, f"job {job_id}", {"n": n}))
    await claim(store, at(5))
    await finish(store, "b", JobState.FAILED, at(6))
    before = await all_jobs(store)
    await store.close()

    store = await opened(db_path)
    try:
        assert await all_jobs(store) == before
        assert (await store.stats(at(7))).failed == 1
        assert await store.totals() == Totals(3, 1)
        claimed = await claim(store, at(7))
        assert claimed is not None
        assert claimed.job_id == "a"
        # Reopening does not run the schema again (it would fail on the existing tables).
        assert pragma(db_path, "user_version") == SCHEMA_VERSION
    finally:
        await store.close()


async def test_sqlite_refuses_a_file_with_a_newer_schema(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = SqliteStore(str(db_path))
    with pytest.raises(SchemaTooNew, match=r"schema version \d+.*upgrade simplequeue"):
        await store.open()
    await store.close()
    with sqlite3.connect(db_path) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == []
    assert pragma(db_path, "user_version") == SCHEMA_VERSION + 1


@pytest.mark.parametrize(("synchronous", "expected"), [("full", 2), ("normal", 1)])
async def test_sqlite_applies_the_synchronous_setting(
    db_path: Path, synchronous: str, expected: int
) -> None:
    store = await opened(db_path, synchronous=synchronous)
    try:
        # synchronous is per connection: ask the store's own connection, on its own thread.
        value = await store._write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
        assert value == expected
    finally:
        await store.close()


@pytest.mark.parametrize("seed", [4, 5])
async def test_sqlite_trigger_counts_match_a_real_count(db_path: Path, seed: int) -> None:
    store = await opened(db_path)
    try:
        totals = await random_operations(store, seed)
        stats = await store.stats(at(400))
        assert stats == stats_of(await all_jobs(store), at(400), totals)
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        real = conn.execute("SELECT queue, state, count(*) FROM jobs GROUP BY 1, 2").fetchall()
    assert {(queue, state) for queue, state, _ in real} - {("default", "submitted")}
    assert {
        (queue, state.value): getattr(counts, state.value)
        for queue, counts in stats.queues.items()
        for state in JobState
        if getattr(counts, state.value)
    } == {(queue, state): n for queue, state, n in real}
    assert stats.total == sum(n for _, _, n in real)


# -- what the busy paths read ---------------------------------------------------------------
# /stats, /jobs/next and the long-poll's wake-up run all the time: each reads an index (or the
# count table), never the jobs one by one, however many are stored, scheduled ahead or finished.


def plan(conn: sqlite3.Connection, query: str) -> list[str]:
    """The steps of SQLite's plan for ``query`` (its parameters bound to placeholders)."""
    names = set(re.findall(r":(\w+)", query))
    params = {name: 1 if name in ("limit", "after", "kept") else "x" for name in names}
    return [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + query, params)]


JOBS_READ = re.compile(
    r"(?P<how>SEARCH|SCAN) jobs USING (?:COVERING )?(?:INDEX (?P<index>\w+)|INTEGER PRIMARY KEY)"
)


def indexes_read(steps: list[str]) -> set[str]:
    """The indexes the steps read the jobs through; fails on a step that reads the table
    itself, or walks a whole index (a SCAN) other than the one of ready jobs, which a claim
    reads from its head, in order, for :limit rows."""
    used = set()
    for step in steps:
        if not re.search(r"\bjobs\b", step):
            continue
        read = JOBS_READ.match(step)
        assert read, f"reads the jobs without an index: {step!r}"
        index = read["index"] or "rowid"
        assert read["how"] == "SEARCH" or index == "jobs_ready", f"walks an index: {step!r}"
        used.add(index)
    return used


@pytest.fixture
async def busy_file(db_path: Path) -> Path:
    """A file with a few hundred jobs in every state, in three queues, many scheduled ahead,
    closed again: its plans are those a server working on it gets (no ANALYZE is ever run)."""
    store = await opened(db_path)
    try:
        for n in range(300):
            queue = QUEUES[n % 3]
            await store.submit(new(f"b{n}", 0, queue=queue, run_at=n * 10 if n % 2 else None))
        await store.claim(at(1), lease_seconds=LEASE, limit=60)
        for n in range(0, 40, 2):
            await finish(store, f"b{n}", JobState.SUCCEEDED, at(2))
        await store.move(["b40", "b42"], ACTIONS[Action.CANCEL], at(3))
    finally:
        await store.close()
    return db_path


async def test_sqlite_stats_query_does_not_scan_the_jobs(busy_file: Path) -> None:
    with contextlib.closing(sqlite3.connect(busy_file)) as conn:
        for name in ("stats", "totals"):  # the counts, and the cumulative counters
            counts = plan(conn, Q[name])
            assert counts
            assert not [step for step in counts if re.search(r"\bjobs\b", step)], counts
        # Each queue's oldest due job: the first entry of its part of one index.
        oldest = plan(conn, Q["oldest_due"])
        assert indexes_read(oldest) == {"jobs_due"}, oldest
        assert not [step for step in oldest if "TEMP B-TREE" in step], oldest


@pytest.mark.parametrize("queues", [0, 1, 3])
async def test_sqlite_claim_reads_the_head_of_the_ready_jobs_index(
    busy_file: Path, queues: int
) -> None:
    with contextlib.closing(sqlite3.connect(busy_file)) as conn:
        # The candidates come in hand-out order from the index itself (no sort of all the ready
        # jobs): a claim reads at most :limit entries per queue named.
        for query, index in (
            (Q["candidates_any"], "jobs_ready"),
            (Q["candidates_in"].replace("{n}", "0"), "jobs_ready_in"),
        ):
            steps = plan(conn, query)
            assert indexes_read(steps) == {index}, steps
            assert not [step for step in steps if "TEMP B-TREE" in step], steps
        claim_steps = plan(conn, sqlite_store._claim_for(queues))
        assert indexes_read(claim_steps) == {
            "jobs_ready" if queues == 0 else "jobs_ready_in",
            "rowid",
        }, claim_steps
        # Its first steps: scheduled jobs that fell due join (the waiting ones' index), and the
        # look of an empty queue without the write lock.
        assert indexes_read(plan(conn, Q["promote"])) == {"jobs_waiting", "rowid"}
        assert indexes_read(plan(conn, Q["any_due"])) == {"jobs_ready", "jobs_waiting"}
        assert indexes_read(plan(conn, Q["any_due_in"])) == {"jobs_due"}
        assert indexes_read(plan(conn, Q["next_due"])) == {"jobs_waiting"}


async def test_sqlite_operations_and_retention_read_through_indexes(busy_file: Path) -> None:
    with contextlib.closing(sqlite3.connect(busy_file)) as conn:
        assert indexes_read(plan(conn, Q["prunable"])) == {"jobs_finished"}
        assert indexes_read(plan(conn, Q["next_waiting"])) == {"jobs_waiting"}
        assert indexes_read(plan(conn, Q["window_in_state"])) == {"jobs_state"}
        assert indexes_read(plan(conn, Q["window_all"])) == {"rowid"}
        for name in ("move_to_failed", "move_to_submitted", "delete"):
            assert indexes_read(plan(conn, Q[name])) == {"rowid"}, name


# -- files earlier releases wrote ----------------------------------------------------------


async def test_sqlite_migrates_a_version_1_file_and_keeps_its_jobs(tmp_path: Path) -> None:
    """A file as the first release wrote it (schema version 1), with a job in every state."""
    db = tmp_path / "v1.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for statement in sqlite_store._statements(Q["migrate_1"]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        rows = [
            ("s", '{"n": 1}', "submitted", None, None, 0),
            ("r", None, "running", "2026-01-01T00:00:01.000000Z", None, 1),
            ("ok", None, "succeeded", "2026-01-01T00:00:01.000000Z", "2026-01-01T00:00:02Z", 1),
        ]
        for job_id, data, state, started, finished, attempts in rows:
            conn.execute(
                "INSERT INTO jobs (job_id, data, state, created_at, started_at, finished_at, "
                "attempts) VALUES (?, ?, ?, '2026-01-01T00:00:00.000000Z', ?, ?, ?)",
                (job_id, data, state, started, finished, attempts),
            )
        conn.commit()
    store = await opened(db)
    try:
        assert pragma(db, "user_version") == SCHEMA_VERSION
        assert [(j.job_id, j.state) for j in await all_jobs(store)] == [
            ("s", JobState.SUBMITTED),
            ("r", JobState.RUNNING),
            ("ok", JobState.SUCCEEDED),
        ]
        running = await store.get("r")
        assert running is not None
        # Left running by a server without leases: it gets one from the upgrade on.
        assert running.lease_expires_at is not None
        assert (running.max_attempts, running.errors, running.result) == (3, [], None)
        # Every job joins the default queue, at priority 0, due when it was submitted.
        jobs = await all_jobs(store)
        assert {(j.queue, j.priority, j.run_at) for j in jobs} == {
            ("default", 0, datetime(2026, 1, 1, tzinfo=UTC))
        }
        now = datetime.now(UTC)
        stats = await store.stats(now)
        # The counters start from the rows: three jobs added, one finished.
        assert stats == stats_of(jobs, now, Totals(3, 1))
        assert list(stats.queues) == ["default"]
        assert stats.queues["default"].submitted == 1
        first = await claim(store, now)
        assert first is not None
        assert (first.job_id, first.data) == ("s", msgspec.Raw(b'{"n": 1}'))
        assert (await store.stats(now)).total == 3
    finally:
        await store.close()


async def test_sqlite_opens_a_file_the_first_release_wrote(tmp_path: Path) -> None:
    """tests/store/data/release-0.1.0.db: written by release 0.1.0's own code (schema 1; see
    make_release_file.py beside it): jobs in every state, two of them left running."""
    db = tmp_path / "queue.db"
    shutil.copyfile(Path(__file__).parent / "data" / "release-0.1.0.db", db)
    assert pragma(db, "user_version") == 1
    store = await opened(db)
    try:
        assert pragma(db, "user_version") == SCHEMA_VERSION
        jobs = await all_jobs(store)
        assert [(j.job_id, j.state) for j in jobs] == [
            ("old-0", JobState.SUCCEEDED),
            ("old-1", JobState.FAILED),
            ("old-2", JobState.RUNNING),
            ("old-3", JobState.RUNNING),
            ("old-4", JobState.SUBMITTED),
            ("old-5", JobState.SUBMITTED),
        ]
        assert jobs[1].data == msgspec.Raw(b'{"n":1,"tiny":0.5}')
        assert {(j.max_attempts, j.queue, j.priority) for j in jobs} == {(3, "default", 0)}
        assert [j.run_at for j in jobs] == [j.created_at for j in jobs]
        # The two a server without leases left running come back once their lease ends.
        assert all(j.lease_expires_at is not None for j in jobs if j.state == JobState.RUNNING)
        far = datetime.now(UTC) + timedelta(hours=1)
        assert await store.expire(far, EXPIRE) == 2
        order = [job.job_id for job in await store.claim(far, lease_seconds=60, limit=10)]
        assert order == ["old-2", "old-3", "old-4", "old-5"]  # each at its old place
        stats = await store.stats(far)
        assert stats == stats_of(await all_jobs(store), far, Totals(6, 2))
        assert (stats.total, stats.queues["default"].running) == (6, 4)
    finally:
        await store.close()


V2 = datetime(2026, 11, 1, tzinfo=UTC)
"""When release-0.2.0.db's jobs were submitted: v2-N at V2 + N seconds."""
V2_LATER = datetime(2100, 1, 1, tzinfo=UTC)
"""When its job retried with a backoff (v2-2) falls due: ahead of every run of this test."""


def v2(seconds: float) -> datetime:
    return V2 + timedelta(seconds=seconds)


@pytest.fixture
def release_0_2_0(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of tests/store/data/release-0.2.0.db, written by release 0.2.0's own code (schema
    2: leases and retries, no queues; see make_release_0_2_0_file.py beside it): jobs in every
    state, one retried with a backoff that has not ended, two running. With the leases its two
    running jobs hold, read from the file itself."""
    db = tmp_path / "queue.db"
    shutil.copyfile(DATA / "release-0.2.0.db", db)
    assert pragma(db, "user_version") == 2
    with contextlib.closing(sqlite3.connect(db)) as conn:
        leases = dict(conn.execute("SELECT job_id, lease_id FROM jobs WHERE state = 'running'"))
    assert set(leases) == {"v2-4", "v2-5"}
    return db, leases


async def test_sqlite_opens_a_file_the_previous_release_wrote(
    release_0_2_0: tuple[Path, dict[str, str]],
) -> None:
    db, _ = release_0_2_0
    store = await opened(db)
    try:
        assert pragma(db, "user_version") == SCHEMA_VERSION
        jobs = await all_jobs(store)
        submitted, running = JobState.SUBMITTED, JobState.RUNNING
        # Every job is there as the old release left it: state, attempts, due time, lease end.
        assert [
            (j.job_id, j.state, j.attempts, j.max_attempts, j.run_at, j.lease_expires_at)
            for j in jobs
        ] == [
            ("v2-0", JobState.SUCCEEDED, 1, 3, v2(0), None),
            ("v2-1", JobState.FAILED, 1, 1, v2(1), None),
            ("v2-2", submitted, 1, 3, V2_LATER, None),
            ("v2-3", submitted, 1, 3, v2(3), None),
            ("v2-4", running, 1, 3, v2(4), v2(120 + 3600)),
            ("v2-5", running, 1, 3, v2(5), v2(150 + 7200)),
            ("v2-6", submitted, 0, 3, v2(6), None),
            ("v2-7", submitted, 0, 3, v2(7), None),
        ]
        assert {(j.queue, j.priority) for j in jobs} == {("default", 0)}
        assert (jobs[0].result, jobs[0].finished_at) == (
            msgspec.Raw(b'{"ok": true, "n": 1.50}'),
            v2(61),
        )
        assert [(e.attempt, e.at, e.error) for e in jobs[1].errors] == [(1, v2(62), "bad input")]
        assert [e.error for e in jobs[2].errors] == ["try later"]
        assert [e.error for e in jobs[3].errors] == ["lease expired"]
        assert jobs[6].data == msgspec.Raw(b'{"n": 6, "tiny": 0.5}')

        now = v2(3600)
        stats = await store.stats(now)
        assert stats == stats_of(jobs, now, Totals(8, 2))
        assert stats.queues == {
            "default": QueueStats(
                submitted=4, running=2, succeeded=1, failed=1, oldest_due_age_seconds=3597.0
            )
        }
        assert await store.next_due(now) == V2_LATER
    finally:
        await store.close()


async def test_sqlite_a_file_the_previous_release_wrote_goes_on_working(
    release_0_2_0: tuple[Path, dict[str, str]],
) -> None:
    """Its leases, its scheduled job, and what issue 10 added, on its jobs."""
    db, leases = release_0_2_0
    store = await opened(db)
    now = v2(3600)
    try:
        # The running ones are still held, under the leases the old release handed out, with
        # the length each was last given.
        assert await store.expire(now, EXPIRE) == 0
        for job_id, length in (("v2-4", 3600), ("v2-5", 7200)):
            renewed = await store.heartbeat(job_id, leases[job_id], now, None)
            assert renewed.finish is Finish.APPLIED
            assert renewed.job is not None
            assert renewed.job.lease_expires_at == now + timedelta(seconds=length)
        done = await store.finish("v2-4", leases["v2-4"], Outcome(*TRANSITIONS[Event.SUCCEED]), now)
        assert done.finish is Finish.APPLIED

        # The scheduled one is not handed out before its time; the others are, in their order.
        claimed = await store.claim(now, lease_seconds=LEASE, limit=10)
        assert [(job.job_id, job.attempts) for job in claimed] == [
            ("v2-3", 2),
            ("v2-6", 1),
            ("v2-7", 1),
        ]

        # What issue 10 added works on the old jobs: cancel, retry, retention.
        (cancelled,) = await store.move(["v2-5"], ACTIONS[Action.CANCEL], now)
        assert cancelled.moved
        assert (await store.heartbeat("v2-5", leases["v2-5"], now, None)).finish is (
            Finish.LEASE_LOST
        )
        (retried,) = await store.move(["v2-1"], ACTIONS[Action.RETRY], now)
        assert retried.job is not None
        assert (retried.job.state, retried.job.max_attempts) == (JobState.SUBMITTED, 2)
        assert await store.prune(JobState.SUCCEEDED, now, 10) == 1  # v2-4 finished only now
        buried = await store.tombstone("v2-0")
        assert buried is not None
        assert (buried.state, buried.finished_at, buried.queue, buried.attempts) == (
            JobState.SUCCEEDED,
            v2(61),
            "default",
            1,
        )
        assert (buried.description_hash, buried.data_hash) == fingerprint("job 0", None)
        assert await store.get("v2-0") is None

        soon = now + timedelta(seconds=1)
        assert [job.job_id for job in await store.claim(soon, lease_seconds=LEASE, limit=10)] == [
            "v2-1"
        ]
        assert await store.claim(V2_LATER - timedelta(microseconds=1), lease_seconds=LEASE) == []
        (later,) = await store.claim(V2_LATER, lease_seconds=LEASE, limit=10)
        assert (later.job_id, later.attempts) == ("v2-2", 2)
        # v2-4 completed and v2-5 cancelled; v2-1's retry and v2-0's pruning change no counter.
        assert await store.stats(V2_LATER) == stats_of(
            await all_jobs(store), V2_LATER, Totals(8, 4)
        )
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        real = conn.execute("SELECT queue, state, count(*) FROM jobs GROUP BY 1, 2").fetchall()
        counted = conn.execute("SELECT queue, state, n FROM queue_counts WHERE n > 0").fetchall()
    assert (
        sorted(real)
        == sorted(counted)
        == [
            ("default", "failed", 1),  # v2-5, cancelled
            ("default", "running", 5),  # v2-1 (retried), v2-2, v2-3, v2-6, v2-7
            ("default", "succeeded", 1),  # v2-4; v2-0 was pruned
        ]
    )


async def test_sqlite_scheduled_jobs_falling_due_together_join_in_bounded_batches(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Thousands falling due at one moment must not hold one claim's lock while all of them
    # join: a claim lets in PROMOTE_BATCH (the earliest due), `promote` the rest in batches.
    monkeypatch.setattr(sqlite_store, "PROMOTE_BATCH", 10)
    store = await opened(db_path)
    try:
        await store.submit_many([new(f"j{n:02}", 0, run_at=100 + n % 7) for n in range(35)])
        late = at(200)
        first = await store.claim(late, lease_seconds=LEASE)
        assert [job.job_id for job in first] == ["j00"]  # the earliest due of the ten let in
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            ready = conn.execute("SELECT count(*) FROM jobs WHERE state = 'submitted' AND ready")
            assert ready.fetchone()[0] == 9
        assert await store.promote(late, 20) == 20
        assert await store.promote(late, 20) == 5
        assert await store.promote(late, 20) == 0
        assert len(await store.claim(late, lease_seconds=LEASE, limit=100)) == 34
    finally:
        await store.close()


async def test_sqlite_prune_keeps_a_job_retried_after_it_was_read(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Retention reads and fingerprints outside the write lock; a job retried in between is no
    # longer what was read, and stays.
    store = await opened(db_path)
    try:
        await store.submit_many([new("a", 0), new("b", 1)])
        for job_id in ("a", "b"):
            assert await claim(store, at(2)) is not None
            await finish(store, job_id, JobState.FAILED, at(3))
        real_read = store._read

        async def read_then_retry(work: Any) -> Any:
            found = await real_read(work)
            await store.move(["a"], ACTIONS[Action.RETRY], at(4))
            return found

        monkeypatch.setattr(store, "_read", read_then_retry)
        assert await store.prune(JobState.FAILED, at(10), 10) == 1
        monkeypatch.undo()
        assert await store.tombstone("a") is None
        kept = await store.get("a")
        assert kept is not None
        assert kept.state == JobState.SUBMITTED
        assert await store.tombstone("b") is not None
    finally:
        await store.close()
