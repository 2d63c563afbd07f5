"""What the store tests share: every backend behind one `store` fixture, a fixed clock, and
short ways to submit, claim and finish.

Times are given to the store, never read from the machine's clock, and only go forward, as a
server's clock does: a job is submitted at a time no later than any call that follows it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import msgspec
import pytest

from simplequeue.models import (
    DEFAULT_QUEUE,
    ClaimedJob,
    JobState,
    QueueStats,
    Stats,
    StoredJob,
)
from simplequeue.queue import ACTIONS
from simplequeue.store import MemoryStore, NewJob, SqliteStore, Store
from simplequeue.store.base import Finish, Finished, Outcome, Totals
from simplequeue.store.postgres import PostgresStore
from tests.postgres import postgres_url

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
LEASE = 60

BACKENDS: dict[str, Callable[[Path], Store]] = {
    "memory": lambda _: MemoryStore(),
    "sqlite-file": lambda tmp: SqliteStore(str(tmp / "queue.db")),
    "sqlite-memory": lambda _: SqliteStore(":memory:"),
    "postgres": lambda tmp: PostgresStore(postgres_url(tmp)),
}
SQLITE_BACKENDS = ["sqlite-file", "sqlite-memory"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=list(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened = BACKENDS[request.param](tmp_path)
    await opened.open()
    yield opened
    await opened.close()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def text(data: Any) -> bytes:
    return msgspec.json.encode(data)


def new(
    job_id: str,
    n: float = 0,
    description: str | None = None,
    data: Any = None,
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    run_at: float | None = None,
    max_attempts: int = 3,
) -> NewJob:
    """A job submitted at ``at(n)``, due at ``at(run_at)`` when given."""
    return NewJob(
        job_id,
        description,
        None if data is None else text(data),
        at(n),
        max_attempts,
        queue,
        priority,
        None if run_at is None else at(run_at),
    )


async def claim(store: Store, now: datetime, queues: tuple[str, ...] = ()) -> ClaimedJob | None:
    """The next job, claimed under a `LEASE`-second lease, or None."""
    jobs = await store.claim(now, lease_seconds=LEASE, queues=queues)
    assert len(jobs) <= 1
    return jobs[0] if jobs else None


async def finish(store: Store, job_id: str, state: JobState, now: datetime) -> Finished:
    """End the running attempt (whatever its lease) as ``state``, final."""
    return await store.finish(job_id, None, Outcome(state, state), now)


def as_stored(job: ClaimedJob) -> StoredJob:
    """The job as every read shows it: without the lease only its worker holds."""
    fields = msgspec.structs.asdict(job)
    del fields["lease_id"]
    return StoredJob(**fields)


async def all_jobs(store: Store) -> list[StoredJob]:
    return await store.list_jobs((), 10_000, None)


class Placed(Protocol):
    """Where a job stands, as `stats_of` counts it (a `StoredJob`, or a test's model of one)."""

    queue: str
    state: JobState
    run_at: datetime


NO_TOTALS = Totals(0, 0)


def stats_of(jobs: Iterable[Placed], now: datetime, ever: Totals = NO_TOTALS) -> Stats:
    """What `Store.stats` must answer at ``now`` for a store holding ``jobs``, counted one by
    one: per state, and per queue (sorted by name) with the age of its oldest due job; with the
    cumulative counters ``ever``, which the jobs left cannot tell."""
    per_queue: dict[str, Counter[JobState]] = {}
    oldest: dict[str, datetime] = {}
    for job in jobs:
        per_queue.setdefault(job.queue, Counter())[job.state] += 1
        if job.state == JobState.SUBMITTED and job.run_at <= now:
            oldest[job.queue] = min(oldest.get(job.queue, job.run_at), job.run_at)
    totals: Counter[JobState] = sum(per_queue.values(), Counter())
    return Stats(
        submitted=totals[JobState.SUBMITTED],
        running=totals[JobState.RUNNING],
        succeeded=totals[JobState.SUCCEEDED],
        failed=totals[JobState.FAILED],
        total=totals.total(),
        queues={
            queue: QueueStats(
                submitted=counts[JobState.SUBMITTED],
                running=counts[JobState.RUNNING],
                succeeded=counts[JobState.SUCCEEDED],
                failed=counts[JobState.FAILED],
                oldest_due_age_seconds=(
                    (now - oldest[queue]).total_seconds() if queue in oldest else None
                ),
            )
            for queue, counts in sorted(per_queue.items())
        },
        submitted_ever=ever.submitted,
        completed_ever=ever.completed,
    )


QUEUES = ("default", "mail", "video")


async def random_operations(store: Store, seed: int, count: int = 400) -> Totals:
    """Submits (some repeated, some scheduled ahead, in several queues and priorities), claims
    (some of named queues), completions (some invalid), cancels and retries (some of jobs in
    other states) and prunes, in a random mix, at one step a second. Returns the counters the
    store must then hold, from what each step answered: jobs added, and jobs that became
    succeeded or failed."""
    rng = random.Random(seed)
    submitted = completed = 0
    for step in range(count):
        now = at(step)
        roll = rng.random()
        job_id = f"r{rng.randrange(submitted + 1)}"
        if roll < 0.4:
            if rng.random() < 0.8:
                job_id = f"r{submitted}"
            delay = rng.choice([None, None, None, 3, 30])
            job = new(
                job_id,
                step,
                queue=rng.choice(QUEUES),
                priority=rng.choice([0, 0, 5, -5]),
                run_at=None if delay is None else step + delay,
            )
            _, created = await store.submit(job)
            submitted += created
        elif roll < 0.65:
            queues = tuple(rng.sample(QUEUES, rng.randrange(len(QUEUES))))
            await store.claim(now, lease_seconds=LEASE, limit=rng.randint(1, 3), queues=queues)
        elif roll < 0.85:
            done = await finish(
                store, job_id, rng.choice([JobState.SUCCEEDED, JobState.FAILED]), now
            )
            completed += done.finish is Finish.APPLIED
        elif roll < 0.95:
            move = rng.choice(list(ACTIONS.values()))
            (moved,) = await store.move([job_id], move, now)
            completed += moved.moved and move.target.finished
        else:
            state = rng.choice([JobState.SUCCEEDED, JobState.FAILED])
            await store.prune(state, at(step - 20), rng.randint(1, 5))
    return Totals(submitted, completed)
