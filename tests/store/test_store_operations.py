"""Issue 10's part of the store contract, for every backend (CONTRACT §8, §9): the hand-out
order of queues, priorities and scheduled jobs, an operator's cancel and retry by id and by
filter, retention and its tombstones, and the per-queue figures of /stats.

The moves come from the queue's own table (`simplequeue.queue.ACTIONS`), so the table is
exercised too. Time only goes forward, as a server's clock does (tests/store/conftest.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
import pytest

from simplequeue.models import MAX_ERRORS_KEPT, JobState, QueueStats, StoredJob
from simplequeue.queue import ACTIONS, TRANSITIONS, Action, Event
from simplequeue.store import NewJob, Store
from simplequeue.store.base import (
    Finish,
    Moved,
    Outcome,
    Selection,
    Tombstone,
    Totals,
    fingerprint,
)
from tests.store.conftest import (
    LEASE,
    QUEUES,
    T0,
    all_jobs,
    at,
    claim,
    new,
    stats_of,
)

pytestmark = pytest.mark.anyio

CANCEL = ACTIONS[Action.CANCEL]
RETRY = ACTIONS[Action.RETRY]
SUCCEED = Outcome(*TRANSITIONS[Event.SUCCEED], result=b'{"ok": true}')
FAIL = Outcome(*TRANSITIONS[Event.FAIL], error="boom")
SUBMITTED, RUNNING, SUCCEEDED, FAILED = JobState


def ids(jobs: Iterable[StoredJob]) -> list[str]:
    return [job.job_id for job in jobs]


def errors(job: StoredJob | None) -> list[tuple[int, datetime, str]]:
    assert job is not None
    return [(e.attempt, e.at, e.error) for e in job.errors]


# -- the hand-out order (CONTRACT §8) ---------------------------------------------------------


async def test_claims_go_by_priority_then_due_time_then_submission(store: Store) -> None:
    await store.submit(new("plain-1", 0))
    await store.submit(new("plain-2", 1))
    await store.submit(new("backdated", 2, run_at=-10))  # due before the others were submitted
    await store.submit(new("urgent", 3, priority=5))
    await store.submit(new("urgent-later", 4, priority=5, run_at=20))
    await store.submit(new("lowest", 5, priority=-100))
    await store.submit(new("plain-3", 6, run_at=1))  # the same due time as plain-2
    claimed = await store.claim(at(10), lease_seconds=LEASE, limit=10)
    assert ids(claimed) == ["urgent", "backdated", "plain-1", "plain-2", "plain-3", "lowest"]
    assert [(job.priority, job.run_at) for job in claimed[:2]] == [(5, at(3)), (0, at(-10))]
    # A job of higher priority that is not due yet waits: it is not handed out early.
    assert await store.claim(at(19), lease_seconds=LEASE) == []
    assert ids(await store.claim(at(20), lease_seconds=LEASE)) == ["urgent-later"]


async def test_claim_takes_only_the_queues_named(store: Store) -> None:
    for n, queue in enumerate(["mail", "video", "default", "mail", "video"]):
        await store.submit(new(f"{queue}-{n}", n, queue=queue, priority=n % 2))
    assert ids(await store.claim(at(9), lease_seconds=LEASE, limit=9, queues=["nope"])) == []
    assert ids(await store.claim(at(9), lease_seconds=LEASE, limit=9, queues=["mail"])) == [
        "mail-3",
        "mail-0",
    ]
    both = await store.claim(at(9), lease_seconds=LEASE, limit=9, queues=("video", "default"))
    assert ids(both) == ["video-1", "default-2", "video-4"]
    assert {job.queue for job in both} == {"video", "default"}


@dataclass
class Modelled:
    """What the order model knows of a job: enough to say when, and in which order, it is
    handed out."""

    seq: int
    queue: str
    priority: int
    run_at: datetime
    lease: str | None = None
    """The lease it runs under; ``None`` while it waits."""

    def order(self) -> tuple[int, datetime, int]:
        return (-self.priority, self.run_at, self.seq)


def model_pick(
    jobs: dict[str, Modelled], now: datetime, queues: tuple[str, ...], limit: int
) -> list[str]:
    due = [
        (job.order(), job_id)
        for job_id, job in jobs.items()
        if job.lease is None and job.run_at <= now and (not queues or job.queue in queues)
    ]
    return [job_id for _, job_id in sorted(due)[:limit]]


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_claims_hand_out_what_a_model_of_the_order_picks(store: Store, seed: int) -> None:
    """Jobs of mixed priorities, queues and due times (past, now, ahead: many ties), claimed
    at an advancing time by random queues and limits; some go back (released: at their place;
    retried: due after a backoff). Every claim is the model's pick, in its order."""
    rng = random.Random(seed)
    jobs: dict[str, Modelled] = {}
    clock = 0.0
    handed_out = 0
    for n in range(300):
        clock += rng.choice([0, 0, 1, 2.5])
        now = at(clock)
        roll = rng.random()
        if roll < 0.45:
            job_id = f"o{n}"
            run_at = rng.choice(
                [None, None, clock - 5, clock + 1, clock + 4, clock + 4, clock + 30]
            )
            sent = new(
                job_id,
                clock,
                queue=rng.choice(QUEUES),
                priority=rng.choice([-100, -1, 0, 0, 0, 1, 100]),
                run_at=run_at,
                max_attempts=100,
            )
            job, created = await store.submit(sent)
            assert created
            jobs[job_id] = Modelled(len(jobs), sent.queue, sent.priority, sent.due)
            assert isinstance(job, StoredJob)
            assert (job.queue, job.priority, job.run_at) == (sent.queue, sent.priority, sent.due)
        elif roll < 0.85:
            queues = tuple(rng.sample([*QUEUES, "empty"], rng.randrange(3)))
            limit = rng.randint(1, 4)
            expected = model_pick(jobs, now, queues, limit)
            claimed = await store.claim(now, lease_seconds=LEASE, limit=limit, queues=queues)
            assert ids(claimed) == expected, (clock, queues, limit)
            for job in claimed:
                jobs[job.job_id].lease = job.lease_id
            handed_out += len(claimed)
        elif running := [job for job in jobs.values() if job.lease is not None]:
            back = rng.choice(running)
            job_id = next(job_id for job_id, job in jobs.items() if job is back)
            assert back.lease is not None
            if rng.random() < 0.5:
                await store.release(job_id, back.lease)
            else:
                backoff = rng.choice([0, 3, 10])
                retry = Outcome(
                    *TRANSITIONS[Event.RETRY], error="again", run_at=at(clock + backoff)
                )
                assert (await store.finish(job_id, back.lease, retry, now)).finish is Finish.APPLIED
                back.run_at = at(clock + backoff)
            back.lease = None
        ahead = [job.run_at for job in jobs.values() if job.lease is None and job.run_at > now]
        assert await store.next_due(now) == min(ahead, default=None)
    assert handed_out > 60
    # The rest, once everything is due: all of it, in the model's order.
    end = at(clock + 60)
    rest = await store.claim(end, lease_seconds=LEASE, limit=len(jobs))
    assert ids(rest) == model_pick(jobs, end, (), len(jobs))


# -- scheduled jobs ----------------------------------------------------------------------------


async def test_a_job_scheduled_ahead_is_handed_out_at_its_run_at_not_before(store: Store) -> None:
    later, _ = await store.submit(new("later", 0, run_at=100))
    assert isinstance(later, StoredJob)
    assert later.run_at == at(100)
    await store.submit(new("now", 1))
    assert ids(await store.claim(at(1), lease_seconds=LEASE, limit=5)) == ["now"]
    assert await store.next_due(at(1)) == at(100)
    just_before = at(100) - timedelta(microseconds=1)
    assert await store.claim(just_before, lease_seconds=LEASE) == []
    assert await store.next_due(just_before) == at(100)
    job = await claim(store, at(100))
    assert job is not None
    assert (job.job_id, job.run_at, job.started_at) == ("later", at(100), at(100))
    assert await store.next_due(at(100)) is None


async def test_next_due_is_the_earliest_time_a_waiting_job_falls_due(store: Store) -> None:
    assert await store.next_due(at(0)) is None
    await store.submit(new("due", 0))
    assert await store.next_due(at(0)) is None  # due now: not "next"
    await store.submit(new("in-50", 0, run_at=50, queue="mail"))
    await store.submit(new("in-20", 0, run_at=20, queue="video"))
    await store.submit(new("in-30", 0, run_at=30))
    assert await store.next_due(at(1)) == at(20)
    assert await store.next_due(at(20)) == at(30)  # in-20 is due at 20 itself
    # A cancelled job never falls due; a running one is not waiting.
    await store.move(["in-30"], CANCEL, at(21))
    assert await store.next_due(at(21)) == at(50)
    assert ids(await store.claim(at(21), lease_seconds=LEASE, limit=5)) == ["due", "in-20"]
    assert await store.next_due(at(21)) == at(50)
    # A retry's backoff makes the job wait again.
    retry = Outcome(*TRANSITIONS[Event.RETRY], error="again", run_at=at(40))
    await store.finish("in-20", None, retry, at(22))
    assert await store.next_due(at(22)) == at(40)
    assert await store.next_due(at(50)) is None


# -- cancel and retry, by id (CONTRACT §9) ------------------------------------------------------


async def test_cancel_fails_submitted_and_running_jobs_and_ends_the_lease(store: Store) -> None:
    await store.submit(new("r", 0))
    await store.submit(new("s", 1))
    await store.submit(new("scheduled", 1, run_at=50))
    running = await claim(store, at(2))
    assert running is not None
    assert running.job_id == "r"
    moved = await store.move(["s", "r", "scheduled"], CANCEL, at(3))
    assert [one.moved for one in moved] == [True, True, True]
    assert [one.job for one in moved] == [
        await store.get(job_id) for job_id in ("s", "r", "scheduled")
    ]
    for one in moved:
        assert one.job is not None
        assert (one.job.state, one.job.finished_at, one.job.lease_expires_at) == (
            FAILED,
            at(3),
            None,
        )
        assert one.tombstone is None
    # The error is the current attempt's: none was made of a job never handed out.
    assert [errors(one.job) for one in moved] == [
        [(0, at(3), "cancelled")],
        [(1, at(3), "cancelled")],
        [(0, at(3), "cancelled")],
    ]
    assert moved[1].job is not None
    assert (moved[1].job.attempts, moved[1].job.started_at) == (1, at(2))
    # Its worker's lease is over: heartbeat and completion are refused, nothing changes.
    lost = await store.heartbeat("r", running.lease_id, at(4), None)
    assert (lost.finish, lost.job) == (Finish.LEASE_LOST, moved[1].job)
    done = await store.finish("r", running.lease_id, SUCCEED, at(4))
    assert (done.finish, done.job) == (Finish.LEASE_LOST, moved[1].job)
    # Nothing cancelled is handed out again, nor taken back as expired.
    assert await store.expire(at(10_000), Outcome(*TRANSITIONS[Event.EXPIRE])) == 0
    assert await store.claim(at(10_000), lease_seconds=LEASE, limit=5) == []
    assert await store.next_due(at(4)) is None
    stats = await store.stats(at(4))
    assert (stats.submitted, stats.running, stats.failed) == (0, 0, 3)


async def test_cancel_keeps_the_newest_errors_with_the_cancel_last(store: Store) -> None:
    await store.submit(NewJob("j1", None, None, at(0), 30))
    for attempt in range(1, MAX_ERRORS_KEPT + 1):
        job = await claim(store, at(attempt))
        assert job is not None
        again = Outcome(*TRANSITIONS[Event.RETRY], error=f"e{attempt}")
        await store.finish("j1", job.lease_id, again, at(attempt))
    assert len(errors(await store.get("j1"))) == MAX_ERRORS_KEPT
    await claim(store, at(100))
    (moved,) = await store.move(["j1"], CANCEL, at(101))
    kept = errors(moved.job)
    assert len(kept) == MAX_ERRORS_KEPT
    assert [attempt for attempt, _, _ in kept] == list(range(2, MAX_ERRORS_KEPT + 2))
    assert kept[-1] == (MAX_ERRORS_KEPT + 1, at(101), "cancelled")


async def test_cancel_leaves_finished_jobs_alone(store: Store) -> None:
    await store.submit(new("ok", 0))
    await store.submit(new("bad", 0))
    await store.claim(at(1), lease_seconds=LEASE, limit=2)
    await store.finish("ok", None, SUCCEED, at(2))
    await store.finish("bad", None, FAIL, at(2))
    before = [await store.get("ok"), await store.get("bad")]
    moved = await store.move(["ok", "bad"], CANCEL, at(3))
    assert moved == [Moved(before[0], False), Moved(before[1], False)]
    assert [await store.get("ok"), await store.get("bad")] == before


@pytest.mark.parametrize(("max_attempts", "allowed"), [(1, 2), (3, 3)])
async def test_retry_puts_a_failed_job_back_due_now_with_its_history(
    store: Store, max_attempts: int, allowed: int
) -> None:
    """Due now, attempts and errors kept; one more attempt allowed only if all were used."""
    await store.submit(new("early", 0, priority=1))
    await store.submit(new("j1", 0, "d", {"n": 1}, priority=1, max_attempts=max_attempts))
    await store.submit(new("other", 1, priority=1))
    await store.claim(at(2), lease_seconds=LEASE, limit=1)
    job = await claim(store, at(3))
    assert job is not None
    assert job.job_id == "j1"
    failed = await store.finish("j1", job.lease_id, FAIL, at(4))
    assert failed.job is not None
    (moved,) = await store.move(["j1"], RETRY, at(5))
    assert moved.moved
    assert moved.job == msgspec.structs.replace(
        failed.job,
        state=SUBMITTED,
        run_at=at(5),
        finished_at=None,
        max_attempts=allowed,
    )
    assert await store.get("j1") == moved.job
    # Due now: behind the jobs of its priority due earlier; handed out with one more attempt.
    claimed = await store.claim(at(6), lease_seconds=LEASE, limit=5)
    assert ids(claimed) == ["other", "j1"]
    assert (claimed[1].attempts, errors(claimed[1])) == (2, [(1, at(4), "boom")])
    # Its old lease stays lost.
    assert (await store.heartbeat("j1", job.lease_id, at(7), None)).finish is Finish.LEASE_LOST


async def test_retry_leaves_jobs_that_did_not_fail_alone(store: Store) -> None:
    await store.submit(new("ok", 0))
    await store.submit(new("run", 0))
    await store.submit(new("wait", 0))
    await store.submit(new("ahead", 0, run_at=99))
    await store.claim(at(1), lease_seconds=LEASE, limit=2)
    await store.finish("ok", None, SUCCEED, at(2))
    before = [await store.get(job_id) for job_id in ("ok", "run", "wait", "ahead")]
    moved = await store.move(["ok", "run", "wait", "ahead"], RETRY, at(3))
    assert moved == [Moved(job, False) for job in before]
    assert await store.next_due(at(3)) == at(99)


async def test_move_answers_each_id_in_order_unknown_pruned_and_repeated(store: Store) -> None:
    await store.submit(new("gone", 0))
    await store.claim(at(1), lease_seconds=LEASE)
    await store.finish("gone", None, FAIL, at(2))
    assert await store.prune(FAILED, at(3), 10) == 1
    tombstone = await store.tombstone("gone")
    assert tombstone is not None
    await store.submit(new("twice", 3))
    moved = await store.move(["nope", "twice", "gone", "twice"], CANCEL, at(4))
    cancelled = await store.get("twice")
    assert cancelled is not None
    assert cancelled.state == FAILED
    assert moved == [
        Moved(None, False),
        Moved(cancelled, True),
        Moved(None, False, tombstone),
        Moved(cancelled, False),  # already moved by its first mention: now failed
    ]
    assert errors(cancelled) == [(0, at(4), "cancelled")]  # cancelled once
    # A retry of a pruned job does not bring it back.
    assert await store.move(["gone"], RETRY, at(5)) == [Moved(None, False, tombstone)]
    assert await store.get("gone") is None
    assert await store.move([], CANCEL, at(5)) == []


# -- cancel and retry, by filter ----------------------------------------------------------------


async def seed_for_filters(store: Store) -> None:
    """40 jobs, x-0 y-0 x-1 y-1 ..., in queues a and b, in every state (some scheduled ahead)."""
    rng = random.Random(7)
    for n in range(20):
        for prefix in ("x", "y"):
            run_at = 500 if rng.random() < 0.2 else None
            await store.submit(new(f"{prefix}-{n}", 0, queue=rng.choice("ab"), run_at=run_at))
    for job in await store.claim(at(1), lease_seconds=LEASE, limit=30):
        ending = rng.choice([None, None, SUCCEED, FAIL, FAIL])
        if ending is not None:
            await store.finish(job.job_id, job.lease_id, ending, at(2))


FILTERS = {
    "cancel-all": (CANCEL, Selection(frozenset({SUBMITTED, RUNNING}))),
    "cancel-submitted-in-a": (CANCEL, Selection(frozenset({SUBMITTED}), queue="a")),
    "cancel-running-x": (CANCEL, Selection(frozenset({RUNNING}), prefix="x-")),
    "cancel-in-b-y": (CANCEL, Selection(frozenset({SUBMITTED, RUNNING}), "b", "y-1")),
    "retry-all": (RETRY, Selection(frozenset({FAILED}))),
    "retry-in-b-y": (RETRY, Selection(frozenset({FAILED}), queue="b", prefix="y-")),
    "retry-none": (RETRY, Selection(frozenset({FAILED}), queue="nope")),
}


@pytest.mark.parametrize("which", list(FILTERS))
async def test_move_matching_in_chunks_moves_exactly_the_matching_jobs(
    store: Store, which: str
) -> None:
    move, selection = FILTERS[which]
    await seed_for_filters(store)
    before = {job.job_id: job for job in await all_jobs(store)}
    matching = {
        job.job_id
        for job in before.values()
        if job.state in selection.states
        and (selection.queue is None or job.queue == selection.queue)
        and (selection.prefix is None or job.job_id.startswith(selection.prefix))
    }
    now = at(10)
    total, chunks = 0, 0
    after: int | None = 0
    while after is not None:
        chunks += 1
        assert chunks <= len(before), "the chunks never end"
        chunk = await store.move_matching(selection, move, now, after=after, limit=3)
        assert 0 <= chunk.moved <= 3
        assert chunk.resume is None or chunk.resume > after
        total += chunk.moved
        after = chunk.resume
    assert total == len(matching)
    assert matching or which == "retry-none"
    assert chunks >= -(-total // 3)
    for job in await all_jobs(store):
        old = before[job.job_id]
        if job.job_id not in matching:
            assert job == old
        elif move is CANCEL:
            assert job == msgspec.structs.replace(
                old,
                state=FAILED,
                finished_at=now,
                lease_expires_at=None,
                errors=[*old.errors, *job.errors[-1:]],
            )
            assert errors(job)[-1] == (old.attempts, now, "cancelled")
        else:
            assert job == msgspec.structs.replace(
                old,
                state=SUBMITTED,
                finished_at=None,
                run_at=now,
                max_attempts=max(old.max_attempts, old.attempts + 1),
            )
    # A second pass finds nothing left to move.
    assert (await store.move_matching(selection, move, now, after=0, limit=100)).moved == 0


# -- retention ----------------------------------------------------------------------------------


async def finished(store: Store, job: NewJob, outcome: Outcome, at_seconds: float) -> None:
    await store.submit(job)
    claimed = await claim(store, at(at_seconds))
    assert claimed is not None
    assert claimed.job_id == job.job_id
    assert (await store.finish(job.job_id, None, outcome, at(at_seconds))).finish is (
        Finish.APPLIED
    )


async def test_prune_deletes_the_oldest_finished_jobs_of_a_state_leaving_tombstones(
    store: Store,
) -> None:
    await finished(store, new("s30", 0, "late", {"n": 1}, queue="mail", priority=3), SUCCEED, 30)
    await finished(store, new("s10", 10, max_attempts=5), SUCCEED, 10)
    await finished(store, new("f15", 11), FAIL, 15)
    await finished(store, new("s20", 12, queue="video"), SUCCEED, 20)
    await store.submit(new("waiting", 40))
    await store.submit(new("running", 40))
    await store.claim(at(41), lease_seconds=LEASE, limit=1)
    assert (await store.stats(at(50))).succeeded == 3

    # Oldest first (by when it finished, not when it was submitted), up to the limit.
    assert await store.prune(SUCCEEDED, at(25), 1) == 1
    assert await store.get("s10") is None
    assert await store.prune(SUCCEEDED, at(25), 10) == 1
    assert await store.get("s20") is None
    # Only jobs finished before the time, of that state.
    assert await store.prune(SUCCEEDED, at(30), 10) == 0
    assert ids(await all_jobs(store)) == ["s30", "f15", "waiting", "running"]
    stats = await store.stats(at(50))
    assert (stats.submitted, stats.running, stats.succeeded, stats.failed, stats.total) == (
        1,
        1,
        1,
        1,
        4,
    )
    assert "video" not in stats.queues  # its one job is gone
    assert await store.prune(FAILED, at(100), 10) == 1
    assert await store.prune(SUCCEEDED, at(100), 10) == 1
    assert await store.prune(SUCCEEDED, at(100), 10) == 0
    assert ids(await all_jobs(store)) == ["waiting", "running"]
    # Six jobs added, four finished: pruning lowers no counter.
    assert await store.stats(at(100)) == stats_of(await all_jobs(store), at(100), Totals(6, 4))

    assert await store.tombstone("s30") == Tombstone(
        job_id="s30",
        queue="mail",
        priority=3,
        max_attempts=3,
        description_hash=fingerprint("late", b'{"n":1}')[0],
        data_hash=fingerprint("late", b'{"n":1}')[1],
        state=SUCCEEDED,
        created_at=T0,
        finished_at=at(30),
        attempts=1,
    )
    s10 = await store.tombstone("s10")
    f15 = await store.tombstone("f15")
    assert s10 is not None
    assert f15 is not None
    assert (s10.max_attempts, s10.description_hash, s10.data_hash) == (5, None, None)
    assert (f15.state, f15.finished_at, f15.created_at) == (FAILED, at(15), at(11))
    assert await store.tombstone("waiting") is None
    assert await store.tombstone("nope") is None


async def test_a_pruned_id_stays_taken_and_is_never_queued_again(store: Store) -> None:
    await finished(store, new("old", 0, "d"), SUCCEED, 1)
    assert await store.prune(SUCCEEDED, at(2), 10) == 1
    tombstone = await store.tombstone("old")
    assert tombstone is not None
    assert await store.submit(new("old", 3, "d")) == (tombstone, False)
    assert await store.submit(new("old", 3, "other", queue="mail")) == (tombstone, False)
    assert await store.submit_many([new("new", 4), new("old", 4)]) == [
        (await store.get("new"), True),
        (tombstone, False),
    ]
    assert ids(await store.claim(at(5), lease_seconds=LEASE, limit=5)) == ["new"]
    assert ids(await all_jobs(store)) == ["new"]
    assert (await store.stats(at(5))).total == 1
    assert await store.heartbeat("old", "x", at(5), None) == await store.heartbeat(
        "nope", "x", at(5), None
    )


async def test_tombstone_fingerprints_compare_content_not_spelling(store: Store) -> None:
    sent = b'{"a": 1e2, "b": [1, "x", {"c": null, "d": true}]}'
    await finished(store, NewJob("fp", "desc", sent, at(0)), SUCCEED, 1)
    await finished(store, NewJob("bare", None, None, at(1)), SUCCEED, 2)
    assert await store.prune(SUCCEEDED, at(3), 10) == 2
    fp = await store.tombstone("fp")
    bare = await store.tombstone("bare")
    assert fp is not None
    assert bare is not None
    kept = (fp.description_hash, fp.data_hash)
    assert (bare.description_hash, bare.data_hash) == (None, None) == fingerprint(None, None)
    assert "desc" not in kept
    # The same value, spelled otherwise: key order, spacing, 1e2 for 100.0.
    assert fingerprint("desc", b'{"b":[1,"x",{"d":true,"c":null}],"a":100.0}') == kept
    assert fingerprint("desc", b'{"b": [1, "x", {"d": true, "c": null}], "a": 1.00E2}') == kept
    for description, data in [
        ("desc", b'{"a": 100, "b": [1, "x", {"c": null, "d": true}]}'),  # an integer now
        ("desc", b'{"a": 1e2, "b": ["x", 1, {"c": null, "d": true}]}'),  # another order
        ("desc", b'{"a": 1e2, "b": [1, "x", {"c": null, "d": 1}]}'),  # 1 is not true
        ("desc", b'{"a": 1e2, "b": [1, "x", {"c": null}]}'),
        ("desc ", sent),
        (None, sent),
    ]:
        assert fingerprint(description, data) != kept, (description, data)
    assert fingerprint("desc", None) != kept


# -- per-queue figures, and lists by queue -----------------------------------------------------


async def test_stats_count_each_queue_and_its_oldest_due_job(store: Store) -> None:
    assert (await store.stats(at(0))).queues == {}
    await store.submit(new("a-old", 0, queue="a", run_at=-30))  # due before it was submitted
    await store.submit(new("a-new", 5, queue="a"))
    await store.submit(new("b-later", 5, queue="b", run_at=100))
    await store.submit(new("c-run", 6, queue="c"))
    await store.submit(new("d-ok", 6, queue="d"))
    await store.submit(new("d-bad", 6, queue="d"))
    await store.claim(at(7), lease_seconds=LEASE, limit=3, queues=["c", "d"])
    await store.finish("d-ok", None, SUCCEED, at(8))
    await store.finish("d-bad", None, FAIL, at(8))
    stats = await store.stats(at(10))
    assert list(stats.queues) == ["a", "b", "c", "d"]
    assert stats.queues == {
        "a": QueueStats(submitted=2, running=0, succeeded=0, failed=0, oldest_due_age_seconds=40.0),
        "b": QueueStats(submitted=1, running=0, succeeded=0, failed=0, oldest_due_age_seconds=None),
        "c": QueueStats(submitted=0, running=1, succeeded=0, failed=0, oldest_due_age_seconds=None),
        "d": QueueStats(submitted=0, running=0, succeeded=1, failed=1, oldest_due_age_seconds=None),
    }
    assert (stats.submitted, stats.running, stats.succeeded, stats.failed, stats.total) == (
        3,
        1,
        1,
        1,
        6,
    )
    later = await store.stats(at(130))
    assert later.queues["b"].oldest_due_age_seconds == 30.0
    assert later.queues["a"].oldest_due_age_seconds == 160.0
    # Once the oldest is handed out, the next oldest sets the age; a retried job is due now.
    await store.claim(at(130), lease_seconds=LEASE, queues=["a"])
    assert (await store.stats(at(130))).queues["a"].oldest_due_age_seconds == 125.0
    await store.move(["d-bad"], RETRY, at(131))
    assert (await store.stats(at(135))).queues["d"].oldest_due_age_seconds == 4.0


async def test_list_jobs_by_queue_with_every_other_filter(store: Store) -> None:
    rng = random.Random(3)
    for n in range(30):
        letter = rng.choice(["x", "y"])
        await store.submit(new(f"{letter}{n:02}", n, queue=rng.choice(QUEUES)))
    for job in await store.claim(at(40), lease_seconds=LEASE, limit=12):
        if rng.random() < 0.6:
            await store.finish(job.job_id, None, rng.choice([SUCCEED, FAIL]), at(41))
    jobs = await all_jobs(store)
    for queues in [("mail",), ("mail", "video"), ("default", "nope"), ("nope",)]:
        for states in [(), (SUBMITTED,), (RUNNING, FAILED)]:
            for prefix in [None, "x"]:
                expected = [
                    job.job_id
                    for job in jobs
                    if job.queue in queues
                    and (not states or job.state in states)
                    and (prefix is None or job.job_id.startswith(prefix))
                ]
                # Page by page, oldest first (after=) and newest first (before=).
                forward: list[str] = []
                while page := await store.list_jobs(
                    states, 4, forward[-1] if forward else None, prefix=prefix, queues=queues
                ):
                    forward += ids(page)
                backward: list[str] = []
                while page := await store.list_jobs(
                    states,
                    4,
                    None,
                    before=backward[-1] if backward else None,
                    newest_first=True,
                    prefix=prefix,
                    queues=queues,
                ):
                    backward += ids(page)
                assert forward == expected, (queues, states, prefix)
                assert backward == expected[::-1], (queues, states, prefix)
    assert len({job.queue for job in jobs}) == len(QUEUES)
