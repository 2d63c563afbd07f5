"""`Client.work` in real processes against a real `sq serve`: a worker killed with SIGKILL
mid-job loses the job to another worker once its lease ends, and a worker sent SIGTERM finishes
the job in hand, takes no other, and exits cleanly.

Each worker is a child ``python -c`` running `WORKER`; the test reads what it prints to know
when a job is in its hands, so nothing waits for a time to pass.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO

import pytest

from simplequeue import Client, Job, JobState, LeaseLost
from simplequeue.client.worker import PREFETCH
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

LEASE = 2
"""Seconds each lease lasts here: short, so that a dead worker's job comes back soon."""
GIVE_UP = 60.0

WORKER = """
import logging, sys
from simplequeue import Client

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

def handler(job):
    sys.stdout.write(f"{job.job_id} {job.lease_id}\\n")  # one write: slots run in threads
    sys.stdout.flush()
    return sys.stdin.readline().strip()  # the test says when the job is done, and its result

url, lease, concurrency, prefetch = sys.argv[1:]
with Client(url) as queue:
    queue.work(
        handler, lease=int(lease), wait=1, concurrency=int(concurrency), prefetch=int(prefetch)
    )
print("stopped", flush=True)
"""


@pytest.fixture
def worker(server: ServerProcess) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(concurrency: int = 1, prefetch: int = PREFETCH) -> subprocess.Popen[str]:
        args = [server.url, str(LEASE), str(concurrency), str(prefetch)]
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def line(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline().strip()  # "" if the worker died first: the test then fails


def test_a_killed_workers_job_is_completed_by_another_after_its_lease(
    server: ServerProcess, worker: Callable[..., subprocess.Popen[str]]
) -> None:
    with Client(server.url) as queue:
        queue.submit("crash-me", data={"n": 1})
        first = worker()
        job_id, dead_lease = line(first.stdout).split()
        assert job_id == "crash-me"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        # Another worker gets the same job once the dead worker's lease has ended.
        stop = threading.Event()
        handled: list[Job] = []

        def handler(job: Job) -> str:
            handled.append(job)
            stop.set()
            return "second"

        watchdog = threading.Timer(GIVE_UP, stop.set)
        watchdog.start()
        try:
            queue.work(handler, lease=LEASE, wait=5, stop=stop)
        finally:
            watchdog.cancel()

        assert [(job.job_id, job.attempts) for job in handled] == [("crash-me", 2)]
        assert handled[0].lease_id != dead_lease
        done = queue.get("crash-me")
        assert (done.state, done.result, done.attempts) == (JobState.SUCCEEDED, "second", 2)
        assert [(e.attempt, e.error) for e in done.errors] == [(1, "lease expired")]

        # The dead worker's late completion is refused and changes nothing.
        with pytest.raises(LeaseLost):
            queue.complete("crash-me", "failed", lease_id=dead_lease, error="late")
        assert queue.get("crash-me") == done
        assert queue.stats().running == 0


def test_sigterm_lets_the_job_in_hand_finish_and_takes_no_other(
    server: ServerProcess, worker: Callable[..., subprocess.Popen[str]]
) -> None:
    with Client(server.url) as queue:
        for n in range(3):
            queue.submit(f"j{n}")
        process = worker(prefetch=0)  # holds only the job it runs: j1 and j2 stay queued
        assert line(process.stdout).split()[0] == "j0"
        process.send_signal(signal.SIGTERM)
        for _ in range(100):  # the worker's log, line by line, until it says it is stopping
            said = line(process.stderr)
            assert said, "the worker ended before it said it was stopping"
            if "SIGTERM: taking no more jobs" in said:
                break
        assert process.stdin is not None
        process.stdin.write("finished\n")
        process.stdin.flush()

        out, _ = process.communicate(timeout=GIVE_UP)
        assert process.returncode == 0
        assert out.strip() == "stopped"
        jobs = {job.job_id: job for job in queue.iter_jobs()}
        assert (jobs["j0"].state, jobs["j0"].result) == (JobState.SUCCEEDED, "finished")
        assert {jobs["j1"].state, jobs["j2"].state} == {JobState.SUBMITTED}
        assert queue.stats().running == 0


def test_a_worker_killed_holding_a_batch_loses_every_held_job_to_another_once(
    server: ServerProcess, worker: Callable[..., subprocess.Popen[str]]
) -> None:
    ids = [f"j{n:02}" for n in range(20)]
    concurrency, prefetch, done_first = 2, 6, 5
    with Client(server.url) as queue:
        assert all(r.created for r in queue.submit_many({"job_id": i} for i in ids))
        first = worker(concurrency=concurrency, prefetch=prefetch)
        assert first.stdin is not None
        first.stdin.write("first\n" * done_first)  # the first five jobs end; then it stalls
        first.stdin.flush()
        held = concurrency + prefetch  # two stalled in handlers, six waiting for a slot

        def settled() -> bool:
            stats = queue.stats()
            return (stats.succeeded, stats.running) == (done_first, held)

        deadline = threading.Event()
        timer = threading.Timer(GIVE_UP, deadline.set)
        timer.start()
        while not settled():
            assert not deadline.wait(0.05), "the first worker never held its batch"
        timer.cancel()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        lost = {job.job_id for job in queue.iter_jobs(state="running")}
        assert len(lost) == held

        # Another worker takes the rest: the never-taken jobs at once, the lost ones once their
        # leases end. Each exactly once.
        stop = threading.Event()
        handled: list[str] = []
        lock = threading.Lock()

        def handler(job: Job) -> str:
            with lock:
                handled.append(job.job_id)
                if len(handled) == len(ids) - done_first:
                    stop.set()
            return "second"

        watchdog = threading.Timer(GIVE_UP, stop.set)
        watchdog.start()
        try:
            queue.work(handler, concurrency=4, prefetch=4, lease=LEASE, wait=1, stop=stop)
        finally:
            watchdog.cancel()

        jobs = {job.job_id: job for job in queue.iter_jobs()}
    assert len(handled) == len(set(handled)) == len(ids) - done_first
    assert {job.state for job in jobs.values()} == {JobState.SUCCEEDED}
    assert sorted(i for i in ids if jobs[i].result == "first") == sorted(set(ids) - set(handled))
    for job_id in handled:
        job = jobs[job_id]
        assert job.result == "second"
        if job_id in lost:
            assert (job.attempts, [e.error for e in job.errors]) == (2, ["lease expired"])
        else:
            assert (job.attempts, job.errors) == (1, [])
