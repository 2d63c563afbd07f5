"""The rules of the queue: what submit, next and complete mean. No HTTP here, and no SQL.

The store makes each step atomic; this module decides what its outcome means for the caller and
raises the errors of `simplequeue.errors` that the server turns into 4xx answers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from simplequeue.errors import InvalidRequest, JobConflict, JobNotFound
from simplequeue.jsontext import same_value
from simplequeue.models import CompletionStatus, JobState, Stats, StoredJob, SubmitRequest
from simplequeue.store.base import NewJob, Store, UnknownCursor

__all__ = ["MAX_PAGE", "Page", "Queue", "Submitted", "utcnow"]

MAX_PAGE = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Submitted:
    job: StoredJob
    created: bool
    """True when this call added the job to the queue; False when it was already there."""


@dataclass(frozen=True, slots=True)
class Page:
    jobs: list[StoredJob]
    more: bool
    """True when jobs follow the last one of this page."""


def _same_data(stored: msgspec.Raw | None, sent: bytes | None) -> bool:
    # Compare JSON values, not Python ones: in Python 1 == 1.0 == True, but a client that sent
    # {"n": 1} and then {"n": true} sent different jobs. Key order is not part of a JSON object.
    if stored is None or sent is None:
        return stored is None and sent is None
    return same_value(bytes(stored), sent)


def _differing_fields(stored: StoredJob, new: NewJob) -> list[str]:
    differs = []
    if stored.description != new.description:
        differs.append("description")
    if not _same_data(stored.data, new.data):
        differs.append("data")
    return differs


class Queue:
    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self._clock = clock

    async def submit(self, request: SubmitRequest, data: bytes | None) -> Submitted:
        """Queue a new job once. The same id with the same content is answered with the stored
        job, whatever its state now, and is never queued again; other content is a conflict.

        ``data`` is the JSON text of ``request.data`` as the client sent it: that is what is
        stored and compared (``request.data`` is only its checked, decoded twin)."""
        new = NewJob(request.job_id, request.description, data, self._clock())
        job, created = await self.store.submit(new)
        if not created and (differs := _differing_fields(job, new)):
            raise JobConflict(
                f"job {job.job_id!r} was already submitted with a different "
                f"{' and '.join(differs)}; nothing was changed"
            )
        return Submitted(job, created)

    async def next(self) -> StoredJob | None:
        return await self.store.next(self._clock())

    async def complete(self, job_id: str, status: CompletionStatus) -> StoredJob:
        """Finish a running job. Repeating the same completion is answered with the job as it
        is (a retried call); any other transition is a conflict."""
        wanted = JobState(status.value)
        job, changed = await self.store.complete(job_id, wanted, self._clock())
        if job is None:
            raise JobNotFound(f"no job has jobId {job_id!r}")
        if changed or job.state == wanted:
            return job
        if job.state == JobState.SUBMITTED:
            raise JobConflict(
                f"job {job_id!r} is submitted and was never handed out by /jobs/next; "
                "only a running job can be completed"
            )
        raise JobConflict(f"job {job_id!r} already finished as {job.state.value}; it stays so")

    async def get(self, job_id: str) -> StoredJob:
        job = await self.store.get(job_id)
        if job is None:
            raise JobNotFound(f"no job has jobId {job_id!r}")
        return job

    async def list_jobs(
        self,
        states: Collection[JobState] = (),
        limit: int = 100,
        after: str | None = None,
        *,
        before: str | None = None,
        newest_first: bool = False,
        prefix: str | None = None,
    ) -> Page:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"`limit` must be between 1 and {MAX_PAGE}, got {limit}")
        try:
            jobs = await self.store.list_jobs(
                states,
                limit + 1,
                after,
                before=before,
                newest_first=newest_first,
                prefix=prefix,
            )
        except UnknownCursor as exc:
            (job_id,) = exc.args
            cursor = "after" if job_id == after else "before"
            raise InvalidRequest(f"`{cursor}` names no job: {job_id!r}") from None
        return Page(jobs[:limit], more=len(jobs) > limit)

    async def stats(self) -> Stats:
        return await self.store.stats()
