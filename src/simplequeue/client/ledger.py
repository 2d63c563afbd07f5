"""What one worker loop holds, asks for and owes, shared by `Client.work` and `AsyncClient.work`:
every decision about the jobs in hand, no I/O and no lock (each twin guards it its own way).

One loop is five parts around one `Ledger`::

    fetcher ──next(count=free slots + prefetch)──► ready ──► slots (handlers) ──► outbox
       ▲                                                                            │
       └──────────── room again ◄──── sender: complete_many(whatever is in it) ◄────┘
    heartbeat loop: renews every held job (ready, running or unsent) when its turn comes, each
                    renewal sent on its own and bounded by the time left on that job's lease
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from simplequeue.client.batches import BatchResult
from simplequeue.client.worker import (
    GONE,
    LATE_RENEWAL,
    RENEWALS_AT_ONCE,
    Outcome,
    WorkPlan,
    lost,
    not_completed,
    refused_result,
)
from simplequeue.errors import SimpleQueueError
from simplequeue.models import MAX_BATCH, MAX_CLAIM_COUNT, Job

__all__ = ["Held", "Ledger"]


@dataclass(eq=False, slots=True)
class Held:
    """A job this worker holds under its lease: from its claim until its outcome is recorded,
    it is lost, or the worker gives it up. Compared by identity: the same job may come back to
    this worker under a new lease while the old one is still being let go."""

    job: Job
    renew_at: float | None
    """When (``time.monotonic()``) to renew its lease next; ``None``: it has none to renew."""
    ends_at: float | None = None
    """When (``time.monotonic()``) its lease ends unless renewed, as far as this worker can tell
    (``None``: the job does not say how long its lease lasts)."""
    sending: bool = False
    """Its completion is in flight. It is not renewed meanwhile, and a heartbeat that finds its
    lease gone is not news: the completion itself ended the lease."""
    renewing: bool = False
    """A heartbeat of it is in flight: no second one is sent until that one ends."""


class Ledger:
    """What one ``work`` holds and owes, shared by its fetcher, slots, sender and heartbeat
    loop: every decision about them. No I/O and no lock: `Client` holds its lock around each
    use; `AsyncClient` needs none, since nothing else runs between two awaits."""

    def __init__(self, plan: WorkPlan) -> None:
        self.plan = plan
        self.held: set[Held] = set()
        self.ready: deque[Held] = deque()
        """Taken, not yet started, in the order the server handed them out."""
        self.running = 0
        self.outbox: list[tuple[Held, Outcome]] = []
        self.fetching = True
        """False once the fetcher has stopped: the slots end when ``ready`` is empty."""
        self.slots = plan.concurrency
        """Slots still running: the sender ends once none is and the outbox is empty."""
        self.over = False
        """Every outcome is sent (or given up on): the heartbeat loop ends."""
        self.renewals = 0
        """Heartbeats in flight: at most `RENEWALS_AT_ONCE`."""
        self._in_vain = 0
        """How many jobs the last ``next`` asked for, without waiting, and did not get: more
        are asked for once there is room for more than that, not in a loop."""
        self._waited = False

    def wanted(self) -> int:
        """How many jobs to ask for now: the free slots and the prefetch, less the jobs at hand."""
        room = self.plan.concurrency + self.plan.prefetch - len(self.ready) - self.running
        return min(room, MAX_CLAIM_COUNT)

    def idle_slots(self) -> int:
        """Slots with no job to run, even counting the jobs waiting for one."""
        return self.plan.concurrency - self.running - len(self.ready)

    def may_ask(self) -> bool:
        room = self.wanted()
        return room > 0 and (self.idle_slots() > 0 or room > self._in_vain)

    def ask(self) -> tuple[int, float]:
        """How many jobs to ask for, and how long the server may wait for them: the plan's
        long-poll while a slot has nothing to do; none when only prefetch room is left, since
        the slots are busy meanwhile and a stop would otherwise wait for the poll in flight (it
        is never abandoned: the server may be handing out a job just then)."""
        self._waited = self.idle_slots() > 0
        return self.wanted(), self.plan.wait if self._waited else 0.0

    def took(self, jobs: list[Job], asked: int, now: float) -> float:
        """The answer to `ask`: hold ``jobs``. Returns the seconds to pause before asking again
        (an empty answer to a poll without a long-poll, for idle slots: `WorkPlan.idle_pause`)."""
        for job in jobs:
            # ``now`` is when the answer came, a round trip after the server started the lease
            # at the most: the server takes a lease back only about a second after its end.
            every, length = self.plan.heartbeat_every(job), self.plan.lease_length(job)
            held = Held(job, None if every is None else now + every)
            held.ends_at = None if length is None else now + length
            self.held.add(held)
            self.ready.append(held)
        if jobs or self._waited:
            self._in_vain = 0
            return 0.0 if jobs else self.plan.idle_pause()
        self._in_vain = asked  # none for the prefetch: ask again when a slot frees up
        return 0.0

    def start(self) -> Held | None:
        """The next job for a free slot; ``None``: none is left and none will come."""
        if not self.ready:
            return None
        self.running += 1
        return self.ready.popleft()

    def waiting(self) -> bool:
        """A slot has a job to start, or nothing more to wait for."""
        return bool(self.ready) or not self.fetching

    def finished(self, held: Held, outcome: Outcome) -> None:
        self.running -= 1
        if held in self.held:  # not lost while it ran
            self.outbox.append((held, outcome))

    def dropped(self, held: Held) -> None:
        """A slot ended without an outcome: the job comes back when its lease ends."""
        self.running -= 1
        self.held.discard(held)

    def flush(self) -> list[tuple[Held, Outcome]]:
        """The outcomes to send now: all there are, up to a batch."""
        batch, self.outbox = self.outbox[:MAX_BATCH], self.outbox[MAX_BATCH:]
        for held, _ in batch:
            held.sending = True
        return batch

    def sender_done(self) -> bool:
        return self.slots == 0 and not self.outbox

    def settle(self, held: Held, outcome: Outcome, result: BatchResult) -> None:
        """The completion of ``held`` was answered ``result``; decide what follows, per item as
        for a single completion: recorded; no longer this worker's (`GONE`); a result the server
        refuses, sent again as a failure (`refused_result`); anything else left to the lease."""
        held.sending = False
        error = result.error
        instead = None
        if isinstance(error, GONE):
            lost(held.job, error)
        elif error is not None:
            instead = refused_result(outcome, error)
            if instead is None:
                not_completed(held.job, error)
        if instead is None:
            self.held.discard(held)
        else:
            self.outbox.append((held, instead))

    def unsent(self, batch: Iterable[tuple[Held, Outcome]], exc: SimpleQueueError) -> None:
        """The request completing ``batch`` failed as a whole (after the client's retries)."""
        for held, _ in batch:
            not_completed(held.job, exc)
            self.held.discard(held)

    def due(self, now: float) -> list[Held]:
        """The jobs to renew now, each to be sent on its own and ended with `renewal_ended`;
        each is next due a heartbeat period later. A job whose heartbeat is still in flight
        waits for it, and no more than `RENEWALS_AT_ONCE` are in flight: the rest stay due,
        most overdue first, until one ends."""
        due = sorted(
            (h for h in self._renewable() if h.renew_at is not None and h.renew_at <= now),
            key=lambda h: h.renew_at or 0.0,
        )[: RENEWALS_AT_ONCE - self.renewals]
        for held in due:
            every = self.plan.heartbeat_every(held.job)
            held.renew_at = None if every is None else now + every
            held.renewing = True
        self.renewals += len(due)
        return due

    def renewal_in(self, now: float) -> float | None:
        """Seconds until a held job is due a heartbeat; ``None``: none is, or as many heartbeats
        are in flight as may be (the one that ends first is waited for instead)."""
        if self.renewals >= RENEWALS_AT_ONCE:
            return None
        times = [h.renew_at for h in self._renewable() if h.renew_at is not None]
        return max(min(times) - now, 0.0) if times else None

    def renewal_time(self, held: Held, now: float) -> float | None:
        """How long a heartbeat of ``held`` sent at ``now`` may take, retries included: the time
        left on its lease (at least `LATE_RENEWAL`). One that cannot arrive sooner is given up,
        and holds up nothing else meanwhile. ``None``: no bound but the client's own."""
        if held.ends_at is None:
            return None
        return max(held.ends_at - now, LATE_RENEWAL)

    def renewal_ended(self, held: Held, sent_at: float | None) -> None:
        """The heartbeat of ``held`` is over: renewed by a request sent at ``sent_at`` (the
        server renewed it then or later, so the lease ends no sooner than a length after that),
        or not (``None``)."""
        self.renewals -= 1
        held.renewing = False
        length = self.plan.lease_length(held.job)
        if sent_at is not None and length is not None:
            held.ends_at = sent_at + length

    def _renewable(self) -> Iterable[Held]:
        return (h for h in self.held if not h.sending and not h.renewing)

    def lost(self, held: Held, exc: SimpleQueueError) -> bool:
        """A heartbeat of ``held`` found its lease gone (it was cancelled, or taken back): drop
        it, whether it waits, runs (its outcome will not be sent) or waits in the outbox.
        Returns whether it was dropped (a handler still running it may be stopped)."""
        if held not in self.held or held.sending:
            return False  # completed meanwhile: its own completion ended the lease
        lost(held.job, exc)
        self.held.discard(held)
        if held in self.ready:
            self.ready.remove(held)
        self.outbox = [(h, o) for h, o in self.outbox if h is not held]
        return True
