"""`Client.work` and `AsyncClient.work` against the real app in-process: what a handler's return
value or exception becomes, heartbeats, lost leases, concurrency, and stopping (both twins).

Every handler here is a plain function; for the async twin it runs in a thread
(``asyncio.to_thread``) while the loop goes on, and reaches the queue through `Tools`. Nothing
waits for a time to pass: each wait is for something the queue shows, in a bounded loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient, TestClient

from simplequeue import AsyncClient, Client, Discard, Job, JobState
from simplequeue.server import Settings, create_app
from tests.servers import APP_URL

SETTINGS = Settings(db=":memory:", retry_backoff=0.01, max_body_size=4096)
GIVE_UP = 30.0
"""Seconds after which a test's worker is stopped whatever happened, so a bug fails the test
(its assertions) instead of hanging it."""


@dataclass
class Tools:
    """What a handler may do while it runs, from its own thread, whichever the twin."""

    get: Callable[[str], Job]
    complete: Callable[..., Job]
    submit: Callable[..., Job]
    cancel: Callable[..., Any]
    completes: list[dict[str, Any]] = field(default_factory=list)

    def wait_for(self, what: Callable[[], bool]) -> None:
        deadline = time.monotonic() + GIVE_UP
        while not what():
            assert time.monotonic() < deadline, "gave up waiting"
            time.sleep(0.02)


Handler = Callable[[Job, Tools], Any]


@dataclass
class Run:
    """One worker run: every job at the end, and the jobs the handler was given, in order."""

    jobs: dict[str, Job]
    handled: list[Job]
    completes: list[dict[str, Any]]
    """Every completion sent to ``POST /jobs/complete``, by the worker (in arrays) or a handler
    (alone), in order."""


class Harness:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def run(
        self,
        handler: Handler,
        submit: list[dict[str, Any]],
        *,
        until: Callable[[list[Job]], bool],
        settings: Settings = SETTINGS,
        **options: Any,
    ) -> Run:
        """Submit ``submit``, then work until ``until(handled)`` is true after a handler call
        (the worker is stopped from the handler, and finishes the jobs in hand)."""
        if self.kind == "sync":
            return self._sync(handler, submit, until, settings, options)
        return asyncio.run(self._async(handler, submit, until, settings, options))

    def _sync(
        self,
        handler: Handler,
        submit: list[dict[str, Any]],
        until: Callable[[list[Job]], bool],
        settings: Settings,
        options: dict[str, Any],
    ) -> Run:
        with TestClient(create_app(settings), base_url=APP_URL) as http:
            client = Client(http=http)
            for job in submit:
                client.submit(**job)
            stop = threading.Event()
            tools = Tools(client.get, client.complete, client.submit, client.cancel)
            http.event_hooks["request"].append(_recorder(tools.completes))
            handled: list[Job] = []
            lock = threading.Lock()

            def handle(job: Job) -> Any:
                with lock:
                    handled.append(job)
                    if until(handled):
                        stop.set()
                return handler(job, tools)

            watchdog = threading.Timer(GIVE_UP, stop.set)
            watchdog.start()
            try:
                client.work(handle, stop=stop, **options)
            finally:
                watchdog.cancel()
            return Run({job.job_id: job for job in client.iter_jobs()}, handled, tools.completes)

    async def _async(
        self,
        handler: Handler,
        submit: list[dict[str, Any]],
        until: Callable[[list[Job]], bool],
        settings: Settings,
        options: dict[str, Any],
    ) -> Run:
        loop = asyncio.get_running_loop()

        def from_thread(call: Callable[..., Any]) -> Callable[..., Any]:
            def run(*args: Any, **kwargs: Any) -> Any:
                return asyncio.run_coroutine_threadsafe(call(*args, **kwargs), loop).result()

            return run

        async with AsyncTestClient(create_app(settings), base_url=APP_URL) as http:
            client = AsyncClient(http=http)
            for job in submit:
                await client.submit(**job)
            stop = asyncio.Event()
            tools = Tools(
                from_thread(client.get),
                from_thread(client.complete),
                from_thread(client.submit),
                from_thread(client.cancel),
            )
            completes = tools.completes

            async def record(request: httpx.Request) -> None:
                _recorder(completes)(request)

            http.event_hooks["request"].append(record)
            handled: list[Job] = []

            async def handle(job: Job) -> Any:
                handled.append(job)
                if until(handled):
                    stop.set()
                return await asyncio.to_thread(handler, job, tools)

            watchdog = loop.call_later(GIVE_UP, stop.set)
            try:
                await client.work(handle, stop=stop, **options)
            finally:
                watchdog.cancel()
            jobs = {job.job_id: job async for job in client.iter_jobs()}
            return Run(jobs, handled, tools.completes)


def _recorder(into: list[dict[str, Any]]) -> Callable[[httpx.Request], None]:
    def record(request: httpx.Request) -> None:
        if request.url.path == "/jobs/complete":
            # The worker completes in batches (arrays); a handler's own complete() sends one.
            body = json.loads(request.content)
            into.extend(body if isinstance(body, list) else [body])

    return record


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Harness:
    return Harness(request.param)


def after(count: int) -> Callable[[list[Job]], bool]:
    return lambda handled: len(handled) >= count


# -- outcomes -------------------------------------------------------------------------------------


def outcomes(job: Job, tools: Tools) -> Any:
    kind = (job.data or {})["kind"]
    if kind == "result":
        return {"pages": 3, "id": job.job_id}
    if kind == "none":
        return None
    if kind == "raise":
        raise RuntimeError(f"boom on attempt {job.attempts}")
    if kind == "discard":
        raise Discard("the photo is not a photo")
    if kind == "not-json":
        return object()
    if kind == "too-large":
        return "x" * 5000  # over the server's 4 KiB body limit: the complete is refused
    raise AssertionError(kind)


def test_each_outcome_is_completed_as_the_handler_decided(harness: Harness) -> None:
    kinds = ["result", "none", "raise", "discard", "not-json", "too-large"]
    submit = [{"job_id": k, "data": {"kind": k}, "max_attempts": 2} for k in kinds]

    run = harness.run(outcomes, submit, until=after(len(kinds) + 1))  # "raise" runs twice

    jobs = run.jobs
    assert (jobs["result"].state, jobs["result"].result) == (
        JobState.SUCCEEDED,
        {"pages": 3, "id": "result"},
    )
    assert (jobs["none"].state, jobs["none"].result) == (JobState.SUCCEEDED, None)
    # Retried while attempts remained, then failed for good, every error kept.
    assert (jobs["raise"].state, jobs["raise"].attempts) == (JobState.FAILED, 2)
    assert [(e.attempt, e.error) for e in jobs["raise"].errors] == [
        (1, "RuntimeError: boom on attempt 1"),
        (2, "RuntimeError: boom on attempt 2"),
    ]
    # Discard, a result that is not JSON and a result the server refuses: failed, not retried.
    assert (jobs["discard"].state, jobs["discard"].attempts) == (JobState.FAILED, 1)
    assert [e.error for e in jobs["discard"].errors] == ["Discard: the photo is not a photo"]
    assert (jobs["not-json"].state, jobs["not-json"].attempts) == (JobState.FAILED, 1)
    assert "cannot be sent as JSON" in jobs["not-json"].errors[0].error
    assert (jobs["too-large"].state, jobs["too-large"].attempts) == (JobState.FAILED, 1)
    assert "the server refused the handler's result" in jobs["too-large"].errors[0].error
    assert sorted(job.job_id for job in run.handled) == sorted([*kinds, "raise"])


def test_the_worker_completes_under_its_lease(harness: Harness) -> None:
    run = harness.run(outcomes, [{"job_id": "j", "data": {"kind": "result"}}], until=after(1))
    (handled,) = run.handled
    assert handled.lease_id is not None
    assert run.jobs["j"].lease_id is None  # a read never shows a lease
    assert run.completes == [
        {
            "jobId": "j",
            "status": "succeeded",
            "leaseId": handled.lease_id,
            "result": {"pages": 3, "id": "j"},
        }
    ]


# -- heartbeats and lost leases ------------------------------------------------------------------


def outlive_the_lease(job: Job, tools: Tools) -> str:
    # Hold the job until it has been running longer than its lease: only heartbeats keep it.
    assert job.lease_expires_at is not None
    first_end = job.lease_expires_at

    def renewed_past_the_first_end() -> bool:
        now = tools.get(job.job_id)
        assert now.state is JobState.RUNNING
        assert now.attempts == 1
        assert now.lease_expires_at is not None
        return (now.lease_expires_at - first_end).total_seconds() > 1.0

    tools.wait_for(renewed_past_the_first_end)
    return "kept"


def test_heartbeats_keep_a_job_past_its_lease(harness: Harness) -> None:
    run = harness.run(outlive_the_lease, [{"job_id": "long"}], until=after(1), lease=1)
    job = run.jobs["long"]
    assert (job.state, job.attempts, job.result, job.errors) == (JobState.SUCCEEDED, 1, "kept", [])


def finished_elsewhere(job: Job, tools: Tools) -> str:
    # Someone completes the job without a lease (the seed's way): this worker's lease is over.
    tools.complete(job.job_id, "failed", error="done by hand")
    return "too late"


def test_a_job_finished_elsewhere_keeps_its_outcome(harness: Harness) -> None:
    run = harness.run(finished_elsewhere, [{"job_id": "j"}], until=after(1), lease=60)
    job = run.jobs["j"]
    assert (job.state, job.result, [e.error for e in job.errors]) == (
        JobState.FAILED,
        None,
        ["done by hand"],
    )
    # The worker's own completion named its lease, so it could change nothing.
    assert [body.get("leaseId") for body in run.completes] == [None, run.handled[0].lease_id]


def test_after_a_refused_heartbeat_nothing_is_completed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="simplequeue.worker")

    def handler(job: Job, tools: Tools) -> str:
        tools.complete(job.job_id, "succeeded", result="by hand")
        # Until the next heartbeat is refused (409 lease lost): then the handler returns.
        tools.wait_for(lambda: "no longer this worker's" in caplog.text)
        return "ignored"

    run = harness.run(handler, [{"job_id": "j"}], until=after(1), lease=1)
    assert run.jobs["j"].result == "by hand"
    # Only the handler's own completion: the worker sent none after its lease was gone.
    assert run.completes == [{"jobId": "j", "status": "succeeded", "result": "by hand"}]


def test_a_job_cancelled_while_its_handler_runs_is_not_completed_and_the_worker_goes_on(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="simplequeue.worker")

    def handler(job: Job, tools: Tools) -> str:
        if job.job_id == "victim":
            tools.cancel("victim")  # POST /jobs/cancel: its lease ends
            # Until the next heartbeat is refused (409 lease lost). The async twin cancels the
            # coroutine awaiting this thread then; a thread runs on to its end either way.
            tools.wait_for(lambda: "'victim' is no longer this worker's" in caplog.text)
        return f"{job.job_id} done"

    submit: list[dict[str, Any]] = [{"job_id": "victim", "priority": 1}, {"job_id": "after"}]
    run = harness.run(handler, submit, until=after(2), lease=1)

    assert [job.job_id for job in run.handled] == ["victim", "after"]
    victim = run.jobs["victim"]
    assert (victim.state, victim.result, [e.error for e in victim.errors]) == (
        JobState.FAILED,
        None,
        ["cancelled"],
    )
    assert (run.jobs["after"].state, run.jobs["after"].result) == (JobState.SUCCEEDED, "after done")
    assert [body["jobId"] for body in run.completes] == ["after"]  # none for the victim


def test_on_lost_tells_a_sync_handler_its_job_was_cancelled() -> None:
    lost: list[str] = []
    told = threading.Event()
    stop = threading.Event()

    def on_lost(job: Job) -> None:
        lost.append(job.job_id)
        told.set()

    def handler(job: Job) -> str:
        if job.job_id == "victim":
            client.cancel("victim")
            assert told.wait(GIVE_UP)  # a thread cannot be stopped: it is told, and returns
            return "dropped"
        stop.set()
        return "done"

    with TestClient(create_app(SETTINGS), base_url=APP_URL) as http:
        client = Client(http=http)
        client.submit("victim", priority=1)
        client.submit("after")
        watchdog = threading.Timer(GIVE_UP, stop.set)
        watchdog.start()
        try:
            client.work(handler, stop=stop, lease=1, on_lost=on_lost)
        finally:
            watchdog.cancel()
        assert lost == ["victim"]
        assert client.get("victim").state is JobState.FAILED
        assert (client.get("after").state, client.get("after").result) == (
            JobState.SUCCEEDED,
            "done",
        )


def test_the_async_worker_cancels_the_handler_of_a_job_cancelled_meanwhile() -> None:
    events: list[str] = []

    async def main() -> None:
        async with AsyncTestClient(create_app(SETTINGS), base_url=APP_URL) as http:
            client = AsyncClient(http=http)
            await client.submit("victim", priority=1)
            await client.submit("after")
            stop = asyncio.Event()

            async def handler(job: Job) -> str:
                if job.job_id == "victim":
                    await client.cancel("victim")
                    try:
                        await asyncio.Event().wait()  # for ever, unless cancelled
                    except asyncio.CancelledError:
                        events.append("handler cancelled")
                        raise
                stop.set()
                return "done"

            watchdog = asyncio.get_running_loop().call_later(GIVE_UP, stop.set)
            try:
                await client.work(
                    handler, stop=stop, lease=1, on_lost=lambda job: events.append(job.job_id)
                )
            finally:
                watchdog.cancel()
            assert (await client.get("victim")).state is JobState.FAILED
            assert (await client.get("after")).result == "done"

    asyncio.run(main())
    assert sorted(events) == ["handler cancelled", "victim"]  # on_lost, then the cancel lands


def test_a_worker_takes_jobs_only_from_its_queues(harness: Harness) -> None:
    submit: list[dict[str, Any]] = [
        {"job_id": "a1", "queue": "a"},
        {"job_id": "b1", "queue": "b"},
        {"job_id": "c1", "queue": "c"},
        {"job_id": "a2", "queue": "a", "priority": 5},
    ]
    # Jobs taken ahead are run too once the worker stops: a job from another queue taken by
    # the first `next` would be among those handled.
    run = harness.run(lambda job, tools: job.queue, submit, until=after(3), queues=["a", "c"])
    assert sorted(job.job_id for job in run.handled) == ["a1", "a2", "c1"]
    assert run.handled[0].job_id == "a2"  # the highest priority first
    assert run.jobs["b1"].state is JobState.SUBMITTED


# -- concurrency and stopping ---------------------------------------------------------------------


def test_concurrency_runs_that_many_jobs_at_once(harness: Harness) -> None:
    together = threading.Barrier(3, timeout=GIVE_UP)

    def handler(job: Job, tools: Tools) -> int:
        return together.wait()  # passes only once three handlers run at the same time

    submit = [{"job_id": f"j{n}"} for n in range(3)]
    run = harness.run(handler, submit, until=after(3), concurrency=3)
    assert sorted(job.result for job in run.jobs.values()) == [0, 1, 2]
    assert {job.state for job in run.jobs.values()} == {JobState.SUCCEEDED}


def test_an_idle_slot_takes_a_new_job_while_another_runs(harness: Harness) -> None:
    def handler(job: Job, tools: Tools) -> str:
        if job.job_id == "long":  # runs until the job submitted meanwhile is done by the other slot
            tools.submit("late")
            tools.wait_for(lambda: tools.get("late").state is JobState.SUCCEEDED)
        return job.job_id

    # wait=0 (polls a second apart): Litestar's AsyncTestClient blocks its event loop while a
    # long-poll is in flight, so the handler's own requests could not get through meanwhile.
    run = harness.run(
        handler, [{"job_id": "long"}], until=after(2), concurrency=2, prefetch=0, wait=0
    )
    assert [job.job_id for job in run.handled] == ["long", "late"]
    assert {job.state for job in run.jobs.values()} == {JobState.SUCCEEDED}


def test_sigterm_stops_taking_jobs_and_finishes_the_one_in_hand(harness: Harness) -> None:
    before = signal.getsignal(signal.SIGTERM)

    def handler(job: Job, tools: Tools) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        # The first signal puts the previous handler back, so a second one acts as before.
        tools.wait_for(lambda: signal.getsignal(signal.SIGTERM) is before)
        return "finished"

    submit = [{"job_id": f"j{n}"} for n in range(3)]
    # Without prefetch, the only job held is the one running (see the next test for more).
    run = harness.run(handler, submit, until=after(99), prefetch=0)

    assert [job.job_id for job in run.handled] == ["j0"]
    assert (run.jobs["j0"].state, run.jobs["j0"].result) == (JobState.SUCCEEDED, "finished")
    assert {run.jobs["j1"].state, run.jobs["j2"].state} == {JobState.SUBMITTED}
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_stop_runs_and_completes_the_jobs_taken_ahead_and_takes_no_more(
    harness: Harness,
) -> None:
    submit = [{"job_id": f"j{n}"} for n in range(5)]
    # One slot and room for two more: the first `next` takes j0-j2; the stop comes with j0.
    run = harness.run(lambda job, tools: job.job_id, submit, until=after(1), prefetch=2)

    assert [job.job_id for job in run.handled] == ["j0", "j1", "j2"]
    assert [(run.jobs[f"j{n}"].state, run.jobs[f"j{n}"].result) for n in range(3)] == [
        (JobState.SUCCEEDED, f"j{n}") for n in range(3)
    ]
    assert {run.jobs["j3"].state, run.jobs["j4"].state} == {JobState.SUBMITTED}


def test_a_worker_outside_the_main_thread_leaves_signals_alone() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen: list[object] = []

    def handler(job: Job) -> None:
        seen.append(signal.getsignal(signal.SIGINT))
        stop.set()

    stop = threading.Event()
    with TestClient(create_app(SETTINGS), base_url=APP_URL) as http:
        client = Client(http=http)
        client.submit("j")
        thread = threading.Thread(target=client.work, args=(handler,), kwargs={"stop": stop})
        thread.start()
        thread.join(GIVE_UP)
        assert client.get("j").state is JobState.SUCCEEDED
    assert seen == [before]
