"""The rules of the queue: what submit, next, heartbeat, complete, an operator's cancel and retry,
and retention mean. No HTTP, no SQL.

The store makes each step atomic; this module decides what its outcome means for the caller and
raises the errors of `simplequeue.errors` that the server turns into 4xx answers.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import msgspec

from simplequeue.errors import (
    LEASE_LOST,
    InvalidRequest,
    JobConflict,
    JobGone,
    JobNotFound,
    SimpleQueueError,
)
from simplequeue.history import RateHistory
from simplequeue.jsontext import same_value
from simplequeue.models import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    HISTORY_INTERVAL,
    HISTORY_SECONDS,
    RETRY_BACKOFF,
    Changed,
    ClaimedJob,
    CompleteRequest,
    CompletionStatus,
    JobFilter,
    JobState,
    Stats,
    StatsHistory,
    StoredJob,
    SubmitRequest,
)
from simplequeue.store.base import (
    Ending,
    Finish,
    Finished,
    Move,
    NewJob,
    Outcome,
    Selection,
    Store,
    Tombstone,
    UnknownCursor,
    fingerprint,
    utcnow,
)
from simplequeue.waiters import Waiters

__all__ = [
    "ACTIONS",
    "MAX_PAGE",
    "TRANSITIONS",
    "Action",
    "Event",
    "Page",
    "Queue",
    "Rules",
    "Submitted",
    "utcnow",
]

logger = logging.getLogger("simplequeue.queue")

MAX_PAGE = 1000


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


def _differing_fields(stored: StoredJob | Tombstone, new: NewJob) -> list[str]:
    """The fields CONTRACT §8 compares for an idempotent submit that differ (``runAt`` and
    ``delaySeconds`` are not compared: the first submit's timing stands). A pruned job is
    compared through its tombstone's fingerprints."""
    if isinstance(stored, Tombstone):
        description, data = fingerprint(new.description, new.data)
        same_description = stored.description_hash == description
        same_data = stored.data_hash == data
    else:
        same_description = stored.description == new.description
        same_data = _same_data(stored.data, new.data)
    differs = []
    if not same_description:
        differs.append("description")
    if not same_data:
        differs.append("data")
    if stored.queue != new.queue:
        differs.append("queue")
    if stored.priority != new.priority:
        differs.append("priority")
    if stored.max_attempts != new.max_attempts:
        differs.append("maxAttempts")
    return differs


def _from_tombstone(tombstone: Tombstone, sent: NewJob) -> StoredJob:
    """The answer to a resubmit of a pruned job with the same content: that content (which the
    fingerprints match) and what the tombstone keeps; its result and errors are gone."""
    return StoredJob(
        job_id=tombstone.job_id,
        description=sent.description,
        data=None if sent.data is None else msgspec.Raw(sent.data),
        state=tombstone.state,
        queue=tombstone.queue,
        priority=tombstone.priority,
        run_at=tombstone.created_at,
        created_at=tombstone.created_at,
        started_at=None,
        finished_at=tombstone.finished_at,
        attempts=tombstone.attempts,
        max_attempts=tombstone.max_attempts,
        lease_expires_at=None,
        result=None,
        errors=[],
    )


def _missing(job_id: str, tombstone: Tombstone | None) -> JobNotFound | JobGone:
    """The error for an id no job has: 410 if retention deleted its job, else 404."""
    if tombstone is None:
        return JobNotFound(f"no job has jobId {job_id!r}")
    finished = tombstone.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return JobGone(
        f"job {tombstone.job_id!r} {tombstone.state.value} at {finished} and was deleted by "
        "the server's retention; its id stays taken"
    )


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
            f"job {job_id!r} is submitted, waiting to be handed out by /jobs/next; "
            "only a running job can be completed"
        )
    raise JobConflict(f"job {job_id!r} already finished as {job.state.value}; it stays so")


def _due(request: SubmitRequest, now: datetime) -> datetime | None:
    """When a submitted job falls due: ``runAt``, or ``delaySeconds`` from ``now``, or ``None``
    (now)."""
    if request.run_at is not None:
        return request.run_at  # in UTC (SubmitRequest checks it)
    if request.delay_seconds:
        return now + timedelta(seconds=request.delay_seconds)
    return None


def _not_movable(action: Action, job: StoredJob) -> JobConflict:
    if action is Action.CANCEL:
        return JobConflict(
            f"job {job.job_id!r} already finished as {job.state.value}; only a submitted or "
            "running job can be cancelled"
        )
    return JobConflict(f"job {job.job_id!r} is {job.state.value}; only a failed job can be retried")


async def _in_batches(batch: Callable[[], Awaitable[int]]) -> int:
    """Run a duty's ``batch`` (up to `DUTY_BATCH` jobs each) until one does less than that, at
    most `DUTY_BATCHES` times, letting other work go first between two: how many jobs in all."""
    total = 0
    for _ in range(DUTY_BATCHES):
        done = await batch()
        total += done
        if done < DUTY_BATCH:
            break
        await asyncio.sleep(0)
    return total


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


class Action(enum.Enum):
    """What an operator can do to jobs (CONTRACT §9)."""

    CANCEL = "cancel"
    RETRY = "retry"


ACTIONS: dict[Action, Move] = {
    # A cancelled job is failed with the error `cancelled`; a running one loses its lease.
    Action.CANCEL: Move(
        frozenset({JobState.SUBMITTED, JobState.RUNNING}), JobState.FAILED, error="cancelled"
    ),
    # A failed job is due again now, with its attempts and errors (one more attempt allowed).
    Action.RETRY: Move(frozenset({JobState.FAILED}), JobState.SUBMITTED),
}
"""The rest of the table: the operator's moves, from these states to that one. Jobs in other
states are left alone (409 when named alone)."""

MAX_BACKOFF = 3600.0
"""The longest a retried job waits before it is due again: one hour."""
LOOK_INTERVAL = 0.5
"""Seconds between two looks (`Queue.run`, ``sq serve --look-interval``): for ended leases,
scheduled jobs that fell due, what retention prunes, and jobs other processes added: the only
way waiting workers hear of those on SQLite, the fallback for a lost LISTEN on PostgreSQL."""
ACTION_CHUNK = 500
"""Jobs an action by filter changes per transaction: other requests are served between two."""
DUTY_BATCH = 500
"""Jobs the background duties (retention's deletes, scheduled jobs joining the queue) change
per transaction."""
DUTY_BATCHES = 20
"""The most batches a duty runs per look (per state, for retention), so at most 10,000 jobs: a
backlog is worked off over several looks, never in one long burst."""
SAMPLE_SLACK = 0.01
"""Seconds after each whole second that the rate history is sampled."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """The server's defaults for the queue's rules (`sq serve` options)."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    retry_backoff: float = RETRY_BACKOFF
    """Seconds before a job's first retry; each further retry waits twice as long, with jitter,
    up to `MAX_BACKOFF`."""
    keep_succeeded: float | None = None
    """Seconds a succeeded job is kept after it finished (``None``: forever); then it is
    deleted, leaving a tombstone (``sq serve --keep-succeeded``)."""
    keep_failed: float | None = None
    """The same for failed jobs (``sq serve --keep-failed``)."""


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
        # One timer, for the earliest time a scheduled job falls due (see `_alarm_at`).
        self._alarm: asyncio.TimerHandle | None = None
        self._alarm_due: datetime | None = None
        self._rearming: set[asyncio.Future[None]] = set()
        self._history = RateHistory()

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
                request.queue,
                int(request.priority),
                _due(request, now),
            )
            for request, data in requests
        ]
        answers: list[Submitted | JobConflict] = []
        woken = False
        for sent, (job, created) in zip(new, await self.store.submit_many(new), strict=True):
            differs = [] if created else _differing_fields(job, sent)
            # An operator's retry may have raised maxAttempts: compare with what was sent.
            if (
                "maxAttempts" in differs
                and isinstance(job, StoredJob)
                and await self.store.max_attempts_sent(job.job_id) == sent.max_attempts
            ):
                differs.remove("maxAttempts")
            if differs:
                answers.append(
                    JobConflict(
                        f"job {job.job_id!r} was already submitted with a different "
                        f"{', '.join(differs)}; nothing was changed"
                    )
                )
            elif isinstance(job, Tombstone):
                answers.append(Submitted(_from_tombstone(job, sent), False))
            else:
                answers.append(Submitted(job, created))
                if created and sent.run_at is not None and sent.run_at > now:
                    self._alarm_at(sent.run_at)
                else:
                    woken = woken or created
        if woken:
            self._waiters.wake()
        return answers

    async def next(
        self,
        *,
        lease_seconds: int | None = None,
        wait: float = 0.0,
        count: int = 1,
        queues: Collection[str] = (),
    ) -> list[ClaimedJob]:
        """Up to ``count`` jobs of ``queues`` (any queue when empty), each now running under a
        lease of its own; if there are none, the first that arrive within ``wait`` seconds (in
        the order the callers came)."""
        lease = lease_seconds or self.rules.lease_seconds
        named = tuple(sorted(set(queues)))
        # Callers already waiting come first: a newcomer that may wait joins the line.
        if not (wait > 0 and len(self._waiters)):
            claimed = await self._claim_for_caller(lease, count, named)
            if claimed or wait <= 0:
                return claimed
        if (due := await self.store.next_due(self._clock())) is not None:
            self._alarm_at(due)  # a job falling due within the wait wakes the line then
        return await self._waiters.wait(lease, count, named, wait)

    async def _claim_for_caller(
        self, lease_seconds: int, count: int, queues: tuple[str, ...]
    ) -> list[ClaimedJob]:
        """A claim for a caller that may go away meanwhile (its client disconnects): the store
        finishes the claim regardless, so a cancelled caller's jobs are released at once."""
        claim = asyncio.ensure_future(self._claim(lease_seconds, count, queues))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            for job in await claim:
                await self._release(job)
            raise

    async def _claim(
        self, lease_seconds: int, count: int, queues: tuple[str, ...]
    ) -> list[ClaimedJob]:
        return await self.store.claim(
            self._clock(), lease_seconds=lease_seconds, limit=count, queues=queues
        )

    def _alarm_at(self, due: datetime) -> None:
        """Wake the waiting callers when a scheduled job falls due: one timer, always for the
        earliest such time known; when it rings, the store says which is next."""
        if self._alarm_due is not None and self._alarm_due <= due and self._alarm is not None:
            return
        if self._alarm is not None:
            self._alarm.cancel()
        delay = max((due - self._clock()).total_seconds(), 0.0)
        self._alarm_due = due
        self._alarm = asyncio.get_running_loop().call_later(delay, self._ring)

    def _ring(self) -> None:
        self._alarm = self._alarm_due = None
        self._waiters.wake()
        if len(self._waiters):
            task = asyncio.ensure_future(self._rearm())
            self._rearming.add(task)
            task.add_done_callback(self._rearming.discard)

    async def _rearm(self) -> None:
        try:
            due = await self.store.next_due(self._clock())
        except SimpleQueueError:
            return  # the periodic look (`run`) wakes the line meanwhile
        if due is not None:
            self._alarm_at(due)

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
            raise await self._unknown(job_id)
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
    ) -> list[StoredJob | JobConflict | JobNotFound | JobGone]:
        """`complete` for each request in turn, all in one commit, each decided as if it had
        been sent alone: its answer is the job, or the error a single call would raise."""
        endings = [await self._ending(request, result) for request, result in requests]
        done = await self.store.finish_many(endings, self._clock())
        answers: list[StoredJob | JobConflict | JobNotFound | JobGone] = []
        for (request, _), ending, finished in zip(requests, endings, done, strict=True):
            run_at = ending.outcome.run_at
            if run_at is not None and finished.finish is Finish.APPLIED:
                self._alarm_at(run_at)  # the retried job falls due then: waiters hear at once
            try:
                answers.append(_completed(request, finished))
            except JobConflict as exc:
                answers.append(exc)
            except JobNotFound:
                answers.append(await self._unknown(request.job_id))
        return answers

    async def _unknown(self, job_id: str) -> JobNotFound | JobGone:
        """The error for an id no job has, its tombstone looked up."""
        return _missing(job_id, await self.store.tombstone(job_id))

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

    async def act(self, action: Action, job_id: str) -> StoredJob:
        """Cancel or retry one job (CONTRACT §9): the job as it is now, or the error."""
        move = ACTIONS[action]
        (moved,) = await self.store.move([job_id], move, self._clock())
        if moved.job is None:
            raise _missing(job_id, moved.tombstone)
        if not moved.moved:
            raise _not_movable(action, moved.job)
        if move.target == JobState.SUBMITTED:
            self._waiters.wake()
        return moved.job

    async def act_many(self, action: Action, job_ids: Sequence[str]) -> Changed:
        """Cancel or retry each job named (up to a batch), in one commit: how many of the ids
        name a job (a pruned one included), and how many it changed."""
        named = list(dict.fromkeys(job_ids))  # an id named twice counts once
        moves = await self.store.move(named, ACTIONS[action], self._clock())
        changed = sum(moved.moved for moved in moves)
        matched = sum(moved.job is not None or moved.tombstone is not None for moved in moves)
        if changed and ACTIONS[action].target == JobState.SUBMITTED:
            self._waiters.wake()
        return Changed(matched=matched, changed=changed)

    async def act_matching(self, action: Action, which: JobFilter) -> Changed:
        """Cancel or retry every job ``which`` matches, `ACTION_CHUNK` jobs per transaction, so
        that other requests are served in between (a retry of 100,000 jobs does not stall the
        server). A state the action does not apply to is a 400."""
        move = ACTIONS[action]
        if which.state is not None and which.state not in move.sources:
            applies = " or ".join(sorted(state.value for state in move.sources))
            raise InvalidRequest(
                f"`filter.state` {which.state.value!r}: {action.value} applies only to "
                f"{applies} jobs"
            )
        states = move.sources if which.state is None else frozenset({which.state})
        total = 0
        for state in sorted(states):  # one state at a time: each is one index of the store's
            selection = Selection(frozenset({state}), which.queue, which.prefix)
            after: int | None = 0
            while after is not None:
                chunk = await self.store.move_matching(
                    selection, move, self._clock(), after=after, limit=ACTION_CHUNK
                )
                total += chunk.moved
                after = chunk.resume
                if chunk.moved and move.target == JobState.SUBMITTED:
                    self._waiters.wake()
                await asyncio.sleep(0)  # let the requests that came meanwhile go first
        return Changed(matched=total, changed=total)

    async def prune(self) -> int:
        """Delete the finished jobs retention no longer keeps, in bounded batches: how many."""
        pruned = 0
        now = self._clock()
        for state, keep in (
            (JobState.SUCCEEDED, self.rules.keep_succeeded),
            (JobState.FAILED, self.rules.keep_failed),
        ):
            if keep is None:
                continue
            before = now - timedelta(seconds=keep)
            pruned += await _in_batches(partial(self.store.prune, state, before, DUTY_BATCH))
        return pruned

    async def promote(self) -> int:
        """Let the scheduled jobs that fell due join the hand-out order, in bounded batches."""
        return await _in_batches(lambda: self.store.promote(self._clock(), DUTY_BATCH))

    async def run(self, interval: float = LOOK_INTERVAL) -> None:
        """The server's background duty, until cancelled: take back expired leases, delete what
        retention no longer keeps, let waiting workers look for jobs that fell due or that
        another process added; beside that, sample the rate history once a second, and wake
        waiting workers as soon as the store tells of another process's job (`Store.watch`)."""
        async with asyncio.TaskGroup() as duties:
            duties.create_task(self._look(interval))
            duties.create_task(self._sample_every_interval())
            duties.create_task(self.store.watch(self._waiters.wake))

    async def _look(self, interval: float) -> None:
        while True:
            for duty, what in (
                (self.expire, "take back expired leases"),
                (self.promote, "let scheduled jobs that fell due join the queue"),
                (self.prune, "prune"),
            ):
                await self._try(duty, what)
            self._waiters.wake()
            await asyncio.sleep(interval)

    async def _sample_every_interval(self) -> None:
        # Apart from the look, whose work may take a while: samples stay on the clock's whole
        # seconds (a little after each, so that a timer firing early still finds the new one).
        while True:
            await self._try(self.sample, "sample the rate history")
            late = self._clock().timestamp() % HISTORY_INTERVAL
            await asyncio.sleep(HISTORY_INTERVAL - late + SAMPLE_SLACK)

    @staticmethod
    async def _try(duty: Callable[[], Awaitable[object]], what: str) -> None:
        try:
            await duty()
        except SimpleQueueError as exc:
            logger.warning("could not %s: %s", what, exc.detail)
        except Exception:
            # Whatever it was, the next look may succeed: the duty must never end, or no lease
            # would ever expire again.
            logger.exception("could not %s", what)

    async def sample(self) -> None:
        """Add the store's counters, now, to the rate history (`run` does it once a second)."""
        now = self._clock()
        self._history.record(now, await self.store.totals())

    def history(self, seconds: int = HISTORY_SECONDS) -> StatsHistory:
        """The rate history's last ``seconds`` (1-`HISTORY_SECONDS`) entries."""
        if not 1 <= seconds <= HISTORY_SECONDS:
            raise InvalidRequest(
                f"`seconds` must be between 1 and {HISTORY_SECONDS}, got {seconds}"
            )
        return self._history.last(seconds, self._clock())

    def stop_waiting(self) -> None:
        """The server is stopping: every waiting caller is answered now (no job), and new ones
        are not kept waiting, so that shutting down never waits out a long-poll."""
        self._waiters.stop()

    async def close(self) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
        for task in list(self._rearming):
            task.cancel()
        await self._waiters.close()

    async def get(self, job_id: str) -> StoredJob:
        job = await self.store.get(job_id)
        if job is None:
            raise await self._unknown(job_id)
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
        queues: Collection[str] = (),
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
                queues=queues,
            )
        except UnknownCursor as exc:
            (job_id,) = exc.args
            cursor = "after" if job_id == after else "before"
            raise InvalidRequest(f"`{cursor}` names no job: {job_id!r}") from None
        return Page(jobs[:limit], more=len(jobs) > limit)

    async def stats(self) -> Stats:
        return await self.store.stats(self._clock())
