"""An in-memory store for unit tests of the queue's rules. Not durable; not for production.

Every method runs without awaiting, so on one event loop each is atomic.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from simplequeue.models import (
    AttemptError,
    ClaimedJob,
    JobState,
    Stats,
    StoredJob,
)
from simplequeue.store.base import (
    Ending,
    Finish,
    Finished,
    NewJob,
    Outcome,
    UnknownCursor,
    decide,
    kept,
)


class MemoryStore:
    def __init__(self) -> None:
        self._jobs: dict[str, StoredJob] = {}  # insertion order is submission order
        # What a job holds that no answer shows: its lease (current, or the one that finished
        # it), that lease's length, and when it is due.
        self._lease: dict[str, tuple[str | None, int]] = {}
        self._run_at: dict[str, datetime] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def submit(self, job: NewJob) -> tuple[StoredJob, bool]:
        return self._submit(job)

    async def submit_many(self, jobs: Sequence[NewJob]) -> list[tuple[StoredJob, bool]]:
        return [self._submit(job) for job in jobs]

    def _submit(self, job: NewJob) -> tuple[StoredJob, bool]:
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
            max_attempts=job.max_attempts,
            lease_expires_at=None,
            result=None,
            errors=[],
        )
        self._jobs[job.job_id] = stored
        self._run_at[job.job_id] = job.created_at
        return stored, True

    async def claim(self, now: datetime, *, lease_seconds: int, limit: int = 1) -> list[ClaimedJob]:
        due = [
            job
            for job in self._jobs.values()
            if job.state == JobState.SUBMITTED and self._run_at[job.job_id] <= now
        ][:limit]
        claimed = []
        for waiting in due:
            lease_id = secrets.token_urlsafe(18)
            self._lease[waiting.job_id] = (lease_id, lease_seconds)
            job = self._replace(
                waiting,
                state=JobState.RUNNING,
                started_at=now,
                attempts=waiting.attempts + 1,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
            )
            claimed.append(ClaimedJob(**msgspec.structs.asdict(job), lease_id=lease_id))
        return claimed

    async def heartbeat(
        self, job_id: str, lease_id: str, now: datetime, lease_seconds: int | None
    ) -> Finished:
        job = self._jobs.get(job_id)
        if job is None:
            return Finished(Finish.UNKNOWN, None)
        current, length = self._lease.get(job_id, (None, 0))
        if job.state != JobState.RUNNING or current != lease_id:
            return Finished(Finish.LEASE_LOST, job)
        length = lease_seconds or length
        self._lease[job_id] = (lease_id, length)
        job = self._replace(job, lease_expires_at=now + timedelta(seconds=length))
        return Finished(
            Finish.APPLIED, ClaimedJob(**msgspec.structs.asdict(job), lease_id=lease_id)
        )

    async def finish(
        self, job_id: str, lease_id: str | None, outcome: Outcome, now: datetime
    ) -> Finished:
        return self._finish(job_id, lease_id, outcome, now, keep_lease=True)

    async def finish_many(self, endings: Sequence[Ending], now: datetime) -> list[Finished]:
        return [
            self._finish(job_id, lease_id, outcome, now, keep_lease=True)
            for job_id, lease_id, outcome in endings
        ]

    def _finish(
        self,
        job_id: str,
        lease_id: str | None,
        outcome: Outcome,
        now: datetime,
        *,
        keep_lease: bool,
    ) -> Finished:
        job = self._jobs.get(job_id)
        if job is None:
            return Finished(Finish.UNKNOWN, None)
        current, length = self._lease.get(job_id, (None, 0))
        finish, state = decide(
            job.state, current, lease_id, job.attempts, job.max_attempts, outcome
        )
        if state is None:
            return Finished(finish, job)
        errors = job.errors
        if outcome.error is not None:
            errors = kept(errors, AttemptError(attempt=job.attempts, at=now, error=outcome.error))
        requeued = state == JobState.SUBMITTED
        if requeued and outcome.run_at is not None:
            self._run_at[job_id] = outcome.run_at
        # The lease that finished it stays, so that its repeats are recognised; none stays
        # after a finish without a lease or an expiry, so that a late worker is refused.
        self._lease[job_id] = (lease_id if keep_lease else None, length)
        job = self._replace(
            job,
            state=state,
            finished_at=None if requeued else now,
            result=None if outcome.result is None else msgspec.Raw(outcome.result),
            errors=errors,
            lease_expires_at=None,
        )
        return Finished(Finish.APPLIED, job)

    async def release(self, job_id: str, lease_id: str) -> None:
        job = self._jobs.get(job_id)
        current, length = self._lease.get(job_id, (None, 0))
        if job is not None and job.state == JobState.RUNNING and current == lease_id:
            self._lease[job_id] = (None, length)
            self._replace(
                job,
                state=JobState.SUBMITTED,
                attempts=job.attempts - 1,
                started_at=None if job.attempts == 1 else job.started_at,
                lease_expires_at=None,
            )

    async def expire(self, now: datetime, outcome: Outcome) -> int:
        expired = [
            job.job_id
            for job in self._jobs.values()
            if job.state == JobState.RUNNING
            and job.lease_expires_at is not None
            and job.lease_expires_at <= now
        ]
        for job_id in expired:
            self._finish(job_id, self._lease[job_id][0], outcome, now, keep_lease=False)
        return len(expired)

    async def next_due(self) -> datetime | None:
        due = [
            self._run_at[job.job_id]
            for job in self._jobs.values()
            if job.state == JobState.SUBMITTED
        ]
        return min(due, default=None)

    def _replace(self, job: StoredJob, **changes: Any) -> StoredJob:
        job = msgspec.structs.replace(job, **changes)
        self._jobs[job.job_id] = job
        return job

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
