from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import respx

from simplequeue import AsyncClient, Client

URL = "http://queue.test"


def job_json(job_id: str = "job-1", state: str = "submitted", **fields: Any) -> dict[str, Any]:
    """A job as the server sends it (camelCase)."""
    return {
        "jobId": job_id,
        "description": None,
        "data": None,
        "state": state,
        "queue": "default",
        "priority": 0,
        "runAt": "2026-01-02T03:04:05.000006Z",
        "createdAt": "2026-01-02T03:04:05.000006Z",
        "startedAt": None,
        "finishedAt": None,
        "attempts": 0,
        "maxAttempts": 3,
        "leaseExpiresAt": None,
        "result": None,
        "errors": [],
        **fields,
    }


class Twin:
    """Runs each SDK call on a fresh `Client` or `AsyncClient`, so one test checks both twins.

    ``delays`` records every backoff sleep instead of sleeping; ``now`` is the clients' clock,
    which only moves when a sleep or a test moves it.
    """

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.now = 0.0
        self.options = {"clock": lambda: self.now, **options}
        self.delays: list[float] = []

    def pass_time(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.kind == "sync":
                with Client(URL, sleep=self._sleep, **self.options) as client:
                    result = getattr(client, method)(*args, **kwargs)
                    return list(result) if method == "iter_jobs" else result
            return asyncio.run(self._async(method, *args, **kwargs))

        return call

    def _sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.pass_time(seconds)

    async def _async(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def sleep(seconds: float) -> None:
            self._sleep(seconds)

        async with AsyncClient(URL, sleep=sleep, **self.options) as client:
            result = getattr(client, method)(*args, **kwargs)
            if method == "iter_jobs":
                return [job async for job in result]
            return await result


@pytest.fixture(params=["sync", "async"])
def sdk(request: pytest.FixtureRequest) -> Twin:
    return Twin(request.param)


@pytest.fixture(params=["sync", "async"])
def make_sdk(request: pytest.FixtureRequest) -> Callable[..., Twin]:
    return lambda **options: Twin(request.param, **options)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        yield router
