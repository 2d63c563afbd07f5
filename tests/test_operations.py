"""CONTRACT §9: an operator's cancel and retry (of one job, of many by id, of every job a filter
matches) and retention (pruned jobs leave tombstones). Against the app on both stores, in the
queue itself for what wakes a waiting caller, and against a real `sq serve` for a retry of
20,000 jobs that must not stall everyone else.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from simplequeue.models import MAX_BATCH, JobFilter, SubmitRequest
from simplequeue.queue import Action, Queue
from tests.servers import OpenStore, ServerProcess, open_client, without_ages
from tests.test_api_contract import assert_job, assert_problem
from tests.test_leases import changes_nothing, complete, get, heartbeat, submit, take
from tests.test_scheduling import created, handed_out, run, when

Client = TestClient[Any]
Json = dict[str, Any]

ACTIONS = ["cancel", "retry"]


def act(http: httpx.Client, action: str, body: Any) -> httpx.Response:
    return http.post(f"/jobs/{action}", json=body)


def acted(http: httpx.Client, action: str, job_id: str) -> Json:
    """The job after ``action`` on it alone, which must succeed."""
    response = act(http, action, {"jobId": job_id})
    assert response.status_code == 200, response.text
    return assert_job(response.json())


def counted(http: httpx.Client, action: str, body: Json) -> tuple[int, int]:
    """``matched`` and ``changed`` of an action on many jobs."""
    response = act(http, action, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"matched", "changed"}
    return answer["matched"], answer["changed"]


def finished(http: httpx.Client, job_id: str, status: str, **fields: Any) -> Json:
    """A job submitted, taken and completed with ``status``: the next one of its queue, so
    before any other job in it is submitted."""
    assert submit(http, job_id, **fields).status_code == 201
    job = take(http, queue=fields.get("queue", "default"))
    assert job["jobId"] == job_id
    done = complete(http, job_id, status, leaseId=job["leaseId"])
    assert done.status_code == 200, done.text
    answer: Json = done.json()
    assert answer["state"] == status
    return answer


def states(http: httpx.Client) -> dict[str, str]:
    return {job["jobId"]: job["state"] for job in http.get("/jobs", params={"limit": 1000}).json()}


# -- cancel one job ---------------------------------------------------------------------------


def test_cancel_a_submitted_job_fails_it_with_the_error_cancelled(client: Client) -> None:
    created(client, "j1", queue="a", priority=2, data={"k": 1})
    job = acted(client, "cancel", "j1")
    assert (job["state"], job["attempts"], job["leaseExpiresAt"]) == ("failed", 0, None)
    assert job["finishedAt"] is not None
    assert job["errors"] == [{"attempt": 0, "at": job["finishedAt"], "error": "cancelled"}]
    assert (job["queue"], job["priority"], job["data"]) == ("a", 2, {"k": 1})
    assert get(client, "j1") == job
    assert client.get("/jobs/next").status_code == 204
    assert client.get("/stats").json()["failed"] == 1


def test_cancel_a_scheduled_job_before_it_falls_due(client: Client) -> None:
    created(client, "later", delaySeconds=3600)
    assert acted(client, "cancel", "later")["state"] == "failed"
    assert client.get("/stats").json()["queues"]["default"]["submitted"] == 0


def test_cancel_a_running_job_ends_its_lease(client: Client) -> None:
    created(client, "j1")
    lease = take(client)["leaseId"]
    job = acted(client, "cancel", "j1")
    assert (job["state"], job["attempts"], job["leaseExpiresAt"]) == ("failed", 1, None)
    assert [(e["attempt"], e["error"]) for e in job["errors"]] == [(1, "cancelled")]
    stats = client.get("/stats").json()
    assert (stats["running"], stats["failed"]) == (0, 1)
    assert client.get("/jobs/next").status_code == 204
    # The worker still at it learns at its next heartbeat, and cannot record an outcome.
    with changes_nothing(client):
        assert_problem(heartbeat(client, "j1", lease), 409, "lease lost")
        for status in ("succeeded", "failed"):
            assert_problem(complete(client, "j1", status, leaseId=lease), 409, "lease lost")
    assert get(client, "j1") == job


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_cancel_a_finished_job_is_409_and_changes_nothing(client: Client, status: str) -> None:
    job = finished(client, "j1", status)
    with changes_nothing(client):
        assert_problem(act(client, "cancel", {"jobId": "j1"}), 409, "'j1'", status)
    assert get(client, "j1") == job


def test_cancel_a_cancelled_job_is_409(client: Client) -> None:
    created(client, "j1")
    job = acted(client, "cancel", "j1")
    assert_problem(act(client, "cancel", {"jobId": "j1"}), 409, "'j1'")
    assert get(client, "j1") == job  # one `cancelled`, not two


@pytest.mark.parametrize("action", ACTIONS)
def test_an_unknown_job_is_404_naming_it(client: Client, action: str) -> None:
    created(client, "j1")
    with changes_nothing(client):
        assert_problem(act(client, action, {"jobId": "ghost"}), 404, "'ghost'")


# -- retry one job ----------------------------------------------------------------------------


def test_retry_a_failed_job_keeps_its_attempts_and_errors(client: Client) -> None:
    created(client, "j1", maxAttempts=3)
    lease = take(client)["leaseId"]
    failed = complete(client, "j1", "failed", leaseId=lease, error="boom").json()
    created(client, "waiting")  # due before the retry
    job = acted(client, "retry", "j1")
    assert (job["state"], job["attempts"], job["maxAttempts"]) == ("submitted", 1, 3)
    assert (job["finishedAt"], job["leaseExpiresAt"], job["result"]) == (None, None, None)
    assert job["errors"] == failed["errors"]
    assert when(job["runAt"]) >= when(failed["finishedAt"])  # due now
    # Once: it is submitted now, and only a failed job can be retried.
    with changes_nothing(client):
        assert_problem(act(client, "retry", {"jobId": "j1"}), 409, "'j1'", "submitted")
    assert handed_out(client) == ["waiting", "j1"]
    again = get(client, "j1")
    assert (again["state"], again["attempts"], again["errors"]) == ("running", 2, job["errors"])


def test_retry_allows_one_more_attempt_when_they_were_used_up(client: Client) -> None:
    created(client, "j1", maxAttempts=1)
    for attempt in (1, 2):
        job = take(client)
        done = complete(client, "j1", "failed", leaseId=job["leaseId"], retry=True).json()
        assert (done["state"], done["attempts"]) == ("failed", attempt)  # no attempts left
        retried = acted(client, "retry", "j1")
        assert (retried["state"], retried["maxAttempts"]) == ("submitted", attempt + 1)
    assert [e["attempt"] for e in get(client, "j1")["errors"]] == [1, 2]


def test_a_resubmit_after_a_retry_raised_max_attempts_is_still_the_same_job(
    client: Client,
) -> None:
    # The producer sends the same job again (a daily re-run, a lost answer): the operator's
    # retry raised maxAttempts, but the job's content is what was submitted.
    created(client, "j1", maxAttempts=1)
    job = take(client)
    assert complete(client, "j1", "failed", leaseId=job["leaseId"]).status_code == 200
    assert acted(client, "retry", "j1")["maxAttempts"] == 2
    again = submit(client, "j1", maxAttempts=1)
    assert again.status_code == 200, again.text
    assert again.json()["maxAttempts"] == 2  # the job as it is
    assert_problem(submit(client, "j1", maxAttempts=3), 409, "maxAttempts")


def test_retry_a_cancelled_job_puts_it_back_as_it_was(client: Client) -> None:
    first = created(client, "j1", queue="a", priority=4)
    acted(client, "cancel", "j1")
    job = acted(client, "retry", "j1")
    assert (job["state"], job["attempts"], job["maxAttempts"]) == ("submitted", 0, 3)
    assert [e["error"] for e in job["errors"]] == ["cancelled"]
    assert (job["queue"], job["priority"]) == (first["queue"], first["priority"])
    assert handed_out(client, queue="a") == ["j1"]


@pytest.mark.parametrize("state", ["submitted", "running", "succeeded"])
def test_retry_a_job_that_is_not_failed_is_409_and_changes_nothing(
    client: Client, state: str
) -> None:
    if state == "succeeded":
        finished(client, "j1", "succeeded")
    else:
        created(client, "j1")
        if state == "running":
            take(client)
    with changes_nothing(client):
        assert_problem(act(client, "retry", {"jobId": "j1"}), 409, "'j1'", state)


# -- many by id, and by filter ----------------------------------------------------------------


def test_cancel_many_by_id_counts_what_it_named_and_what_it_changed(client: Client) -> None:
    finished(client, "done", "succeeded")
    created(client, "r1")
    assert take(client)["jobId"] == "r1"
    created(client, "s1")
    created(client, "later", delaySeconds=3600)
    created(client, "untouched")
    assert counted(client, "cancel", {"jobIds": ["s1", "later", "done", "ghost", "r1"]}) == (4, 3)
    assert states(client) == {
        "done": "succeeded",
        "r1": "failed",
        "s1": "failed",
        "later": "failed",
        "untouched": "submitted",
    }


def test_retry_many_by_id_counts_what_it_named_and_what_it_changed(client: Client) -> None:
    finished(client, "f1", "failed")
    finished(client, "f2", "failed")
    finished(client, "ok", "succeeded")
    created(client, "waiting")
    assert counted(client, "retry", {"jobIds": ["f1", "ok", "waiting", "ghost", "f2"]}) == (4, 2)
    assert states(client) == {
        "f1": "submitted",
        "f2": "submitted",
        "ok": "succeeded",
        "waiting": "submitted",
    }


@pytest.mark.parametrize("action", ACTIONS)
def test_an_id_named_twice_is_changed_once(client: Client, action: str) -> None:
    if action == "retry":
        finished(client, "j1", "failed")
    else:
        created(client, "j1")
    # An id named twice counts once.
    assert counted(client, action, {"jobIds": ["j1", "j1"]}) == (1, 1)
    assert len(get(client, "j1")["errors"]) == 1


def test_as_many_ids_as_a_batch_holds_may_be_named(client: Client) -> None:
    created(client, "j1")
    ids = ["j1"] + [f"ghost-{n}" for n in range(MAX_BATCH - 1)]
    assert counted(client, "cancel", {"jobIds": ids}) == (1, 1)


def test_cancel_by_filter_takes_the_queue_prefix_and_state(client: Client) -> None:
    finished(client, "a-done", "succeeded", queue="a")
    created(client, "a-1", queue="a")
    created(client, "a-2", queue="a")
    created(client, "x-1", queue="a")
    created(client, "b-1", queue="b")
    created(client, "x-2", queue="b")
    assert take(client, queue="a")["jobId"] == "a-1"
    assert counted(client, "cancel", {"filter": {"queue": "a", "state": "running"}}) == (1, 1)
    assert states(client)["a-1"] == "failed"
    assert counted(client, "cancel", {"filter": {"prefix": "x-", "queue": "b"}}) == (1, 1)
    assert states(client)["x-2"] == "failed"
    assert counted(client, "cancel", {"filter": {"prefix": "x-"}}) == (1, 1)
    assert counted(client, "cancel", {"filter": {"queue": "a"}}) == (1, 1)
    assert states(client) == {
        "a-done": "succeeded",
        "a-1": "failed",
        "a-2": "failed",
        "x-1": "failed",
        "b-1": "submitted",
        "x-2": "failed",
    }
    # No filter field: every job the action applies to (cancel: submitted and running).
    assert counted(client, "cancel", {"filter": {}}) == (1, 1)
    assert counted(client, "cancel", {"filter": {}}) == (0, 0)
    assert states(client)["a-done"] == "succeeded"


def test_retry_by_filter_takes_failed_jobs_by_default(client: Client) -> None:
    for n in range(3):
        finished(client, f"a{n}", "failed", queue="a")
        finished(client, f"b{n}", "failed", queue="b")
    finished(client, "ok", "succeeded", queue="a")
    assert counted(client, "retry", {"filter": {"queue": "a"}}) == (3, 3)
    assert counted(client, "retry", {"filter": {"queue": "a", "state": "failed"}}) == (0, 0)
    assert handed_out(client, queue="a") == ["a0", "a1", "a2"]
    assert counted(client, "retry", {"filter": {}}) == (3, 3)
    assert states(client)["ok"] == "succeeded"


def test_an_action_by_filter_goes_through_more_jobs_than_one_chunk_holds(
    client: Client,
) -> None:
    # More than one chunk (queue.ACTION_CHUNK), the matching jobs spread among others.
    jobs = [{"jobId": f"j{n:04}", "queue": "ab"[n % 2]} for n in range(1300)]
    for start in range(0, len(jobs), MAX_BATCH):
        assert client.post("/jobs/submit", json=jobs[start : start + MAX_BATCH]).status_code == 200
    assert counted(client, "cancel", {"filter": {"queue": "a"}}) == (650, 650)
    assert counted(client, "retry", {"filter": {"prefix": "j0"}}) == (500, 500)
    stats = client.get("/stats").json()["queues"]
    assert (stats["a"]["submitted"], stats["a"]["failed"]) == (500, 150)
    assert (stats["b"]["submitted"], stats["b"]["failed"]) == (650, 0)


@pytest.mark.parametrize(
    ("action", "state"),
    [
        ("cancel", "succeeded"),
        ("cancel", "failed"),
        ("retry", "submitted"),
        ("retry", "running"),
        ("retry", "succeeded"),
    ],
)
def test_a_filter_state_the_action_does_not_apply_to_is_400(
    client: Client, action: str, state: str
) -> None:
    finished(client, "f1", "failed")
    created(client, "j1")
    with changes_nothing(client):
        assert_problem(act(client, action, {"filter": {"state": state}}), 400, "filter.state")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, ["jobId", "jobIds", "filter"]),
        ({"jobId": "j1", "jobIds": ["j1"]}, ["jobId", "jobIds", "filter"]),
        ({"jobId": "j1", "filter": {}}, ["jobId", "jobIds", "filter"]),
        ({"jobIds": ["j1"], "filter": {}}, ["jobId", "jobIds", "filter"]),
        ({"jobId": "j1", "jobIds": ["j1"], "filter": {}}, ["jobId", "jobIds", "filter"]),
        ({"jobId": None}, ["jobId"]),
        ({"jobId": ""}, ["jobId"]),
        ({"jobId": 5}, ["jobId"]),
        ({"jobId": "next"}, ["reserved"]),
        ({"jobId": "a\nb"}, ["jobId"]),
        ({"jobIds": []}, ["jobIds"]),
        ({"jobIds": "j1"}, ["jobIds"]),
        ({"jobIds": ["j1", 5]}, ["jobIds"]),
        ({"jobIds": ["j1"] * (MAX_BATCH + 1)}, ["jobIds"]),
        ({"filter": None}, ["jobId", "jobIds", "filter"]),
        ({"filter": []}, ["filter"]),
        ({"filter": {"state": "bogus"}}, ["filter.state"]),
        ({"filter": {"queue": "a b"}}, ["filter.queue"]),
        ({"filter": {"queue": "a\n"}}, ["filter.queue"]),
        ({"filter": {"prefix": ""}}, ["filter.prefix"]),
        ({"filter": {"other": 1}}, ["other"]),
        ({"jobId": "j1", "extra": 1}, ["extra"]),
        ({"job_id": "j1"}, ["job_id"]),
    ],
)
@pytest.mark.parametrize("action", ACTIONS)
def test_an_invalid_body_is_400_naming_the_field_and_changes_nothing(
    client: Client, action: str, body: Json, named: list[str]
) -> None:
    finished(client, "f1", "failed")
    created(client, "j1")
    with changes_nothing(client):
        assert_problem(act(client, action, body), 400, *named)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'"j1"', b"null", b'{"jobId": "j1",}'])
def test_a_body_that_is_not_a_json_object_is_400(
    client: Client, action: str, content: bytes
) -> None:
    created(client, "j1")
    with changes_nothing(client):
        response = client.post(
            f"/jobs/{action}", content=content, headers={"content-type": "application/json"}
        )
        assert_problem(response, 400)


# -- what a retry wakes -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["one", "many", "filter"])
def test_a_retry_wakes_a_waiting_caller_at_once(open_store: OpenStore, how: str) -> None:
    # No periodic look runs here (no `Queue.run`): only the retry itself can wake the caller,
    # which would otherwise wait its full 20 seconds and get nothing.
    async def scenario() -> list[str]:
        async with open_store() as store:
            queue = Queue(store)
            await queue.submit(SubmitRequest(job_id="j1", queue="q"), None)
            (job,) = await queue.next()
            await queue.act(Action.CANCEL, job.job_id)
            waiting = asyncio.create_task(queue.next(wait=20, queues=["q"]))
            while not len(queue._waiters):
                await asyncio.sleep(0)
            if how == "one":
                await queue.act(Action.RETRY, "j1")
            elif how == "many":
                await queue.act_many(Action.RETRY, ["j1"])
            else:
                await queue.act_matching(Action.RETRY, JobFilter(queue="q"))
            answer = [job.job_id for job in await waiting]
            await queue.close()
            return answer

    assert run(scenario()) == ["j1"]


# -- retention --------------------------------------------------------------------------------

KEEP = 0.05
"""Seconds a finished job is kept, in these tests: soon gone."""


@pytest.fixture
def pruning(tmp_path: Path, backend: str) -> Iterator[Callable[[str], Client]]:
    """``pruning(state)``: the app on ``backend``, keeping finished jobs of ``state`` `KEEP`
    seconds, and those of the other state forever."""
    opened: list[Client] = []

    def start(state: str) -> Client:
        client = open_client(tmp_path, backend, **{f"keep_{state}": KEEP})
        opened.append(client.__enter__())
        return client

    yield start
    for client in opened:
        client.__exit__(None, None, None)


def until_gone(http: httpx.Client, job_id: str, timeout: float = 20.0) -> httpx.Response:
    """``GET /jobs/{job_id}`` once it answers 410 (retention runs twice a second)."""
    deadline = time.monotonic() + timeout
    while (response := http.get(f"/jobs/{job_id}")).status_code != 410:
        assert response.status_code == 200, response.text
        assert time.monotonic() < deadline, f"{job_id} was not pruned within {timeout} s"
        time.sleep(0.05)
    return response


OTHER = {"succeeded": "failed", "failed": "succeeded"}


@pytest.mark.parametrize("state", ["succeeded", "failed"])
def test_a_pruned_job_is_gone_but_its_id_stays_taken(
    pruning: Callable[[str], Client], state: str
) -> None:
    client = pruning(state)
    fields = {"description": "d", "data": {"a": 1, "b": [2]}, "queue": "q", "priority": 3}
    done = finished(client, "old", state, **fields)
    kept = finished(client, "kept", OTHER[state], queue="q")
    created(client, "waiting", queue="q", delaySeconds=3600)
    created(client, "alone", queue="solo")
    solo = take(client, queue="solo")
    assert complete(client, "alone", state, leaseId=solo["leaseId"]).status_code == 200

    detail = assert_problem(until_gone(client, "old"), 410, "'old'", state)["detail"]
    assert done["finishedAt"][:19] in detail  # when it finished, to the second
    assert until_gone(client, "alone").status_code == 410
    # The other state is kept forever, and unfinished jobs are never pruned.
    assert get(client, "kept") == kept
    assert get(client, "waiting")["state"] == "submitted"

    listed = client.get("/jobs", params={"limit": 1000}).json()
    assert [job["jobId"] for job in listed] == ["kept", "waiting"]
    assert client.get("/jobs", params={"state": state}).json() == []
    stats = client.get("/stats").json()
    assert (stats[state], stats["total"]) == (0, 2)
    assert "solo" not in stats["queues"]  # it holds no job any more
    assert without_ages(stats)["queues"]["q"] == {
        "submitted": 1,
        "running": 0,
        OTHER[state]: 1,
        state: 0,
        "oldestDueAgeSeconds": False,
    }

    # Resubmitting the same content is answered from the tombstone, and is not queued again.
    again = submit(client, "old", **{**fields, "data": {"b": [2], "a": 1}})
    assert again.status_code == 200, again.text
    job = assert_job(again.json())
    assert (job["jobId"], job["state"], job["finishedAt"]) == ("old", state, done["finishedAt"])
    assert (job["description"], job["data"], job["queue"], job["priority"]) == (
        "d",
        {"b": [2], "a": 1},
        "q",
        3,
    )
    assert (job["result"], job["errors"], job["attempts"]) == (None, [], 1)
    assert client.get("/jobs/next").status_code == 204
    assert until_gone(client, "old").status_code == 410
    batch = client.post("/jobs/submit", json=[{"jobId": "old", **fields}, {"jobId": "old"}])
    assert batch.status_code == 200, batch.text
    assert [item["status"] for item in batch.json()] == [200, 409]
    assert batch.json()[0]["job"] == job
    for other in ({"data": {"a": 2}}, {"queue": "r"}, {"priority": 4}, {"description": None}):
        conflict = submit(client, "old", **{**fields, **other})
        assert_problem(conflict, 409, "'old'", next(iter(other)))

    # Neither cancel nor retry brings it back.
    for action in ACTIONS:
        assert_problem(act(client, action, {"jobId": "old"}), 410, "'old'", state)
        assert counted(client, action, {"jobIds": ["old", "ghost"]}) == (1, 0)
    assert client.get("/stats").json()["total"] == 2


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_tombstone_tells_numbers_apart_to_the_last_digit(
    pruning: Callable[[str], Client], backend: str
) -> None:
    client = pruning("succeeded")
    sent = b'{"jobId": "n", "data": {"x": 1.00000000000000000000000000000001, "y": 1e-400}}'
    headers = {"Content-Type": "application/json"}
    assert client.post("/jobs/submit", content=sent, headers=headers).status_code == 201
    job = take(client)
    assert complete(client, "n", "succeeded", leaseId=job["leaseId"]).status_code == 200
    until_gone(client, "n")
    same = b'{"jobId": "n", "data": {"y": 1.0e-400, "x": 1.000000000000000000000000000000010}}'
    assert client.post("/jobs/submit", content=same, headers=headers).status_code == 200
    for other in (
        b'{"jobId": "n", "data": {"x": 1.00000000000000000000000000000002, "y": 1e-400}}',
        b'{"jobId": "n", "data": {"x": 1.00000000000000000000000000000001, "y": 0.0}}',
    ):
        answer = client.post("/jobs/submit", content=other, headers=headers)
        assert_problem(answer, 409, "data")


def test_a_tombstone_outlives_a_restart(tmp_path: Path) -> None:
    with open_client(tmp_path, "sqlite", keep_succeeded=KEEP) as client:
        done = finished(client, "old", "succeeded", data={"n": 1})
        until_gone(client, "old")
    with open_client(tmp_path, "sqlite") as client:  # now keeping everything
        assert_problem(client.get("/jobs/old"), 410, "'old'", "succeeded")
        again = submit(client, "old", data={"n": 1})
        assert again.status_code == 200, again.text
        assert again.json()["finishedAt"] == done["finishedAt"]
        assert_problem(submit(client, "old", data={"n": 2}), 409, "data")
        assert client.get("/jobs/next").status_code == 204


# -- a bulk retry on a real server ------------------------------------------------------------

BULK = 20_000


@dataclass
class Probe:
    kind: str
    sent: float
    answered: float
    response: httpx.Response


def probing(url: str, kind: str, stop: threading.Event, probes: list[Probe]) -> None:
    """Send one kind of request again and again until ``stop``, recording each."""
    with httpx.Client(base_url=url, timeout=60) as http:
        n = 0
        while not stop.is_set():
            sent = time.monotonic()
            if kind == "health":
                response = http.get("/health")
            elif kind == "stats":
                response = http.get("/stats")
            else:
                response = submit(http, f"probe-{n}", queue="probes")
            probes.append(Probe(kind, sent, time.monotonic(), response))
            n += 1


def bulk_progress(probe: Probe) -> int:
    """How many bulk jobs a ``/stats`` probe saw back in the queue."""
    return int(probe.response.json()["queues"]["bulk"]["submitted"])


@pytest.mark.slow
def test_a_retry_of_20000_jobs_by_filter_leaves_the_server_answering(
    server_fast: ServerProcess,
) -> None:
    with httpx.Client(base_url=server_fast.url, timeout=120) as http:
        for start in range(0, BULK, MAX_BATCH):
            batch = [
                {"jobId": f"bulk-{n:05}", "queue": "bulk"} for n in range(start, start + MAX_BATCH)
            ]
            assert http.post("/jobs/submit", json=batch).status_code == 200
        assert counted(http, "cancel", {"filter": {"queue": "bulk"}}) == (BULK, BULK)

        probes: list[Probe] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=probing, args=(server_fast.url, kind, stop, probes))
            for kind in ("health", "stats", "submit")
        ]
        for thread in threads:
            thread.start()
        try:
            while len({probe.kind for probe in probes}) < 3:  # every prober is under way
                time.sleep(0.01)
            sent = time.monotonic()
            answer = act(http, "retry", {"filter": {"queue": "bulk"}})
            answered = time.monotonic()
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"matched": BULK, "changed": BULK}

        # Every probe was answered, and some were answered in the middle of the retry: a /stats
        # that saw it partly done, then a health check and a submit sent after that and answered
        # before the retry was.
        assert all(probe.response.status_code in (200, 201) for probe in probes)
        midway = [
            probe
            for probe in probes
            if probe.kind == "stats"
            and sent < probe.sent
            and probe.answered < answered
            and 0 < bulk_progress(probe) < BULK
        ]
        assert midway, "no /stats was answered while the retry was under way"
        seen = min(probe.answered for probe in midway)
        for kind in ("health", "submit"):
            assert any(
                probe.kind == kind and seen <= probe.sent and probe.answered < answered
                for probe in probes
            ), f"no {kind} was answered while the retry was under way"

        # Each job was retried once: all back in the queue, each with the one `cancelled`.
        assert counted(http, "retry", {"filter": {"queue": "bulk"}}) == (0, 0)
        stats = http.get("/stats").json()
        assert without_ages(stats)["queues"]["bulk"] == {
            "submitted": BULK,
            "running": 0,
            "succeeded": 0,
            "failed": 0,
            "oldestDueAgeSeconds": True,
        }
        submits = sum(probe.kind == "submit" for probe in probes)
        assert stats["queues"]["probes"]["submitted"] == submits
        jobs = []
        after = None
        while True:
            params: dict[str, Any] = {"queue": "bulk", "limit": 1000}
            if after is not None:
                params["after"] = after
            page = http.get("/jobs", params=params).json()
            if not page:
                break
            jobs += page
            after = page[-1]["jobId"]
        assert len(jobs) == BULK
        for job in jobs:
            assert (job["state"], job["attempts"]) == ("submitted", 0), job
            assert [e["error"] for e in job["errors"]] == ["cancelled"], job
