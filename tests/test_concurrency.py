"""Many clients at once against real `sq serve` processes: every job is handed out exactly once.

Each client thread has its own httpx.Client, so the requests travel on separate connections and
overlap in the server. The servers run with ``--synchronous normal`` (no fsync per commit): this
file is about atomicity, which does not depend on it; durability is tests/test_crash.py's.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

FAST = ("--synchronous", "normal")
JOBS = 500
CLIENTS = 12


def submit(http: httpx.Client, job_id: str, **fields: Any) -> httpx.Response:
    return http.post("/jobs/submit", json={"jobId": job_id, **fields})


def outcome(job_id: str) -> str:
    return "failed" if int(job_id.rsplit("-", 1)[1]) % 7 == 0 else "succeeded"


def work_until_empty(url: str, barrier: threading.Barrier) -> list[str]:
    """A worker: take the next job and complete it, until the queue is empty."""
    claimed = []
    with httpx.Client(base_url=url, timeout=60) as http:
        http.get("/health")
        barrier.wait()
        while (response := http.get("/jobs/next")).status_code == 200:
            job = response.json()
            assert (job["state"], job["attempts"]) == ("running", 1)
            claimed.append(job["jobId"])
            done = http.post(
                "/jobs/complete", json={"jobId": job["jobId"], "status": outcome(job["jobId"])}
            )
            assert done.status_code == 200, done.text
        assert response.status_code == 204, response.text
    return claimed


def run_workers(urls: list[str]) -> list[list[str]]:
    barrier = threading.Barrier(len(urls))
    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(lambda url: work_until_empty(url, barrier), urls))


def submit_all(url: str, ids: list[str]) -> None:
    """Submit ``ids`` from CLIENTS threads at once (each a slice)."""

    def one(part: list[str]) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for job_id in part:
                assert submit(http, job_id, data={"id": job_id}).status_code == 201

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, [ids[i::CLIENTS] for i in range(CLIENTS)]))


def all_jobs(http: httpx.Client) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    url: str | None = "/jobs?limit=1000"
    while url:
        response = http.get(url)
        jobs += response.json()
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    return jobs


def test_concurrent_workers_take_every_job_exactly_once(server_fast: ServerProcess) -> None:
    ids = [f"job-{n}" for n in range(JOBS)]
    submit_all(server_fast.url, ids)
    per_worker = run_workers([server_fast.url] * CLIENTS)

    claimed = [job_id for worker in per_worker for job_id in worker]
    duplicates = [job_id for job_id, n in Counter(claimed).items() if n > 1]
    assert duplicates == []
    assert sorted(claimed) == sorted(ids)
    assert sum(1 for worker in per_worker if worker) > 1  # the work really was shared
    with httpx.Client(base_url=server_fast.url) as http:
        failed = sum(1 for job_id in ids if outcome(job_id) == "failed")
        counts = {"submitted": 0, "running": 0, "succeeded": JOBS - failed, "failed": failed}
        assert http.get("/stats").json() == {
            **counts,
            "total": JOBS,
            "queues": {"default": {**counts, "oldestDueAgeSeconds": None}},
            "submittedEver": JOBS,  # each submitted once, and completed once
            "completedEver": JOBS,
        }
        jobs = all_jobs(http)
        assert {job["jobId"]: job["state"] for job in jobs} == {
            job_id: outcome(job_id) for job_id in ids
        }
        assert all(job["attempts"] == 1 for job in jobs)
        assert http.get("/jobs/next").status_code == 204


def released_together(url: str, count: int, call: Callable[[httpx.Client, int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)

    def one(index: int) -> Any:
        with httpx.Client(base_url=url, timeout=60) as http:
            http.get("/health")
            barrier.wait()
            return call(http, index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_identical_submits_create_one_job(server_fast: ServerProcess) -> None:
    answers = released_together(
        server_fast.url, 24, lambda http, _: submit(http, "same", description="d", data={"n": 1})
    )
    assert Counter(r.status_code for r in answers) == {201: 1, 200: 23}
    with httpx.Client(base_url=server_fast.url) as http:
        stored = http.get("/jobs/same").json()
        assert http.get("/stats").json()["submitted"] == 1
    assert all(r.json() == stored for r in answers)


def test_concurrent_conflicting_submits_keep_the_first(server_fast: ServerProcess) -> None:
    variants = 3
    answers = released_together(
        server_fast.url,
        24,
        lambda http, i: (i % variants, submit(http, "contested", description=f"v{i % variants}")),
    )
    winners = [(variant, r) for variant, r in answers if r.status_code == 201]
    assert len(winners) == 1
    winner, created = winners[0]
    with httpx.Client(base_url=server_fast.url) as http:
        stored = http.get("/jobs/contested").json()
        assert http.get("/stats").json()["total"] == 1
    assert stored == created.json()
    assert stored["description"] == f"v{winner}"
    for variant, response in answers:
        if response.status_code == 201:
            continue
        if variant == winner:
            assert response.status_code == 200
            assert response.json() == stored
        else:
            assert response.status_code == 409
            assert "description" in response.json()["detail"]


def test_two_servers_on_one_sqlite_file_hand_out_each_job_once(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    db = str(tmp_path / "shared.db")
    first, second = serve(db, *FAST), serve(db, *FAST)
    ids = [f"job-{n}" for n in range(200)]
    # Submit through both, so both write to the file as well.
    submit_all(first.url, ids[::2])
    submit_all(second.url, ids[1::2])
    per_worker = run_workers([first.url, second.url] * 4)

    claimed = [job_id for worker in per_worker for job_id in worker]
    assert [job_id for job_id, n in Counter(claimed).items() if n > 1] == []
    assert sorted(claimed) == sorted(ids)
    by_server = [sum(map(len, per_worker[i::2])) for i in range(2)]
    assert all(by_server), by_server
    for server in (first, second):
        with httpx.Client(base_url=server.url) as http:
            stats = http.get("/stats").json()
            assert (stats["submitted"], stats["running"], stats["total"]) == (0, 0, len(ids))
