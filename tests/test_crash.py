"""`kill -9` a real `sq serve` and restart it on the same file: nothing acknowledged is lost.

Both durability settings must survive a crash of the server process (``normal`` only gives up
power-loss safety, which a test cannot cut).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.servers import ServerProcess, totals

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("synchronous", ["full", "normal"])]

WORKERS = 2


def job_path(job_id: str) -> str:
    return "/jobs/" + quote(job_id, safe="")


def all_jobs(http: httpx.Client) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    url: str | None = "/jobs?limit=1000"
    while url:
        response = http.get(url)
        jobs.update((job["jobId"], job) for job in response.json())
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    return jobs


def test_acknowledged_jobs_and_states_survive_kill_9(
    serve: Callable[..., ServerProcess], tmp_path: Path, synchronous: str
) -> None:
    db = str(tmp_path / "queue.db")
    first = serve(db, "--synchronous", synchronous)
    acknowledged: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=first.url) as http:
        for n in range(30):
            job_id = f"job/{n} é"
            response = http.post(
                "/jobs/submit", json={"jobId": job_id, "description": f"#{n}", "data": {"n": n}}
            )
            assert response.status_code == 201
            acknowledged[job_id] = response.json()
        for n in range(10):
            job = http.get("/jobs/next").json()
            del job["leaseId"]  # only the worker's answer carries it
            acknowledged[job["jobId"]] = job
            if n < 6:
                status = "succeeded" if n % 2 else "failed"
                done = http.post("/jobs/complete", json={"jobId": job["jobId"], "status": status})
                acknowledged[job["jobId"]] = done.json()
    first.kill()

    second = serve(db, "--synchronous", synchronous)
    with httpx.Client(base_url=second.url) as http:
        assert all_jobs(http) == acknowledged
        assert totals(http.get("/stats").json()) == {
            "submitted": 20,
            "running": 4,
            "succeeded": 3,
            "failed": 3,
            "total": 30,
        }
        # The queue goes on where it stopped, in order.
        assert http.get("/jobs/next").json()["jobId"] == "job/10 é"


class Load:
    """Submitters and workers hammering one server, recording what it acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: dict[str, dict[str, Any]] = {}  # job id -> the last acknowledged view
        self.in_flight: dict[str, str] = {}  # job id -> a completion sent, not yet answered
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def submitter(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            n = 0
            while not self.stop.is_set():
                job_id = f"w{worker}-{n}"
                n += 1
                try:
                    response = http.post("/jobs/submit", json={"jobId": job_id, "data": {"n": n}})
                except httpx.TransportError:
                    return
                assert response.status_code == 201, response.text
                with self.lock:
                    self.acked[job_id] = response.json()

    def worker(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                try:
                    response = http.get("/jobs/next")
                    if response.status_code == 204:
                        continue
                    job = response.json()
                    del job["leaseId"]  # only the worker's answer carries it
                    with self.lock:
                        self.acked[job["jobId"]] = job
                        self.in_flight[job["jobId"]] = "succeeded"
                    done = http.post(
                        "/jobs/complete", json={"jobId": job["jobId"], "status": "succeeded"}
                    )
                except httpx.TransportError:
                    return
                assert done.status_code == 200, done.text
                with self.lock:
                    self.acked[job["jobId"]] = done.json()
                    del self.in_flight[job["jobId"]]

    def progress(self) -> tuple[int, int]:
        with self.lock:
            finished = sum(job["state"] == "succeeded" for job in self.acked.values())
            return len(self.acked), finished


def test_acknowledged_jobs_survive_kill_9_under_concurrent_load(
    serve: Callable[..., ServerProcess], tmp_path: Path, synchronous: str
) -> None:
    db = str(tmp_path / "queue.db")
    first = serve(db, "--synchronous", synchronous)
    load = Load(first.url)
    threads = [threading.Thread(target=load.submitter, args=(i,)) for i in range(6)]
    threads += [threading.Thread(target=load.worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while (progress := load.progress())[0] < 200 or progress[1] < 10:
            assert time.monotonic() < deadline, f"the load never got going: {progress}"
            time.sleep(0.01)
        first.kill()  # while requests are in flight
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)

    second = serve(db, "--synchronous", synchronous)
    with httpx.Client(base_url=second.url) as http:
        stored = all_jobs(http)
        stats = http.get("/stats").json()
    assert sorted(set(load.acked) - set(stored)) == []  # nothing acknowledged was lost
    unanswered_claims = []
    for job_id, job in load.acked.items():
        if stored[job_id]["state"] == load.in_flight.get(job_id):
            # The completion was applied but its answer never arrived: that is allowed.
            assert stored[job_id]["finishedAt"] is not None
            continue
        if job["state"] == "submitted" and stored[job_id]["state"] == "running":
            # A worker's /jobs/next claimed it and the kill ate the answer: allowed, but only
            # as a whole claim, and at most one per worker (each had one request in flight).
            assert stored[job_id]["attempts"] == job["attempts"] + 1
            assert stored[job_id]["startedAt"] is not None
            unanswered_claims.append(job_id)
            continue
        assert stored[job_id] == job
    assert len(unanswered_claims) <= WORKERS
    assert stats["total"] == len(stored) >= len(load.acked)
    states = ("submitted", "running", "succeeded", "failed")
    assert sum(stats[s] for s in states) == len(stored)
    # The per-queue counts are kept in the same transactions as the jobs (§8).
    (default,) = stats["queues"].values()
    assert {s: default[s] for s in states} == {s: stats[s] for s in states}


def test_no_job_stays_running_after_kill_9(
    serve: Callable[..., ServerProcess], tmp_path: Path, synchronous: str
) -> None:
    db = str(tmp_path / "queue.db")
    first = serve(db, "--synchronous", synchronous, "--lease-seconds", "1")
    with httpx.Client(base_url=first.url) as http:
        for n in range(10):
            assert http.post("/jobs/submit", json={"jobId": f"j{n}"}).status_code == 201
        claimed = [http.get("/jobs/next").json()["jobId"] for _ in range(4)]
    first.kill()  # the workers of the four claimed jobs are gone too, as far as anyone knows

    second = serve(db, "--synchronous", synchronous)
    with httpx.Client(base_url=second.url) as http:
        deadline = time.monotonic() + 20
        while http.get("/stats").json()["running"]:
            assert time.monotonic() < deadline, "leases of a killed server never ended"
            time.sleep(0.1)
        for job_id in claimed:
            job = http.get(f"/jobs/{job_id}").json()
            assert (job["state"], job["attempts"]) == ("submitted", 1)
            assert [e["error"] for e in job["errors"]] == ["lease expired"]
        # They come back at their old places, before the jobs submitted after them.
        assert [http.get("/jobs/next").json()["jobId"] for _ in range(5)] == [*claimed, "j4"]
