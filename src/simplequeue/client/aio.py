"""`AsyncClient`: the asyncio twin. Only I/O lives here; every decision is in `BaseClient`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar, overload

import httpx

from simplequeue.client import worker
from simplequeue.client.base import (
    Action,
    BaseClient,
    Call,
    Order,
    Page,
    Queues,
    States,
    total,
)
from simplequeue.client.batches import Batches, BatchResult
from simplequeue.client.ledger import Held, Ledger
from simplequeue.client.worker import GONE, PREFETCH, WORK_WAIT, WorkPlan
from simplequeue.errors import PayloadTooLarge, SimpleQueueError
from simplequeue.models import (
    HISTORY_SECONDS,
    Changed,
    CompletionStatus,
    Health,
    Job,
    JobState,
    Stats,
    StatsHistory,
)

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
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
    ) -> Job:
        """Queue a job once (see docs/sdk.md): ``queue``, ``priority`` and when it falls due
        (``run_at``, timezone-aware, or ``delay`` from now) are sent only when given."""
        call = self._submit_call(
            job_id,
            description,
            data,
            max_attempts=max_attempts,
            queue=queue,
            priority=priority,
            run_at=run_at,
            delay=delay,
        )
        return await self._send(call)

    async def submit_many(self, jobs: Iterable[Mapping[str, Any]]) -> list[BatchResult]:
        """Submit every job (each a dict of `submit`'s parameters) in as few requests as the
        server's limits allow; one result per job, in order. See docs/sdk.md, "Batches"."""
        return await self._send_batches(self._submit_batches(jobs))

    @overload
    async def next(
        self, *, wait: float | None = None, lease: int | None = None, queues: Queues = None
    ) -> Job | None: ...
    @overload
    async def next(
        self,
        *,
        wait: float | None = None,
        lease: int | None = None,
        count: int,
        queues: Queues = None,
    ) -> list[Job]: ...
    async def next(
        self,
        *,
        wait: float | None = None,
        lease: int | None = None,
        count: int | None = None,
        queues: Queues = None,
    ) -> Job | list[Job] | None:
        if count is None:
            return await self._send(self._next_call(wait, lease, queues))
        return await self._send(self._claim_call(count, wait, lease, queues))

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

    async def complete_many(self, completions: Iterable[Mapping[str, Any]]) -> list[BatchResult]:
        """Complete every job (each a dict of `complete`'s parameters), as `submit_many`."""
        return await self._send_batches(self._complete_batches(completions))

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
        queue: Queues = None,
    ) -> list[Job]:
        call = self._list_call(state, limit, after, before, order, prefix, queue)
        return (await self._send(call)).jobs

    async def iter_jobs(
        self,
        state: States = None,
        page_size: int = 100,
        after: str | None = None,
        *,
        before: str | None = None,
        order: Order = "asc",
        prefix: str | None = None,
        queue: Queues = None,
    ) -> AsyncIterator[Job]:
        """Every matching job in ``order``, fetching one page at a time as needed."""
        call: Call[Page] | None = self._list_call(
            state, page_size, after, before, order, prefix, queue
        )
        while call is not None:
            page = await self._send(call)
            for job in page.jobs:
                yield job
            call = page.next

    # A str is a Sequence[str] too: the first overload, the narrower, is the one it takes.
    @overload
    async def cancel(self, job_id: str, /) -> Job: ...  # type: ignore[overload-overlap]
    @overload
    async def cancel(self, job_ids: Sequence[str], /) -> Changed: ...
    @overload
    async def cancel(
        self,
        /,
        *,
        state: JobState | str | None = None,
        queue: str | None = None,
        prefix: str | None = None,
    ) -> Changed: ...
    async def cancel(
        self,
        jobs: str | Sequence[str] | None = None,
        /,
        *,
        state: JobState | str | None = None,
        queue: str | None = None,
        prefix: str | None = None,
    ) -> Job | Changed:
        """Fail jobs that are submitted or running, with the error ``cancelled``: one (the job
        as it is now), many ids, or every job matching the filter (how many matched and
        changed). See docs/sdk.md, "Cancel and retry"."""
        return await self._act("cancel", jobs, state, queue, prefix)

    @overload
    async def retry(self, job_id: str, /) -> Job: ...  # type: ignore[overload-overlap]
    @overload
    async def retry(self, job_ids: Sequence[str], /) -> Changed: ...
    @overload
    async def retry(
        self,
        /,
        *,
        state: JobState | str | None = None,
        queue: str | None = None,
        prefix: str | None = None,
    ) -> Changed: ...
    async def retry(
        self,
        jobs: str | Sequence[str] | None = None,
        /,
        *,
        state: JobState | str | None = None,
        queue: str | None = None,
        prefix: str | None = None,
    ) -> Job | Changed:
        """Queue failed jobs again, due now, keeping their attempts and errors; as `cancel`."""
        return await self._act("retry", jobs, state, queue, prefix)

    async def stats(self) -> Stats:
        return await self._send(self._stats_call())

    async def stats_history(self, seconds: int = HISTORY_SECONDS) -> StatsHistory:
        """Jobs submitted and completed per second over the last ``seconds`` (1-3,600), as the
        server sampled them: oldest first, the last ending at ``end``."""
        return await self._send(self._stats_history_call(seconds))

    async def health(self) -> Health:
        return await self._send(self._health_call())

    async def work(
        self,
        handler: Callable[[Job], Awaitable[Any]],
        *,
        concurrency: int = 1,
        prefetch: int = PREFETCH,
        lease: int | None = None,
        wait: float = WORK_WAIT,
        stop: asyncio.Event | None = None,
        queues: Queues = None,
        on_lost: Callable[[Job], object] | None = None,
    ) -> None:
        """Await ``handler(job)`` on every job the queue hands out (from ``queues`` only, if
        given), ``concurrency`` at a time (each in a task of its own), holding up to
        ``prefetch`` more, until ``stop`` is set or SIGINT/SIGTERM arrives; then run and
        complete the jobs held and return. A handler whose job is lost meanwhile (cancelled, or
        its lease taken back) is cancelled, and ``on_lost(job)`` called. See docs/sdk.md,
        "Workers", for what is sent when.
        """
        ledger = Ledger(
            WorkPlan(concurrency, lease, wait, prefetch, worker.queue_names(queues), on_lost)
        )
        stop = stop or asyncio.Event()
        wakes = _Wakes()
        raised: list[BaseException] = []

        async def part(run: Awaitable[None]) -> None:
            try:
                await run
            except Exception as exc:  # handed to the caller below, once the others end
                raised.append(exc)
                stop.set()
                wakes.room.set()  # the fetcher, which may wait for room that never comes

        loop = asyncio.get_running_loop()
        # A signal handler may run between any two steps of the loop: it only schedules the stop.
        with worker.stop_on_signals(lambda: loop.call_soon_threadsafe(stop.set)):
            # A task group: if one part ends with anything but an Exception (the work itself is
            # cancelled, say), the others are cancelled too; the jobs held come back by lease.
            async with asyncio.TaskGroup() as group:
                group.create_task(part(self._fetch(ledger, wakes, stop)))
                for _ in range(concurrency):
                    group.create_task(part(self._run_slot(handler, ledger, wakes)))
                group.create_task(part(self._send_outcomes(ledger, wakes)))
                group.create_task(part(self._keep_leased(ledger, wakes, part)))
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

    # -- the worker loop: a fetcher, the slots, a sender, a heartbeat loop (worker.py) --------
    # One event loop runs every part, so the ledger needs no lock: nothing else runs between
    # two awaits. Each part waits on an event of its own, set by whatever concerns it.

    async def _fetch(self, ledger: Ledger, wakes: _Wakes, stop: asyncio.Event) -> None:
        plan = ledger.plan
        failures = 0
        try:
            while True:
                await _when(wakes.room, lambda: stop.is_set() or ledger.may_ask())
                if stop.is_set():
                    return
                count, wait = ledger.ask()
                try:
                    jobs = await self.next(
                        count=count, wait=wait, lease=plan.lease, queues=plan.queues
                    )
                except SimpleQueueError as exc:
                    failures += 1
                    await _until(stop, plan.pause_after(exc, failures))
                    continue
                failures = 0
                pause = ledger.took(jobs, count, time.monotonic())
                wakes.ready.set()
                wakes.beats.set()
                if pause:
                    await _until(stop, pause)
        finally:
            ledger.fetching = False
            wakes.ready.set()

    async def _run_slot(
        self, handler: Callable[[Job], Awaitable[Any]], ledger: Ledger, wakes: _Wakes
    ) -> None:
        try:
            while True:
                await _when(wakes.ready, ledger.waiting)
                held = ledger.start()
                if held is None:
                    return
                # In a task of its own, so that it alone can be cancelled if its job is lost.
                running = wakes.handlers[held] = asyncio.ensure_future(handler(held.job))
                try:
                    outcome = worker.outcome_of_result(await running)
                except Exception as exc:
                    outcome = worker.outcome_of_error(held.job, exc)
                except asyncio.CancelledError:
                    ledger.dropped(held)
                    wakes.room.set()
                    if _cancelled_here(running) and held not in ledger.held:
                        continue  # its job was lost (`_renew`): nothing to record
                    raise
                except BaseException:
                    ledger.dropped(held)
                    wakes.room.set()
                    raise
                finally:
                    del wakes.handlers[held]
                ledger.finished(held, outcome)
                wakes.room.set()
                wakes.outbox.set()
        finally:
            ledger.slots -= 1
            wakes.outbox.set()

    async def _send_outcomes(self, ledger: Ledger, wakes: _Wakes) -> None:
        try:
            while True:
                await _when(wakes.outbox, lambda: bool(ledger.outbox) or ledger.slots == 0)
                if ledger.sender_done():
                    return
                batch = ledger.flush()
                try:
                    results = await self._send_batches(
                        self._finish_batches([(held.job, outcome) for held, outcome in batch])
                    )
                except SimpleQueueError as exc:
                    ledger.unsent(batch, exc)
                    continue
                for (held, outcome), result in zip(batch, results, strict=True):
                    ledger.settle(held, outcome, result)
        finally:
            ledger.over = True
            wakes.beats.set()

    async def _keep_leased(
        self,
        ledger: Ledger,
        wakes: _Wakes,
        part: Callable[[Awaitable[None]], Coroutine[Any, Any, None]],
    ) -> None:
        # Each renewal in a task of its own (a `part`: what it raises stops the worker), so that
        # one slow to answer holds up no other, the next beats included (as waiting for a whole
        # round of them would); `Ledger.due` bounds how many are in flight. Those still in
        # flight when every outcome is sent are of no more use: cancelled.
        renewals: set[asyncio.Task[None]] = set()
        try:
            while True:
                while not ledger.over and not (due := ledger.due(time.monotonic())):
                    wakes.beats.clear()
                    await _until(wakes.beats, ledger.renewal_in(time.monotonic()))
                if ledger.over:
                    return
                for held in due:
                    task = asyncio.create_task(part(self._renew(held, ledger, wakes)))
                    renewals.add(task)
                    task.add_done_callback(renewals.discard)
        finally:
            for task in renewals:
                task.cancel()
            await asyncio.gather(*renewals, return_exceptions=True)

    async def _renew(self, held: Held, ledger: Ledger, wakes: _Wakes) -> None:
        sent_at = time.monotonic()
        renewed = None
        try:
            await self._send(self._renew_call(held.job), within=ledger.renewal_time(held, sent_at))
            renewed = sent_at
        except GONE as exc:
            if ledger.lost(held, exc):
                if (running := wakes.handlers.get(held)) is not None:
                    running.cancel()
                if ledger.plan.on_lost is not None:
                    ledger.plan.on_lost(held.job)
            wakes.room.set()
        except SimpleQueueError as exc:
            worker.heartbeat_failed(held.job, exc)
        finally:
            ledger.renewal_ended(held, renewed)
            wakes.beats.set()

    async def _act(
        self,
        action: Action,
        jobs: str | Sequence[str] | None,
        state: JobState | str | None,
        queue: str | None,
        prefix: str | None,
    ) -> Job | Changed:
        calls = self._action_calls(action, jobs, state, queue, prefix)
        if isinstance(calls, Call):
            return await self._send(calls)
        return total([await self._send(call) for call in calls])

    async def _send_batches(self, batches: Batches) -> list[BatchResult]:
        while (call := batches.next_call()) is not None:
            try:
                batches.answered(await self._send(call))
            except PayloadTooLarge as exc:
                batches.too_large(exc)
        return batches.results()

    async def _send(self, call: Call[T], within: float | None = None) -> T:
        attempts = self._attempts(call, within)
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


def _cancelled_here(running: asyncio.Future[Any]) -> bool:
    """Whether the handler's task ``running`` was cancelled while the slot awaiting it was not
    (a slot cancelled with the whole ``work`` cancels the handler it awaits, too)."""
    slot = asyncio.current_task()
    return running.cancelled() and (slot is None or slot.cancelling() == 0)


async def _until(stop: asyncio.Event, seconds: float | None) -> None:
    """Wait ``seconds`` (``None``: for ever), or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _when(event: asyncio.Event, ready: Callable[[], bool]) -> None:
    """Wait until ``ready()``, checked again each time ``event`` is set. Nothing runs between
    the check and the clear (no await), so no setting of it can be missed."""
    while not ready():
        event.clear()
        await event.wait()


@dataclass
class _Wakes:
    """What each part of a ``work`` loop waits for: each change wakes only the part it concerns."""

    room: asyncio.Event = field(default_factory=asyncio.Event)
    """The fetcher: room for more jobs (a slot freed up), or the loop is stopping."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    """The slots: a job to start, or no more will come."""
    outbox: asyncio.Event = field(default_factory=asyncio.Event)
    """The sender: an outcome to send, or no more will come."""
    beats: asyncio.Event = field(default_factory=asyncio.Event)
    """The heartbeat loop: new jobs to renew, or every outcome is sent."""
    handlers: dict[Held, asyncio.Future[Any]] = field(default_factory=dict)
    """The task running each job's handler: cancelled when a heartbeat finds the job lost."""
