"""Queues, priorities, scheduled jobs, cancel and retry through the SDK, against the real app
in-process on each store (CONTRACT §8, §9)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient, TestClient

from simplequeue import (
    AsyncClient,
    Changed,
    Client,
    InvalidRequest,
    JobConflict,
    JobGone,
    JobNotFound,
    JobState,
    LeaseLost,
)
from simplequeue.models import MAX_BATCH
from simplequeue.server import Settings, create_app
from simplequeue.store import MemoryStore
from tests.servers import APP_URL, open_client


@pytest.fixture
def http(backend: str, tmp_path: Path) -> Iterator[TestClient[Any]]:
    with open_client(tmp_path, backend) as http:
        yield http


@pytest.fixture
def queue(http: TestClient[Any]) -> Client:
    return Client(http=http)


def taken(queue: Client, **options: Any) -> str | None:
    job = queue.next(**options)
    return None if job is None else job.job_id


# -- queues, priorities, scheduling --------------------------------------------------------------


def test_next_hands_out_by_priority_then_due_time_from_the_queues_asked(queue: Client) -> None:
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    queue.submit("low", queue="emails")
    queue.submit("high", queue="emails", priority=10)
    queue.submit("elsewhere", queue="reports", priority=50)
    queue.submit("delayed", queue="emails", priority=100, delay=3600)
    queue.submit("scheduled", queue="emails", priority=100, run_at=in_an_hour)
    queue.submit("anywhere")

    assert taken(queue, queues="emails") == "high"
    assert taken(queue, queues=["emails"]) == "low"
    assert taken(queue, queues="emails") is None  # the rest of emails is not due yet
    assert taken(queue, queues=["nothing-here", "reports"]) == "elsewhere"
    assert taken(queue) == "anywhere"
    assert queue.next(count=5, queues=["emails", "reports"]) == []

    delayed, scheduled = queue.get("delayed"), queue.get("scheduled")
    assert (delayed.queue, delayed.priority, delayed.state) == ("emails", 100, JobState.SUBMITTED)
    assert delayed.run_at - delayed.created_at >= timedelta(seconds=3600)
    assert abs(scheduled.run_at - in_an_hour) < timedelta(milliseconds=1)
    assert queue.get("anywhere").queue == "default"


def test_submit_many_items_take_the_same_fields(queue: Client) -> None:
    results = queue.submit_many(
        [
            {"job_id": "later", "queue": "q", "priority": 5, "delay": timedelta(hours=1)},
            {"job_id": "now", "queue": "q", "priority": -5},
        ]
    )
    assert [result.status for result in results] == [201, 201]
    job = queue.next(queues="q")
    assert job is not None
    assert (job.job_id, job.priority) == ("now", -5)


def test_the_same_job_in_another_queue_is_a_conflict_naming_it(queue: Client) -> None:
    queue.submit("j", queue="a", delay=60)
    assert queue.submit("j", queue="a", delay=5).queue == "a"  # timing is not compared
    with pytest.raises(JobConflict, match="queue"):
        queue.submit("j", queue="b")


def test_list_jobs_filters_by_queue_across_pages(queue: Client) -> None:
    for n, name in enumerate(["a", "b", "a", "c", "b", "a"]):
        queue.submit(f"j{n}", queue=name)
    assert [job.job_id for job in queue.list_jobs(queue="a")] == ["j0", "j2", "j5"]
    both = queue.iter_jobs(page_size=2, queue=["a", "b"])
    assert [job.job_id for job in both] == ["j0", "j1", "j2", "j4", "j5"]
    with pytest.raises(InvalidRequest):
        queue.list_jobs(queue="not a queue")


def test_stats_count_each_queue(queue: Client) -> None:
    queue.submit("e1", queue="emails")
    queue.submit("e2", queue="emails")
    queue.submit("r1", queue="reports", delay=3600)
    assert taken(queue, queues="emails") == "e1"

    stats = queue.stats()
    assert (stats.total, stats.submitted, stats.running) == (3, 2, 1)
    assert sorted(stats.queues) == ["emails", "reports"]
    emails, reports = stats.queues["emails"], stats.queues["reports"]
    assert (emails.submitted, emails.running, emails.succeeded, emails.failed) == (1, 1, 0, 0)
    assert emails.oldest_due_age_seconds is not None
    assert emails.oldest_due_age_seconds >= 0
    assert (reports.submitted, reports.oldest_due_age_seconds) == (1, None)  # none is due


# -- cancel and retry ----------------------------------------------------------------------------


def test_cancel_and_retry_one_job(queue: Client) -> None:
    queue.submit("j", max_attempts=1)

    cancelled = queue.cancel("j")
    assert (cancelled.state, [e.error for e in cancelled.errors]) == (
        JobState.FAILED,
        ["cancelled"],
    )
    with pytest.raises(JobConflict):
        queue.cancel("j")  # already finished

    retried = queue.retry("j")
    assert (retried.state, [e.error for e in retried.errors]) == (JobState.SUBMITTED, ["cancelled"])
    with pytest.raises(JobConflict):
        queue.retry("j")  # not failed
    job = queue.next()
    assert job is not None
    assert (job.job_id, job.attempts) == ("j", 1)

    with pytest.raises(JobNotFound):
        queue.cancel("missing")
    with pytest.raises(JobNotFound):
        queue.retry("missing")


def test_cancelling_a_running_job_ends_its_lease(queue: Client) -> None:
    queue.submit("j")
    job = queue.next(lease=60)
    assert job is not None
    assert job.lease_id is not None

    assert queue.cancel("j").state is JobState.FAILED
    with pytest.raises(LeaseLost):
        queue.heartbeat("j", job.lease_id)
    with pytest.raises(LeaseLost):
        queue.complete("j", "succeeded", lease_id=job.lease_id)
    assert queue.get("j").state is JobState.FAILED


def test_retry_gives_a_job_that_used_every_attempt_one_more(queue: Client) -> None:
    queue.submit("j", max_attempts=1)
    job = queue.next()
    assert job is not None
    queue.complete("j", "failed", lease_id=job.lease_id, error="boom", retry=True)
    assert queue.get("j").state is JobState.FAILED  # no attempt left

    retried = queue.retry("j")
    assert (retried.state, retried.attempts, retried.max_attempts) == (JobState.SUBMITTED, 1, 2)
    assert [e.error for e in retried.errors] == ["boom"]


def test_cancel_and_retry_many_ids_count_what_they_matched_and_changed(queue: Client) -> None:
    for job_id in ["a", "b", "c"]:
        queue.submit(job_id)
    queue.cancel("c")

    assert queue.cancel(["a", "b", "c", "missing"]) == Changed(matched=3, changed=2)
    assert queue.retry(["a", "missing"]) == Changed(matched=1, changed=1)
    assert [job.job_id for job in queue.list_jobs("submitted")] == ["a"]


def test_more_ids_than_a_batch_are_all_cancelled(queue: Client) -> None:
    ids = [f"j{n}" for n in range(MAX_BATCH + 1)]
    assert all(result.created for result in queue.submit_many({"job_id": i} for i in ids))
    assert queue.cancel([*ids, "missing"]) == Changed(matched=len(ids), changed=len(ids))
    assert queue.stats().failed == len(ids)


def test_cancel_and_retry_by_filter(queue: Client) -> None:
    for n in range(3):
        queue.submit(f"mail-{n}", queue="emails")
    queue.submit("report", queue="reports")
    queue.submit("mail-later", queue="emails", delay=3600)
    assert taken(queue, queues="emails") == "mail-0"

    assert queue.cancel(queue="emails", state="submitted") == Changed(matched=3, changed=3)
    assert queue.get("mail-0").state is JobState.RUNNING
    assert queue.cancel(prefix="mail-") == Changed(matched=1, changed=1)  # the running one
    assert queue.get("report").state is JobState.SUBMITTED

    assert queue.retry(queue="emails", prefix="mail-1") == Changed(matched=1, changed=1)
    assert queue.retry(state=JobState.FAILED) == Changed(matched=3, changed=3)
    assert {job.state for job in queue.iter_jobs()} == {JobState.SUBMITTED}
    with pytest.raises(InvalidRequest, match=r"filter\.state"):
        queue.retry(state="submitted")  # retry applies to failed jobs only


# -- retention ----------------------------------------------------------------------------------


def test_a_pruned_job_is_gone_but_its_id_stays_taken(tmp_path: Path, backend: str) -> None:
    with open_client(tmp_path, backend, keep_succeeded=0.0) as http:
        queue = Client(http=http)
        queue.submit("old", "the job", {"n": 1})
        job = queue.next()
        assert job is not None
        queue.complete("old", "succeeded", lease_id=job.lease_id, result="done")
        http.blocking_portal.call(http.app.state.queue.prune)  # not waiting for the server's own

        with pytest.raises(JobGone) as gone:
            queue.get("old")
        assert gone.value.status_code == 410
        with pytest.raises(JobGone):
            queue.cancel("old")
        with pytest.raises(JobGone):
            queue.retry("old")
        assert queue.cancel(["old"]) == Changed(matched=1, changed=0)
        again = queue.submit("old", "the job", {"n": 1})  # the same content: not queued again
        assert (again.state, again.result) == (JobState.SUCCEEDED, None)
        with pytest.raises(JobConflict):
            queue.submit("old", "another job")


# -- the async twin ------------------------------------------------------------------------------


@pytest.fixture
async def aqueue() -> AsyncIterator[AsyncClient]:
    app = create_app(Settings(), store=MemoryStore())
    async with AsyncTestClient(app, base_url=APP_URL) as http:
        yield AsyncClient(http=http)


@pytest.mark.anyio
async def test_the_async_client_does_the_same(aqueue: AsyncClient) -> None:
    await aqueue.submit("low", queue="q")
    await aqueue.submit("high", queue="q", priority=1, run_at=datetime.now(UTC))
    await aqueue.submit("other", queue="r")
    job = await aqueue.next(queues=["q"])
    assert job is not None
    assert job.job_id == "high"
    assert [j.job_id for j in await aqueue.next(count=5, queues="q")] == ["low"]
    assert [j.job_id async for j in aqueue.iter_jobs(queue="r")] == ["other"]
    assert (await aqueue.stats()).queues["q"].running == 2

    assert (await aqueue.cancel("high")).state is JobState.FAILED
    assert await aqueue.retry(["high", "missing"]) == Changed(matched=1, changed=1)
    assert await aqueue.cancel(queue="q") == Changed(matched=2, changed=2)
    with pytest.raises(JobConflict):
        await aqueue.retry("other")
    with pytest.raises(ValueError, match="not both"):
        await aqueue.cancel(["low"], queue="q")  # type: ignore[call-overload]  # no such call
