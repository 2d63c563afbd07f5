"""Batches and the fetch-ahead worker against a real `sq serve` (CONTRACT §10): `submit_many`
keeps order and decides each item as if alone, and `work` with prefetch does each job once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from simplequeue import AsyncClient, Client, InvalidRequest, Job, JobConflict, JobState
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

GIVE_UP = 60.0


def test_submit_many_decides_2500_items_in_order_as_if_each_came_alone(
    server: ServerProcess,
) -> None:
    with Client(server.url) as queue:
        for n in range(0, 2500, 100):  # already there: every 100th with the same content...
            queue.submit(f"j{n:04}", data={"n": n})
        for n in range(50, 2500, 100):  # ...and every 100th, offset, with other content
            queue.submit(f"j{n:04}", data={"n": -1})
        items: list[dict[str, Any]] = [
            {"job_id": f"j{n:04}", "data": {"n": n}} for n in range(2500)
        ]
        items[7] = {"job_id": "next"}  # reserved: refused before it is sent
        items[1234] = {
            "job_id": "j1234",
            "data": {"n": 1234},
            "max_attempts": 0,
        }  # the server's 400

        results = queue.submit_many(items)

        expected = []
        for n in range(2500):
            if n in {7, 1234}:
                expected.append(400)
            elif n % 100 == 0:
                expected.append(200)
            elif n % 100 == 50:
                expected.append(409)
            else:
                expected.append(201)
        assert [r.status for r in results] == expected
        for n, result in enumerate(results):
            if result.ok:
                assert result.job is not None
                assert (result.job.job_id, result.job.data) == (f"j{n:04}", {"n": n})
        assert isinstance(results[50].error, JobConflict)
        assert isinstance(results[7].error, InvalidRequest)
        assert isinstance(results[1234].error, InvalidRequest)

        # Stored in the order submitted: the ones already there first, then the new ones.
        stored = [job.job_id for job in queue.iter_jobs(page_size=1000)]
        before = [f"j{n:04}" for n in range(0, 2500, 100)] + [
            f"j{n:04}" for n in range(50, 2500, 100)
        ]
        new = [f"j{n:04}" for n, status in enumerate(expected) if status == 201]
        assert stored == before + new
        assert queue.stats().submitted == len(stored)


def work_sync(
    url: str, jobs: int, options: dict[str, Any], handler: Callable[[Job], object] | None = None
) -> list[Job]:
    """``Client.work`` until ``jobs`` jobs were handled (by ``handler``, else one returning the
    attempt); the jobs handled, in order."""
    handled: list[Job] = []
    lock = threading.Lock()
    stop = threading.Event()
    inner = handler or (lambda job: job.attempts)

    def handle(job: Job) -> object:
        with lock:
            handled.append(job)
            if len(handled) == jobs:
                stop.set()
        return inner(job)

    watchdog = threading.Timer(GIVE_UP, stop.set)
    watchdog.start()
    try:
        with Client(url) as queue:
            queue.work(handle, stop=stop, **options)
    finally:
        watchdog.cancel()
    return handled


async def work_async(
    url: str, jobs: int, options: dict[str, Any], handler: Callable[[Job], object] | None = None
) -> list[Job]:
    """``AsyncClient.work``, as `work_sync`; ``handler`` runs in a thread."""
    handled: list[Job] = []
    stop = asyncio.Event()
    inner = handler or (lambda job: job.attempts)

    async def handle(job: Job) -> object:
        handled.append(job)
        if len(handled) == jobs:
            stop.set()
        return await asyncio.to_thread(inner, job)

    watchdog = asyncio.get_running_loop().call_later(GIVE_UP, stop.set)
    try:
        async with AsyncClient(url) as queue:
            await queue.work(handle, stop=stop, **options)
    finally:
        watchdog.cancel()
    return handled


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_work_with_prefetch_does_500_jobs_exactly_once(
    server_fast: ServerProcess, kind: str
) -> None:
    ids = [f"w{n:03}" for n in range(500)]
    with Client(server_fast.url) as queue:
        assert all(r.created for r in queue.submit_many({"job_id": i} for i in ids))
        options: dict[str, Any] = {"concurrency": 4, "prefetch": 16, "wait": 1}
        if kind == "sync":
            handled = work_sync(server_fast.url, len(ids), options)
        else:
            handled = asyncio.run(work_async(server_fast.url, len(ids), options))
        jobs = {job.job_id: job for job in queue.iter_jobs(page_size=1000)}
        stats = queue.stats()

    assert Counter(job.job_id for job in handled) == Counter(ids)
    assert {(job.state, job.attempts, job.result) for job in jobs.values()} == {
        (JobState.SUCCEEDED, 1, 1)
    }
    assert (stats.succeeded, stats.running, stats.submitted) == (500, 0, 0)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_idle_slot_long_polls_while_another_runs(server_fast: ServerProcess, kind: str) -> None:
    """A job submitted while one slot is busy and the other idle is taken by the idle one at
    once (its long-poll wakes), not after the busy one ends."""
    with Client(server_fast.url) as queue:
        queue.submit("long")

        def hold(job: Job) -> str:
            if job.job_id == "long":
                queue.submit("late")
                for _ in range(int(GIVE_UP / 0.02)):
                    if queue.get("late").state is JobState.SUCCEEDED:
                        break
                    threading.Event().wait(0.02)
            return job.job_id

        options: dict[str, Any] = {"concurrency": 2, "prefetch": 0, "wait": 30}
        if kind == "sync":
            handled = work_sync(server_fast.url, 2, options, hold)
        else:
            handled = asyncio.run(work_async(server_fast.url, 2, options, hold))
        jobs = {job.job_id: job for job in queue.iter_jobs()}
    assert [job.job_id for job in handled] == ["long", "late"]
    assert [(jobs[i].state, jobs[i].result) for i in ("long", "late")] == [
        (JobState.SUCCEEDED, "long"),
        (JobState.SUCCEEDED, "late"),
    ]
