"""`Client`: the blocking twin. Only I/O lives here; every decision is in `BaseClient`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from simplequeue.client import worker
from simplequeue.client.base import BaseClient, Call, Order, Page, States
from simplequeue.client.worker import GONE, WORK_WAIT, Outcome, WorkPlan
from simplequeue.errors import SimpleQueueError
from simplequeue.models import CompletionStatus, Health, Job, Stats

__all__ = ["Client"]

T = TypeVar("T")


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
    ) -> Job:
        return self._send(self._submit_call(job_id, description, data, max_attempts))

    def next(self, *, wait: float | None = None, lease: int | None = None) -> Job | None:
        return self._send(self._next_call(wait, lease))

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
    ) -> list[Job]:
        return self._send(self._list_call(state, limit, after, before, order, prefix)).jobs

    def iter_jobs(
        self,
        state: States = None,
        page_size: int = 100,
        after: str | None = None,
        *,
        before: str | None = None,
        order: Order = "asc",
        prefix: str | None = None,
    ) -> Iterator[Job]:
        """Every matching job in ``order``, fetching one page at a time as needed."""
        call: Call[Page] | None = self._list_call(state, page_size, after, before, order, prefix)
        while call is not None:
            page = self._send(call)
            yield from page.jobs
            call = page.next

    def stats(self) -> Stats:
        return self._send(self._stats_call())

    def health(self) -> Health:
        return self._send(self._health_call())

    def work(
        self,
        handler: Callable[[Job], Any],
        *,
        concurrency: int = 1,
        lease: int | None = None,
        wait: float = WORK_WAIT,
        stop: threading.Event | None = None,
    ) -> None:
        """Run ``handler(job)`` on every job the queue hands out, ``concurrency`` at a time (in
        threads), until ``stop`` is set or SIGINT/SIGTERM arrives; then finish the jobs in hand
        and return. See docs/sdk.md, "Workers", for what is sent when.
        """
        plan = WorkPlan(concurrency, lease, wait)
        stop = stop or threading.Event()
        raised: list[BaseException] = []

        def slot() -> None:
            try:
                self._work_slot(handler, plan, stop)
            except BaseException as exc:  # handed to the caller below, once the others end
                raised.append(exc)
                stop.set()

        threads = [
            # Daemon threads: a second Ctrl-C ends the process at once (the jobs in hand come
            # back when their leases end), as docs/sdk.md says.
            threading.Thread(target=slot, name=f"simplequeue-worker-{n}", daemon=True)
            for n in range(concurrency)
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

    def _work_slot(
        self, handler: Callable[[Job], Any], plan: WorkPlan, stop: threading.Event
    ) -> None:
        failures = 0
        while not stop.is_set():
            try:
                job = self.next(wait=plan.wait, lease=plan.lease)
            except SimpleQueueError as exc:
                failures += 1
                stop.wait(plan.pause_after(exc, failures))
                continue
            failures = 0
            if job is None:
                stop.wait(plan.idle_pause())
            else:
                self._work_on(job, handler, plan)

    def _work_on(self, job: Job, handler: Callable[[Job], Any], plan: WorkPlan) -> None:
        done = threading.Event()
        gone = threading.Event()
        beats = threading.Thread(
            target=self._keep_leased,
            args=(job, plan, done, gone),
            name="simplequeue-heartbeat",
            daemon=True,
        )
        beats.start()
        try:
            outcome = worker.outcome_of_result(handler(job))
        except Exception as exc:
            outcome = worker.outcome_of_error(job, exc)
        finally:
            done.set()
            beats.join()
        if not gone.is_set():
            self._finish(job, outcome)

    def _keep_leased(
        self, job: Job, plan: WorkPlan, done: threading.Event, gone: threading.Event
    ) -> None:
        every = plan.heartbeat_every(job)
        while every is not None and not done.wait(every):
            try:
                self._send(self._renew_call(job))
            except GONE as exc:
                worker.lost(job, exc)
                gone.set()
                return
            except SimpleQueueError as exc:
                worker.heartbeat_failed(job, exc)

    def _finish(self, job: Job, outcome: Outcome) -> None:
        try:
            self._send(self._finish_call(job, outcome))
        except GONE as exc:
            worker.lost(job, exc)
        except SimpleQueueError as exc:
            instead = worker.refused_result(outcome, exc)
            if instead is None:
                worker.not_completed(job, exc)
            else:
                self._finish(job, instead)

    def _send(self, call: Call[T]) -> T:
        attempts = self._attempts(call)
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
