"""The queue's long-poll in one process, with no background task: what wakes a waiting caller,
and what a caller that goes away leaves behind. (The same over HTTP: tests/test_leases.py.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection, Coroutine
from datetime import datetime
from typing import Any, TypeVar

from simplequeue.models import ClaimedJob, CompleteRequest, CompletionStatus, SubmitRequest
from simplequeue.queue import Queue, Rules
from simplequeue.store import MemoryStore
from simplequeue.store.base import Outcome

T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 30))


async def submit(queue: Queue, job_id: str) -> None:
    await queue.submit(SubmitRequest(job_id=job_id), None)


async def until_waiting(queue: Queue, count: int) -> None:
    """Until ``count`` callers wait in line (bounded: the scenario's own timeout)."""
    while len(queue._waiters) < count:
        await asyncio.sleep(0)


def test_a_submit_wakes_a_waiting_caller_at_once() -> None:
    async def scenario() -> list[ClaimedJob]:
        queue = Queue(MemoryStore())
        waiting = asyncio.create_task(queue.next(wait=30))
        await until_waiting(queue, 1)
        await submit(queue, "j1")  # no periodic look runs here: only the submit can wake it
        return await waiting

    assert [job.job_id for job in run(scenario())] == ["j1"]


def test_waiting_callers_are_served_in_the_order_they_came() -> None:
    async def scenario() -> list[str]:
        queue = Queue(MemoryStore())
        waiters = []
        for n in range(3):
            waiters.append(asyncio.create_task(queue.next(wait=30)))
            await until_waiting(queue, n + 1)
        for n in range(3):
            await submit(queue, f"j{n}")
        return [(await waiter)[0].job_id for waiter in waiters]

    assert run(scenario()) == ["j0", "j1", "j2"]


class SlowClaims(MemoryStore):
    """A store whose claims wait for a go-ahead, as one waiting for another process's lock, and
    then complete whether or not the caller still waits: as SQLite's, made on its own thread."""

    def __init__(self) -> None:
        super().__init__()
        self.claiming = asyncio.Event()
        self.go = threading.Event()

    async def claim(
        self, now: datetime, *, lease_seconds: int, limit: int = 1, queues: Collection[str] = ()
    ) -> list[ClaimedJob]:
        self.claiming.set()

        async def made() -> list[ClaimedJob]:
            await asyncio.to_thread(self.go.wait, 10)
            return await MemoryStore.claim(
                self, now, lease_seconds=lease_seconds, limit=limit, queues=queues
            )

        return await asyncio.shield(asyncio.ensure_future(made()))


def test_a_caller_that_goes_away_during_its_claim_leaves_the_job_in_the_queue() -> None:
    async def scenario() -> tuple[str, int]:
        store = SlowClaims()
        queue = Queue(store)
        await submit(queue, "j1")
        caller = asyncio.create_task(queue.next(wait=30))
        await store.claiming.wait()
        caller.cancel()  # its client disconnected while the store was making the claim
        store.go.set()
        await asyncio.gather(caller, return_exceptions=True)
        job = await store.get("j1")
        assert job is not None
        return job.state.value, job.attempts

    assert run(scenario()) == ("submitted", 0)


def test_stopping_answers_every_waiting_caller_with_no_job() -> None:
    async def scenario() -> list[list[ClaimedJob]]:
        queue = Queue(MemoryStore())
        waiters = [asyncio.create_task(queue.next(wait=30)) for _ in range(2)]
        await until_waiting(queue, 2)
        queue.stop_waiting()
        answers = [await waiter for waiter in waiters]
        answers.append(await queue.next(wait=30))  # on an empty queue: not kept waiting
        return answers

    assert run(scenario()) == [[], [], []]


def test_a_retry_falling_due_wakes_a_waiting_caller() -> None:
    async def scenario() -> tuple[str, int]:
        queue = Queue(MemoryStore(), rules=Rules(retry_backoff=0.2))
        await submit(queue, "j1")
        (job,) = await queue.next()
        failed = CompleteRequest(
            job_id="j1", status=CompletionStatus.FAILED, lease_id=job.lease_id, retry=True
        )
        await queue.complete(failed, None)
        (again,) = await queue.next(wait=30)  # due in 0.1-0.2 s; nothing else looks for it
        return again.job_id, again.attempts

    assert run(scenario()) == ("j1", 2)


class FailingOnce(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.expiries = 0

    async def expire(self, now: datetime, outcome: Outcome) -> int:
        self.expiries += 1
        if self.expiries == 1:
            raise RuntimeError("the disk went away for a moment")
        return await super().expire(now, outcome)


def test_the_expiry_duty_goes_on_after_an_unexpected_error() -> None:
    async def scenario() -> int:
        store = FailingOnce()
        queue = Queue(store)
        duty = asyncio.create_task(queue.run(interval=0.01))
        while store.expiries < 3:
            await asyncio.sleep(0.01)
        duty.cancel()
        await asyncio.gather(duty, return_exceptions=True)
        return store.expiries

    assert run(scenario()) >= 3
