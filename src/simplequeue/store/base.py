"""The storage boundary: what the queue needs from a backend, and nothing about how it is done.

Two sides, as pgqueuer splits its ports: `WorkStore` is the path jobs take (submit, claim,
heartbeat, finish, expiry, an operator's cancel and retry, retention), each method one atomic
step in the backend's own transaction, safe under any number of concurrent callers and server
processes; `ReadStore` is what people look at
(get, list, stats), which never waits for a writer. `Store` is both, with a life cycle.

The store guarantees atomicity and durability (a step that returned is committed). What a step
means is the queue's: `simplequeue.queue` holds the one table of transitions and hands the
store the states to move to; the store answers with an explicit `Finish`, never a flag the
caller must interpret.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol, TypeVar

from simplequeue.jsontext import canonical
from simplequeue.models import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_QUEUE,
    MAX_ERRORS_KEPT,
    ClaimedJob,
    JobState,
    Stats,
    StoredJob,
)

__all__ = [
    "EXPIRE_BATCH",
    "NO_TOTALS",
    "PROMOTE_BATCH",
    "PRUNE_BYTES",
    "Ending",
    "Finish",
    "Finished",
    "Loaded",
    "Move",
    "Moved",
    "MovedChunk",
    "NewJob",
    "Outcome",
    "ReadStore",
    "Record",
    "Selection",
    "Store",
    "StoreUnusable",
    "Tombstone",
    "Totals",
    "UnknownCursor",
    "WorkStore",
    "counted",
    "decide",
    "fingerprint",
    "kept",
    "utcnow",
    "without_others",
]

T = TypeVar("T")

# Bounds every store keeps to, so that no one transaction holds its locks for long.
EXPIRE_BATCH = 500
"""Expired leases taken back per transaction: a burst of expiries never holds the lock long."""
PROMOTE_BATCH = 1000
"""Scheduled jobs a claim makes ready at most (the earliest due), so that a million falling due
at once never hold one claim's lock long; the server's periodic look makes the rest ready."""
PRUNE_BYTES = 1024 * 1024
"""About how much description and data one retention batch fingerprints at most."""


def utcnow() -> datetime:
    """The machine's clock, in UTC: the time of a store no other machine shares."""
    return datetime.now(UTC)


async def without_others(wake: Callable[[], None]) -> None:
    """`Store.watch` for a store that cannot tell when another process adds a job: it waits,
    never calling ``wake``, until cancelled (the server's periodic look finds such jobs)."""
    await asyncio.Event().wait()


class StoreUnusable(RuntimeError):
    """The store cannot be opened: a corrupt or too-new database, an unwritable path. The message
    is one line that tells the operator what is wrong and what to do; `sq serve` prints it."""


class UnknownCursor(LookupError):
    """``list_jobs(after=...)`` or ``before=...`` named a job id that does not exist."""


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a submit stores: the client's fields and the time it arrived. ``data`` is the JSON
    text of an object, exactly as the client sent it (or ``None``)."""

    job_id: str
    description: str | None
    data: bytes | None
    created_at: datetime
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    run_at: datetime | None = None
    """When it falls due; ``None``: when submitted (``created_at``)."""

    @property
    def due(self) -> datetime:
        return self.created_at if self.run_at is None else self.run_at


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ends, as the queue's transition table decides it: the job moves to
    ``then`` while it has attempts left (``attempts < max_attempts``), else to ``otherwise``.
    ``error`` is recorded as the attempt's error; ``run_at`` is when a job sent back to
    ``submitted`` is due again."""

    then: JobState
    otherwise: JobState
    result: bytes | None = None
    error: str | None = None
    run_at: datetime | None = None


class Ending(NamedTuple):
    """One attempt to end, in `WorkStore.finish_many`: the job, the lease named (if any), and
    how it ends."""

    job_id: str
    lease_id: str | None
    outcome: Outcome


class Finish(enum.Enum):
    """What a `WorkStore.finish` or `heartbeat` did."""

    APPLIED = "applied"
    """The job was running under that lease (or any, when none was named): done."""
    ALREADY_APPLIED = "already applied"
    """The same lease already finished it: a repeated call; nothing changed."""
    LEASE_LOST = "lease lost"
    """The lease named is not the job's current one: it expired, or the job was finished."""
    NOT_RUNNING = "not running"
    """No lease was named, and the job is not running (submitted, or finished)."""
    UNKNOWN = "unknown"
    """No job has that id."""


@dataclass(frozen=True, slots=True)
class Finished:
    finish: Finish
    job: StoredJob | None
    """The job as it is now (``None`` only for `Finish.UNKNOWN`)."""


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What is left of a job that retention deleted: enough to keep its id "added once" (a
    resubmit is compared with it, field by field) and to say when it finished and how. No
    description or data: only their `fingerprint`."""

    job_id: str
    queue: str
    priority: int
    max_attempts: int
    description_hash: str | None
    data_hash: str | None
    state: JobState
    created_at: datetime
    finished_at: datetime
    attempts: int


def fingerprint(description: str | None, data: bytes | None) -> tuple[str | None, str | None]:
    """The hashes a tombstone keeps of a job's description and data (``None`` for ``None``).
    Two data texts with the same JSON value (`simplequeue.jsontext.same_value`) hash alike."""

    def digest(text: bytes) -> str:
        return hashlib.sha256(text).hexdigest()[:32]

    return (
        None if description is None else digest(description.encode()),
        None if data is None else digest(canonical(data)),
    )


class Totals(NamedTuple):
    """The store's cumulative counters (``Stats.submitted_ever``, ``completed_ever``): jobs
    ever added, and times a job entered ``succeeded`` or ``failed``. Kept in the transaction of
    every change, shared by every process on the store, never lowered (retention deletes jobs,
    not counts); the server's rate history is sampled from them."""

    submitted: int
    completed: int


NO_TOTALS = Totals(0, 0)
"""The totals of a store nothing was ever added to: no job, no tombstone."""


@dataclass(frozen=True, slots=True)
class Move:
    """An operator's action, as the queue's table says it (CONTRACT §9): jobs in one of
    ``sources`` go to ``target``; jobs in other states are left alone.

    What entering ``target`` does, in every store: ``failed`` ends the job now (``finishedAt``),
    ends its lease (the worker's heartbeat and complete get "lease lost") and records ``error``
    as the current attempt's; ``submitted`` puts it back in the queue, due now, with its
    attempts and errors, and one attempt more allowed if it had used them all."""

    sources: frozenset[JobState]
    target: JobState
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Moved:
    """What a `Move` did to one job named by its id."""

    job: StoredJob | None
    """The job as it is now; ``None`` when no job has that id (see ``tombstone``)."""
    moved: bool
    tombstone: Tombstone | None = None
    """The id's tombstone, when the job was pruned."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Jobs an action applies to by filter: in one of ``states`` (never empty), in ``queue``
    when given, with an id starting with ``prefix`` when given."""

    states: frozenset[JobState]
    queue: str | None = None
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class MovedChunk:
    """One bounded chunk of a `Move` by `Selection`: how many jobs it moved, and where the next
    chunk starts (``None``: that was the last)."""

    moved: int
    resume: int | None


@dataclass(frozen=True, slots=True)
class Record:
    """One job as `sq copy` moves it between stores: what every answer shows, and what none
    does but the job still needs to go on as it was (its worker's lease, and the maxAttempts its
    submit sent, which an operator's retry may have raised since). Its place in submission order
    is its place in `ReadStore.export`'s answer."""

    job: StoredJob
    lease_id: str | None
    """The lease the job runs under, or the one that finished it (so that the worker's repeat
    is still recognised); ``None`` otherwise."""
    lease_seconds: int | None
    """That lease's length, which a heartbeat renews it for by default."""
    max_attempts_sent: int


class Loaded(NamedTuple):
    """What one `WorkStore.load` did: how many jobs (or tombstones) it added, and how many it
    skipped because their id was already taken in the target, as a job or a tombstone."""

    added: int
    skipped: int


def counted(records: Collection[Record], tombstones: Collection[Tombstone]) -> Totals:
    """What these jobs and tombstones account for in the `Totals` of the store they come from:
    each was added once, and each finished one (every tombstone's job was) completed once. A
    store's totals can hold more (a job an operator retried completed once per time it
    finished); `WorkStore.load` takes that difference as its ``extra``."""
    finished = sum(record.job.state.finished for record in records)
    return Totals(len(records) + len(tombstones), finished + len(tombstones))


def decide(
    state: JobState,
    current: str | None,
    lease_id: str | None,
    attempts: int,
    max_attempts: int,
    outcome: Outcome,
) -> tuple[Finish, JobState | None]:
    """What ending an attempt does, for every store: the `Finish` to answer, and the job's new
    state when it applies (``None`` otherwise). ``current`` is the lease the job holds (or the
    one that finished it); ``lease_id`` the one the caller named, if any."""
    if state != JobState.RUNNING or (lease_id is not None and current != lease_id):
        if lease_id is None:
            return Finish.NOT_RUNNING, None
        repeated = state != JobState.RUNNING and current == lease_id
        return (Finish.ALREADY_APPLIED if repeated else Finish.LEASE_LOST), None
    return Finish.APPLIED, outcome.then if attempts < max_attempts else outcome.otherwise


def kept(errors: list[T], entry: T) -> list[T]:
    """A job's error history with ``entry`` added: the newest `MAX_ERRORS_KEPT`."""
    return [*errors[-(MAX_ERRORS_KEPT - 1) :], entry]


class WorkStore(Protocol):
    async def submit(self, job: NewJob) -> tuple[StoredJob | Tombstone, bool]:
        """Insert the job unless its id exists or has a tombstone. Returns the stored job (or
        the tombstone) and whether it was new."""

    async def submit_many(self, jobs: Sequence[NewJob]) -> list[tuple[StoredJob | Tombstone, bool]]:
        """`submit` for each job in turn, all in one atomic step (one commit): a later job with
        the id of an earlier one finds it stored."""

    async def claim(
        self,
        now: datetime,
        *,
        lease_seconds: int,
        limit: int = 1,
        queues: Collection[str] = (),
    ) -> list[ClaimedJob]:
        """Hand out up to ``limit`` due (``run_at`` <= ``now``) ``submitted`` jobs of
        ``queues`` (any queue when empty), in the order of CONTRACT §8: highest priority first,
        then earliest ``run_at``, then submission order. Each becomes ``running`` at ``now`` with
        one more attempt and a new, unguessable lease ending ``lease_seconds`` from ``now``.
        Each job is claimed by exactly one caller. Costs the same however many jobs are stored
        or scheduled (one index)."""

    async def heartbeat(
        self, job_id: str, lease_id: str, now: datetime, lease_seconds: int | None
    ) -> Finished:
        """Renew the lease, for ``lease_seconds`` from ``now`` (default: its own length), if it is
        the job's current one (`Finish.APPLIED`), else `Finish.LEASE_LOST` or `UNKNOWN`."""

    async def finish(
        self, job_id: str, lease_id: str | None, outcome: Outcome, now: datetime
    ) -> Finished:
        """End the running attempt as ``outcome`` says. With ``lease_id``: only while it is the
        job's current lease; a repeat by the lease that finished it is `ALREADY_APPLIED`. Without:
        whatever attempt is running; a job not running is `NOT_RUNNING`."""

    async def finish_many(self, endings: Sequence[Ending], now: datetime) -> list[Finished]:
        """`finish` for each ending in turn, all in one atomic step (one commit)."""

    async def release(self, job_id: str, lease_id: str) -> None:
        """Undo a claim whose caller went away before it got the answer: the job is
        ``submitted`` again, at its place, as if it had never been handed out."""

    async def expire(self, now: datetime, outcome: Outcome) -> int:
        """End every running attempt whose lease ended at or before ``now`` as ``outcome``
        says. Returns how many; cheap when there are none."""

    async def next_due(self, now: datetime) -> datetime | None:
        """When the next ``submitted`` job not due at ``now`` falls due, if any (for long-polls
        to be woken then)."""

    async def move(self, job_ids: Sequence[str], move: Move, now: datetime) -> list[Moved]:
        """Apply ``move`` to each job named, in one atomic step; one answer per id, in order."""

    async def move_matching(
        self, selection: Selection, move: Move, now: datetime, *, after: int, limit: int
    ) -> MovedChunk:
        """Apply ``move`` to up to ``limit`` jobs of ``selection``, in submission order, from
        the position ``after`` (0: the start; else a `MovedChunk.resume`), in one atomic step:
        one bounded chunk, so that other requests are served between chunks."""

    async def promote(self, now: datetime, limit: int) -> int:
        """Let up to ``limit`` scheduled jobs due at ``now`` (the earliest first) join the
        hand-out order, for a store that keeps due jobs apart (0 for one that does not).
        `claim` does it too, for its own transaction; this is the server's periodic look."""

    async def max_attempts_sent(self, job_id: str) -> int | None:
        """The ``maxAttempts`` the job's submit asked for (an operator's retry may have raised
        it since), or ``None`` for an unknown id: what an idempotent resubmit is compared with."""

    async def prune(self, state: JobState, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` jobs in ``state`` (a final one) that finished before
        ``finished_before``, oldest first, each leaving its `Tombstone`, in one atomic step.
        Returns how many."""

    async def load(
        self,
        records: Sequence[Record],
        tombstones: Sequence[Tombstone],
        now: datetime,
        *,
        extra: Totals = NO_TOTALS,
    ) -> Loaded:
        """Add jobs and tombstones exported from another store, in one atomic step: each job
        as it was there (state, attempts, errors, result, lease, due time), after every job
        already here in submission order and in the order given; each tombstone as it was. An
        id already taken here, by a job or a tombstone, is skipped: nothing is overwritten.
        `Totals` grow by what the added ones account for (`counted`) plus ``extra``; ``now``
        is when the store says a waiting job is due (for a store that keeps due jobs apart)."""


class ReadStore(Protocol):
    async def get(self, job_id: str) -> StoredJob | None: ...

    async def tombstone(self, job_id: str) -> Tombstone | None:
        """What is left of a pruned job, if that id's job was pruned."""

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
        """Up to ``limit`` jobs in submission order (newest first if ``newest_first``), in one of
        ``states`` (all states when empty) and of ``queues`` (all when empty), submitted after
        the job ``after`` and before the job ``before`` when given, whose id starts with
        ``prefix`` when given. Raises ``UnknownCursor(job_id)`` for an ``after`` or ``before``
        that names no job."""

    async def stats(self, now: datetime) -> Stats:
        """The count of jobs per state, in all and per queue, each queue's oldest due job's age
        at ``now``, and the `Totals`, without scanning the jobs."""

    async def totals(self) -> Totals:
        """The cumulative counters alone: one small read, for the once-a-second sample."""

    async def export(self, after: int, limit: int) -> tuple[list[Record], int | None]:
        """Up to ``limit`` jobs as `Record` s, in submission order, from the position ``after``
        (0: the start; else what the previous chunk answered), and where the next chunk starts
        (``None``: that was the last). Each chunk is one read: a job that changes between
        chunks is exported as it was when its chunk was read."""

    async def export_tombstones(self, after: str | None, limit: int) -> list[Tombstone]:
        """Up to ``limit`` tombstones in the byte order of their ids, after the id ``after``
        (``None``: from the first). Fewer than ``limit``: that was the last."""


class Store(WorkStore, ReadStore, Protocol):
    async def open(self) -> None:
        """Connect, and create or migrate the schema. Called once before any other method."""

    def now(self) -> datetime:
        """The time, as every server on this store agrees on it: the queue reads each ``now``
        it passes to the store from here, so that leases and due times mean the same on every
        server (for a shared database: its clock, not each machine's)."""

    async def watch(self, wake: Callable[[], None]) -> None:
        """Run until cancelled, calling ``wake`` whenever another process may have made a job
        available (submitted, released, retried, taken back), so that waiting workers look at
        once rather than at the server's next periodic look."""

    async def close(self) -> None: ...
