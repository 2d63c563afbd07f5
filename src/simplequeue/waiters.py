"""Long-poll: workers waiting in ``GET /jobs/next?wait=S`` for a job, served in arrival order.

A waiter is a future in a FIFO line. Whenever jobs may have become available (a submit, a job
taken back, a retry falling due, or the server's periodic check for jobs added by another
process sharing the store), `Waiters.wake` runs one dispatcher that claims for the first waiter,
hands it its jobs, and goes on down the line; a waiter whose queues came back empty in this round
is passed over (a waiter for other queues behind it is still served). So a job goes to the worker
that has waited longest among those that take its queue, and nothing polls the store in a loop.

A waiter that goes away (its time is up, or its client disconnected) leaves the line. If jobs
were claimed for it at that very moment, a timed-out waiter still gets them (its caller is
there); a cancelled one's are released, back to the queue at their place: a caller that
disconnected is given no job.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from simplequeue.errors import SimpleQueueError
from simplequeue.models import ClaimedJob

__all__ = ["Waiters"]

logger = logging.getLogger("simplequeue.queue")

Queues = tuple[str, ...]
"""The queues a waiter takes jobs from, sorted (``()``: any queue)."""
Claim = Callable[[int, int, Queues], Awaitable[list[ClaimedJob]]]
"""``claim(lease_seconds, count, queues)``: up to ``count`` jobs of ``queues``, each under a
lease that long."""
Release = Callable[[ClaimedJob], Awaitable[None]]


@dataclass(eq=False)
class _Waiter:
    lease_seconds: int
    count: int
    queues: Queues
    jobs: asyncio.Future[list[ClaimedJob]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Waiters:
    def __init__(self, claim: Claim, release: Release) -> None:
        self._claim = claim
        self._release = release
        self._line: deque[_Waiter] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
        self._again = False
        self._stopped = False

    def __len__(self) -> int:
        return len(self._line)

    async def wait(
        self, lease_seconds: int, count: int, queues: Queues, timeout: float
    ) -> list[ClaimedJob]:
        """Jobs claimed for this caller as soon as there are some, or ``[]`` after ``timeout``."""
        if self._stopped:
            return []
        waiter = _Waiter(lease_seconds, count, queues)
        self._line.append(waiter)
        self.wake()  # jobs may have arrived since the caller's own claim found none
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(waiter.jobs)
        except TimeoutError:
            return self._leave(waiter)
        except asyncio.CancelledError:
            for job in self._leave(waiter):
                await self._release(job)
            raise

    def _leave(self, waiter: _Waiter) -> list[ClaimedJob]:
        """Take ``waiter`` out of the line; the jobs handed to it in the meantime, if any."""
        if waiter in self._line:
            self._line.remove(waiter)
        if waiter.jobs.done():
            return waiter.jobs.result()
        waiter.jobs.cancel()
        return []

    def stop(self) -> None:
        """Answer everyone in line with no job, and keep no one waiting from now on."""
        self._stopped = True
        while self._line:
            waiter = self._line.popleft()
            if not waiter.jobs.done():
                waiter.jobs.set_result([])

    def wake(self) -> None:
        """Jobs may be available: serve the line (once more, if a dispatch is under way)."""
        if not self._line or self._stopped:
            return
        self._again = True
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch())

    async def _dispatch(self) -> None:
        while self._again:
            self._again = False
            empty: set[Queues] = set()  # queues that had nothing in this round
            n = 0
            while n < len(self._line):
                waiter = self._line[n]
                if waiter.jobs.done():  # gone (timed out or cancelled)
                    del self._line[n]
                    continue
                if waiter.queues in empty or () in empty:
                    n += 1
                    continue
                try:
                    claimed = await self._claim(waiter.lease_seconds, waiter.count, waiter.queues)
                except SimpleQueueError as exc:  # a busy store: the next wake tries again
                    logger.warning("long-poll: could not claim for a waiter: %s", exc.detail)
                    return
                if not claimed:
                    empty.add(waiter.queues)
                    continue
                if waiter.jobs.done():  # it left while we claimed: the jobs go back
                    for job in claimed:
                        await self._release(job)
                    continue
                if waiter in self._line:
                    self._line.remove(waiter)
                waiter.jobs.set_result(claimed)

    async def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
