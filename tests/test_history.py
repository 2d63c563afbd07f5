"""The rate history (``GET /stats/history``): per-second differences of the store's cumulative
counters, in `RateHistory` alone, in the queue with an injected clock (both stores), sampled by
the queue's background duty, and from a real `sq serve`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from litestar.testing import TestClient

from simplequeue.errors import InvalidRequest
from simplequeue.history import RateHistory
from simplequeue.models import (
    HISTORY_INTERVAL,
    HISTORY_SECONDS,
    CompleteRequest,
    CompletionStatus,
    JobState,
    StatsHistory,
    SubmitRequest,
)
from simplequeue.queue import Action, Queue
from simplequeue.store import MemoryStore
from simplequeue.store.base import Totals
from tests.servers import OpenStore, ServerProcess

T = TypeVar("T")

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
"""A whole second: the history's entries end on whole seconds."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Clock:
    """A clock that stands still until told to move."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 60))


def rates(history: StatsHistory) -> tuple[list[int], list[int]]:
    return history.submitted, history.completed


# -- RateHistory -------------------------------------------------------------------------------


def test_the_interval_is_a_second_and_the_history_an_hour() -> None:
    assert (HISTORY_INTERVAL, HISTORY_SECONDS) == (1, 3600)


def test_before_two_samples_the_history_is_empty_and_ends_now() -> None:
    history = RateHistory()
    empty = history.last(60, at(5.7))
    assert (empty.interval, empty.end, rates(empty)) == (1, at(5), ([], []))
    history.record(at(1.2), Totals(10, 4))  # the baseline: nothing to subtract it from
    assert history.last(60, at(5.7)) == StatsHistory(
        interval=1, end=at(1), submitted=[], completed=[]
    )


def test_each_sample_adds_the_differences_since_the_one_before() -> None:
    history = RateHistory()
    for second, totals in enumerate([Totals(10, 4), Totals(13, 4), Totals(13, 6), Totals(20, 9)]):
        history.record(at(second + 0.01), totals)
    answer = history.last(3600, at(3.5))
    assert answer.end == at(3)
    assert rates(answer) == ([3, 0, 7], [0, 2, 3])
    # The newest `seconds` of them, oldest first.
    assert rates(history.last(2, at(3.5))) == ([0, 7], [2, 3])
    assert rates(history.last(1, at(3.5))) == ([7], [3])


def test_a_second_sample_within_one_second_is_ignored() -> None:
    history = RateHistory()
    history.record(at(0.01), Totals(0, 0))
    history.record(at(0.99), Totals(5, 5))
    history.record(at(1.01), Totals(6, 1))
    assert rates(history.last(10, at(2))) == ([6], [1])


def test_a_late_sample_spreads_its_counts_over_the_seconds_it_covers() -> None:
    history = RateHistory()
    history.record(at(0), Totals(0, 0))
    history.record(at(3.4), Totals(8, 2))  # the loop was busy: three seconds in one sample
    answer = history.last(10, at(4))
    assert answer.end == at(3)
    assert rates(answer) == ([2, 3, 3], [0, 1, 1])
    assert sum(answer.submitted) == 8


def test_counts_are_never_negative() -> None:
    history = RateHistory()
    history.record(at(0), Totals(50, 40))
    history.record(at(1), Totals(10, 45))  # a store that went back (replaced under the server)
    history.record(at(2), Totals(12, 45))
    assert rates(history.last(10, at(2))) == ([0, 2], [5, 0])


def test_the_history_keeps_the_last_hour_only() -> None:
    history = RateHistory()
    for second in range(HISTORY_SECONDS + 11):
        history.record(at(second), Totals(second * second, second))
    answer = history.last(HISTORY_SECONDS, at(HISTORY_SECONDS + 10))
    assert len(answer.submitted) == len(answer.completed) == HISTORY_SECONDS
    # The newest entry is the last second's difference; the oldest the one an hour before it.
    newest, oldest = HISTORY_SECONDS + 10, 11
    assert answer.submitted[-1] == newest**2 - (newest - 1) ** 2
    assert answer.submitted[0] == oldest**2 - (oldest - 1) ** 2
    assert set(answer.completed) == {1}


def test_a_gap_longer_than_the_history_leaves_only_its_last_hour() -> None:
    history = RateHistory()
    history.record(at(0), Totals(0, 0))
    history.record(at(10 * HISTORY_SECONDS), Totals(10 * HISTORY_SECONDS, 0))
    answer = history.last(HISTORY_SECONDS, at(10 * HISTORY_SECONDS))
    assert answer.submitted == [1] * HISTORY_SECONDS


def test_a_clock_that_goes_back_starts_the_history_over() -> None:
    history = RateHistory()
    for second in range(3):
        history.record(at(second), Totals(second, 0))
    history.record(at(-100), Totals(9, 0))
    assert rates(history.last(10, at(-100))) == ([], [])
    history.record(at(-99), Totals(11, 1))
    assert rates(history.last(10, at(-99))) == ([2], [1])


# -- in the queue, with an injected clock ------------------------------------------------------


def test_the_queue_samples_its_store_counters(open_store: OpenStore) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with open_store() as store:
            queue = Queue(store, clock=clock)
            await queue.sample()
            for n in range(3):
                await queue.submit(SubmitRequest(job_id=f"j{n}"), None)
            await queue.submit(SubmitRequest(job_id="j0"), None)  # a repeat adds no job
            clock.advance(1)
            await queue.sample()
            (job,) = await queue.next()
            done = CompleteRequest(job_id=job.job_id, status=CompletionStatus.SUCCEEDED)
            await queue.complete(done, None)
            await queue.act(Action.CANCEL, "j1")
            clock.advance(1)
            await queue.sample()
            clock.advance(1)
            await queue.sample()
            # Retention deletes the finished jobs; the next second counts nothing, not minus two.
            for state in (JobState.SUCCEEDED, JobState.FAILED):
                assert await store.prune(state, clock.now + timedelta(seconds=1), 10) == 1
            clock.advance(1)
            await queue.sample()
            history = queue.history()
            assert history.end == at(4)
            assert rates(history) == ([3, 0, 0, 0], [0, 2, 0, 0])
            assert rates(queue.history(2)) == ([0, 0], [0, 0])
            stats = await queue.stats()
            assert (stats.total, stats.submitted_ever, stats.completed_ever) == (1, 3, 2)
            await queue.close()

    run(scenario())


@pytest.mark.parametrize("seconds", [0, HISTORY_SECONDS + 1])
def test_the_queue_refuses_a_span_outside_the_history(seconds: int) -> None:
    queue = Queue(MemoryStore())
    with pytest.raises(InvalidRequest, match=f"`seconds` must be between 1 and {HISTORY_SECONDS}"):
        queue.history(seconds)


def test_the_background_duty_samples_once_a_second(
    open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The duty runs on the real event loop, about a second between samples; its clock is the
    # test's. The test waits (at most 10 s each) for the duty's reads of the counters.
    async def scenario() -> None:
        clock = Clock()
        async with open_store() as store:
            read = asyncio.Event()
            unwatched = store.totals

            async def watched() -> Totals:
                totals = await unwatched()
                read.set()
                return totals

            monkeypatch.setattr(store, "totals", watched)
            queue = Queue(store, clock=clock)
            duty = asyncio.create_task(queue.run())
            try:
                await asyncio.wait_for(read.wait(), 10)  # the baseline, taken at once
                read.clear()
                for n in range(4):
                    await queue.submit(SubmitRequest(job_id=f"j{n}"), None)
                clock.advance(1)
                await asyncio.wait_for(read.wait(), 10)
                history = queue.history()
                assert (history.end, rates(history)) == (at(1), ([4], [0]))
            finally:
                duty.cancel()
                await asyncio.gather(duty, return_exceptions=True)
                await queue.close()

    run(scenario())


# -- over HTTP -----------------------------------------------------------------------------------


def test_history_route_answers_the_shape_and_checks_seconds(client: TestClient[Any]) -> None:
    response = client.get("/stats/history")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"interval", "end", "submitted", "completed"}
    assert body["interval"] == 1
    assert body["end"].endswith("Z")
    assert len(body["submitted"]) == len(body["completed"]) <= HISTORY_SECONDS
    assert client.get("/stats/history", params={"seconds": 1}).status_code == 200
    for bad in ("0", str(HISTORY_SECONDS + 1), "x"):
        refused = client.get("/stats/history", params={"seconds": bad})
        assert refused.status_code == 400, bad
        assert "`seconds`" in refused.json()["detail"]


def test_a_real_server_reports_the_jobs_submitted_and_completed_each_second(
    server_fast: ServerProcess,
) -> None:
    with httpx.Client(base_url=server_fast.url, timeout=10) as http:
        for n in range(5):
            assert http.post("/jobs/submit", json={"jobId": f"j{n}"}).status_code == 201
        for _ in range(3):
            job = http.get("/jobs/next").json()
            done = {"jobId": job["jobId"], "leaseId": job["leaseId"], "status": "succeeded"}
            assert http.post("/jobs/complete", json=done).status_code == 200
        stats = http.get("/stats").json()
        assert (stats["submittedEver"], stats["completedEver"]) == (5, 3)
        # Within a few seconds the samples have seen every one of them.
        deadline = time.monotonic() + 15
        history = http.get("/stats/history").json()
        while (sum(history["submitted"]), sum(history["completed"])) != (5, 3):
            assert time.monotonic() < deadline, history
            time.sleep(0.2)
            history = http.get("/stats/history").json()
        assert (sum(history["submitted"]), sum(history["completed"])) == (5, 3)
        assert min(history["submitted"] + history["completed"]) >= 0
        end = datetime.fromisoformat(history["end"])
        assert end.microsecond == 0
        assert abs((datetime.now(UTC) - end).total_seconds()) < 10
        short = http.get("/stats/history", params={"seconds": 1}).json()
        assert len(short["submitted"]) <= 1
