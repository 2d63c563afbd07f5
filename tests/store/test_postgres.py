"""What only the PostgreSQL store promises, beside the contract every store keeps
(test_store_contract.py and the others run it on PostgreSQL too): a versioned schema that
servers starting together create once, exact counts under concurrent writers, a NOTIFY when a
job becomes available and a watcher that outlives its connection, the database's clock, a pool
that recovers from cut connections, byte-order ids as in SQLite, and texts PostgreSQL's ``text``
could not hold.

Each test runs in a schema of its own (tests/postgres.py: `postgres_url`), skipped
unless ``$SIMPLEQUEUE_TEST_POSTGRES`` names a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from simplequeue.errors import Unavailable
from simplequeue.models import STORE_TIMEOUT, JobState, StoredJob
from simplequeue.queue import ACTIONS, TRANSITIONS, Action, Event
from simplequeue.store import (
    NewJob,
    SqliteStore,
    Store,
    StoreUnusable,
    postgres_database,
)
from simplequeue.store.base import Finish, Outcome, Totals
from simplequeue.store.postgres import PostgresStore
from simplequeue.store.postgres_database import SCHEMA_VERSION, Q, SchemaTooNew
from tests.postgres import postgres_url
from tests.store.conftest import (
    LEASE,
    QUEUES,
    all_jobs,
    at,
    claim,
    new,
    stats_of,
)

pytestmark = pytest.mark.anyio

SUCCEEDS = TRANSITIONS[Event.SUCCEED]
SUCCEED = Outcome(*SUCCEEDS, result=b'{"ok": true}')
RETRY = Outcome(*TRANSITIONS[Event.RETRY], error="again", run_at=at(100))
EXPIRE = Outcome(*TRANSITIONS[Event.EXPIRE], error=Event.EXPIRE.value)
CANCEL, RETRY_ACTION = ACTIONS[Action.CANCEL], ACTIONS[Action.RETRY]
WAIT = 10.0
"""The most seconds a test waits for something the database does on its own."""


@pytest.fixture
def url(tmp_path: Path) -> str:
    return postgres_url(tmp_path)


@contextlib.asynccontextmanager
async def opened(url: str, timeout: float = STORE_TIMEOUT) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url, timeout=timeout)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def connect(url: str) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    """A connection of the test's own, in the store's schema."""
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for the database to get somewhere on its own (another session's lock wait, a
    backend exiting): there is no event to await across sessions, so look, boundedly."""
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"waited {WAIT}s for {what}"
        await asyncio.sleep(0.02)


async def scalar(
    conn: psycopg.AsyncConnection[tuple[Any, ...]], query: str, params: list[Any] | None = None
) -> Any:
    row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return row[0]


# -- the schema ---------------------------------------------------------------------------------


async def test_postgres_records_its_schema_version_and_reopening_keeps_the_jobs(url: str) -> None:
    async with opened(url) as store:
        await store.submit(new("kept", 0, "a job"))
    async with await connect(url) as conn:
        assert await scalar(conn, "SELECT version FROM sq_meta") == SCHEMA_VERSION
    async with opened(url) as store:  # found at its version: nothing runs again
        assert [job.job_id for job in await all_jobs(store)] == ["kept"]
        assert (await store.submit(new("kept", 1)))[1] is False
        assert await store.totals() == Totals(1, 0)


async def test_postgres_refuses_a_schema_newer_than_this_code_in_one_line(url: str) -> None:
    async with opened(url):
        pass
    async with await connect(url) as conn:
        await conn.execute("UPDATE sq_meta SET version = %s", [SCHEMA_VERSION + 1])
    with pytest.raises(SchemaTooNew) as refused:
        await PostgresStore(url).open()
    message = str(refused.value)
    assert "\n" not in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert message.endswith("upgrade simplequeue")


async def test_postgres_that_cannot_be_reached_is_one_line_naming_it_without_the_password() -> None:
    store = PostgresStore("postgresql://someone:s3cret@127.0.0.1:1/queues", timeout=1)
    with pytest.raises(StoreUnusable) as refused:
        await store.open()
    message = str(refused.value)
    assert "\n" not in message
    assert "127.0.0.1:1/queues" in message
    assert "s3cret" not in message


async def test_postgres_servers_starting_together_create_the_schema_once(url: str) -> None:
    """Three stores open at once on an empty schema while the test holds the migration lock:
    all three wait for it, then each finds what the first created."""
    async with await connect(url) as holder:
        async with holder.transaction():
            await holder.execute(Q["lock"])
            stores = [PostgresStore(url) for _ in range(3)]
            opening = [asyncio.create_task(store.open()) for store in stores]

            async def all_waiting() -> bool:
                waiting = await scalar(
                    holder,
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database"
                    "                 WHERE datname = current_database())"
                    " AND objid = hashtext('simplequeue:' || current_schema())::oid",
                )
                return bool(waiting == len(stores))

            await until(all_waiting, "the three stores to wait for the migration lock")
        await asyncio.gather(*opening)  # the lock is released: each runs or skips the migration
        try:
            await stores[0].submit(new("one", 0))
            for store in stores:
                assert [job.job_id for job in await all_jobs(store)] == ["one"]
            tables = await scalar(
                holder,
                "SELECT count(*) FROM pg_tables"
                " WHERE schemaname = current_schema() AND tablename = 'sq_jobs'",
            )
            assert tables == 1
            assert await scalar(holder, "SELECT version FROM sq_meta") == SCHEMA_VERSION
        finally:
            for store in stores:
                await store.close()


# -- counts under concurrent writers ------------------------------------------------------------


async def test_postgres_counts_stay_exact_under_concurrent_writers_from_two_stores(
    url: str,
) -> None:
    """Two stores (two pools, as two servers) submit, claim, finish, cancel, retry and prune
    at once; every count and total then equals a count of the jobs themselves."""
    async with opened(url) as first, opened(url) as second:

        async def writer(store: Store, name: str) -> tuple[int, int]:
            submitted = completed = 0
            for n in range(40):
                batch = [new(f"{name}-{n}-{k}", n, queue=QUEUES[k % 3]) for k in range(5)]
                submitted += sum(created for _, created in await store.submit_many(batch))
                for job in await store.claim(at(n), lease_seconds=LEASE, limit=3):
                    outcome = SUCCEED if n % 3 else RETRY
                    done = await store.finish(job.job_id, job.lease_id, outcome, at(n))
                    applied = done.finish is Finish.APPLIED  # (another writer may cancel it)
                    completed += applied and done.job is not None and done.job.state.finished
                (moved,) = await store.move([f"{name}-{n}-4"], CANCEL, at(n))
                completed += moved.moved
                if n % 5 == 0:
                    await store.move([f"{name}-{n - 5}-4"], RETRY_ACTION, at(n))
                    await store.prune(JobState.SUCCEEDED, at(n), 3)
            return submitted, completed

        done = await asyncio.gather(
            *(
                writer(store, f"{store_n}{k}")
                for store_n, store in enumerate((first, second))
                for k in range(3)
            )
        )
        ever = Totals(sum(s for s, _ in done), sum(c for _, c in done))
        now = at(1_000)
        for store in (first, second):
            assert await store.stats(now) == stats_of(await all_jobs(store), now, ever)
            assert await store.totals() == ever


# -- reads of an index, however many jobs there are --------------------------------------------


async def test_postgres_claims_and_stats_read_the_heads_of_their_indexes(url: str) -> None:
    """With thousands of jobs, finished, running, waiting and ready, in a common queue and a
    rare one, each hot statement's plan reads an index: never the whole table."""
    async with opened(url) as store, await connect(url) as conn:
        for batch in range(4):
            await store.submit_many(
                [
                    new(
                        f"{batch}-{n}",
                        0,
                        queue="rare" if n % 100 == 0 else "common",
                        run_at=None if n % 4 else 500,
                    )
                    for n in range(1000)
                ]
            )
        for job in await store.claim(at(1), lease_seconds=LEASE, limit=100):
            await store.finish(job.job_id, job.lease_id, SUCCEED, at(1))
        await store.claim(at(2), lease_seconds=LEASE, limit=100)
        await conn.execute("ANALYZE sq_jobs")
        params = {
            "now": at(3),
            "until": at(3),
            "limit": 10,
            "lease_seconds": LEASE,
            "lease_ids": ["lease"] * 10,
            "queues": ["rare"],
            "at": '"x"',
            "kept": 20,
            "then": "submitted",
            "otherwise": "failed",
            "error": None,
            "run_at": None,
        }
        expected = {
            postgres_database.CLAIM_ANY: "sq_jobs_ready",
            postgres_database.CLAIM_IN: "sq_jobs_ready_in",
            postgres_database.QUERIES["promote"]: "sq_jobs_waiting",
            postgres_database.QUERIES["next_due"]: "sq_jobs_waiting",
            postgres_database.QUERIES["stats"]: "sq_jobs_due",
            postgres_database.EXPIRE: "sq_jobs_leases",
        }
        for query, index in expected.items():
            plan = "\n".join(
                row[0] for row in await (await conn.execute("EXPLAIN " + query, params)).fetchall()
            )
            assert f"using {index} on sq_jobs" in plan, plan
            assert "Seq Scan on sq_jobs" not in plan, plan


# -- notifications and the watcher ---------------------------------------------------------------


async def test_postgres_notifies_exactly_when_a_change_makes_a_job_available(url: str) -> None:
    """Each change is followed by a marker on the channel: what arrives before the marker is
    what the change sent (notifications arrive in commit order)."""
    async with opened(url) as store, await connect(url) as listener, await connect(url) as marker:
        channel = await scalar(listener, "SELECT sq_channel()")
        await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        async with contextlib.aclosing(listener.notifies(timeout=WAIT)) as notifies:

            async def sent(change: Awaitable[object]) -> int:
                """How many store notifications ``change`` sent."""
                await change
                await marker.execute("SELECT pg_notify(%s, 'marker')", [channel])
                count = 0
                async for notify in notifies:
                    if notify.payload == "marker":
                        return count
                    count += 1
                raise AssertionError("the marker never came")

            assert await sent(store.submit(new("later", 0, run_at=50))) == 0  # scheduled ahead
            assert await sent(store.submit(new("now", 0))) == 1
            assert await sent(store.submit_many([new(f"b{n}", 0) for n in range(3)])) == 1
            (job,) = await store.claim(at(1), lease_seconds=LEASE, limit=1)
            assert await sent(store.claim(at(1), lease_seconds=LEASE, limit=3)) == 0
            assert await sent(store.release(job.job_id, job.lease_id)) == 1
            (job,) = await store.claim(at(2), lease_seconds=LEASE, limit=1)
            retry = store.finish(job.job_id, job.lease_id, RETRY, at(2))
            assert await sent(retry) == 0  # due after its backoff
            assert await sent(store.promote(at(49), 10)) == 0
            assert await sent(store.promote(at(200), 10)) == 1  # "later" and the retried one
            jobs = await store.claim(at(200), lease_seconds=LEASE, limit=10)
            assert await sent(store.finish(jobs[0].job_id, jobs[0].lease_id, SUCCEED, at(200))) == 0
            assert await sent(store.move([jobs[1].job_id], CANCEL, at(200))) == 0
            assert await sent(store.move([jobs[1].job_id], RETRY_ACTION, at(201))) == 1
            assert await sent(store.expire(at(0), EXPIRE)) == 0  # no lease has ended
            assert await sent(store.expire(at(1 + LEASE), EXPIRE)) == 1  # the b jobs' leases


async def test_postgres_watch_wakes_on_a_submit_to_another_store(url: str) -> None:
    woken = asyncio.Event()
    async with opened(url) as waiting, opened(url) as submitting:
        watching = asyncio.create_task(waiting.watch(woken.set))
        try:
            await asyncio.wait_for(woken.wait(), WAIT)  # listening (it wakes once connected)
            woken.clear()
            await submitting.submit(new("wake", 0, run_at=60))  # not due: nobody to wake
            await submitting.submit(new("up", 0))
            await asyncio.wait_for(woken.wait(), WAIT)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching


async def test_postgres_watch_reconnects_after_its_connection_is_cut(tmp_path: Path) -> None:
    app = f"sq-test-{uuid.uuid4().hex[:12]}"  # the watching store's connections, of all
    url = postgres_url(tmp_path)
    woken = asyncio.Event()
    async with (
        opened(make_conninfo(url, application_name=app)) as waiting,
        opened(url) as submitting,
        await connect(url) as admin,
    ):

        async def backends() -> set[int]:
            query = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            return {pid for (pid,) in await (await admin.execute(query, [app])).fetchall()}

        watching = asyncio.create_task(waiting.watch(woken.set))
        try:
            await asyncio.wait_for(woken.wait(), WAIT)  # listening
            cut = await backends()
            woken.clear()
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", [list(cut)]
            )
            await asyncio.wait_for(woken.wait(), WAIT)  # cut: waiting workers look themselves

            async def listening_again() -> bool:
                return bool(await backends() - cut)  # (only the watcher connects by itself)

            await until(listening_again, "the watcher to connect again")
            await asyncio.wait_for(woken.wait(), WAIT)  # connected: it wakes them once more
            woken.clear()
            await submitting.submit(new("after", 0))
            await asyncio.wait_for(woken.wait(), WAIT)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching


# -- the clock ----------------------------------------------------------------------------------


async def test_postgres_now_is_the_database_clock_whatever_this_machine_says(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    skew = timedelta(hours=-1, seconds=-7)
    monkeypatch.setattr(postgres_database, "_local_now", lambda: datetime.now(UTC) + skew)
    async with opened(url) as store, await connect(url) as conn:
        there = await scalar(conn, "SELECT clock_timestamp()")
        assert isinstance(there, datetime)
        assert abs(store.now() - there) < timedelta(seconds=1)
        # The leases it hands out end by the database's clock too, given the store's now.
        await store.submit(new("timed", 0))
        (job,) = await store.claim(store.now(), lease_seconds=LEASE)
        assert job.lease_expires_at is not None
        remaining = job.lease_expires_at - there
        assert timedelta(seconds=LEASE - 1) < remaining < timedelta(seconds=LEASE + 1)


# -- unavailable, then working again ----------------------------------------------------------


async def test_postgres_pool_recovers_after_its_connections_are_killed(tmp_path: Path) -> None:
    app = f"sq-test-{uuid.uuid4().hex[:12]}"  # its connections, of all on the server
    url = make_conninfo(postgres_url(tmp_path), application_name=app)
    async with opened(url) as store, await connect(url) as admin:
        await store.submit(new("before", 0))
        cut = await (
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND pid <> pg_backend_pid()",
                [app],
            )
        ).fetchall()
        assert cut

        async def gone() -> bool:
            left = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            return bool(await scalar(admin, left, [app]) == 1)  # only this connection

        await until(gone, "the killed connections to end")
        with pytest.raises(Unavailable, match="PostgreSQL is unavailable"):
            await store.get("before")
        await store.submit(new("after", 1))  # a new connection: works, and lost nothing
        assert [job.job_id for job in await all_jobs(store)] == ["before", "after"]


async def test_postgres_a_call_waiting_longer_than_the_timeout_is_unavailable(url: str) -> None:
    async with opened(url, timeout=1) as store, await connect(url) as holder:
        await store.submit(new("held", 0))
        job = await claim(store, at(1))
        assert job is not None
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM sq_jobs WHERE job_id = 'held' FOR UPDATE")
            with pytest.raises(Unavailable, match="did not answer within 1s"):
                await store.finish(job.job_id, job.lease_id, SUCCEED, at(2))
        done = await store.finish(job.job_id, job.lease_id, SUCCEED, at(3))
        assert done.finish is Finish.APPLIED


async def test_postgres_an_id_pruned_while_it_is_submitted_again_stays_pruned(url: str) -> None:
    """A submit that waits on the row being pruned (its INSERT meets the id, then the id is
    gone) must find the tombstone, not queue the job again: the trigger sees the tombstone and
    the store runs the submit again."""
    async with opened(url) as store, await connect(url) as pruner:
        await store.submit(new("old", 0))
        job = await claim(store, at(1))
        assert job is not None
        await store.finish(job.job_id, job.lease_id, SUCCEED, at(2))
        async with pruner.transaction():
            await pruner.execute(
                "INSERT INTO sq_tombstones SELECT job_id, queue, priority, max_attempts, NULL,"
                " NULL, state, created_at, finished_at, attempts FROM sq_jobs"
                " WHERE job_id = 'old'"
            )
            await pruner.execute("DELETE FROM sq_jobs WHERE job_id = 'old'")
            again = asyncio.create_task(store.submit(new("old", 3)))

            async def blocked() -> bool:
                locked = (
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO sq_jobs%'"
                    " AND datname = current_database()"
                )
                # pg_stat_activity is read once per transaction and kept: look afresh.
                await pruner.execute("SELECT pg_stat_clear_snapshot()")
                return bool(await scalar(pruner, locked))

            await until(blocked, "the submit to wait for the pruning transaction")
        stored, created = await again
        assert created is False
        assert stored.job_id == "old"
        assert not isinstance(stored, StoredJob)  # the tombstone
        assert await store.get("old") is None


# -- ids in byte order, and texts text cannot hold -----------------------------------------------

IDS = [
    "a",
    "B",
    "é",
    "a-",
    "a_",
    "ab",
    "A",
    "b",
    "e\u0301",
    "a%",
    "a\\",
    "~",
    "ÿ",
    "\uffff",
    "😀",
    "\U0010ffff",
    "\U0010ffffz",
    "a\U0010ffff",
]
PREFIXES = [
    "",
    "a",
    "a-",
    "a_",
    "a%",
    "B",
    "b",
    "é",
    "e",
    "ÿ",
    "\uffff",
    "\U0010ffff",
    "a\U0010ffff",
]


async def test_postgres_prefixes_and_id_order_are_byte_order_as_in_sqlite(
    url: str, tmp_path: Path
) -> None:
    sqlite = SqliteStore(str(tmp_path / "queue.db"))
    await sqlite.open()
    try:
        async with opened(url) as postgres:
            for store in (sqlite, postgres):
                await store.submit_many([new(job_id, n) for n, job_id in enumerate(IDS)])
            for prefix in PREFIXES:
                expected = [job_id for job_id in IDS if job_id.startswith(prefix)]
                for store in (sqlite, postgres):
                    for newest_first in (False, True):
                        page = await store.list_jobs(
                            (), 100, None, prefix=prefix, newest_first=newest_first
                        )
                        order = expected[::-1] if newest_first else expected
                        assert [job.job_id for job in page] == order, (store, prefix)
            # Pruned, the ids are exported in the same byte order by both.
            for store in (sqlite, postgres):
                jobs = await store.claim(at(100), lease_seconds=LEASE, limit=len(IDS))
                for job in jobs:
                    await store.finish(job.job_id, job.lease_id, SUCCEED, at(100))
                assert await store.prune(JobState.SUCCEEDED, at(200), len(IDS)) == len(IDS)
            exported = [
                [t.job_id for t in await store.export_tombstones(None, 100)]
                for store in (sqlite, postgres)
            ]
            assert exported[0] == exported[1] == sorted(IDS, key=lambda i: i.encode())
    finally:
        await sqlite.close()


async def test_postgres_keeps_a_nul_in_a_description_data_result_and_errors(url: str) -> None:
    """PostgreSQL's text cannot hold U+0000: a description keeps it all the same, and data,
    results and errors keep the exact text sent (JSON escapes it)."""
    data = b'{"nul": "\\u0000", "n": 1.50}'
    result = b'["\\u0000", 1.50]'
    cancel = dataclasses.replace(CANCEL, error="cancelled\x00by an operator")
    async with opened(url) as store:
        await store.submit(NewJob("nul", "before\x00after", data, at(0)))
        job = await claim(store, at(1))
        assert job is not None
        retry = Outcome(*TRANSITIONS[Event.RETRY], error="first\x00line", run_at=at(2))
        await store.finish(job.job_id, job.lease_id, retry, at(1))
        job = await claim(store, at(3))
        assert job is not None
        await store.finish(job.job_id, job.lease_id, Outcome(*SUCCEEDS, result=result), at(4))
        await store.submit(NewJob("cancelled", None, None, at(5)))
        await store.move(["cancelled"], cancel, at(6))

        done = await store.get("nul")
        assert done is not None
        assert done.description == "before\x00after"
        assert done.data is not None
        assert bytes(done.data) == data
        assert done.result is not None
        assert bytes(done.result) == result
        assert [error.error for error in done.errors] == ["first\x00line"]
        cancelled = await store.get("cancelled")
        assert cancelled is not None
        assert [error.error for error in cancelled.errors] == ["cancelled\x00by an operator"]


async def test_postgres_a_read_only_database_is_unavailable_not_an_error(url: str) -> None:
    """After a failover onto a standby, writes are refused as a read-only transaction: that is
    "not now" (503, try again), never a raw database error (500)."""
    async with opened(url):
        pass  # the schema, made while the database was writable
    read_only = make_conninfo(url, options=f"{conninfo_to_dict(url)['options']} "
                              "-c default_transaction_read_only=on")  # fmt: skip
    async with opened(read_only) as store:
        with pytest.raises(Unavailable):
            await store.submit(new("refused", 0))
        assert await store.get("refused") is None  # reads still work


async def test_postgres_a_call_gives_up_at_its_deadline_and_changes_nothing(url: str) -> None:
    """One deadline for the whole call (its statements and retries), as SQLite keeps: a claim
    stuck behind another session's lock is answered `Unavailable` by then, and rolled back, so
    it can never commit after its worker stopped waiting."""
    async with opened(url, timeout=1.0) as store, await connect(url) as locker:
        await store.submit(new("stuck", 0))
        async with locker.transaction():
            await locker.execute("LOCK TABLE sq_counts IN EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await store.claim(at(1), lease_seconds=LEASE)
            waited = time.monotonic() - started
        assert waited < 1.0 + 0.5  # the deadline, plus the server's cancel
        stored = await store.get("stuck")
        assert stored is not None
        assert stored.state == JobState.SUBMITTED


async def test_postgres_warns_at_open_when_autovacuum_is_off(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever this machine's setting is, the warning is given exactly when it is off."""
    async with await connect(url) as conn:
        autovacuum = await scalar(conn, "SELECT current_setting('autovacuum')")
    with caplog.at_level(logging.WARNING, logger="simplequeue.store"):
        async with opened(url):
            pass
    warned = [r.getMessage() for r in caplog.records if "autovacuum off" in r.getMessage()]
    assert len(warned) == (autovacuum != "on")
