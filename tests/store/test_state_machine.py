"""The store against a model: Hypothesis drives submit (in queues, with priorities, some
scheduled ahead) / claim (of named queues) / heartbeat / finish / release / expiry / an
operator's cancel and retry (by id and by filter) / retention, on a store with an injected
clock, and after every step the store must agree with a plain-Python model of CONTRACT §2, §7,
§8 and §9.

The outcomes and moves the store is given come from the queue's tables
(`simplequeue.queue.TRANSITIONS`, `ACTIONS`), so the tables are exercised too. The model holds,
per job, the one lease the store keeps: the current one while the job is running, and after
that the lease that finished it (so that its repeat is recognised as already applied), or none
after an expiry, a release, a cancel or retry, or a completion that named no lease. A pruned
job leaves the model for its tombstone.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from simplequeue.models import MAX_ERRORS_KEPT, ClaimedJob, JobState, Stats, StoredJob
from simplequeue.queue import ACTIONS, TRANSITIONS, Action, Event
from simplequeue.store import MemoryStore, NewJob, SqliteStore, Store
from simplequeue.store.base import (
    Finish,
    Finished,
    Move,
    Moved,
    Outcome,
    Selection,
    Tombstone,
    Totals,
    fingerprint,
)
from simplequeue.store.postgres import PostgresStore
from tests.postgres import postgres_url
from tests.store.conftest import stats_of

T = TypeVar("T")

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
JOB_IDS = ("a", "b", "c", "d", "e")
"""A small pool, so that steps keep meeting the same jobs; ids not submitted yet are unknown."""
QUEUES = ("q1", "q2", "q3")
"""Jobs are submitted to the first two; the third stays empty, for claims that find nothing."""
FORGED = "forged-lease"
"""A lease id no store ever issued."""
RESULTS = (None, b'{"ok":true}', b"7", b'"text"')

# Few examples, many steps each: the interesting states (a lease lost and then reused, a retry
# falling due, attempts running out, a cancelled job retried, a finished one pruned) need a run
# of steps. Derandomized and without a database,
# so CI runs the same examples every time; bounded to stay well under 30 s on two cores.
SETTINGS = {
    "memory": settings(
        max_examples=150,
        stateful_step_count=50,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    ),
    "sqlite": settings(
        max_examples=60,
        stateful_step_count=50,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    ),
    # Each step's look is a dozen round trips to the server: fewer examples, the same steps.
    "postgres": settings(
        max_examples=30,
        stateful_step_count=50,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    ),
}


@dataclass
class ModelJob:
    seq: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    queue: str
    priority: int
    description: str
    data: bytes | None
    state: JobState = JobState.SUBMITTED
    attempts: int = 0
    lease: str | None = None
    """The lease the store keeps for the job (see the module docstring)."""
    lease_seconds: int = 0
    expires: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: bytes | None = None
    errors: list[tuple[int, datetime, str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    """Every lease ever handed out with this job, newest last."""

    def order(self) -> tuple[int, datetime, int]:
        """Its place in the hand-out order (CONTRACT §8)."""
        return (-self.priority, self.run_at, self.seq)

    def tombstone(self, job_id: str) -> Tombstone:
        assert self.finished_at is not None
        description_hash, data_hash = fingerprint(self.description, self.data)
        return Tombstone(
            job_id=job_id,
            queue=self.queue,
            priority=self.priority,
            max_attempts=self.max_attempts,
            description_hash=description_hash,
            data_hash=data_hash,
            state=self.state,
            created_at=self.created_at,
            finished_at=self.finished_at,
            attempts=self.attempts,
        )


def end_attempt(job: ModelJob, outcome: Outcome, now: datetime, *, keep: str | None) -> None:
    """The model of a running attempt ending as ``outcome`` says (CONTRACT §2, §7)."""
    job.state = outcome.then if job.attempts < job.max_attempts else outcome.otherwise
    if outcome.error is not None:
        job.errors.append((job.attempts, now, outcome.error))
    job.result = outcome.result
    job.lease = keep
    job.expires = None
    if job.state == JobState.SUBMITTED:
        job.finished_at = None
        if outcome.run_at is not None:
            job.run_at = outcome.run_at
    else:
        job.finished_at = now


def apply_move(job: ModelJob, move: Move, now: datetime) -> bool:
    """The model of an operator's move (CONTRACT §9): whether it applied."""
    if job.state not in move.sources:
        return False
    job.lease = None
    job.expires = None
    if move.target == JobState.FAILED:
        job.state = JobState.FAILED
        job.finished_at = now
        if move.error is not None:
            job.errors.append((job.attempts, now, move.error))
    else:
        job.state = JobState.SUBMITTED
        job.finished_at = None
        job.run_at = now
        job.max_attempts = max(job.max_attempts, job.attempts + 1)
    return True


class StoreMachine(RuleBasedStateMachine):
    make_store: ClassVar[Callable[[], Store]]
    """Set by the test: a fresh store for every example."""

    def __init__(self) -> None:
        super().__init__()
        # One loop per example, held by the machine: the store's calls are coroutines. A bare
        # loop, not asyncio.Runner, whose every run() swaps the SIGINT handler (slow here).
        self.loop = asyncio.new_event_loop()
        self.store = type(self).make_store()
        self.run(self.store.open())
        self.now = T0
        self.jobs: dict[str, ModelJob] = {}
        self.tombstones: dict[str, Tombstone] = {}
        self.seq = itertools.count()
        self.leases_seen: set[str] = set()
        # The store's cumulative counters: jobs added, and jobs that became succeeded or failed.
        self.submitted_ever = 0
        self.completed_ever = 0

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.run(self.loop.shutdown_default_executor())
            self.loop.close()

    def pick_lease(self, job_id: str, which: int) -> str:
        """The job's kept lease (``which`` 0), an older one, or one never issued."""
        job = self.jobs.get(job_id)
        choices = [] if job is None else [job.lease] if job.lease else []
        choices += [] if job is None else job.issued[::-1]
        choices.append(FORGED)
        return choices[which % len(choices)]

    def check(self, job: StoredJob | None, job_id: str) -> None:
        model = self.jobs.get(job_id)
        if model is None:
            assert job is None
            return
        assert job is not None
        assert job.job_id == job_id
        assert (job.state, job.attempts, job.max_attempts) == (
            model.state,
            model.attempts,
            model.max_attempts,
        )
        assert (job.queue, job.priority, job.run_at, job.created_at) == (
            model.queue,
            model.priority,
            model.run_at,
            model.created_at,
        )
        assert job.description == model.description
        assert (None if job.data is None else bytes(job.data)) == model.data
        assert job.lease_expires_at == model.expires
        assert job.finished_at == model.finished_at
        assert (None if job.result is None else bytes(job.result)) == model.result
        errors = [(e.attempt, e.at, e.error) for e in job.errors]
        assert errors == model.errors[-MAX_ERRORS_KEPT:]
        if model.state == JobState.RUNNING:
            assert job.started_at == model.started_at
        if model.attempts == 0:
            assert job.started_at is None

    def check_moved(self, moved: Moved, job_id: str, applied: bool) -> None:
        assert moved.moved == applied
        assert moved.tombstone == self.tombstones.get(job_id)
        self.check(moved.job, job_id)

    # -- the steps -------------------------------------------------------------------------

    @initialize(max_attempts=st.lists(st.integers(1, 3), min_size=1, max_size=len(JOB_IDS) - 1))
    def some_jobs(self, max_attempts: list[int]) -> None:
        # Most steps then meet known jobs; at least one id of the pool stays unknown for a while.
        for job_id, most in zip(JOB_IDS, max_attempts, strict=False):
            self.submit(job_id, most, QUEUES[0], 0, None, None)

    @rule(
        job_id=st.sampled_from(JOB_IDS),
        max_attempts=st.integers(1, 3),
        queue=st.sampled_from(QUEUES[:2]),
        priority=st.sampled_from([-1, 0, 0, 1]),
        delay=st.sampled_from([None, None, -1.0, 0.5, 3.0]),
        data=st.sampled_from([None, b'{"n": 1}', b'{"n":1.0}']),
    )
    def submit(
        self,
        job_id: str,
        max_attempts: int,
        queue: str,
        priority: int,
        delay: float | None,
        data: bytes | None,
    ) -> None:
        run_at = None if delay is None else self.now + timedelta(seconds=delay)
        description = f"job {job_id}"
        sent = NewJob(job_id, description, data, self.now, max_attempts, queue, priority, run_at)
        job, created = self.run(self.store.submit(sent))
        if job_id in self.tombstones:
            # Its id stays taken: the tombstone answers, and nothing is queued.
            assert (job, created) == (self.tombstones[job_id], False)
            return
        new = job_id not in self.jobs
        assert created == new
        if new:
            self.submitted_ever += 1
            self.jobs[job_id] = ModelJob(
                next(self.seq),
                max_attempts,
                run_at=sent.due,
                created_at=self.now,
                queue=queue,
                priority=priority,
                description=description,
                data=data,
            )
        assert isinstance(job, StoredJob)
        self.check(job, job_id)

    @rule(
        lease_seconds=st.sampled_from([1, 2, 5]),
        limit=st.integers(1, 3),
        queues=st.sampled_from([(), (), ("q1",), ("q2",), ("q1", "q2"), ("q2", "q3"), ("q3",)]),
    )
    def claim(self, lease_seconds: int, limit: int, queues: tuple[str, ...]) -> None:
        due = sorted(
            (job.order(), job_id)
            for job_id, job in self.jobs.items()
            if job.state == JobState.SUBMITTED
            and job.run_at <= self.now
            and (not queues or job.queue in queues)
        )
        expected = [job_id for _, job_id in due][:limit]
        claimed = self.run(
            self.store.claim(self.now, lease_seconds=lease_seconds, limit=limit, queues=queues)
        )
        assert [job.job_id for job in claimed] == expected
        for job in claimed:
            model = self.jobs[job.job_id]
            # Only a submitted job is handed out: never one still held under a live lease.
            assert model.state == JobState.SUBMITTED
            assert isinstance(job, ClaimedJob)
            assert job.lease_id not in self.leases_seen  # a new lease for every hand-out
            self.leases_seen.add(job.lease_id)
            model.state = JobState.RUNNING
            model.attempts += 1
            model.lease = job.lease_id
            model.issued.append(job.lease_id)
            model.lease_seconds = lease_seconds
            model.expires = self.now + timedelta(seconds=lease_seconds)
            model.started_at = self.now
            model.result = None
            self.check(job, job.job_id)

    @rule(
        job_id=st.sampled_from(JOB_IDS),
        which=st.integers(0, 3),
        lease_seconds=st.sampled_from([None, 1, 3]),
    )
    def heartbeat(self, job_id: str, which: int, lease_seconds: int | None) -> None:
        lease_id = self.pick_lease(job_id, which)
        done = self.run(self.store.heartbeat(job_id, lease_id, self.now, lease_seconds))
        model = self.jobs.get(job_id)
        if model is None:
            assert done == Finished(Finish.UNKNOWN, None)
            return
        if model.state == JobState.RUNNING and lease_id == model.lease:
            assert done.finish is Finish.APPLIED
            assert isinstance(done.job, ClaimedJob)
            assert done.job.lease_id == lease_id
            model.lease_seconds = lease_seconds or model.lease_seconds
            model.expires = self.now + timedelta(seconds=model.lease_seconds)
        else:
            assert done.finish is Finish.LEASE_LOST
        self.check(done.job, job_id)

    @rule(
        job_id=st.sampled_from(JOB_IDS),
        named=st.booleans(),
        which=st.integers(0, 3),
        event=st.sampled_from([Event.SUCCEED, Event.FAIL, Event.RETRY]),
        result=st.sampled_from(RESULTS),
        backoff=st.sampled_from([0.0, 0.5, 2.0]),
    )
    def finish(
        self,
        job_id: str,
        named: bool,
        which: int,
        event: Event,
        result: bytes | None,
        backoff: float,
    ) -> None:
        lease_id = self.pick_lease(job_id, which) if named else None
        succeed = event is Event.SUCCEED
        outcome = Outcome(
            *TRANSITIONS[event],
            result=result if succeed else None,
            error=None if succeed else f"boom {event.name}",
            run_at=self.now + timedelta(seconds=backoff) if event is Event.RETRY else None,
        )
        done = self.run(self.store.finish(job_id, lease_id, outcome, self.now))
        model = self.jobs.get(job_id)
        if model is None:
            assert done == Finished(Finish.UNKNOWN, None)
            return
        running = model.state == JobState.RUNNING
        if lease_id is None:
            expected = Finish.APPLIED if running else Finish.NOT_RUNNING
        elif lease_id == model.lease:
            expected = Finish.APPLIED if running else Finish.ALREADY_APPLIED
        else:
            expected = Finish.LEASE_LOST
        assert done.finish is expected
        if expected is Finish.APPLIED:
            # The lease that finished the attempt is kept, so that its repeat is recognised; a
            # completion that named none ends the worker's lease like an expiry does.
            end_attempt(model, outcome, self.now, keep=lease_id)
            self.completed_ever += model.state.finished
        self.check(done.job, job_id)

    @rule(job_id=st.sampled_from(JOB_IDS), which=st.integers(0, 2))
    def release(self, job_id: str, which: int) -> None:
        lease_id = self.pick_lease(job_id, which)
        self.run(self.store.release(job_id, lease_id))
        model = self.jobs.get(job_id)
        if model is not None and model.state == JobState.RUNNING and lease_id == model.lease:
            model.state = JobState.SUBMITTED
            model.attempts -= 1
            model.lease = None
            model.expires = None
            if model.attempts == 0:
                model.started_at = None

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]))
    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def expire(self) -> None:
        ended = [
            job
            for job in self.jobs.values()
            if job.state == JobState.RUNNING and job.expires is not None and job.expires <= self.now
        ]
        outcome = Outcome(*TRANSITIONS[Event.EXPIRE], error=Event.EXPIRE.value)
        assert self.run(self.store.expire(self.now, outcome)) == len(ended)
        for job in ended:
            end_attempt(job, outcome, self.now, keep=None)
            self.completed_ever += job.state.finished

    @precondition(lambda self: any(j.state == JobState.RUNNING for j in self.jobs.values()))
    @rule()
    def nothing_is_claimed_twice(self) -> None:
        # Claiming everything due must not hand out a job that is running under a live lease.
        claimed = self.run(self.store.claim(self.now, lease_seconds=1, limit=len(JOB_IDS)))
        for job in claimed:
            assert self.jobs[job.job_id].state == JobState.SUBMITTED
            self.run(self.store.release(job.job_id, job.lease_id))

    @rule(
        action=st.sampled_from(list(Action)),
        job_ids=st.lists(st.sampled_from(JOB_IDS), min_size=1, max_size=3),
    )
    def act(self, action: Action, job_ids: list[str]) -> None:
        # By id, one answer per id in order: an id named twice finds the first one's work done.
        move = ACTIONS[action]
        moved = self.run(self.store.move(job_ids, move, self.now))
        assert len(moved) == len(job_ids)
        for job_id, one in zip(job_ids, moved, strict=True):
            model = self.jobs.get(job_id)
            applied = model is not None and apply_move(model, move, self.now)
            self.completed_ever += applied and move.target.finished
            self.check_moved(one, job_id, applied)

    @rule(
        action=st.sampled_from(list(Action)),
        queue=st.sampled_from([None, "q1", "q2"]),
        prefix=st.sampled_from([None, "a", "b"]),
        one_state=st.booleans(),
        limit=st.integers(1, 3),
    )
    def act_matching(
        self, action: Action, queue: str | None, prefix: str | None, one_state: bool, limit: int
    ) -> None:
        # By filter, chunk after chunk until the store says it was the last.
        move = ACTIONS[action]
        states = frozenset(sorted(move.sources)[:1]) if one_state else move.sources
        selection = Selection(states, queue, prefix)
        matching = sorted(
            (job.seq, job_id)
            for job_id, job in self.jobs.items()
            if job.state in states
            and (queue is None or job.queue == queue)
            and (prefix is None or job_id.startswith(prefix))
        )
        total, chunks = 0, 0
        after: int | None = 0
        while after is not None:
            chunks += 1
            assert chunks <= len(JOB_IDS) + 1, "the chunks never end"
            chunk = self.run(
                self.store.move_matching(selection, move, self.now, after=after, limit=limit)
            )
            assert 0 <= chunk.moved <= limit
            total += chunk.moved
            after = chunk.resume
        assert total == len(matching)
        for _, job_id in matching:
            assert apply_move(self.jobs[job_id], move, self.now)
            self.completed_ever += move.target.finished

    @precondition(lambda self: any(job.finished_at for job in self.jobs.values()))
    @rule(
        state=st.sampled_from([JobState.SUCCEEDED, JobState.FAILED]),
        keep=st.sampled_from([0.0, 0.0, 1.0, 3.0]),
        limit=st.integers(1, 3),
    )
    def prune(self, state: JobState, keep: float, limit: int) -> None:
        before = self.now - timedelta(seconds=keep)
        old = {
            job_id: job.finished_at
            for job_id, job in self.jobs.items()
            if job.state == state and job.finished_at is not None and job.finished_at < before
        }
        pruned = self.run(self.store.prune(state, before, limit))
        assert pruned == min(limit, len(old))
        gone = [job_id for job_id in old if self.run(self.store.get(job_id)) is None]
        assert len(gone) == pruned
        # Oldest first: no job kept finished before one that was pruned (ties either way).
        kept = [finished for job_id, finished in old.items() if job_id not in gone]
        assert all(old[job_id] <= finished for job_id in gone for finished in kept)
        for job_id in gone:
            self.tombstones[job_id] = self.jobs.pop(job_id).tombstone(job_id)

    @precondition(lambda self: bool(self.tombstones))
    @rule(which=st.integers(0, len(JOB_IDS) - 1), data=st.sampled_from([None, b'{"n": 1}']))
    def submit_pruned(self, which: int, data: bytes | None) -> None:
        # The id of a pruned job stays taken, whatever is sent with it.
        job_id = sorted(self.tombstones)[which % len(self.tombstones)]
        self.submit(job_id, 3, QUEUES[1], 0, None, data)

    # -- after every step ------------------------------------------------------------------
    # One coroutine per look, so that the loop is entered once per step, not once per call.

    @invariant()
    def the_store_agrees_with_the_model(self) -> None:
        jobs, tombstones, stats, totals_read, next_due = self.run(self._look())
        for job_id, job, tombstone in zip(JOB_IDS, jobs, tombstones, strict=True):
            self.check(job, job_id)
            assert tombstone == self.tombstones.get(job_id)
        totals = Totals(self.submitted_ever, self.completed_ever)
        assert stats == stats_of(self.jobs.values(), self.now, totals)
        assert totals_read == totals
        waiting = [
            job.run_at
            for job in self.jobs.values()
            if job.state == JobState.SUBMITTED and job.run_at > self.now
        ]
        assert next_due == min(waiting, default=None)

    async def _look(
        self,
    ) -> tuple[list[StoredJob | None], list[Tombstone | None], Stats, Totals, datetime | None]:
        jobs = [await self.store.get(job_id) for job_id in JOB_IDS]
        tombstones = [await self.store.tombstone(job_id) for job_id in JOB_IDS]
        return (
            jobs,
            tombstones,
            await self.store.stats(self.now),
            await self.store.totals(),
            await self.store.next_due(self.now),
        )

    @invariant()
    def stale_leases_are_refused(self) -> None:
        # A heartbeat under a lease that is not current changes nothing, whatever the state.
        tries = [
            (job_id, lease_id)
            for job_id, job in self.jobs.items()
            for lease_id in {*job.issued[-2:], FORGED}
            - {job.lease if job.state == JobState.RUNNING else None}
        ]
        for (job_id, _), done in zip(tries, self.run(self._heartbeats(tries)), strict=True):
            assert done.finish is Finish.LEASE_LOST
            self.check(done.job, job_id)

    async def _heartbeats(self, tries: list[tuple[str, str]]) -> list[Finished]:
        return [await self.store.heartbeat(j, lease, self.now, 1) for j, lease in tries]


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_the_store_agrees_with_the_model(backend: str, tmp_path: Path) -> None:
    files = itertools.count()

    def make_store() -> Store:
        if backend == "memory":
            return MemoryStore()
        # A fresh file (or schema) per example; for SQLite no fsync per commit, this is about
        # the rules, not durability.
        example = tmp_path / f"example-{next(files)}"
        if backend == "postgres":
            return PostgresStore(postgres_url(example))
        return SqliteStore(f"{example}.db", synchronous="normal")

    class Machine(StoreMachine):
        pass

    Machine.make_store = make_store
    run_state_machine_as_test(Machine, settings=SETTINGS[backend])
