"""`AsyncClient`: the asyncio twin. Only I/O lives here; every decision is in `BaseClient`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from simplequeue.client.base import BaseClient, Call, Order, Page, States
from simplequeue.models import CompletionStatus, Health, Job, Stats

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(BaseClient):
    """An asyncio client for one simplequeue server; the same methods as `Client`, awaited.

    ``url`` defaults to ``$SIMPLEQUEUE_URL``, then ``http://127.0.0.1:8000``. Pass ``http`` (any
    ``httpx.AsyncClient``, such as Litestar's ``AsyncTestClient``) or ``transport`` to control the
    I/O. Calls other than ``next`` are retried ``retries`` times on connection errors and
    502/503/504 (honouring a 503's ``Retry-After``); with ``deadline``, each call, retries
    included, ends within that many seconds. ``sleep`` and ``clock`` are how it waits and tells
    the time.
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
        self, job_id: str, description: str | None = None, data: dict[str, Any] | None = None
    ) -> Job:
        return await self._send(self._submit_call(job_id, description, data))

    async def next(self) -> Job | None:
        return await self._send(self._next_call())

    async def complete(self, job_id: str, status: CompletionStatus | str) -> Job:
        return await self._send(self._complete_call(job_id, status))

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
