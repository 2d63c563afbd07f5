"""An in-memory store for unit tests of the queue's rules. Not durable; not for production.

Every method runs without awaiting, so on one event loop each is atomic.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from simplequeue.models import (
    AttemptError,
    ClaimedJob,
    JobState,
    QueueStats,
    Stats,
    StoredJob,
)
from simplequeue.store.base import (
    NO_TOTALS,
    Ending,
    Finish,
    Finished,
    Loaded,
    Move,
    Moved,
    MovedChunk,
    NewJob,
    Outcome,
    Record,
    Selection,
    Tombstone,
    Totals,
    UnknownCursor,
    counted,
    decide,
    fingerprint,
    kept,
    utcnow,
    without_others,
)


def _order(job: StoredJob, seq: int) -> tuple[int, datetime, int]:
    """The hand-out order of CONTRACT §8: highest priority, earliest due, first submitted."""
    return (-job.priority, job.run_at, seq)


class MemoryStore:
    def __init__(self) -> None:
        self._jobs: dict[str, StoredJob] = {}  # insertion order is submission order
        # What a job holds that no answer shows: its lease (current, or the one that finished
        # it), that lease's length, and its place in submission order.
        self._lease: dict[str, tuple[str | None, int]] = {}
        self._seq: dict[str, int] = {}
        self._last_seq = 0
        self._tombstones: dict[str, Tombstone] = {}
        self._max_attempts_sent: dict[str, int] = {}
        self._submitted_ever = 0
        self._completed_ever = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    # One process holds the jobs: its clock is the store's, and no other process adds any.
    now = staticmethod(utcnow)
    watch = staticmethod(without_others)

    async def submit(self, job: NewJob) -> tuple[StoredJob | Tombstone, bool]:
        return self._submit(job)

    async def submit_many(self, jobs: Sequence[NewJob]) -> list[tuple[StoredJob | Tombstone, bool]]:
        return [self._submit(job) for job in jobs]

    def _submit(self, job: NewJob) -> tuple[StoredJob | Tombstone, bool]:
        if (stored := self._jobs.get(job.job_id)) is not None:
            return stored, False
        if (tombstone := self._tombstones.get(job.job_id)) is not None:
            return tombstone, False
        stored = StoredJob(
            job_id=job.job_id,
            description=job.description,
            data=None if job.data is None else msgspec.Raw(job.data),
            state=JobState.SUBMITTED,
            queue=job.queue,
            priority=job.priority,
            run_at=job.due,
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
        self._max_attempts_sent[job.job_id] = job.max_attempts
        self._last_seq += 1
        self._seq[job.job_id] = self._last_seq
        self._submitted_ever += 1
        return stored, True

    async def claim(
        self,
        now: datetime,
        *,
        lease_seconds: int,
        limit: int = 1,
        queues: Collection[str] = (),
    ) -> list[ClaimedJob]:
        due = sorted(
            (
                job
                for job in self._jobs.values()
                if job.state == JobState.SUBMITTED
                and job.run_at <= now
                and (not queues or job.queue in queues)
            ),
            key=lambda job: _order(job, self._seq[job.job_id]),
        )[:limit]
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
        run_at = outcome.run_at if requeued and outcome.run_at is not None else job.run_at
        # The lease that finished it stays, so that its repeats are recognised; none stays
        # after a finish without a lease or an expiry, so that a late worker is refused.
        self._lease[job_id] = (lease_id if keep_lease else None, length)
        self._completed_ever += state.finished
        job = self._replace(
            job,
            state=state,
            finished_at=None if requeued else now,
            result=None if outcome.result is None else msgspec.Raw(outcome.result),
            errors=errors,
            lease_expires_at=None,
            run_at=run_at,
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

    async def next_due(self, now: datetime) -> datetime | None:
        due = [
            job.run_at
            for job in self._jobs.values()
            if job.state == JobState.SUBMITTED and job.run_at > now
        ]
        return min(due, default=None)

    async def move(self, job_ids: Sequence[str], move: Move, now: datetime) -> list[Moved]:
        answers = []
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is None:
                answers.append(Moved(None, False, self._tombstones.get(job_id)))
            elif job.state in move.sources:
                answers.append(Moved(self._move(job, move, now), True))
            else:
                answers.append(Moved(job, False))
        return answers

    async def move_matching(
        self, selection: Selection, move: Move, now: datetime, *, after: int, limit: int
    ) -> MovedChunk:
        moved = 0
        for job in list(self._jobs.values()):
            seq = self._seq[job.job_id]
            if (
                seq > after
                and job.state in selection.states & move.sources
                and (selection.queue is None or job.queue == selection.queue)
                and (selection.prefix is None or job.job_id.startswith(selection.prefix))
            ):
                self._move(job, move, now)
                moved += 1
                if moved == limit:
                    return MovedChunk(moved, seq)
        return MovedChunk(moved, None)

    def _move(self, job: StoredJob, move: Move, now: datetime) -> StoredJob:
        length = self._lease.get(job.job_id, (None, 0))[1]
        self._lease[job.job_id] = (None, length)  # whatever lease it had is over
        if move.target == JobState.FAILED:
            errors = job.errors
            if move.error is not None:
                entry = AttemptError(attempt=job.attempts, at=now, error=move.error)
                errors = kept(errors, entry)
            self._completed_ever += 1
            return self._replace(
                job,
                state=JobState.FAILED,
                finished_at=now,
                lease_expires_at=None,
                errors=errors,
            )
        return self._replace(
            job,
            state=JobState.SUBMITTED,
            finished_at=None,
            lease_expires_at=None,
            run_at=now,
            max_attempts=max(job.max_attempts, job.attempts + 1),
        )

    async def promote(self, now: datetime, limit: int) -> int:
        return 0  # a claim looks at every job's due time itself

    async def max_attempts_sent(self, job_id: str) -> int | None:
        return self._max_attempts_sent.get(job_id) if job_id in self._jobs else None

    async def prune(self, state: JobState, finished_before: datetime, limit: int) -> int:
        old = sorted(
            (
                job
                for job in self._jobs.values()
                if job.state == state
                and job.finished_at is not None
                and job.finished_at < finished_before
            ),
            key=lambda job: (job.finished_at, self._seq[job.job_id]),
        )[:limit]
        for job in old:
            assert job.finished_at is not None
            description_hash, data_hash = fingerprint(
                job.description, None if job.data is None else bytes(job.data)
            )
            self._tombstones[job.job_id] = Tombstone(
                job_id=job.job_id,
                queue=job.queue,
                priority=job.priority,
                max_attempts=self._max_attempts_sent[job.job_id],
                description_hash=description_hash,
                data_hash=data_hash,
                state=job.state,
                created_at=job.created_at,
                finished_at=job.finished_at,
                attempts=job.attempts,
            )
            del self._jobs[job.job_id], self._seq[job.job_id]
            del self._max_attempts_sent[job.job_id]
            self._lease.pop(job.job_id, None)
        return len(old)

    async def load(
        self,
        records: Sequence[Record],
        tombstones: Sequence[Tombstone],
        now: datetime,
        *,
        extra: Totals = NO_TOTALS,
    ) -> Loaded:
        added: list[Record] = []
        for record in records:
            job_id = record.job.job_id
            if job_id in self._jobs or job_id in self._tombstones:
                continue
            self._jobs[job_id] = record.job
            self._max_attempts_sent[job_id] = record.max_attempts_sent
            if record.lease_seconds is not None:
                self._lease[job_id] = (record.lease_id, record.lease_seconds)
            self._last_seq += 1
            self._seq[job_id] = self._last_seq
            added.append(record)
        buried: list[Tombstone] = []
        for tombstone in tombstones:
            if tombstone.job_id not in self._jobs and tombstone.job_id not in self._tombstones:
                self._tombstones[tombstone.job_id] = tombstone
                buried.append(tombstone)
        submitted, completed = counted(added, buried)
        self._submitted_ever += submitted + extra.submitted
        self._completed_ever += completed + extra.completed
        new = len(added) + len(buried)
        return Loaded(new, len(records) + len(tombstones) - new)

    async def export(self, after: int, limit: int) -> tuple[list[Record], int | None]:
        jobs = (job for job in self._jobs.values() if self._seq[job.job_id] > after)
        records = [self._record(job) for job in itertools.islice(jobs, limit)]
        return records, self._seq[records[-1].job.job_id] if len(records) == limit else None

    def _record(self, job: StoredJob) -> Record:
        lease_id, length = self._lease.get(job.job_id) or (None, None)
        return Record(job, lease_id, length, self._max_attempts_sent[job.job_id])

    async def export_tombstones(self, after: str | None, limit: int) -> list[Tombstone]:
        # Python orders str by code point, which is the byte order of their UTF-8.
        later = sorted(job_id for job_id in self._tombstones if after is None or job_id > after)
        return [self._tombstones[job_id] for job_id in later[:limit]]

    async def tombstone(self, job_id: str) -> Tombstone | None:
        return self._tombstones.get(job_id)

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
        queues: Collection[str] = (),
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
            if (
                (not states or job.state in states)
                and (not queues or job.queue in queues)
                and (prefix is None or job.job_id.startswith(prefix))
            ):
                page.append(job)
                if len(page) == limit:
                    break
        return page

    async def stats(self, now: datetime) -> Stats:
        counts = dict.fromkeys(JobState, 0)
        per_queue: dict[str, dict[JobState, int]] = {}
        oldest: dict[str, datetime] = {}
        for job in self._jobs.values():
            counts[job.state] += 1
            per_queue.setdefault(job.queue, dict.fromkeys(JobState, 0))[job.state] += 1
            if job.state == JobState.SUBMITTED and job.run_at <= now:
                oldest[job.queue] = min(oldest.get(job.queue, job.run_at), job.run_at)
        queues = {
            name: QueueStats(
                submitted=n[JobState.SUBMITTED],
                running=n[JobState.RUNNING],
                succeeded=n[JobState.SUCCEEDED],
                failed=n[JobState.FAILED],
                oldest_due_age_seconds=(
                    (now - oldest[name]).total_seconds() if name in oldest else None
                ),
            )
            for name, n in sorted(per_queue.items())
        }
        return Stats(
            submitted=counts[JobState.SUBMITTED],
            running=counts[JobState.RUNNING],
            succeeded=counts[JobState.SUCCEEDED],
            failed=counts[JobState.FAILED],
            total=len(self._jobs),
            queues=queues,
            submitted_ever=self._submitted_ever,
            completed_ever=self._completed_ever,
        )

    async def totals(self) -> Totals:
        return Totals(self._submitted_ever, self._completed_ever)
