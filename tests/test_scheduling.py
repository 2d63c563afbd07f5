"""CONTRACT §8: queues, priorities and scheduled jobs. Over HTTP against the app on both stores
(the fields, their validation, the idempotent submit, the hand-out order, the ``queue`` filters,
``/stats`` per queue); in the queue itself with an injected clock (when a job falls due, and the
queue's latency); and once end to end against a real `sq serve` (a long-poll woken by a job
falling due).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from litestar.testing import TestClient

from simplequeue.models import (
    MAX_DELAY_SECONDS,
    MAX_PRIORITY,
    MAX_QUEUE_NAME,
    MAX_QUEUES_NAMED,
    MIN_PRIORITY,
    SubmitRequest,
)
from simplequeue.queue import Queue
from tests.servers import OpenStore, ServerProcess, without_ages
from tests.test_api_contract import assert_job, assert_problem

Client = TestClient[Any]
Json = dict[str, Any]
T = TypeVar("T")

PAST = "2020-01-01T00:00:0{}Z"
"""A time long due: ``PAST.format(n)`` is n seconds past it."""


def submit(client: httpx.Client, job_id: str, **fields: Any) -> httpx.Response:
    return client.post("/jobs/submit", json={"jobId": job_id, **fields})


def created(client: httpx.Client, job_id: str, **fields: Any) -> Json:
    response = submit(client, job_id, **fields)
    assert response.status_code == 201, response.text
    return assert_job(response.json())


def handed_out(client: httpx.Client, **params: Any) -> list[str]:
    """The ids ``/jobs/next`` hands out, one call each, until it answers 204."""
    ids = []
    while (response := client.get("/jobs/next", params=params)).status_code == 200:
        ids.append(assert_job(response.json(), lease=True)["jobId"])
    assert response.status_code == 204, response.text
    return ids


def when(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def snapshot(client: Client) -> tuple[Any, Any]:
    jobs = client.get("/jobs", params={"limit": 1000}).json()
    return jobs, without_ages(client.get("/stats").json())


def differing(detail: str) -> list[str]:
    """The fields a resubmit's 409 names: "...with a different queue, priority; nothing..."."""
    match = re.search(r"with a different (.+?); nothing was changed", detail)
    assert match, detail
    return match.group(1).split(", ")


# -- the fields on submit --------------------------------------------------------------------


def test_a_job_without_the_new_fields_is_in_the_default_queue_due_when_submitted(
    client: Client,
) -> None:
    job = created(client, "j1")
    assert (job["queue"], job["priority"]) == ("default", 0)
    assert job["runAt"] == job["createdAt"]
    running = client.get("/jobs/next").json()
    assert (running["queue"], running["priority"], running["runAt"]) == (
        "default",
        0,
        job["runAt"],
    )


def test_queue_priority_and_run_at_are_stored_and_answered_everywhere(client: Client) -> None:
    queue = "Aa0._:-" + "q" * (MAX_QUEUE_NAME - 7)
    job = created(
        client, "j1", queue=queue, priority=MAX_PRIORITY, runAt="2020-01-01T02:00:00+02:00"
    )
    # Any offset is taken; every answer gives the instant in UTC.
    assert (job["queue"], job["priority"], job["runAt"]) == (
        queue,
        MAX_PRIORITY,
        "2020-01-01T00:00:00Z",
    )
    assert client.get("/jobs/j1").json() == job
    assert client.get("/jobs", params={"queue": queue}).json() == [job]
    running = client.get("/jobs/next").json()
    assert (running["queue"], running["priority"], running["runAt"]) == (
        queue,
        MAX_PRIORITY,
        job["runAt"],
    )
    low = created(client, "j2", priority=MIN_PRIORITY)
    assert low["priority"] == MIN_PRIORITY


def test_a_whole_number_written_as_a_fraction_is_a_priority(client: Client) -> None:
    # JSON Schema counts 5.0 as an integer, so the server takes it, and answers 5.
    job = created(client, "j1", priority=5.0)
    assert job["priority"] == 5
    assert isinstance(job["priority"], int)


@pytest.mark.parametrize("seconds", [0, 0.25, 1.5, 3600, MAX_DELAY_SECONDS])
def test_delay_seconds_sets_run_at_that_long_after_the_submit(
    client: Client, seconds: float
) -> None:
    job = created(client, "j1", delaySeconds=seconds)
    assert when(job["runAt"]) - when(job["createdAt"]) == timedelta(seconds=seconds)
    if seconds >= 1:
        assert client.get("/jobs/next").status_code == 204


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"queue": ""}, ["queue"]),
        ({"queue": "a b"}, ["queue"]),
        ({"queue": "a/b"}, ["queue"]),
        ({"queue": "é"}, ["queue"]),
        ({"queue": "q" * (MAX_QUEUE_NAME + 1)}, ["queue"]),
        ({"queue": "emails\n"}, ["queue"]),
        ({"queue": "emails\x00"}, ["queue"]),
        ({"queue": 5}, ["queue"]),
        ({"queue": None}, ["queue"]),
        ({"priority": MAX_PRIORITY + 1}, ["priority"]),
        ({"priority": MIN_PRIORITY - 1}, ["priority"]),
        ({"priority": 1.5}, ["priority"]),
        ({"priority": "1"}, ["priority"]),
        ({"priority": True}, ["priority"]),
        ({"priority": None}, ["priority"]),
        ({"runAt": "2030-01-01T00:00:00"}, ["runAt", "time zone"]),
        ({"runAt": "2030-01-01"}, ["runAt"]),
        ({"runAt": "tomorrow"}, ["runAt"]),
        ({"runAt": 1893456000}, ["runAt"]),
        # Beyond what every store and client writes the same way: four-digit years, in UTC.
        ({"runAt": "0001-01-01T00:00:00Z"}, ["runAt", "1000-9999"]),
        ({"runAt": "0999-12-31T23:59:59Z"}, ["runAt", "1000-9999"]),
        ({"runAt": "0001-01-01T00:00:00+01:00"}, ["runAt", "1000-9999"]),
        ({"runAt": "9999-12-31T23:59:59-01:00"}, ["runAt", "1000-9999"]),
        ({"runAt": "2030-01-01T00:00:00Z", "delaySeconds": 5}, ["runAt", "delaySeconds"]),
        ({"runAt": "2030-01-01T00:00:00Z", "delaySeconds": 0}, ["runAt", "delaySeconds"]),
        ({"delaySeconds": -1}, ["delaySeconds"]),
        ({"delaySeconds": -0.001}, ["delaySeconds"]),
        ({"delaySeconds": MAX_DELAY_SECONDS + 1}, ["delaySeconds"]),
        ({"delaySeconds": "5"}, ["delaySeconds"]),
        ({"delaySeconds": True}, ["delaySeconds"]),
        ({"delay_seconds": 5}, ["delay_seconds"]),
        ({"run_at": "2030-01-01T00:00:00Z"}, ["run_at"]),
    ],
)
def test_invalid_queue_priority_or_timing_is_400_naming_the_field(
    client: Client, fields: Json, named: list[str]
) -> None:
    created(client, "kept")
    before = snapshot(client)
    assert_problem(submit(client, "j1", **fields), 400, *named)
    assert snapshot(client) == before


# -- the idempotent submit --------------------------------------------------------------------


@pytest.mark.parametrize(
    "timing",
    [
        {"runAt": "2031-01-01T00:00:00Z"},
        {"delaySeconds": 60},
        {"delaySeconds": 0},
        {},
    ],
)
def test_the_same_content_at_another_time_is_200_and_the_first_timing_stands(
    client: Client, timing: Json
) -> None:
    first = created(client, "j1", queue="q", priority=3, maxAttempts=2, runAt=PAST.format(1))
    again = submit(client, "j1", queue="q", priority=3, maxAttempts=2, **timing)
    assert again.status_code == 200, again.text
    assert again.json() == first
    assert handed_out(client) == ["j1"]  # queued once, at its first time


def test_the_defaults_spelled_out_are_the_same_content(client: Client) -> None:
    first = created(client, "j1")
    again = submit(client, "j1", queue="default", priority=0, maxAttempts=first["maxAttempts"])
    assert again.status_code == 200, again.text
    assert again.json() == first


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"queue": "other"}, ["queue"]),
        ({"priority": 1}, ["priority"]),
        ({"priority": -1}, ["priority"]),
        ({"maxAttempts": 5}, ["maxAttempts"]),
        ({"queue": "other", "priority": 1}, ["queue", "priority"]),
        ({"priority": 1, "maxAttempts": 5, "runAt": PAST.format(9)}, ["priority", "maxAttempts"]),
        (
            {"description": "other", "data": {"n": 2}, "queue": "other", "priority": 1},
            ["description", "data", "queue", "priority"],
        ),
    ],
)
def test_other_queue_priority_or_max_attempts_is_409_naming_exactly_those(
    client: Client, fields: Json, named: list[str]
) -> None:
    first = created(client, "j1", description="d", data={"n": 1}, maxAttempts=3)
    before = snapshot(client)
    sent = {"description": "d", "data": {"n": 1}, "maxAttempts": 3, **fields}
    problem = assert_problem(submit(client, "j1", **sent), 409, "'j1'")
    assert sorted(differing(problem["detail"])) == sorted(named)
    assert snapshot(client) == before
    assert client.get("/jobs/j1").json() == first


def test_a_resubmit_in_a_batch_names_the_differing_fields_too(client: Client) -> None:
    created(client, "j1", queue="a")
    answer = client.post(
        "/jobs/submit", json=[{"jobId": "j1", "queue": "a"}, {"jobId": "j1", "queue": "b"}]
    )
    assert answer.status_code == 200, answer.text
    same, other = answer.json()
    assert same["status"] == 200
    assert other["status"] == 409
    assert differing(other["detail"]) == ["queue"]


# -- the hand-out order -----------------------------------------------------------------------


def test_next_hands_out_by_priority_then_due_time_then_submission(client: Client) -> None:
    created(client, "low", priority=-1, runAt=PAST.format(0))  # due longest, but low
    created(client, "plain-1")
    created(client, "old-2", runAt=PAST.format(2))
    created(client, "old-1", runAt=PAST.format(1))
    created(client, "urgent", priority=10)
    created(client, "plain-2")
    created(client, "tie-1", runAt=PAST.format(5))
    created(client, "tie-2", runAt=PAST.format(5))
    created(client, "later", priority=MAX_PRIORITY, delaySeconds=3600)  # not due: never
    created(client, "elsewhere", queue="b", priority=5, runAt=PAST.format(0))
    assert handed_out(client) == [
        "urgent",
        "elsewhere",
        "old-1",
        "old-2",
        "tie-1",
        "tie-2",
        "plain-1",
        "plain-2",
        "low",
    ]
    assert client.get("/jobs/later").json()["state"] == "submitted"


def test_without_the_new_fields_the_order_is_plain_fifo(client: Client) -> None:
    for n in range(12):
        created(client, f"j{n}")
    assert handed_out(client) == [f"j{n}" for n in range(12)]


def test_next_with_count_follows_the_same_order(client: Client) -> None:
    created(client, "c", runAt=PAST.format(3))
    created(client, "a", priority=2)
    created(client, "b", runAt=PAST.format(1))
    answer = client.get("/jobs/next", params={"count": 10})
    assert [job["jobId"] for job in answer.json()] == ["a", "b", "c"]


def test_due_times_are_ordered_as_instants_whatever_their_spelling(client: Client) -> None:
    created(client, "half", runAt="2020-01-01T00:00:01.5Z")
    created(client, "whole", runAt="2020-01-01T00:00:01Z")
    created(client, "quarter", runAt="2020-01-01T01:00:01.25+01:00")
    created(client, "micro", runAt="2020-01-01T00:00:01.000001Z")
    created(client, "earlier-day", runAt="2019-12-31T23:59:59.999999Z")
    assert handed_out(client) == ["earlier-day", "whole", "micro", "quarter", "half"]


def test_next_with_count_from_several_queues_keeps_one_order_across_them(
    client: Client,
) -> None:
    created(client, "a-old", queue="a", runAt=PAST.format(1))
    created(client, "b-high", queue="b", priority=3)
    created(client, "c-highest", queue="c", priority=9)
    created(client, "b-older", queue="b", runAt=PAST.format(0))
    created(client, "a-high", queue="a", priority=3, runAt=PAST.format(2))
    created(client, "a-new", queue="a")
    answer = client.get("/jobs/next", params={"count": 10, "queue": ["b", "a"]})
    assert [job["jobId"] for job in answer.json()] == [
        "a-high",
        "b-high",
        "b-older",
        "a-old",
        "a-new",
    ]


def test_next_takes_only_from_the_queues_named(client: Client) -> None:
    created(client, "c1", queue="c", priority=50)
    created(client, "a1", queue="a")
    created(client, "b1", queue="b", priority=1)
    created(client, "d1")  # the default queue
    created(client, "a2", queue="a", priority=2)
    params = {"queue": ["a", "b"]}
    assert handed_out(client, **params) == ["a2", "b1", "a1"]
    assert handed_out(client, queue="default") == ["d1"]
    assert client.get("/jobs/c1").json()["state"] == "submitted"
    assert handed_out(client) == ["c1"]  # no queue named: any queue


def test_next_with_count_takes_only_from_the_queues_named(client: Client) -> None:
    for n in range(3):
        created(client, f"a{n}", queue="a")
        created(client, f"b{n}", queue="b")
    answer = client.get("/jobs/next", params={"count": 10, "queue": "b"})
    assert [job["jobId"] for job in answer.json()] == ["b0", "b1", "b2"]


def test_naming_a_queue_twice_or_one_that_holds_nothing_is_fine(client: Client) -> None:
    created(client, "a1", queue="a")
    assert client.get("/jobs/next", params={"queue": "nothing-here"}).status_code == 204
    assert handed_out(client, queue=["a", "a"]) == ["a1"]


@pytest.mark.parametrize(
    "query",
    [
        "queue=",
        "queue=a%20b",
        "queue=a%2Fb",
        "queue=%C3%A9",
        "queue=emails%0A",
        "queue=" + "q" * (MAX_QUEUE_NAME + 1),
        "queue=a&queue=b%20c",
        "&".join(f"queue=q{n}" for n in range(MAX_QUEUES_NAMED + 1)),
    ],
)
@pytest.mark.parametrize("path", ["/jobs/next", "/jobs"])
def test_a_bad_queue_parameter_is_400_naming_it_and_claims_nothing(
    client: Client, path: str, query: str
) -> None:
    created(client, "j1", queue="a")
    before = snapshot(client)
    assert_problem(client.get(f"{path}?{query}"), 400, "queue")
    assert snapshot(client) == before


def test_as_many_queues_as_allowed_may_be_named(client: Client) -> None:
    created(client, "j1", queue=f"q{MAX_QUEUES_NAMED - 1}")
    query = "&".join(f"queue=q{n}" for n in range(MAX_QUEUES_NAMED))
    assert client.get(f"/jobs?{query}").json()[0]["jobId"] == "j1"
    assert client.get(f"/jobs/next?{query}").json()["jobId"] == "j1"


# -- GET /jobs?queue= -------------------------------------------------------------------------


def test_list_filters_by_queue_and_its_link_keeps_the_filter(client: Client) -> None:
    for n in range(5):
        created(client, f"a{n}", queue="a")
        created(client, f"b{n}", queue="b")
        created(client, f"c{n}", queue="c:1.x-y_z")
    seen = []
    path: str | None = "/jobs?queue=a&queue=c%3A1.x-y_z&limit=3"
    pages = 0
    while path is not None:
        response = client.get(path)
        assert response.status_code == 200, response.text
        seen += [job["jobId"] for job in response.json()]
        pages += 1
        link = response.headers.get("link")
        if link is None:
            path = None
        else:
            match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
            assert match, link
            path = match.group(1)
            assert "queue=a&" in path
            assert "queue=c%3A1.x-y_z&" in path
    assert pages == 4
    assert seen == [f"{q}{n}" for n in range(5) for q in "ac"]
    only_b = client.get("/jobs", params={"queue": "b", "state": "submitted"}).json()
    assert [job["jobId"] for job in only_b] == [f"b{n}" for n in range(5)]
    assert client.get("/jobs", params={"queue": "nothing-here"}).json() == []


def test_list_by_queue_and_state_together(client: Client) -> None:
    created(client, "a1", queue="a")
    created(client, "a2", queue="a")
    created(client, "b1", queue="b")
    assert client.get("/jobs/next", params={"queue": "a"}).json()["jobId"] == "a1"
    listed = client.get("/jobs", params={"queue": ["a", "b"], "state": "running"}).json()
    assert [job["jobId"] for job in listed] == ["a1"]
    newest = client.get("/jobs", params={"queue": "a", "order": "desc"}).json()
    assert [job["jobId"] for job in newest] == ["a2", "a1"]


# -- GET /stats per queue ---------------------------------------------------------------------


def test_stats_counts_each_queue_and_its_oldest_due_job(client: Client) -> None:
    created(client, "z1", queue="zeta", runAt=PAST.format(0))
    created(client, "z2", queue="zeta")
    created(client, "later", queue="alpha", delaySeconds=3600)  # waiting, but not due
    created(client, "m1", queue="mid")
    assert client.get("/jobs/next", params={"queue": "mid"}).status_code == 200
    created(client, "m2", queue="mid")
    taken = client.get("/jobs/next", params={"queue": "mid"}).json()
    done = client.post(
        "/jobs/complete",
        json={"jobId": "m2", "status": "succeeded", "leaseId": taken["leaseId"]},
    )
    assert done.status_code == 200, done.text
    stats = client.get("/stats").json()
    assert list(stats["queues"]) == ["alpha", "mid", "zeta"]  # sorted by name
    zero = {"submitted": 0, "running": 0, "succeeded": 0, "failed": 0}
    assert stats["queues"]["alpha"] == {**zero, "submitted": 1, "oldestDueAgeSeconds": None}
    assert stats["queues"]["mid"] == {
        **zero,
        "running": 1,
        "succeeded": 1,
        "oldestDueAgeSeconds": None,  # nothing waits there
    }
    zeta = stats["queues"]["zeta"]
    assert {key: zeta[key] for key in zero} == {**zero, "submitted": 2}
    # The oldest due job is z1, due since 2020: its age is years, not z2's moments.
    age = datetime.now(UTC) - when(PAST.format(0))
    assert zeta["oldestDueAgeSeconds"] == pytest.approx(age.total_seconds(), abs=60)
    for state in zero:
        assert stats[state] == sum(q[state] for q in stats["queues"].values())
    assert stats["total"] == 5


# -- in the queue, with an injected clock ------------------------------------------------------


class Clock:
    """A clock that stands still until told to move."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 60))


def test_a_scheduled_job_is_handed_out_once_its_time_comes_and_not_before(
    open_store: OpenStore,
) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with open_store() as store:
            queue = Queue(store, clock=clock)
            start = clock.now
            await queue.submit(SubmitRequest(job_id="later", delay_seconds=60), None)
            await queue.submit(
                SubmitRequest(job_id="at", run_at=start + timedelta(seconds=30)), None
            )
            assert await queue.next() == []
            assert await store.next_due(clock.now) == start + timedelta(seconds=30)
            clock.advance(29.999)
            assert await queue.next() == []
            clock.advance(0.001)
            assert [job.job_id for job in await queue.next(count=10)] == ["at"]
            assert await store.next_due(clock.now) == start + timedelta(seconds=60)
            clock.advance(29.999)
            assert await queue.next() == []
            clock.advance(0.001)
            (job,) = await queue.next()
            assert (job.job_id, job.run_at, job.started_at) == ("later", clock.now, clock.now)
            assert await store.next_due(clock.now) is None
            await queue.close()

    run(scenario())


def test_a_job_falling_due_goes_by_its_priority_and_due_time(
    open_store: OpenStore,
) -> None:
    async def scenario() -> list[str]:
        clock = Clock()
        async with open_store() as store:
            queue = Queue(store, clock=clock)
            await queue.submit(SubmitRequest(job_id="now"), None)
            await queue.submit(
                SubmitRequest(job_id="soon-urgent", priority=1, delay_seconds=5), None
            )
            await queue.submit(SubmitRequest(job_id="soonest", delay_seconds=2), None)
            await queue.submit(SubmitRequest(job_id="too-late", priority=9, delay_seconds=99), None)
            clock.advance(10)
            taken = [job.job_id for job in await queue.next(count=10)]
            await queue.close()
            return taken

    # "now" has waited longest, but the scheduled job of higher priority goes first.
    assert run(scenario()) == ["soon-urgent", "now", "soonest"]


def test_stats_age_is_how_long_the_oldest_due_job_has_waited(
    open_store: OpenStore,
) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with open_store() as store:
            queue = Queue(store, clock=clock)
            await queue.submit(SubmitRequest(job_id="a1", queue="a"), None)
            await queue.submit(SubmitRequest(job_id="b1", queue="b", delay_seconds=20), None)
            clock.advance(15)
            await queue.submit(SubmitRequest(job_id="a2", queue="a"), None)
            stats = await queue.stats()
            assert stats.queues["a"].oldest_due_age_seconds == 15.0
            assert stats.queues["b"].oldest_due_age_seconds is None  # due in 5 s
            clock.advance(10)
            stats = await queue.stats()
            assert stats.queues["a"].oldest_due_age_seconds == 25.0
            assert stats.queues["b"].oldest_due_age_seconds == 5.0
            # Once a1 is taken, a2 is the oldest one waiting.
            (taken,) = await queue.next(queues=["a"])
            assert taken.job_id == "a1"
            assert (await queue.stats()).queues["a"].oldest_due_age_seconds == 10.0
            await queue.next(queues=["a"])
            assert (await queue.stats()).queues["a"].oldest_due_age_seconds is None
            await queue.close()

    run(scenario())


def test_a_waiting_caller_is_woken_when_a_scheduled_job_falls_due(
    open_store: OpenStore,
) -> None:
    # No periodic look runs here (no `Queue.run`): only the queue's own timer can wake it.
    async def scenario() -> None:
        async with open_store() as store:
            queue = Queue(store)
            submitted = await queue.submit(SubmitRequest(job_id="j1", delay_seconds=0.3), None)
            claimed = await queue.next(wait=20)
            assert [job.job_id for job in claimed] == ["j1"]
            (job,) = claimed
            assert job.started_at is not None
            assert job.started_at >= submitted.job.run_at
            await queue.close()

    run(scenario())


def test_a_waiting_caller_of_one_queue_is_not_held_up_by_one_of_another(
    open_store: OpenStore,
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        async with open_store() as store:
            queue = Queue(store)
            first = asyncio.create_task(queue.next(wait=20, queues=["a"]))
            second = asyncio.create_task(queue.next(wait=20, queues=["b"]))
            while len(queue._waiters) < 2:
                await asyncio.sleep(0)
            await queue.submit(SubmitRequest(job_id="b1", queue="b"), None)
            served = [job.job_id for job in await second]
            assert not first.done()  # still waiting for its own queue
            await queue.submit(SubmitRequest(job_id="a1", queue="a"), None)
            answer = [job.job_id for job in await first]
            await queue.close()
            return served, answer

    assert run(scenario()) == (["b1"], ["a1"])


# -- end to end -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_long_poll_gets_a_scheduled_job_when_it_falls_due_from_a_real_server(
    server: ServerProcess,
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        job = created(http, "soon", delaySeconds=2)
        assert http.get("/jobs/next").status_code == 204  # not before its time
        answer = http.get("/jobs/next", params={"wait": 10})
    assert answer.status_code == 200, answer.text
    taken = answer.json()
    assert taken["jobId"] == "soon"
    started, due = when(taken["startedAt"]), when(job["runAt"])
    assert started >= due
    # Woken by its time coming, well within the wait (CONTRACT §7: "at once").
    assert started - due < timedelta(seconds=1.5)
