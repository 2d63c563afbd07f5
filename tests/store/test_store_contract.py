"""One contract for every storage backend: what the queue relies on a store to do.

The same tests run against the in-memory store, SQLite on a file and SQLite in memory (the
`store` fixture, tests/store/conftest.py). Queues, priorities, scheduled jobs, an operator's
moves and retention are in test_store_operations.py; what only SQLite promises (WAL, schema
version and migrations, durability setting, cheap counts) in test_sqlite.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from simplequeue.errors import Unavailable
from simplequeue.models import ClaimedJob, JobState, StoredJob
from simplequeue.queue import ACTIONS, TRANSITIONS, Action, Event
from simplequeue.store import NewJob, SqliteStore, Store, UnknownCursor
from simplequeue.store.base import Ending, Finish, Finished, Outcome, Totals
from tests.store.conftest import (
    BACKENDS,
    LEASE,
    QUEUES,
    SQLITE_BACKENDS,
    T0,
    all_jobs,
    as_stored,
    at,
    claim,
    finish,
    new,
    random_operations,
    stats_of,
    text,
)

pytestmark = pytest.mark.anyio


# -- submit ---------------------------------------------------------------------------------


async def test_a_description_with_u0000_is_kept_whole(store: Store) -> None:
    # A description may hold any character the API lets through, U+0000 included; a store
    # must not end it there (SQLite's JSON functions did).
    answers = await store.submit_many(
        [new("nul", 0, "a\x00b"), new("nul", 0, "c\x00d"), new("plain", 0, "\x00")]
    )
    assert [made for _, made in answers] == [True, False, True]
    assert [getattr(job, "description", None) for job, _ in answers] == ["a\x00b"] * 2 + ["\x00"]
    stored = await store.get("nul")
    assert getattr(stored, "description", None) == "a\x00b"


async def test_submit_inserts_a_new_job_as_submitted(store: Store) -> None:
    data = {"n": 1, "f": 1.0, "b": True, "nested": {"list": [1, "two", None]}, "text": "é😀"}
    job, created = await store.submit(new("j1", 0, "first", data))
    assert created is True
    assert job == StoredJob(
        job_id="j1",
        description="first",
        data=msgspec.Raw(text(data)),
        state=JobState.SUBMITTED,
        queue="default",
        priority=0,
        run_at=T0,
        created_at=T0,
        started_at=None,
        finished_at=None,
        attempts=0,
        max_attempts=3,
        lease_expires_at=None,
        result=None,
        errors=[],
    )
    stored = await store.get("j1")
    assert stored == job
    assert stored is not None
    # The text is kept as it was sent, so JSON types survive: 1.0 stays a float, True a bool.
    assert stored.data is not None
    assert bytes(stored.data) == text(data)
    decoded = msgspec.json.decode(stored.data)
    assert type(decoded["f"]) is float
    assert type(decoded["b"]) is bool
    assert stored.created_at.utcoffset() == timedelta(0)


async def test_submit_of_a_known_id_inserts_nothing_and_returns_the_stored_job(
    store: Store,
) -> None:
    first, _ = await store.submit(new("j1", 0, "original", {"a": 1}))
    again, created = await store.submit(new("j1", 5, "other", {"a": 2}))
    assert created is False
    assert again == first
    assert [j.job_id for j in await all_jobs(store)] == ["j1"]
    assert (await store.stats(at(1_000))).total == 1


async def test_resubmitting_a_running_or_finished_job_does_not_requeue_it(store: Store) -> None:
    await store.submit(new("j1", 0))
    await store.submit(new("j2", 1))
    await claim(store, at(2))
    await finish(store, "j1", JobState.SUCCEEDED, at(3))
    await claim(store, at(4))
    for job_id in ("j1", "j2"):
        job, created = await store.submit(new(job_id, 9))
        assert created is False
        assert job.state != JobState.SUBMITTED
    assert await claim(store, at(10)) is None


async def test_optional_fields_are_stored_as_null(store: Store) -> None:
    job, _ = await store.submit(new("bare", 0))
    assert isinstance(job, StoredJob)
    assert job.description is None
    assert job.data is None
    assert await store.get("bare") == job


# -- next -----------------------------------------------------------------------------------


async def test_next_is_none_when_nothing_is_submitted(store: Store) -> None:
    assert await claim(store, at(0)) is None


async def test_next_claims_in_submission_order_not_id_order(store: Store) -> None:
    order = ["m", "b", "z", "a", "10", "9"]
    for n, job_id in enumerate(order):
        await store.submit(new(job_id, n))
    claimed = []
    while (job := await claim(store, at(100))) is not None:
        claimed.append(job.job_id)
    assert claimed == order


async def test_next_marks_the_job_running_with_start_time_and_one_attempt(store: Store) -> None:
    await store.submit(new("j1", 0, "d", {"k": "v"}))
    job = await claim(store, at(7))
    assert job is not None
    assert (job.job_id, job.state, job.started_at, job.attempts) == (
        "j1",
        JobState.RUNNING,
        at(7),
        1,
    )
    assert (job.description, job.data, job.created_at, job.finished_at) == (
        "d",
        msgspec.Raw(text({"k": "v"})),
        T0,
        None,
    )
    assert job.lease_expires_at == at(7 + LEASE)
    assert len(job.lease_id) >= 16  # unguessable: 18 random bytes
    assert await store.get("j1") == as_stored(job)
    assert await claim(store, at(8)) is None


# -- complete -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED])
async def test_complete_finishes_a_running_job(store: Store, state: JobState) -> None:
    await store.submit(new("j1", 0))
    running = await claim(store, at(1))
    done = await finish(store, "j1", state, at(2))
    assert done.finish is Finish.APPLIED
    job = done.job
    assert job is not None
    assert running is not None
    assert job.state == state
    assert job.finished_at == at(2)
    assert (job.started_at, job.attempts) == (running.started_at, 1)
    assert await store.get("j1") == job


async def test_complete_leaves_a_submitted_job_alone(store: Store) -> None:
    submitted, _ = await store.submit(new("j1", 0))
    assert isinstance(submitted, StoredJob)
    assert await finish(store, "j1", JobState.SUCCEEDED, at(1)) == Finished(
        Finish.NOT_RUNNING, submitted
    )
    assert await store.get("j1") == submitted
    assert (await claim(store, at(2))) is not None  # still in the queue


@pytest.mark.parametrize("second", [JobState.SUCCEEDED, JobState.FAILED])
async def test_complete_never_changes_a_finished_job(store: Store, second: JobState) -> None:
    await store.submit(new("j1", 0))
    await claim(store, at(1))
    finished = (await finish(store, "j1", JobState.SUCCEEDED, at(2))).job
    assert await finish(store, "j1", second, at(3)) == Finished(Finish.NOT_RUNNING, finished)
    assert await store.get("j1") == finished


async def test_complete_of_an_unknown_job_is_none(store: Store) -> None:
    assert await finish(store, "nope", JobState.FAILED, at(0)) == Finished(Finish.UNKNOWN, None)
    assert (await store.stats(at(1_000))).total == 0


async def test_get_of_an_unknown_job_is_none(store: Store) -> None:
    await store.submit(new("j1", 0))
    assert await store.get("j2") is None
    assert await store.get("J1") is None


# -- list_jobs ------------------------------------------------------------------------------


async def seed_mixed(store: Store) -> None:
    """j0..j5 in that order: j0 succeeded, j1 failed, j2 running, j3-j5 submitted."""
    for n in range(6):
        await store.submit(new(f"j{n}", n))
    for _ in range(3):
        await claim(store, at(10))
    await finish(store, "j0", JobState.SUCCEEDED, at(11))
    await finish(store, "j1", JobState.FAILED, at(11))


async def test_list_jobs_in_submission_order(store: Store) -> None:
    for n, job_id in enumerate(["c", "a", "b"]):
        await store.submit(new(job_id, n))
    assert [j.job_id for j in await store.list_jobs((), 100, None)] == ["c", "a", "b"]


async def test_list_jobs_limit_and_after(store: Store) -> None:
    await seed_mixed(store)
    ids = [f"j{n}" for n in range(6)]
    assert [j.job_id for j in await store.list_jobs((), 2, None)] == ids[:2]
    assert [j.job_id for j in await store.list_jobs((), 2, "j1")] == ids[2:4]
    assert [j.job_id for j in await store.list_jobs((), 100, "j3")] == ids[4:]
    assert await store.list_jobs((), 100, "j5") == []


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ((JobState.SUBMITTED,), ["j3", "j4", "j5"]),
        ((JobState.RUNNING,), ["j2"]),
        ((JobState.SUCCEEDED, JobState.FAILED), ["j0", "j1"]),
        ((JobState.FAILED, JobState.SUBMITTED), ["j1", "j3", "j4", "j5"]),
        (tuple(JobState), [f"j{n}" for n in range(6)]),
    ],
)
async def test_list_jobs_filters_by_state(
    store: Store, states: tuple[JobState, ...], expected: list[str]
) -> None:
    await seed_mixed(store)
    jobs = await store.list_jobs(states, 100, None)
    assert [j.job_id for j in jobs] == expected
    assert all(j.state in states for j in jobs)


async def test_list_jobs_states_limit_and_after_combine(store: Store) -> None:
    await seed_mixed(store)
    # The cursor may be a job outside the filter: the page starts after it all the same.
    page = await store.list_jobs((JobState.SUBMITTED,), 2, "j0")
    assert [j.job_id for j in page] == ["j3", "j4"]
    page = await store.list_jobs((JobState.SUBMITTED,), 2, "j4")
    assert [j.job_id for j in page] == ["j5"]


async def test_list_jobs_after_an_unknown_id_raises_unknown_cursor(store: Store) -> None:
    await store.submit(new("j1", 0))
    with pytest.raises(UnknownCursor):
        await store.list_jobs((), 10, "nope")


# -- stats ----------------------------------------------------------------------------------


async def test_stats_of_an_empty_store(store: Store) -> None:
    stats = await store.stats(at(1_000))
    assert (stats.submitted, stats.running, stats.succeeded, stats.failed, stats.total) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert stats.queues == {}


async def test_stats_count_jobs_per_state(store: Store) -> None:
    await seed_mixed(store)
    stats = await store.stats(at(1_000))
    assert (stats.submitted, stats.running, stats.succeeded, stats.failed, stats.total) == (
        3,
        1,
        1,
        1,
        6,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_stats_match_the_jobs_after_random_operations(store: Store, seed: int) -> None:
    totals = await random_operations(store, seed)
    jobs = await all_jobs(store)
    assert len({job.job_id for job in jobs}) == len(jobs) > 0
    assert len({job.queue for job in jobs}) > 1
    # Just after the last step, once the jobs scheduled ahead are due, and long after.
    for now in (at(400), at(431), at(5_000)):
        assert await store.stats(now) == stats_of(jobs, now, totals)


async def test_totals_count_every_job_ever_submitted_and_completed(store: Store) -> None:
    assert await store.totals() == Totals(0, 0)
    await seed_mixed(store)  # j0 succeeded, j1 failed, j2 running, j3-j5 submitted
    assert await store.totals() == Totals(6, 2)
    _, created = await store.submit(new("j0", 12))
    assert created is False
    assert await store.totals() == Totals(6, 2)  # a repeated submit adds no job

    # Back to submitted is no completion: a retry with attempts left, an operator's retry.
    retry = Outcome(*TRANSITIONS[Event.RETRY], error="boom", run_at=at(13))
    assert (await store.finish("j2", None, retry, at(13))).finish is Finish.APPLIED
    (retried,) = await store.move(["j1"], ACTIONS[Action.RETRY], at(13))
    assert retried.moved
    assert await store.totals() == Totals(6, 2)

    # A cancel completes a job, and so does an expiry with no attempts left.
    (cancelled,) = await store.move(["j3"], ACTIONS[Action.CANCEL], at(14))
    assert cancelled.moved
    await store.submit(new("once", 15, queue="other", max_attempts=1))
    assert await claim(store, at(15), ("other",)) is not None
    expiry = Outcome(*TRANSITIONS[Event.EXPIRE], error="lease expired")
    assert await store.expire(at(15 + LEASE), expiry) == 1
    assert (await store.get("once")) is not None
    assert await store.totals() == Totals(7, 4)

    # The job retried by the operator completes again, and counts again.
    claimed = await store.claim(at(20), lease_seconds=LEASE, limit=10)
    assert "j1" in {job.job_id for job in claimed}
    assert (await finish(store, "j1", JobState.SUCCEEDED, at(21))).finish is Finish.APPLIED
    assert await store.totals() == Totals(7, 5)

    # Retention deletes jobs, never counts.
    assert await store.prune(JobState.FAILED, at(1_000), 10) == 2
    assert await store.prune(JobState.SUCCEEDED, at(1_000), 10) == 2
    stats = await store.stats(at(1_000))
    assert (stats.total, stats.submitted_ever, stats.completed_ever) == (3, 7, 5)
    assert await store.totals() == Totals(7, 5)


# -- two stores on one storage, as two servers have -----------------------------------------

# Backends whose instances cannot share their jobs: two of them are two queues, not two servers
# on one queue. Every other backend (SQLite on a file, PostgreSQL) runs the tests below.
PRIVATE_STORAGE = {
    "memory": "a MemoryStore's jobs live in that one object; a second instance is another queue",
    "sqlite-memory": "each ':memory:' connection is a database of its own",
}

SHARED_JOBS = 400
CLAIMERS_PER_STORE = 8


@pytest.fixture(params=list(BACKENDS))
async def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, Store]]:
    """Two instances of the backend over the same storage, each with its own connection (and,
    for SQLite, its own thread), as two `sq serve` processes on one database have."""
    if reason := PRIVATE_STORAGE.get(request.param):
        pytest.skip(f"{request.param}: {reason}")
    first, second = BACKENDS[request.param](tmp_path), BACKENDS[request.param](tmp_path)
    await first.open()
    try:
        await second.open()
        try:
            yield first, second
        finally:
            await second.close()
    finally:
        await first.close()


async def claim_until_empty(
    store: Store, queues: tuple[str, ...] = ()
) -> list[tuple[str, JobState, int]]:
    """Claim (from ``queues``: any when empty) until nothing is left; each claim as (job id,
    state, attempts)."""
    claimed: list[tuple[str, JobState, int]] = []
    for _ in range(SHARED_JOBS + 1):  # bounded: one more round than there are jobs
        job = await claim(store, at(1_000), queues)
        if job is None:
            return claimed
        claimed.append((job.job_id, job.state, job.attempts))
    raise AssertionError(f"{store} handed out more jobs than were submitted")


async def test_two_stores_on_one_storage_hand_each_job_out_exactly_once(
    two_stores: tuple[Store, Store],
) -> None:
    first, second = two_stores
    job_ids = [f"shared-{n:04}" for n in range(SHARED_JOBS)]
    for n, job_id in enumerate(job_ids):  # half submitted through each store
        # In three queues and priorities; a quarter scheduled ahead, due by the claims' time.
        run_at = n + 600 if n % 4 == 0 else None
        job = new(job_id, n, queue=QUEUES[n % 3], priority=n % 5 - 2, run_at=run_at)
        await (first if n % 2 else second).submit(job)

    # Most claimers take any queue; some one queue each (both stores make scheduled jobs due).
    named = [(), (), (QUEUES[0],), (QUEUES[1],)]
    claimers = [
        claim_until_empty(store, named[n % len(named)])
        for store in (first, second)
        for n in range(CLAIMERS_PER_STORE)
    ]
    claimed = [job for batch in await asyncio.gather(*claimers) for job in batch]

    handed_out = Counter(job_id for job_id, _, _ in claimed)
    assert [job_id for job_id, times in handed_out.items() if times > 1] == []  # none twice
    assert sorted(handed_out) == job_ids  # none lost
    assert {(state, attempts) for _, state, attempts in claimed} == {(JobState.RUNNING, 1)}
    for store in (first, second):  # both see the same, final state
        assert await claim(store, at(2_000)) is None
        stats = await store.stats(at(1_000))
        assert (stats.submitted, stats.running, stats.total) == (0, SHARED_JOBS, SHARED_JOBS)
        assert await store.totals() == Totals(SHARED_JOBS, 0)  # counted once, seen by both


# -- leases, retries and results (CONTRACT §7) ------------------------------------------------

SUCCEED = Outcome(JobState.SUCCEEDED, JobState.SUCCEEDED, result=b'{"ok": 1e-400}')
RETRY = Outcome(JobState.SUBMITTED, JobState.FAILED, error="boom", run_at=at(100))
EXPIRE = Outcome(JobState.SUBMITTED, JobState.FAILED, error="lease expired")


async def claimed(store: Store, job_id: str, now: float = 1, max_attempts: int = 3) -> ClaimedJob:
    await store.submit(NewJob(job_id, None, None, at(0), max_attempts))
    job = await claim(store, at(now))
    assert job is not None
    assert job.job_id == job_id
    return job


async def test_claim_hands_out_up_to_limit_each_with_its_own_lease(store: Store) -> None:
    for n in range(5):
        await store.submit(new(f"j{n}", n))
    jobs = await store.claim(at(10), lease_seconds=30, limit=3)
    assert [job.job_id for job in jobs] == ["j0", "j1", "j2"]
    assert len({job.lease_id for job in jobs}) == 3
    assert {job.lease_expires_at for job in jobs} == {at(40)}
    assert await store.claim(at(10), lease_seconds=30, limit=3) != []  # j3, j4 remain


async def test_finish_under_the_current_lease_applies_and_keeps_the_result_text(
    store: Store,
) -> None:
    job = await claimed(store, "j1")
    done = await store.finish("j1", job.lease_id, SUCCEED, at(2))
    assert done.finish is Finish.APPLIED
    assert done.job is not None
    assert (done.job.state, done.job.finished_at, done.job.lease_expires_at) == (
        JobState.SUCCEEDED,
        at(2),
        None,
    )
    assert done.job.result == msgspec.Raw(b'{"ok": 1e-400}')
    # The same lease again: a repeat, nothing changes; another lease: lost.
    assert await store.finish("j1", job.lease_id, SUCCEED, at(3)) == Finished(
        Finish.ALREADY_APPLIED, done.job
    )
    assert await store.finish("j1", "not-the-lease", SUCCEED, at(3)) == Finished(
        Finish.LEASE_LOST, done.job
    )
    assert await store.get("j1") == done.job


async def test_a_stale_lease_changes_nothing(store: Store) -> None:
    job = await claimed(store, "j1")
    before = await store.get("j1")
    for call in (
        store.finish("j1", "stale", SUCCEED, at(2)),
        store.heartbeat("j1", "stale", at(2), None),
    ):
        assert await call == Finished(Finish.LEASE_LOST, before)
    assert await store.get("j1") == before == as_stored(job)


async def test_heartbeat_renews_the_lease_for_its_own_length_or_the_one_asked(
    store: Store,
) -> None:
    job = await claimed(store, "j1")
    renewed = await store.heartbeat("j1", job.lease_id, at(30), None)
    assert renewed.finish is Finish.APPLIED
    assert isinstance(renewed.job, ClaimedJob)
    assert (renewed.job.lease_id, renewed.job.lease_expires_at) == (job.lease_id, at(30 + LEASE))
    longer = await store.heartbeat("j1", job.lease_id, at(40), 600)
    assert longer.job is not None
    assert longer.job.lease_expires_at == at(640)
    # The asked length becomes the lease's own: the next plain heartbeat keeps it.
    again = await store.heartbeat("j1", job.lease_id, at(50), None)
    assert again.job is not None
    assert again.job.lease_expires_at == at(650)
    assert await store.heartbeat("nope", "x", at(1), None) == Finished(Finish.UNKNOWN, None)


async def test_retry_requeues_at_its_place_due_later_with_the_error(store: Store) -> None:
    job = await claimed(store, "j1")
    await store.submit(new("j2", 1))
    done = await store.finish("j1", job.lease_id, RETRY, at(2))
    assert done.job is not None
    assert (done.job.state, done.job.finished_at, done.job.attempts) == (
        JobState.SUBMITTED,
        None,
        1,
    )
    assert [(e.attempt, e.at, e.error) for e in done.job.errors] == [(1, at(2), "boom")]
    assert await store.next_due(at(2)) == at(100)  # j2 is due already; j1 only at 100
    second = await claim(store, at(50))
    assert second is not None
    assert second.job_id == "j2"  # j1 is not due before 100
    third = await claim(store, at(100))
    assert third is not None
    assert (third.job_id, third.attempts) == ("j1", 2)  # due, and first in submission order


async def test_retry_with_no_attempts_left_fails_for_good(store: Store) -> None:
    job = await claimed(store, "j1", max_attempts=1)
    done = await store.finish("j1", job.lease_id, RETRY, at(2))
    assert done.job is not None
    assert (done.job.state, done.job.finished_at) == (JobState.FAILED, at(2))
    assert await claim(store, at(200)) is None


async def test_expire_takes_back_ended_leases_only(store: Store) -> None:
    old = await claimed(store, "old", now=0)
    young = await claimed(store, "young", now=30)
    assert await store.expire(at(LEASE - 1), EXPIRE) == 0
    assert await store.expire(at(LEASE), EXPIRE) == 1
    back = await store.get("old")
    assert back is not None
    assert (back.state, back.lease_expires_at) == (JobState.SUBMITTED, None)
    assert [e.error for e in back.errors] == ["lease expired"]
    # The late worker's lease is lost for good, even once the job runs again.
    assert (await store.finish("old", old.lease_id, SUCCEED, at(LEASE + 1))).finish is (
        Finish.LEASE_LOST
    )
    again = await claim(store, at(LEASE + 2))
    assert again is not None
    assert (again.job_id, again.attempts) == ("old", 2)
    assert (await store.finish("old", old.lease_id, SUCCEED, at(LEASE + 3))).finish is (
        Finish.LEASE_LOST
    )
    still = await store.get("young")
    assert still is not None
    assert still == as_stored(young)


async def test_expire_with_no_attempts_left_fails_the_job(store: Store) -> None:
    await claimed(store, "j1", now=0, max_attempts=1)
    assert await store.expire(at(LEASE), EXPIRE) == 1
    job = await store.get("j1")
    assert job is not None
    assert (job.state, job.finished_at) == (JobState.FAILED, at(LEASE))


async def test_release_undoes_a_claim(store: Store) -> None:
    job = await claimed(store, "j1")
    await store.submit(new("j2", 5))
    await store.release("j1", "not-the-lease")  # someone else's: nothing happens
    assert (await store.get("j1")) == as_stored(job)
    await store.release("j1", job.lease_id)
    back = await store.get("j1")
    assert back is not None
    assert (back.state, back.attempts, back.started_at, back.errors) == (
        JobState.SUBMITTED,
        0,
        None,
        [],
    )
    first = await claim(store, at(3))
    assert first is not None
    assert first.job_id == "j1"  # at its place, before j2


async def test_only_the_last_errors_are_kept(store: Store) -> None:
    await store.submit(NewJob("j1", None, None, at(0), 30))
    for attempt in range(1, 26):
        job = await claim(store, at(attempt * 1000))
        assert job is not None
        failing = Outcome(JobState.SUBMITTED, JobState.FAILED, error=f"e{attempt}")
        await store.finish("j1", job.lease_id, failing, at(attempt * 1000))
    stored = await store.get("j1")
    assert stored is not None
    assert [e.attempt for e in stored.errors] == list(range(6, 26))


async def test_a_job_finished_without_its_lease_refuses_that_lease(store: Store) -> None:
    job = await claimed(store, "j1")
    failed = Outcome(JobState.FAILED, JobState.FAILED, error="by hand")
    done = await store.finish("j1", None, failed, at(2))
    assert done.finish is Finish.APPLIED
    # The worker that held the lease did not finish it: its outcome is refused, not "repeated".
    assert await store.finish("j1", job.lease_id, SUCCEED, at(3)) == Finished(
        Finish.LEASE_LOST, done.job
    )


# -- batches (CONTRACT §10) -------------------------------------------------------------------


async def test_submit_many_answers_in_order_and_a_repeated_id_finds_the_earlier_one(
    store: Store,
) -> None:
    old, _ = await store.submit(new("old", 0, "kept"))
    done = await store.submit_many(
        [
            new("b", 1, "first", {"n": 1}),
            new("old", 1, "other"),
            new("a", 1),
            new("b", 2, "second", {"n": 2}),
            new("a", 3),
        ]
    )
    assert [(job.job_id, created) for job, created in done] == [
        ("b", True),
        ("old", False),
        ("a", True),
        ("b", False),
        ("a", False),
    ]
    assert done[1][0] == old  # the stored job, whatever the call said
    assert done[3][0] == done[0][0] == await store.get("b")  # the batch's own first "b"
    assert done[4][0] == done[2][0]
    assert [job.job_id for job in await all_jobs(store)] == ["old", "b", "a"]
    assert (await store.stats(at(1_000))).submitted == 3
    jobs = await store.claim(at(5), lease_seconds=LEASE, limit=5)
    assert [job.job_id for job in jobs] == ["old", "b", "a"]  # queued once each, in order


async def test_finish_many_answers_in_order_and_each_ending_sees_the_ones_before(
    store: Store,
) -> None:
    for n in range(3):
        await store.submit(new(f"j{n}", n))
    j0, j1, j2 = await store.claim(at(5), lease_seconds=LEASE, limit=3)
    by_hand = Outcome(JobState.FAILED, JobState.FAILED, error="by hand")
    done = await store.finish_many(
        [
            Ending("j0", j0.lease_id, SUCCEED),
            Ending("j0", j0.lease_id, SUCCEED),  # the same again: a repeat
            Ending("j1", "stale", SUCCEED),
            Ending("j1", None, by_hand),
            Ending("j1", j1.lease_id, SUCCEED),  # finished without it by the one before
            Ending("nope", None, SUCCEED),
            Ending("j2", j2.lease_id, RETRY),
            Ending("j2", None, SUCCEED),  # submitted again by the retry before it
        ],
        at(6),
    )
    assert [one.finish for one in done] == [
        Finish.APPLIED,
        Finish.ALREADY_APPLIED,
        Finish.LEASE_LOST,
        Finish.APPLIED,
        Finish.LEASE_LOST,
        Finish.UNKNOWN,
        Finish.APPLIED,
        Finish.NOT_RUNNING,
    ]
    assert done[1].job == done[0].job == await store.get("j0")
    assert done[0].job is not None
    assert (done[0].job.state, done[0].job.result) == (
        JobState.SUCCEEDED,
        msgspec.Raw(b'{"ok": 1e-400}'),
    )
    assert done[2].job == as_stored(j1)  # as it was before the call
    assert done[4].job == done[3].job == await store.get("j1")
    assert done[5].job is None
    assert done[7].job == done[6].job == await store.get("j2")
    assert done[6].job is not None
    assert (done[6].job.state, [e.error for e in done[6].job.errors]) == (
        JobState.SUBMITTED,
        ["boom"],
    )
    stats = await store.stats(at(1_000))
    assert (stats.submitted, stats.running, stats.succeeded, stats.failed) == (1, 0, 1, 1)


# An error part-way through a batch can be provoked honestly only in SQLite: a file that may not
# grow (``max_page_count``) fails a write with SQLITE_FULL, as a full disk does (tests/test_bugs.py
# bug 17). The memory store has no such failure: its batch runs without an await, and nothing in
# it can fail half-way but a bug.


@contextlib.asynccontextmanager
async def nearly_full(kind: str, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A SQLite store whose writer may add only a few more pages (about five 20 kB jobs)."""
    store = BACKENDS[kind](tmp_path)
    assert isinstance(store, SqliteStore)
    await store.open()
    try:
        pages = await store._write(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        await store._write(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages + 30}"))
        yield store
    finally:
        await store.close()


BLOB = {"blob": "x" * 20_000}


@pytest.mark.parametrize("kind", SQLITE_BACKENDS)
async def test_sqlite_submit_many_is_one_commit_nothing_of_a_refused_call_is_kept(
    kind: str, tmp_path: Path
) -> None:
    async with nearly_full(kind, tmp_path) as store:
        await store.submit(new("before", 0))
        jobs = [new(f"big-{n}", 1, data=BLOB) for n in range(20)]
        with pytest.raises(Unavailable, match="full"):
            await store.submit_many(jobs)
        assert [job.job_id for job in await all_jobs(store)] == ["before"]
        assert (await store.stats(at(1_000))).total == 1
        # The first jobs of the call fitted (they were written, then rolled back with the rest):
        # alone, they are new.
        again = await store.submit_many(jobs[:2])
        assert [(job.job_id, created) for job, created in again] == [
            ("big-0", True),
            ("big-1", True),
        ]
        assert (await store.stats(at(1_000))).total == 3


@pytest.mark.parametrize("kind", SQLITE_BACKENDS)
async def test_sqlite_finish_many_is_one_commit_nothing_of_a_refused_call_is_kept(
    kind: str, tmp_path: Path
) -> None:
    async with nearly_full(kind, tmp_path) as store:
        for n in range(3):
            await store.submit(new(f"j{n}", n))
        claimed = await store.claim(at(5), lease_seconds=LEASE, limit=3)
        assert len(claimed) == 3
        before = [await store.get(job.job_id) for job in claimed]
        huge = Outcome(JobState.SUCCEEDED, JobState.SUCCEEDED, result=text({"y": "y" * 400_000}))
        endings = [
            Ending(claimed[0].job_id, claimed[0].lease_id, SUCCEED),
            Ending(claimed[1].job_id, claimed[1].lease_id, RETRY),
            Ending(claimed[2].job_id, claimed[2].lease_id, huge),
        ]
        with pytest.raises(Unavailable, match="full"):
            await store.finish_many(endings, at(6))
        assert [await store.get(job.job_id) for job in claimed] == before
        assert (await store.stats(at(1_000))).running == 3
        # Without the one that cannot fit, the same call goes through.
        done = await store.finish_many(endings[:2], at(7))
        assert [one.finish for one in done] == [Finish.APPLIED, Finish.APPLIED]
        stats = await store.stats(at(1_000))
        assert (stats.submitted, stats.running, stats.succeeded) == (1, 1, 1)
