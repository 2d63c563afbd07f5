"""`AsyncClient`: the asyncio twin. Only I/O lives here; every decision is in `BaseClient`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from simplequeue.client import worker
from simplequeue.client.base import BaseClient, Call, Order, Page, States
from simplequeue.client.worker import GONE, WORK_WAIT, Outcome, WorkPlan
from simplequeue.errors import SimpleQueueError
from simplequeue.models import CompletionStatus, Health, Job, Stats

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(BaseClient):
    """An asyncio client for one simplequeue server; the same methods as `Client`, awaited.

    ``url`` defaults to ``$SIMPLEQUEUE_URL``, then ``http://127.0.0.1:8000``. Pass ``http`` (any
    ``httpx.AsyncClient``, such as Litestar's ``AsyncTestClient``) or ``transport`` to control the
    I/O. Calls safe to repeat (all but a ``complete`` that retries without a lease) are retried
    ``retries`` times on connection errors and 502/503/504 (honouring a 503's ``Retry-After``); with
    ``deadline``, each call, retries included, ends within that many seconds. ``sleep`` and
    ``clock`` are how it waits and tells the time.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        deadline: float | None = None,
        retries: int = 3,
        backoff: float = 0.1,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            url,
            http_base_url=http.base_url if http else None,
            timeout=timeout,
            deadline=deadline,
            retries=retries,
            backoff=backoff,
            clock=clock,
        )
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(transport=transport)
        self._sleep = sleep

    async def submit(
        self,
        job_id: str,
        description: str | None = None,
        data: dict[str, Any] | None = None,
        *,
        max_attempts: int | None = None,
    ) -> Job:
        return await self._send(self._submit_call(job_id, description, data, max_attempts))

    async def next(self, *, wait: float | None = None, lease: int | None = None) -> Job | None:
        return await self._send(self._next_call(wait, lease))

    async def heartbeat(self, job_id: str, lease_id: str, lease_seconds: int | None = None) -> Job:
        return await self._send(self._heartbeat_call(job_id, lease_id, lease_seconds))

    async def complete(
        self,
        job_id: str,
        status: CompletionStatus | str,
        *,
        lease_id: str | None = None,
        result: Any = None,
        error: str | None = None,
        retry: bool = False,
    ) -> Job:
        call = self._complete_call(job_id, status, lease_id, result, error, retry)
        return await self._send(call)

    async def get(self, job_id: str) -> Job:
        return await self._send(self._get_call(job_id))

    async def list_jobs(
        self,
        state: States = None,
        limit: int = 100,
        after: str | None = None,
        *,
        before: str | None = None,
        order: Order = "asc",
        prefix: str | None = None,
    ) -> list[Job]:
        return (await self._send(self._list_call(state, limit, after, before, order, prefix))).jobs

    async def iter_jobs(
        self,
        state: States = None,
        page_size: int = 100,
        after: str | None = None,
        *,
        before: str | None = None,
        order: Order = "asc",
        prefix: str | None = None,
    ) -> AsyncIterator[Job]:
        """Every matching job in ``order``, fetching one page at a time as needed."""
        call: Call[Page] | None = self._list_call(state, page_size, after, before, order, prefix)
        while call is not None:
            page = await self._send(call)
            for job in page.jobs:
                yield job
            call = page.next

    async def stats(self) -> Stats:
        return await self._send(self._stats_call())

    async def health(self) -> Health:
        return await self._send(self._health_call())

    async def work(
        self,
        handler: Callable[[Job], Awaitable[Any]],
        *,
        concurrency: int = 1,
        lease: int | None = None,
        wait: float = WORK_WAIT,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Await ``handler(job)`` on every job the queue hands out, ``concurrency`` at a time
        (in tasks), until ``stop`` is set or SIGINT/SIGTERM arrives; then finish the jobs in
        hand and return. See docs/sdk.md, "Workers", for what is sent when.
        """
        plan = WorkPlan(concurrency, lease, wait)
        stop = stop or asyncio.Event()
        raised: list[BaseException] = []

        async def slot() -> None:
            try:
                await self._work_slot(handler, plan, stop)
            except Exception as exc:  # handed to the caller below, once the others end
                raised.append(exc)
                stop.set()

        loop = asyncio.get_running_loop()
        # A signal handler may run between any two steps of the loop: it only schedules the stop.
        with worker.stop_on_signals(lambda: loop.call_soon_threadsafe(stop.set)):
            await asyncio.gather(*(slot() for _ in range(concurrency)))
        if raised:
            raise raised[0]

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _work_slot(
        self, handler: Callable[[Job], Awaitable[Any]], plan: WorkPlan, stop: asyncio.Event
    ) -> None:
        failures = 0
        while not stop.is_set():
            try:
                job = await self.next(wait=plan.wait, lease=plan.lease)
            except SimpleQueueError as exc:
                failures += 1
                await _until(stop, plan.pause_after(exc, failures))
                continue
            failures = 0
            if job is None:
                await _until(stop, plan.idle_pause())
            else:
                await self._work_on(job, handler, plan)

    async def _work_on(
        self, job: Job, handler: Callable[[Job], Awaitable[Any]], plan: WorkPlan
    ) -> None:
        gone = asyncio.Event()
        beats = asyncio.create_task(self._keep_leased(job, plan, gone))
        try:
            outcome = worker.outcome_of_result(await handler(job))
        except Exception as exc:
            outcome = worker.outcome_of_error(job, exc)
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
        if not gone.is_set():
            await self._finish(job, outcome)

    async def _keep_leased(self, job: Job, plan: WorkPlan, gone: asyncio.Event) -> None:
        every = plan.heartbeat_every(job)
        while every is not None:
            await asyncio.sleep(every)
            try:
                await self._send(self._renew_call(job))
            except GONE as exc:
                worker.lost(job, exc)
                gone.set()
                return
            except SimpleQueueError as exc:
                worker.heartbeat_failed(job, exc)

    async def _finish(self, job: Job, outcome: Outcome) -> None:
        try:
            await self._send(self._finish_call(job, outcome))
        except GONE as exc:
            worker.lost(job, exc)
        except SimpleQueueError as exc:
            instead = worker.refused_result(outcome, exc)
            if instead is None:
                worker.not_completed(job, exc)
            else:
                await self._finish(job, instead)

    async def _send(self, call: Call[T]) -> T:
        attempts = self._attempts(call)
        while True:
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._http.send(attempts.request(self._http))
            except httpx.TransportError as exc:
                outcome = exc
            delay = attempts.retry_delay(outcome)
            if delay is None:
                return attempts.settle(outcome)
            await self._sleep(delay)


async def _until(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
