"""What `Client.work` and `AsyncClient.work` share: every decision of the worker loop, no I/O.

The twins only run the loop (threads or tasks) and send the calls; this module says how often to
heartbeat, what a handler's return value or exception becomes (`Outcome`) and what to do when
its completion is refused (`refused_result`), how long to back off when the server cannot be
reached, and how SIGINT/SIGTERM stop the loop (`stop_on_signals`). What the loop holds, asks
for and owes is `simplequeue.client.ledger`.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import msgspec

from simplequeue.errors import (
    InvalidRequest,
    JobGone,
    JobNotFound,
    LeaseLost,
    PayloadTooLarge,
    RequestError,
    SimpleQueueError,
)
from simplequeue.inert import inert, one_line
from simplequeue.models import (
    MAX_ERROR_LENGTH,
    MAX_LEASE_SECONDS,
    MAX_QUEUES_NAMED,
    MAX_WAIT_SECONDS,
    CompletionStatus,
    Job,
    check_queue_name,
)

__all__ = [
    "GONE",
    "PREFETCH",
    "WORK_WAIT",
    "Discard",
    "Outcome",
    "WorkPlan",
    "error_text",
    "heartbeat_failed",
    "logger",
    "lost",
    "not_completed",
    "outcome_of_error",
    "outcome_of_result",
    "queue_names",
    "refused_result",
    "stop_on_signals",
]

logger = logging.getLogger("simplequeue.worker")

WORK_WAIT = 5.0
"""Seconds each idle ``next`` of a worker long-polls. A stop (a signal, or the ``stop`` event)
is noticed when the poll in flight ends, so this is also how long an idle worker may take to
stop; abandoning the poll instead could strand a job the server was handing out just then."""
PREFETCH = 32
"""Jobs a worker holds beyond its free slots, taken ahead so that a slot that frees up finds
its next job at hand instead of waiting for a ``next``, and so that one ``next`` and one
``complete`` carry many jobs. The figures measured for each value are in one place,
docs/sdk.md, "Fetching ahead": 32 made trivial jobs several times faster than 0, and 64 was
within the noise of 32. The cost: these jobs wait for this worker's slots, and if the worker
dies they wait out their leases."""
IDLE_PAUSE = 1.0
"""Seconds between two polls of an empty queue when ``wait=0`` (no long-poll)."""
HEARTBEAT_FRACTION = 3
"""A lease is renewed every third of its length: two heartbeats may be lost before it ends."""
MIN_HEARTBEAT = 0.5
"""The shortest time between two heartbeats, whatever the lease (a 1 s lease beats twice a
second, not continuously)."""
LATE_RENEWAL = 1.0
"""The least time a renewal may take, even of a lease whose end has passed by the worker's
reckoning: the server takes a lease back only within about a second after its end (CONTRACT
§7), and the reckoning is only as good as a round trip."""
RENEWALS_AT_ONCE = 8
"""The most heartbeats one worker has in flight at once. Each is sent on its own (a thread or a
task) and may take only the time left on its lease, so one that hangs delays no other; more
than this many due at once wait for one to end."""
MAX_OUTAGE_PAUSE = 30.0
"""The longest a worker waits before polling again a server it could not reach."""

GONE = (LeaseLost, JobNotFound, JobGone)
"""A heartbeat or complete answered with one of these: the job is no longer this worker's (its
lease ended and it was taken back, it was cancelled, or it was deleted). The worker stops
heartbeating it and records no outcome; whoever holds it now will. Its handler, if running, is
cancelled by `AsyncClient.work`; a thread cannot be stopped, so under `Client.work` it runs to
its end, and what it returns is dropped."""

_TRUNCATED = " [...]"


class Discard(Exception):
    """Raised by a worker's handler: fail this job for good, without a retry, whatever attempts
    remain (bad input that no retry can fix). Its message becomes the job's error."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job handled by a worker is completed: the body of its ``complete``."""

    status: CompletionStatus
    result: Any = None
    error: str | None = None
    retry: bool = False


def error_text(exc: BaseException) -> str:
    """``Type: message``, at most `MAX_ERROR_LENGTH` characters (the server refuses longer
    texts, and the head of a message says the most)."""
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - len(_TRUNCATED)] + _TRUNCATED
    return text


def outcome_of_result(value: Any) -> Outcome:
    """The handler returned ``value``: ``succeeded`` with it as the result, if it can be sent."""
    try:
        msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        # The work was done, but its result cannot be recorded. A retry would do the work again
        # and fail the same way, so the job fails for good, saying why.
        return Outcome(
            CompletionStatus.FAILED,
            error=error_text(
                TypeError(f"the handler's return value cannot be sent as JSON ({exc})")
            ),
        )
    return Outcome(CompletionStatus.SUCCEEDED, result=value)


def outcome_of_error(job: Job, exc: Exception) -> Outcome:
    """The handler raised ``exc``: ``failed``, retried while attempts remain unless `Discard`.

    The traceback is logged (a warning), each line made inert: the exception's message may
    quote the job, and whoever submitted it chose its text.
    """
    discard = isinstance(exc, Discard)
    lines = traceback.format_exception(exc) if not discard else [error_text(exc)]
    shown = "\n".join(inert(line) for line in "".join(lines).splitlines())
    logger.warning(
        "job %s (attempt %d of %d) %s:\n%s",
        describe(job),
        job.attempts,
        job.max_attempts,
        "discarded" if discard else "failed",
        shown,
    )
    return Outcome(CompletionStatus.FAILED, error=error_text(exc), retry=not discard)


def refused_result(outcome: Outcome, exc: SimpleQueueError) -> Outcome | None:
    """What to send instead when the server refused ``outcome``, or ``None`` to give up.

    A result the server will not store (too large, nested too deep) would be refused after
    every retry too, so the job fails for good, saying why. Anything else is left to the
    lease: the job comes back when it ends.
    """
    if outcome.status is CompletionStatus.SUCCEEDED and isinstance(
        exc, InvalidRequest | PayloadTooLarge
    ):
        reason = f"the server refused the handler's result: {exc.detail}"
        return Outcome(CompletionStatus.FAILED, error=error_text(ValueError(reason)))
    return None


def lost(job: Job, exc: SimpleQueueError) -> None:
    logger.warning(
        "job %s is no longer this worker's (%s); its outcome is not recorded",
        describe(job),
        one_line(exc.detail),
    )


def not_completed(job: Job, exc: SimpleQueueError) -> None:
    logger.error(
        "job %s could not be completed (%s); it comes back when its lease ends",
        describe(job),
        one_line(exc.detail),
    )


def heartbeat_failed(job: Job, exc: SimpleQueueError) -> None:
    logger.warning("a heartbeat of job %s failed: %s", describe(job), one_line(exc.detail))


@dataclass(frozen=True, slots=True)
class WorkPlan:
    """The settings of one ``work`` call, checked before anything is sent."""

    concurrency: int
    lease: int | None
    wait: float
    prefetch: int = PREFETCH
    queues: tuple[str, ...] = ()
    """Take jobs only from these queues (none: from every queue)."""
    on_lost: Callable[[Job], object] | None = None
    """Called with each job dropped because a heartbeat found it lost (cancelled, or its lease
    taken back), whether it waits or runs: how a handler that cannot be cancelled (a thread, a
    process) learns to stop. It runs in the heartbeat's thread or task; what it raises stops
    the worker."""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be 1 or more")
        if self.prefetch < 0:
            raise ValueError("prefetch must be 0 or more")
        if self.lease is not None and not 1 <= self.lease <= MAX_LEASE_SECONDS:
            raise ValueError(f"lease must be 1 to {MAX_LEASE_SECONDS} seconds, or None")
        if not 0 <= self.wait <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait must be 0 to {MAX_WAIT_SECONDS} seconds")
        if len(self.queues) > MAX_QUEUES_NAMED:
            raise ValueError(f"queues must name at most {MAX_QUEUES_NAMED} queues")
        for name in self.queues:
            check_queue_name(name, "queues")

    def lease_length(self, job: Job) -> float | None:
        """Seconds each lease on ``job`` lasts (``None``: it has none, or it does not say).

        Without ``lease``, the length is the server's default, read from the job itself (both
        times are the server's, so no clock skew enters it); a heartbeat renews the lease for
        that same length.
        """
        if job.lease_id is None:
            return None
        if self.lease is not None:
            return float(self.lease)
        if job.lease_expires_at is None or job.started_at is None:
            return None
        length = (job.lease_expires_at - job.started_at).total_seconds()
        return length if length > 0 else None

    def heartbeat_every(self, job: Job) -> float | None:
        """Seconds between two heartbeats of ``job``: a fraction of its lease's length (``None``:
        the job came without a lease, from a server that has none, so there is none to renew).
        """
        if job.lease_id is None:
            return None
        length = self.lease_length(job) or MIN_HEARTBEAT  # none given: beat often, it is cheap
        return max(length / HEARTBEAT_FRACTION, MIN_HEARTBEAT)

    def idle_pause(self) -> float:
        """Seconds to wait after a poll that found no job, before the next one."""
        return 0.0 if self.wait > 0 else IDLE_PAUSE

    def pause_after(self, exc: SimpleQueueError, failures: int) -> float:
        """Seconds to wait after ``failures`` polls in a row failed, the last with ``exc``.

        A server that cannot be reached or is busy is waited for, backing off (with jitter, so
        that many workers do not all come back at once); a request it refuses (4xx: a lease it
        does not allow, say) would be refused again, so ``exc`` is raised and the worker stops.
        """
        if isinstance(exc, RequestError):
            raise exc
        pause = min(0.5 * 2.0 ** (failures - 1), MAX_OUTAGE_PAUSE) * random.uniform(0.5, 1.0)
        logger.warning(
            "cannot take a job (%s); trying again in %.1f s", one_line(exc.detail), pause
        )
        return pause


def queue_names(queues: str | Iterable[str] | None) -> tuple[str, ...]:
    """``work``'s ``queues``, one name or many, as `WorkPlan` holds them."""
    if queues is None:
        return ()
    return (queues,) if isinstance(queues, str) else tuple(queues)


def describe(job: Job) -> str:
    """The job's id as a log may show it: inert, since whoever submitted it chose it."""
    return f"'{one_line(job.job_id)}'"


@contextmanager
def stop_on_signals(stop: Callable[[], object]) -> Iterator[None]:
    """While inside: the first SIGINT or SIGTERM calls ``stop`` (stop taking jobs, finish those
    in hand) and puts the previous handlers back, so that a second one acts as it did before
    (Ctrl-C twice quits at once; the jobs in hand come back when their leases end).

    Python runs signal handlers in the main thread only, so elsewhere this does nothing, and the
    caller stops the worker with its ``stop`` event.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: _handler(number) for number in signals}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    def handle(number: int, frame: FrameType | None) -> None:
        restore()
        stop()  # before saying so: whoever reads the log may count on it
        logger.info("%s: taking no more jobs; finishing those in hand", signal.Signals(number).name)

    for number in signals:
        signal.signal(number, handle)
    try:
        yield
    finally:
        restore()


def _handler(number: int) -> Callable[[int, FrameType | None], Any] | int:
    handler = signal.getsignal(number)
    # A handler installed from outside Python reads as None; the default is the nearest thing.
    return signal.SIG_DFL if handler is None else handler
