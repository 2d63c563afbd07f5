"""The storage boundary: what the queue needs from a backend, and nothing about how it is done.

Two sides, as pgqueuer splits its ports: `WorkStore` is the path jobs take (submit, claim,
heartbeat, finish, expiry), each method one atomic step in the backend's own transaction, safe
under any number of concurrent callers and server processes; `ReadStore` is what people look at
(get, list, stats), which never waits for a writer. `Store` is both, with a life cycle.

The store guarantees atomicity and durability (a step that returned is committed). What a step
means is the queue's: `simplequeue.queue` holds the one table of transitions and hands the
store the states to move to; the store answers with an explicit `Finish`, never a flag the
caller must interpret.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, TypeVar

from simplequeue.models import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_ERRORS_KEPT,
    ClaimedJob,
    JobState,
    Stats,
    StoredJob,
)

__all__ = [
    "Ending",
    "Finish",
    "Finished",
    "NewJob",
    "Outcome",
    "ReadStore",
    "Store",
    "StoreUnusable",
    "UnknownCursor",
    "WorkStore",
    "decide",
    "kept",
]

T = TypeVar("T")


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
    async def submit(self, job: NewJob) -> tuple[StoredJob, bool]:
        """Insert the job unless its id exists. Returns the stored job and whether it was new."""

    async def submit_many(self, jobs: Sequence[NewJob]) -> list[tuple[StoredJob, bool]]:
        """`submit` for each job in turn, all in one atomic step (one commit): a later job with
        the id of an earlier one finds it stored."""

    async def claim(self, now: datetime, *, lease_seconds: int, limit: int = 1) -> list[ClaimedJob]:
        """Hand out up to ``limit`` due ``submitted`` jobs, oldest first: each becomes
        ``running`` at ``now`` with one more attempt and a new, unguessable lease ending
        ``lease_seconds`` from ``now``. Each job is claimed by exactly one caller."""

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

    async def next_due(self) -> datetime | None:
        """When the next ``submitted`` job falls due, if any (for long-polls to sleep until)."""


class ReadStore(Protocol):
    async def get(self, job_id: str) -> StoredJob | None: ...

    async def list_jobs(
        self,
        states: Collection[JobState],
        limit: int,
        after: str | None,
        *,
        before: str | None = None,
        newest_first: bool = False,
        prefix: str | None = None,
    ) -> list[StoredJob]:
        """Up to ``limit`` jobs in submission order (newest first if ``newest_first``), in one of
        ``states`` (all states when empty), submitted after the job ``after`` and before the job
        ``before`` when given, whose id starts with ``prefix`` when given. Raises
        ``UnknownCursor(job_id)`` for an ``after`` or ``before`` that names no job."""

    async def stats(self) -> Stats:
        """The count of jobs per state, without scanning the jobs."""


class Store(WorkStore, ReadStore, Protocol):
    async def open(self) -> None:
        """Connect, and create or migrate the schema. Called once before any other method."""

    async def close(self) -> None: ...
