"""The storage boundary: what the queue needs from a backend, and nothing about how it is done.

Each method is one atomic step in the backend's own transaction, so that the queue's rules hold
under any number of concurrent callers and server processes. The queue decides what the answer
means (201 or 200 or 409 ...); the store only guarantees the step is atomic and durable before it
returns.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from simplequeue.models import JobState, Stats, StoredJob

__all__ = ["NewJob", "Store", "StoreUnusable", "UnknownCursor"]


class StoreUnusable(RuntimeError):
    """The store cannot be opened: a corrupt or too-new database, an unwritable path. The message
    is one line that tells the operator what is wrong and what to do; `sq serve` prints it."""


class UnknownCursor(LookupError):
    """``list_jobs(after=...)`` or ``before=...`` named a job id that does not exist."""


class NewJob:
    """What a submit stores: the client's fields and the time it arrived. ``data`` is the JSON
    text of an object, exactly as the client sent it (or ``None``)."""

    __slots__ = ("created_at", "data", "description", "job_id")

    def __init__(
        self,
        job_id: str,
        description: str | None,
        data: bytes | None,
        created_at: datetime,
    ) -> None:
        self.job_id = job_id
        self.description = description
        self.data = data
        self.created_at = created_at


class Store(Protocol):
    async def open(self) -> None:
        """Connect, and create or migrate the schema. Called once before any other method."""

    async def close(self) -> None: ...

    async def submit(self, job: NewJob) -> tuple[StoredJob, bool]:
        """Insert the job unless its id exists. Returns the stored job and whether it was new.

        Durable before it returns: a job this returned survives a crash of the server.
        """

    async def next(self, now: datetime) -> StoredJob | None:
        """Claim the oldest ``submitted`` job: make it ``running`` at ``now``, one more attempt.

        Each job is claimed by exactly one caller. ``None`` when nothing is submitted.
        """

    async def complete(
        self, job_id: str, state: JobState, now: datetime
    ) -> tuple[StoredJob | None, bool]:
        """Finish the job with ``state`` if, and only if, it is ``running``.

        Returns the job as it now is (``None`` if unknown) and whether this call changed it.
        """

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
