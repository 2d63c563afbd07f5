"""`Client`: the blocking twin. Only I/O lives here; every decision is in `BaseClient`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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

__all__ = ["Client"]

T = TypeVar("T")


@dataclass
class _Wakes:
    """What each part of a ``work`` loop waits for, all under the one lock that guards its
    `Ledger`: each change wakes only the part it concerns."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    room: threading.Condition = field(init=False)
    """The fetcher: room for more jobs (a slot freed up), or the loop is stopping."""
    ready: threading.Condition = field(init=False)
    """The slots: a job to start, or no more will come."""
    outbox: threading.Condition = field(init=False)
    """The sender: an outcome to send, or no more will come."""
    beats: threading.Condition = field(init=False)
    """The heartbeat loop: new jobs to renew, or every outcome is sent."""

    def __post_init__(self) -> None:
        self.room = threading.Condition(self.lock)
        self.ready = threading.Condition(self.lock)
        self.outbox = threading.Condition(self.lock)
        self.beats = threading.Condition(self.lock)


class Client(BaseClient):
    """A blocking client for one simplequeue server.

    ``url`` defaults to ``$SIMPLEQUEUE_URL``, then ``http://127.0.0.1:8000``. Pass ``http`` (any
    ``httpx.Client``, such as Litestar's ``TestClient``) or ``transport`` to control the I/O. Calls
    safe to repeat (all but a ``complete`` that retries without a lease) are retried ``retries``
    times on connection errors and 502/503/504 (honouring a 503's ``Retry-After``); with
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
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
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
        self._http = http or httpx.Client(transport=transport)
        self._sleep = sleep

    def submit(
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
        return self._send(call)

    def submit_many(self, jobs: Iterable[Mapping[str, Any]]) -> list[BatchResult]:
        """Submit every job (each a dict of `submit`'s parameters) in as few requests as the
        server's limits allow; one result per job, in order. See docs/sdk.md, "Batches"."""
        return self._send_batches(self._submit_batches(jobs))

    @overload
    def next(
        self, *, wait: float | None = None, lease: int | None = None, queues: Queues = None
    ) -> Job | None: ...
    @overload
    def next(
        self,
        *,
        wait: float | None = None,
        lease: int | None = None,
        count: int,
        queues: Queues = None,
    ) -> list[Job]: ...
    def next(
        self,
        *,
        wait: float | None = None,
        lease: int | None = None,
        count: int | None = None,
        queues: Queues = None,
    ) -> Job | list[Job] | None:
        if count is None:
            return self._send(self._next_call(wait, lease, queues))
        return self._send(self._claim_call(count, wait, lease, queues))

    def heartbeat(self, job_id: str, lease_id: str, lease_seconds: int | None = None) -> Job:
        return self._send(self._heartbeat_call(job_id, lease_id, lease_seconds))

    def complete(
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
        return self._send(call)

    def complete_many(self, completions: Iterable[Mapping[str, Any]]) -> list[BatchResult]:
        """Complete every job (each a dict of `complete`'s parameters), as `submit_many`."""
        return self._send_batches(self._complete_batches(completions))

    def get(self, job_id: str) -> Job:
        return self._send(self._get_call(job_id))

    def list_jobs(
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
        return self._send(call).jobs

    def iter_jobs(
        self,
        state: States = None,
        page_size: int = 100,
        after: str | None = None,
        *,
        before: str | None = None,
        order: Order = "asc",
        prefix: str | None = None,
        queue: Queues = None,
    ) -> Iterator[Job]:
        """Every matching job in ``order``, fetching one page at a time as needed."""
        call: Call[Page] | None = self._list_call(
            state, page_size, after, before, order, prefix, queue
        )
        while call is not None:
            page = self._send(call)
            yield from page.jobs
            call = page.next

    # A str is a Sequence[str] too: the first overload, the narrower, is the one it takes.
    @overload
    def cancel(self, job_id: str, /) -> Job: ...  # type: ignore[overload-overlap]
    @overload
    def cancel(self, job_ids: Sequence[str], /) -> Changed: ...
    @overload
    def cancel(
        self,
        /,
        *,
        state: JobState | str | None = None,
        queue: str | None = None,
        prefix: str | None = None,
    ) -> Changed: ...
    def cancel(
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
        return self._act("cancel", jobs, state, queue, prefix)

    @overload
    def retry(self, job_id: str, /) -> Job: ...  # type: ignore[overload-overlap]
    @overload
    def retry(self, job_ids: Sequence[str], /) -> Changed: ...
    @overload
    def retry(
        self,
        /,
        *,
        state: JobState | str | None = None,
        queue: str | None = None,
        prefix: str | None = None,
    ) -> Changed: ...
    def retry(
        self,
        jobs: str | Sequence[str] | None = None,
        /,
        *,
        state: JobState | str | None = None,
        queue: str | None = None,
        prefix: str | None = None,
    ) -> Job | Changed:
        """Queue failed jobs again, due now, keeping their attempts and errors; as `cancel`."""
        return self._act("retry", jobs, state, queue, prefix)

    def stats(self) -> Stats:
        return self._send(self._stats_call())

    def stats_history(self, seconds: int = HISTORY_SECONDS) -> StatsHistory:
        """Jobs submitted and completed per second over the last ``seconds`` (1-3,600), as the
        server sampled them: oldest first, the last ending at ``end``."""
        return self._send(self._stats_history_call(seconds))

    def health(self) -> Health:
        return self._send(self._health_call())

    def work(
        self,
        handler: Callable[[Job], Any],
        *,
        concurrency: int = 1,
        prefetch: int = PREFETCH,
        lease: int | None = None,
        wait: float = WORK_WAIT,
        stop: threading.Event | None = None,
        queues: Queues = None,
        on_lost: Callable[[Job], object] | None = None,
    ) -> None:
        """Run ``handler(job)`` on every job the queue hands out (from ``queues`` only, if
        given), ``concurrency`` at a time (in threads), holding up to ``prefetch`` more, until
        ``stop`` is set or SIGINT/SIGTERM arrives; then run and complete the jobs held and
        return. A job lost meanwhile (cancelled, or its lease taken back) is not completed, but
        a thread cannot be stopped: its handler runs to its end, and ``on_lost(job)`` is called
        so that it can be told to stop. See docs/sdk.md, "Workers".
        """
        ledger = Ledger(
            WorkPlan(concurrency, lease, wait, prefetch, worker.queue_names(queues), on_lost)
        )
        stop = stop or threading.Event()
        wakes = _Wakes()
        raised: list[BaseException] = []

        def part(name: str, run: Callable[..., None], *args: Any) -> threading.Thread:
            def target() -> None:
                try:
                    run(*args)
                except BaseException as exc:  # handed to the caller below, once the others end
                    raised.append(exc)
                    stop.set()
                    with wakes.lock:
                        wakes.room.notify()  # the fetcher, which may wait for room that never comes

            # Daemon threads: a second Ctrl-C ends the process at once (the jobs in hand come
            # back when their leases end), as docs/sdk.md says.
            return threading.Thread(target=target, name=f"simplequeue-{name}", daemon=True)

        threads = [
            part("fetcher", self._fetch, ledger, wakes, stop),
            *(
                part(f"worker-{n}", self._run_slot, handler, ledger, wakes)
                for n in range(concurrency)
            ),
            part("sender", self._send_outcomes, ledger, wakes),
            part("heartbeat", self._keep_leased, ledger, wakes, part),
        ]
        with worker.stop_on_signals(stop.set):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if raised:
            raise raised[0]

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the worker loop: a fetcher, the slots, a sender, a heartbeat loop (worker.py) --------

    def _fetch(self, ledger: Ledger, wakes: _Wakes, stop: threading.Event) -> None:
        plan = ledger.plan
        failures = 0
        try:
            while True:
                with wakes.room:
                    wakes.room.wait_for(lambda: stop.is_set() or ledger.may_ask())
                    count, wait = ledger.ask()
                if stop.is_set():
                    return
                try:
                    jobs = self.next(count=count, wait=wait, lease=plan.lease, queues=plan.queues)
                except SimpleQueueError as exc:
                    failures += 1
                    stop.wait(plan.pause_after(exc, failures))
                    continue
                failures = 0
                with wakes.lock:
                    pause = ledger.took(jobs, count, time.monotonic())
                    wakes.ready.notify(len(jobs))
                    wakes.beats.notify()
                if pause:
                    stop.wait(pause)
        finally:
            with wakes.lock:
                ledger.fetching = False
                wakes.ready.notify_all()

    def _run_slot(self, handler: Callable[[Job], Any], ledger: Ledger, wakes: _Wakes) -> None:
        try:
            while True:
                with wakes.ready:
                    wakes.ready.wait_for(ledger.waiting)
                    held = ledger.start()
                if held is None:
                    return
                try:
                    outcome = worker.outcome_of_result(handler(held.job))
                except Exception as exc:
                    outcome = worker.outcome_of_error(held.job, exc)
                except BaseException:
                    with wakes.lock:
                        ledger.dropped(held)
                        wakes.room.notify()
                    raise
                with wakes.lock:
                    ledger.finished(held, outcome)
                    wakes.room.notify()
                    wakes.outbox.notify()
        finally:
            with wakes.lock:
                ledger.slots -= 1
                wakes.outbox.notify()

    def _send_outcomes(self, ledger: Ledger, wakes: _Wakes) -> None:
        try:
            while True:
                with wakes.outbox:
                    wakes.outbox.wait_for(lambda: ledger.outbox or ledger.slots == 0)
                    if ledger.sender_done():
                        return
                    batch = ledger.flush()
                try:
                    results = self._send_batches(
                        self._finish_batches([(held.job, outcome) for held, outcome in batch])
                    )
                except SimpleQueueError as exc:
                    with wakes.lock:
                        ledger.unsent(batch, exc)
                    continue
                with wakes.lock:
                    for (held, outcome), result in zip(batch, results, strict=True):
                        ledger.settle(held, outcome, result)
        finally:
            with wakes.lock:
                ledger.over = True
                wakes.beats.notify()

    def _keep_leased(
        self, ledger: Ledger, wakes: _Wakes, part: Callable[..., threading.Thread]
    ) -> None:
        # Each renewal in a thread of its own (a `part`: what it raises stops the worker), so
        # that one slow to answer holds up no other; `Ledger.due` bounds how many are in flight.
        # Daemons, as every part: a renewal still in flight when the loop ends is left to end
        # by itself, within the time left on its lease.
        while True:
            with wakes.beats:
                while not ledger.over and not (due := ledger.due(time.monotonic())):
                    wakes.beats.wait(ledger.renewal_in(time.monotonic()))
                if ledger.over:
                    return
            for held in due:
                part("renewal", self._renew, held, ledger, wakes).start()

    def _renew(self, held: Held, ledger: Ledger, wakes: _Wakes) -> None:
        sent_at = time.monotonic()
        with wakes.lock:
            within = ledger.renewal_time(held, sent_at)
        renewed = None
        try:
            self._send(self._renew_call(held.job), within=within)
            renewed = sent_at
        except GONE as exc:
            with wakes.lock:
                dropped = ledger.lost(held, exc)
                wakes.room.notify()
            if dropped and ledger.plan.on_lost is not None:
                ledger.plan.on_lost(held.job)  # outside the lock: it is the caller's code
        except SimpleQueueError as exc:
            worker.heartbeat_failed(held.job, exc)
        finally:
            with wakes.lock:
                ledger.renewal_ended(held, renewed)
                wakes.beats.notify()

    def _act(
        self,
        action: Action,
        jobs: str | Sequence[str] | None,
        state: JobState | str | None,
        queue: str | None,
        prefix: str | None,
    ) -> Job | Changed:
        calls = self._action_calls(action, jobs, state, queue, prefix)
        if isinstance(calls, Call):
            return self._send(calls)
        return total(self._send(call) for call in calls)

    def _send_batches(self, batches: Batches) -> list[BatchResult]:
        while (call := batches.next_call()) is not None:
            try:
                batches.answered(self._send(call))
            except PayloadTooLarge as exc:
                batches.too_large(exc)
        return batches.results()

    def _send(self, call: Call[T], within: float | None = None) -> T:
        attempts = self._attempts(call, within)
        while True:
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = self._http.send(attempts.request(self._http))
            except httpx.TransportError as exc:
                outcome = exc
            delay = attempts.retry_delay(outcome)
            if delay is None:
                return attempts.settle(outcome)
            self._sleep(delay)
