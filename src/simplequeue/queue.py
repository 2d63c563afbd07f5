"""The rules of the queue: what submit, next, heartbeat and complete mean. No HTTP, no SQL.

The store makes each step atomic; this module decides what its outcome means for the caller and
raises the errors of `simplequeue.errors` that the server turns into 4xx answers.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from simplequeue.errors import (
    LEASE_LOST,
    InvalidRequest,
    JobConflict,
    JobNotFound,
    SimpleQueueError,
)
from simplequeue.jsontext import same_value
from simplequeue.models import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    RETRY_BACKOFF,
    ClaimedJob,
    CompleteRequest,
    CompletionStatus,
    JobState,
    Stats,
    StoredJob,
    SubmitRequest,
)
from simplequeue.store.base import (
    Ending,
    Finish,
    Finished,
    NewJob,
    Outcome,
    Store,
    UnknownCursor,
)
from simplequeue.waiters import Waiters

__all__ = [
    "MAX_PAGE",
    "TRANSITIONS",
    "Event",
    "Page",
    "Queue",
    "Rules",
    "Submitted",
    "utcnow",
]

logger = logging.getLogger("simplequeue.queue")

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
    if stored.max_attempts != new.max_attempts:
        differs.append("maxAttempts")
    return differs


def _completed(request: CompleteRequest, done: Finished) -> StoredJob:
    """What a completion answers, given what the store did: the job, or the error to raise."""
    job_id, job = request.job_id, done.job
    if job is None:
        raise JobNotFound(f"no job has jobId {job_id!r}")
    if done.finish in (Finish.APPLIED, Finish.ALREADY_APPLIED):
        return job
    if done.finish is Finish.LEASE_LOST and request.lease_id is not None:
        raise _lease_lost(job_id)
    if job.state.value == request.status.value:
        return job  # without a lease: the same final status again, a retried call
    if job.state == JobState.SUBMITTED:
        raise JobConflict(
            f"job {job_id!r} is submitted and was never handed out by /jobs/next; "
            "only a running job can be completed"
        )
    raise JobConflict(f"job {job_id!r} already finished as {job.state.value}; it stays so")


class Event(enum.Enum):
    """What can happen to a running job's attempt."""

    SUCCEED = "succeeded"
    FAIL = "failed"
    RETRY = "failed, to be retried"
    EXPIRE = "lease expired"


TRANSITIONS: dict[Event, tuple[JobState, JobState]] = {
    # event: (the state while attempts remain, the state once they are used up)
    Event.SUCCEED: (JobState.SUCCEEDED, JobState.SUCCEEDED),
    Event.FAIL: (JobState.FAILED, JobState.FAILED),
    Event.RETRY: (JobState.SUBMITTED, JobState.FAILED),
    Event.EXPIRE: (JobState.SUBMITTED, JobState.FAILED),
}
"""The queue's one table of transitions out of ``running`` (CONTRACT §2, §7). The one way in is
a claim (``submitted`` -> ``running``, one more attempt, a new lease). Stores apply an event only
to a running job, under its current lease when one is named."""

MAX_BACKOFF = 3600.0
"""The longest a retried job waits before it is due again: one hour."""
EXPIRY_INTERVAL = 0.5
"""Seconds between two looks for expired leases (and for jobs other processes added)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """The server's defaults for the queue's rules (`sq serve` options)."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    retry_backoff: float = RETRY_BACKOFF
    """Seconds before a job's first retry; each further retry waits twice as long, with jitter,
    up to `MAX_BACKOFF`."""


def _lease_lost(job_id: str) -> JobConflict:
    # The detail starts with LEASE_LOST, which is how clients tell it from other conflicts;
    # it never repeats the lease id (CONTRACT §7: leases appear in no log).
    return JobConflict(
        f"{LEASE_LOST}: job {job_id!r} is no longer held by this lease (it expired and the "
        "job was taken back, or the job was finished another way); nothing was changed"
    )


class Queue:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime] = utcnow,
        rules: Rules | None = None,
    ) -> None:
        self.store = store
        self.rules = rules or Rules()
        self._clock = clock
        self._waiters = Waiters(self._claim, self._release)

    async def submit(self, request: SubmitRequest, data: bytes | None) -> Submitted:
        """Queue a new job once. The same id with the same content is answered with the stored
        job, whatever its state now, and is never queued again; other content is a conflict.

        ``data`` is the JSON text of ``request.data`` as the client sent it: that is what is
        stored and compared (``request.data`` is only its checked, decoded twin)."""
        (submitted,) = await self.submit_many([(request, data)])
        if isinstance(submitted, JobConflict):
            raise submitted
        return submitted

    async def submit_many(
        self, requests: Sequence[tuple[SubmitRequest, bytes | None]]
    ) -> list[Submitted | JobConflict]:
        """`submit` for each request in turn, all stored in one commit: each is decided as if
        it had been sent alone (a conflict is that item's answer, not the batch's)."""
        now = self._clock()
        new = [
            NewJob(
                request.job_id,
                request.description,
                data,
                now,
                int(request.max_attempts or self.rules.max_attempts),
            )
            for request, data in requests
        ]
        answers: list[Submitted | JobConflict] = []
        for sent, (job, created) in zip(new, await self.store.submit_many(new), strict=True):
            if not created and (differs := _differing_fields(job, sent)):
                answers.append(
                    JobConflict(
                        f"job {job.job_id!r} was already submitted with a different "
                        f"{' and '.join(differs)}; nothing was changed"
                    )
                )
            else:
                answers.append(Submitted(job, created))
        if any(isinstance(answer, Submitted) and answer.created for answer in answers):
            self._waiters.wake()
        return answers

    async def next(
        self, *, lease_seconds: int | None = None, wait: float = 0.0, count: int = 1
    ) -> list[ClaimedJob]:
        """Up to ``count`` jobs, each now running under a lease of its own; if there are none,
        the first that arrive within ``wait`` seconds (in the order the callers came)."""
        lease = lease_seconds or self.rules.lease_seconds
        # Callers already waiting come first: a newcomer that may wait joins the line.
        if not (wait > 0 and len(self._waiters)):
            claimed = await self._claim_for_caller(lease, count)
            if claimed or wait <= 0:
                return claimed
        if (due := await self.store.next_due()) is not None:
            self._wake_at(due)  # a job due within the wait (a retry's backoff) wakes the line
        return await self._waiters.wait(lease, count, wait)

    async def _claim_for_caller(self, lease_seconds: int, count: int) -> list[ClaimedJob]:
        """A claim for a caller that may go away meanwhile (its client disconnects): the store
        finishes the claim regardless, so a cancelled caller's jobs are released at once."""
        claim = asyncio.ensure_future(self._claim(lease_seconds, count))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            for job in await claim:
                await self._release(job)
            raise

    async def _claim(self, lease_seconds: int, count: int) -> list[ClaimedJob]:
        return await self.store.claim(self._clock(), lease_seconds=lease_seconds, limit=count)

    def _wake_at(self, due: datetime) -> None:
        delay = (due - self._clock()).total_seconds()
        asyncio.get_running_loop().call_later(max(delay, 0.0), self._waiters.wake)

    async def _release(self, job: ClaimedJob) -> None:
        await self.store.release(job.job_id, job.lease_id)
        self._waiters.wake()

    async def heartbeat(
        self, job_id: str, lease_id: str, lease_seconds: int | None = None
    ) -> ClaimedJob:
        """Renew a lease: the job stays with its worker ``lease_seconds`` (default: the lease's
        own length) from now."""
        done = await self.store.heartbeat(job_id, lease_id, self._clock(), lease_seconds)
        if done.finish is Finish.UNKNOWN:
            raise JobNotFound(f"no job has jobId {job_id!r}")
        if done.finish is not Finish.APPLIED or not isinstance(done.job, ClaimedJob):
            raise _lease_lost(job_id)
        return done.job

    async def complete(self, request: CompleteRequest, result: bytes | None) -> StoredJob:
        """End the running attempt. With a lease, only while it is the job's current one;
        repeating an applied completion is answered with the job as it is; anything else is a
        conflict. ``result`` is the JSON text of ``request.result`` as sent."""
        (completed,) = await self.complete_many([(request, result)])
        if isinstance(completed, SimpleQueueError):
            raise completed
        return completed

    async def complete_many(
        self, requests: Sequence[tuple[CompleteRequest, bytes | None]]
    ) -> list[StoredJob | JobConflict | JobNotFound]:
        """`complete` for each request in turn, all in one commit, each decided as if it had
        been sent alone: its answer is the job, or the error a single call would raise."""
        endings = [await self._ending(request, result) for request, result in requests]
        done = await self.store.finish_many(endings, self._clock())
        answers: list[StoredJob | JobConflict | JobNotFound] = []
        for (request, _), ending, finished in zip(requests, endings, done, strict=True):
            run_at = ending.outcome.run_at
            if run_at is not None and finished.finish is Finish.APPLIED:
                self._wake_at(run_at)  # the retried job falls due then: waiters hear at once
            try:
                answers.append(_completed(request, finished))
            except (JobConflict, JobNotFound) as exc:
                answers.append(exc)
        return answers

    async def _ending(self, request: CompleteRequest, result: bytes | None) -> Ending:
        if request.status == CompletionStatus.SUCCEEDED:
            event = Event.SUCCEED
        else:
            event = Event.RETRY if request.retry else Event.FAIL
        error = None if event is Event.SUCCEED else (request.error or "failed")
        run_at = None
        if event is Event.RETRY:
            run_at = self._clock() + await self._backoff(request.job_id)
        outcome = Outcome(*TRANSITIONS[event], result=result, error=error, run_at=run_at)
        return Ending(request.job_id, request.lease_id, outcome)

    async def _backoff(self, job_id: str) -> timedelta:
        # Exponential in the attempts made, with jitter so that jobs failing together do not
        # come back together.
        job = await self.store.get(job_id)
        attempts = job.attempts if job is not None else 1
        seconds = self.rules.retry_backoff * 2.0 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, MAX_BACKOFF) * random.uniform(0.5, 1.0))

    async def expire(self) -> int:
        """Take back every job whose lease has ended: how many."""
        outcome = Outcome(*TRANSITIONS[Event.EXPIRE], error=Event.EXPIRE.value)
        return await self.store.expire(self._clock(), outcome)

    async def run(self, interval: float = EXPIRY_INTERVAL) -> None:
        """The server's background duty, until cancelled: take back expired leases, and let
        waiting workers look for jobs that fell due or that another process added."""
        while True:
            try:
                await self.expire()
            except SimpleQueueError as exc:
                logger.warning("could not take back expired leases: %s", exc.detail)
            except Exception:
                # Whatever it was, the next look may succeed: this loop must never end, or no
                # lease would ever expire again.
                logger.exception("could not take back expired leases")
            self._waiters.wake()
            await asyncio.sleep(interval)

    def stop_waiting(self) -> None:
        """The server is stopping: every waiting caller is answered now (no job), and new ones
        are not kept waiting, so that shutting down never waits out a long-poll."""
        self._waiters.stop()

    async def close(self) -> None:
        await self._waiters.close()

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
