"""An in-memory store for unit tests of the queue's rules. Not durable; not for production.

Every method runs without awaiting, so on one event loop each is atomic.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import msgspec

from simplequeue.models import JobState, Stats, StoredJob
from simplequeue.store.base import NewJob, UnknownCursor


class MemoryStore:
    def __init__(self) -> None:
        self._jobs: dict[str, StoredJob] = {}  # insertion order is submission order
        self._queue: dict[str, None] = {}  # ids of submitted jobs, oldest first

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def submit(self, job: NewJob) -> tuple[StoredJob, bool]:
        if (stored := self._jobs.get(job.job_id)) is not None:
            return stored, False
        stored = StoredJob(
            job_id=job.job_id,
            description=job.description,
            data=None if job.data is None else msgspec.Raw(job.data),
            state=JobState.SUBMITTED,
            created_at=job.created_at,
            started_at=None,
            finished_at=None,
            attempts=0,
        )
        self._jobs[job.job_id] = stored
        self._queue[job.job_id] = None
        return stored, True

    async def next(self, now: datetime) -> StoredJob | None:
        if not self._queue:
            return None
        job_id = next(iter(self._queue))
        del self._queue[job_id]
        job = self._jobs[job_id]
        job = msgspec.structs.replace(
            job, state=JobState.RUNNING, started_at=now, attempts=job.attempts + 1
        )
        self._jobs[job_id] = job
        return job

    async def complete(
        self, job_id: str, state: JobState, now: datetime
    ) -> tuple[StoredJob | None, bool]:
        job = self._jobs.get(job_id)
        if job is None or job.state != JobState.RUNNING:
            return job, False
        job = msgspec.structs.replace(job, state=state, finished_at=now)
        self._jobs[job_id] = job
        return job, True

    async def get(self, job_id: str) -> StoredJob | None:
        return self._jobs.get(job_id)

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
        for cursor in (after, before):
            if cursor is not None and cursor not in self._jobs:
                raise UnknownCursor(cursor)
        ids = list(self._jobs)
        low = 0 if after is None else ids.index(after) + 1
        high = len(ids) if before is None else ids.index(before)
        window = [self._jobs[job_id] for job_id in ids[low:high]]
        page = []
        for job in reversed(window) if newest_first else window:
            if (not states or job.state in states) and (
                prefix is None or job.job_id.startswith(prefix)
            ):
                page.append(job)
                if len(page) == limit:
                    break
        return page

    async def stats(self) -> Stats:
        counts = dict.fromkeys(JobState, 0)
        for job in self._jobs.values():
            counts[job.state] += 1
        return Stats(
            submitted=counts[JobState.SUBMITTED],
            running=counts[JobState.RUNNING],
            succeeded=counts[JobState.SUCCEEDED],
            failed=counts[JobState.FAILED],
            total=len(self._jobs),
        )
