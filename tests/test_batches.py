"""CONTRACT §10 over HTTP, against the app in process on both stores: an array of submits or of
completions is answered 200 with one result per item, in order, each decided as if it had been
sent alone; ``GET /jobs/next?count=N`` hands out an array of up to N jobs, each under a lease of
its own. Whole-batch refusals (no items, too many, not JSON) are problem documents and change
nothing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import TestClient

from simplequeue.jsontext import MAX_DEPTH
from simplequeue.models import MAX_BATCH, MAX_CLAIM_COUNT
from tests.servers import open_client, totals, without_ages
from tests.test_api_contract import assert_job, assert_problem

Client = TestClient[Any]
Json = dict[str, Any]
JSON = {"content-type": "application/json"}


def post(client: Client, path: str, body: Any) -> httpx.Response:
    """``body`` as JSON, or as sent when it is already bytes."""
    if isinstance(body, bytes):
        return client.post(path, content=body, headers=JSON)
    return client.post(path, json=body)


def results(response: httpx.Response, length: int) -> list[Json]:
    """A batch's answer: 200, a JSON array of ``length`` results, each exactly
    ``{"status", "job"}`` (a success) or ``{"status", "detail"}`` (a refusal)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "location" not in response.headers  # one answer for many jobs: no one place
    answer = response.json()
    assert isinstance(answer, list)
    assert len(answer) == length
    for item in answer:
        assert isinstance(item, dict)
        if item["status"] in (200, 201):
            assert set(item) == {"status", "job"}, item
            assert_job(item["job"])
        else:
            assert item["status"] in (400, 404, 409), item
            assert set(item) == {"status", "detail"}, item
            assert isinstance(item["detail"], str)
            assert item["detail"]
    return answer


def statuses(answer: list[Json]) -> list[int]:
    return [item["status"] for item in answer]


def stored_ids(client: Client) -> list[str]:
    return [job["jobId"] for job in client.get("/jobs", params={"limit": 1000}).json()]


def get(client: Client, job_id: str) -> Json:
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: Json = response.json()
    return job


def nested(levels: int) -> bytes:
    """A JSON object ``levels`` deep: {"a": {"a": ... {} ...}}."""
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def take(client: Client, count: int, **params: Any) -> list[Json]:
    response = client.get("/jobs/next", params={"count": count, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    jobs = response.json()
    assert isinstance(jobs, list)
    for job in jobs:
        assert_job(job, lease=True)
    return jobs


# -- POST /jobs/submit with an array ----------------------------------------------------------


def test_a_batch_of_new_jobs_is_answered_in_order_and_stored_in_that_order(client: Client) -> None:
    batch = [{"jobId": f"b{n}", "description": f"#{n}", "data": {"n": n}} for n in (3, 1, 2, 0)]
    answer = results(post(client, "/jobs/submit", batch), len(batch))
    assert statuses(answer) == [201] * 4
    for sent, item in zip(batch, answer, strict=True):
        job = item["job"]
        assert (job["jobId"], job["description"], job["data"]) == (
            sent["jobId"],
            sent["description"],
            sent["data"],
        )
        assert (job["state"], job["attempts"]) == ("submitted", 0)
        assert get(client, job["jobId"]) == job  # the answer is what was stored
    # Submission order is the batch's order (not the ids' order): FIFO goes by it.
    assert stored_ids(client) == ["b3", "b1", "b2", "b0"]
    assert [job["jobId"] for job in take(client, 4)] == ["b3", "b1", "b2", "b0"]


def test_a_mixed_batch_answers_each_item_as_if_it_had_been_sent_alone(
    client: Client, backend: str, tmp_path: Path
) -> None:
    old = post(client, "/jobs/submit", {"jobId": "old", "description": "d", "data": {"a": 1}})
    assert old.status_code == 201
    before = old.json()
    batch: list[Any] = [
        {"jobId": "new", "data": {"x": 1}},
        {"jobId": "old", "description": "d", "data": {"a": 1}},
        {"jobId": "old", "description": "d", "data": {"a": 2}},
        {"jobId": "old", "description": "other", "data": {"a": 1}},
        {"jobId": "old", "description": "other", "data": {"a": 2}},
        {"jobId": "old", "data": {"a": 1}},
    ]
    answer = results(post(client, "/jobs/submit", batch), len(batch))
    assert statuses(answer) == [201, 200, 409, 409, 409, 409]
    assert answer[1]["job"] == before  # the stored job, unchanged
    assert "data" in answer[2]["detail"]
    assert "description" not in answer[2]["detail"]
    assert "description" in answer[3]["detail"]
    assert "data" not in answer[3]["detail"]
    assert "description" in answer[4]["detail"]
    assert "data" in answer[4]["detail"]
    assert "description" in answer[5]["detail"]  # absent is null, and "d" is not null
    for item in answer[2:]:
        assert "'old'" in item["detail"]
    assert get(client, "old") == before
    assert stored_ids(client) == ["old", "new"]

    # The same items one at a time, on a twin of the store as it was: the same answers.
    alone = []
    (tmp_path / "twin").mkdir()
    with open_client(tmp_path / "twin", backend) as twin:
        post(twin, "/jobs/submit", {"jobId": "old", "description": "d", "data": {"a": 1}})
        for item in batch:
            alone.append(post(twin, "/jobs/submit", item).status_code)
    assert alone == statuses(answer)


INVALID_ITEMS: list[tuple[bytes, str]] = [
    (b"5", "object"),
    (b'"text"', "object"),
    (b"null", "object"),
    (b"[]", "object"),
    (b'[{"jobId": "inner"}]', "object"),  # an array in an array is not a job
    (b'{"data": {}}', "jobId"),
    (b'{"jobId": 3}', "jobId"),
    (b'{"jobId": ""}', "jobId"),
    (b'{"jobId": "' + b"x" * 257 + b'"}', "jobId"),
    (b'{"jobId": "ctl\\u0001"}', "jobId"),
    (b'{"jobId": "next"}', "reserved"),
    (b'{"jobId": "submit"}', "reserved"),
    (b'{"jobId": "complete"}', "reserved"),
    (b'{"jobId": "bad-desc", "description": 5}', "description"),
    (b'{"jobId": "bad-data", "data": [1]}', "data"),
    (b'{"jobId": "bad-data2", "data": "text"}', "data"),
    (b'{"jobId": "bad-state", "state": "running"}', "state"),
    (b'{"jobId": "bad-field", "bogus": 1}', "bogus"),
    (b'{"jobId": "deep", "data": ' + nested(MAX_DEPTH + 1) + b"}", "data"),
    (b'{"jobId": "dup-a", "jobId": "dup-b"}', "jobId"),
    (b'{"jobId": "dup-data", "data": {"k": 1, "k": 2}}', "'k'"),
]


def test_invalid_items_are_400_naming_the_field_and_the_valid_ones_are_stored(
    client: Client,
) -> None:
    # Each invalid item sits between two valid ones, so that none can take a neighbour down.
    parts: list[bytes] = []
    valid: list[str] = []
    for n, (item, _) in enumerate(INVALID_ITEMS):
        valid.append(f"ok-{n}")
        parts += [b'{"jobId": "ok-%d", "data": {"n": %d}}' % (n, n), item]
    valid.append("ok-last")
    parts.append(b'{"jobId": "ok-last"}')
    answer = results(post(client, "/jobs/submit", b"[" + b", ".join(parts) + b"]"), len(parts))

    assert statuses(answer)[::2] == [201] * len(valid)
    for (item, named), refused in zip(INVALID_ITEMS, answer[1::2], strict=True):
        assert refused["status"] == 400, (item, refused)
        assert named in refused["detail"], (item, refused["detail"])
    assert stored_ids(client) == valid  # and nothing of the invalid ones, in the batch's order
    assert client.get("/stats").json()["total"] == len(valid)


def test_data_as_deep_as_allowed_is_accepted_in_a_batch(client: Client) -> None:
    """The array around the items is not a level of their ``data``."""
    body = b'[{"jobId": "deepest", "data": ' + nested(MAX_DEPTH) + b"}]"
    assert statuses(results(post(client, "/jobs/submit", body), 1)) == [201]
    assert get(client, "deepest")["data"] == msgspec.json.decode(nested(MAX_DEPTH))


def test_an_item_nested_beyond_the_decoders_own_limit_is_refused_on_its_own(
    client: Client,
) -> None:
    """Sent alone, a job whose ``data`` nests 5,000 levels is a 400 (tests/test_bugs.py bug
    13); in a batch it must be that item's 400, and its neighbours are still stored."""
    body = (
        b'[{"jobId": "before"}, {"jobId": "abyss", "data": '
        + nested(5000)
        + b'}, {"jobId": "after"}]'
    )
    answer = results(post(client, "/jobs/submit", body), 3)
    assert statuses(answer) == [201, 400, 201]
    assert "data" in answer[1]["detail"]
    assert stored_ids(client) == ["before", "after"]


def test_the_same_id_twice_in_one_batch_is_answered_as_a_second_submit(client: Client) -> None:
    batch = [
        {"jobId": "twice", "data": {"n": 1}},
        {"jobId": "twice", "data": {"n": 1}},
        {"jobId": "twice", "data": {"n": 2}},
        {"jobId": "twice", "data": {"n": 1}},
    ]
    answer = results(post(client, "/jobs/submit", batch), 4)
    assert statuses(answer) == [201, 200, 409, 200]
    assert answer[1]["job"] == answer[0]["job"] == answer[3]["job"]
    assert "data" in answer[2]["detail"]
    assert get(client, "twice")["data"] == {"n": 1}
    assert totals(client.get("/stats").json()) == {
        "submitted": 1,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "total": 1,
    }
    assert [job["jobId"] for job in take(client, 5)] == ["twice"]  # queued once


def test_a_batch_of_exactly_the_limit_is_accepted(client: Client) -> None:
    batch = [{"jobId": f"m{n:04}"} for n in range(MAX_BATCH)]
    answer = results(post(client, "/jobs/submit", batch), MAX_BATCH)
    assert Counter(statuses(answer)) == {201: MAX_BATCH}
    assert [item["job"]["jobId"] for item in answer] == [job["jobId"] for job in batch]
    assert client.get("/stats").json()["submitted"] == MAX_BATCH


@pytest.mark.parametrize("path", ["/jobs/submit", "/jobs/complete"])
@pytest.mark.parametrize("size", [0, MAX_BATCH + 1])
def test_an_empty_or_oversized_batch_is_one_400_and_stores_nothing(
    client: Client, path: str, size: int
) -> None:
    assert post(client, "/jobs/submit", {"jobId": "kept"}).status_code == 201
    if path == "/jobs/submit":
        batch: list[Json] = [{"jobId": f"o{n}"} for n in range(size)]
    else:
        batch = [{"jobId": "kept", "status": "succeeded"}] * size
    before = client.get("/jobs").json(), without_ages(client.get("/stats").json())
    problem = assert_problem(post(client, path, batch), 400, str(size), str(MAX_BATCH))
    assert set(problem) >= {"status", "title", "detail"}
    assert (client.get("/jobs").json(), without_ages(client.get("/stats").json())) == before


@pytest.mark.parametrize("path", ["/jobs/submit", "/jobs/complete"])
@pytest.mark.parametrize(
    "content",
    [
        b"[",
        b'[{"jobId": "a"},',
        b'[{"jobId": "a"}] trailing',
        b'[{"jobId": "a"}, ]',
        b"[{'jobId': 'a'}]",
        b'[{"jobId": "a"}]]',
        b"\xff[]",
        b"[" * 100_000 + b"]",
        b'[{"jobId": "a"}, ' + b"[" * 100_000 + b"]" * 99_999,
    ],
)
def test_a_batch_body_that_is_not_json_is_one_400(
    client: Client, path: str, content: bytes
) -> None:
    before = client.get("/jobs").json(), without_ages(client.get("/stats").json())
    assert_problem(post(client, path, content), 400)
    assert (client.get("/jobs").json(), without_ages(client.get("/stats").json())) == before


@pytest.mark.parametrize("path", ["/jobs/submit", "/jobs/complete"])
def test_a_batch_whose_one_item_is_nested_100000_deep_refuses_that_item_only(
    client: Client, path: str
) -> None:
    # Valid JSON, too deep for any decoder: an array holding one array, 99,999 levels deep.
    answer = post(client, path, b"[" * 100_000 + b"]" * 100_000)
    assert answer.status_code == 200, answer.text
    (item,) = answer.json()
    assert item["status"] == 400
    assert item["detail"] == "invalid item: Expected `object`, got `array`"
    assert client.get("/stats").json()["total"] == 0


# -- GET /jobs/next?count=N -------------------------------------------------------------------


def test_next_with_count_hands_out_up_to_n_in_order_each_under_its_own_lease(
    client: Client,
) -> None:
    batch = [{"jobId": f"q{n}", "data": {"n": n}} for n in range(5)]
    assert statuses(results(post(client, "/jobs/submit", batch), 5)) == [201] * 5
    first = take(client, 3)
    assert [job["jobId"] for job in first] == ["q0", "q1", "q2"]
    assert {(job["state"], job["attempts"]) for job in first} == {("running", 1)}
    rest = take(client, 3)  # fewer left than asked for: what there is
    assert [job["jobId"] for job in rest] == ["q3", "q4"]
    leases = [job["leaseId"] for job in first + rest]
    assert len(set(leases)) == 5
    # Each lease holds its own job, and only that one.
    lost = post(
        client, "/jobs/complete", {"jobId": "q0", "status": "succeeded", "leaseId": leases[1]}
    )
    assert_problem(lost, 409, "lease lost")
    for job in first + rest:
        done = post(
            client,
            "/jobs/complete",
            {"jobId": job["jobId"], "status": "succeeded", "leaseId": job["leaseId"]},
        )
        assert done.status_code == 200, done.text
    assert client.get("/stats").json()["succeeded"] == 5


def test_next_with_count_on_an_empty_queue_is_200_with_an_empty_array(client: Client) -> None:
    response = client.get("/jobs/next", params={"count": 10})
    assert response.status_code == 200
    assert response.json() == []
    # Without `count` the answer is still the single job's: 204 when there is none.
    assert client.get("/jobs/next").status_code == 204


def test_next_with_count_one_is_still_an_array(client: Client) -> None:
    assert post(client, "/jobs/submit", {"jobId": "only"}).status_code == 201
    assert [job["jobId"] for job in take(client, 1)] == ["only"]


def test_next_with_the_largest_count_hands_out_that_many(client: Client) -> None:
    batch = [{"jobId": f"c{n:03}"} for n in range(MAX_CLAIM_COUNT + 20)]
    results(post(client, "/jobs/submit", batch), len(batch))
    jobs = take(client, MAX_CLAIM_COUNT)
    assert [job["jobId"] for job in jobs] == [job["jobId"] for job in batch[:MAX_CLAIM_COUNT]]
    assert len({job["leaseId"] for job in jobs}) == MAX_CLAIM_COUNT
    assert client.get("/stats").json()["submitted"] == 20


@pytest.mark.parametrize("count", ["0", str(MAX_CLAIM_COUNT + 1), "x", "-1", "1.5", ""])
def test_next_with_count_out_of_range_is_400_naming_it_and_claims_nothing(
    client: Client, count: str
) -> None:
    assert post(client, "/jobs/submit", {"jobId": "waiting"}).status_code == 201
    assert_problem(client.get(f"/jobs/next?count={count}"), 400, "count")
    assert get(client, "waiting")["state"] == "submitted"


def test_next_with_count_and_wait_on_an_empty_queue_answers_an_empty_array_after_the_wait(
    client: Client,
) -> None:
    started = time.monotonic()
    response = client.get("/jobs/next", params={"count": 5, "wait": 1})
    assert time.monotonic() - started >= 0.9  # it waited (a lower bound, not a speed)
    assert response.status_code == 200
    assert response.json() == []


def test_next_with_count_and_wait_is_woken_by_a_batch_submit(client: Client) -> None:
    wait = 20
    answered: list[tuple[httpx.Response, float]] = []

    def waiter() -> None:
        # The sync TestClient is safe to share between threads: every request runs on the
        # app's one event loop (the async one runs requests on another loop than the app's).
        started = time.monotonic()
        answer = client.get("/jobs/next", params={"count": 5, "wait": wait})
        answered.append((answer, time.monotonic() - started))

    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        time.sleep(0.3)  # not needed for correctness: a late waiter takes the jobs at once
        batch = [{"jobId": f"w{n}"} for n in range(3)]
        assert statuses(results(post(client, "/jobs/submit", batch), 3)) == [201] * 3
    finally:
        thread.join(timeout=wait + 10)
    assert not thread.is_alive(), "the waiter never got an answer"
    ((answer, took),) = answered
    assert answer.status_code == 200, answer.text
    # The batch was committed as one, so the woken waiter finds all three, in order.
    assert [job["jobId"] for job in answer.json()] == ["w0", "w1", "w2"]
    assert took < wait  # woken by the submit, not by its wait running out
    stats = client.get("/stats").json()
    assert (stats["running"], stats["submitted"]) == (3, 0)


# -- POST /jobs/complete with an array --------------------------------------------------------


def test_a_mixed_batch_of_completions_answers_each_as_if_sent_alone(client: Client) -> None:
    batch = [{"jobId": f"j{n}"} for n in range(8)]
    results(post(client, "/jobs/submit", batch), 8)
    lease = {job["jobId"]: job["leaseId"] for job in take(client, 6)}  # j6, j7 stay submitted
    early = post(client, "/jobs/complete", {"jobId": "j5", "status": "succeeded"})
    assert early.status_code == 200
    completions: list[Any] = [
        {"jobId": "j0", "status": "succeeded", "leaseId": lease["j0"], "result": {"r": [1, 2]}},
        {"jobId": "j1", "status": "failed", "leaseId": lease["j1"], "error": "boom"},
        {
            "jobId": "j2",
            "status": "failed",
            "leaseId": lease["j2"],
            "error": "again",
            "retry": True,
        },
        {"jobId": "j3", "status": "succeeded", "leaseId": "not-its-lease"},
        {"jobId": "nope", "status": "succeeded"},
        {"jobId": "j5", "status": "succeeded"},  # already applied, without a lease
        {"jobId": "j6", "status": "succeeded"},  # never handed out
        {"jobId": "j4", "status": "maybe"},
        {"jobId": "j4", "status": "succeeded", "error": "x"},
        {"jobId": "j4", "status": "failed", "result": {}},
        {"status": "succeeded"},
        7,
        {"jobId": "j0", "status": "succeeded", "leaseId": lease["j0"], "result": {"r": [1, 2]}},
        # The lease that ended it (§7: a repeat is known by its lease, whatever the status).
        {"jobId": "j1", "status": "succeeded", "leaseId": lease["j1"]},
    ]
    answer = results(post(client, "/jobs/complete", completions), len(completions))
    assert statuses(answer) == [
        200,
        200,
        200,
        409,
        404,
        200,
        409,
        400,
        400,
        400,
        400,
        400,
        200,
        200,
    ]
    j0, j1, j2 = (answer[n]["job"] for n in range(3))
    assert (j0["state"], j0["result"], j0["leaseExpiresAt"]) == ("succeeded", {"r": [1, 2]}, None)
    assert (j1["state"], [e["error"] for e in j1["errors"]]) == ("failed", ["boom"])
    assert (j2["state"], j2["attempts"], j2["finishedAt"]) == ("submitted", 1, None)
    assert answer[3]["detail"].startswith("lease lost")
    assert "'nope'" in answer[4]["detail"]
    assert answer[5]["job"] == early.json()
    assert "'j6'" in answer[6]["detail"]
    named_fields = ["status", "error", "result", "jobId", "object"]
    for refused, named in zip(answer[7:12], named_fields, strict=True):
        assert named in refused["detail"], (named, refused["detail"])
    assert answer[12]["job"] == j0  # the same completion again: applied once, answered as is
    assert answer[13]["job"] == j1  # still failed: nothing changed

    # What each job is now, and /stats agrees with the jobs themselves.
    assert get(client, "j0") == j0
    assert get(client, "j1") == j1
    assert get(client, "j3")["state"] == "running"
    assert get(client, "j4")["state"] == "running"  # every invalid item changed nothing
    jobs = client.get("/jobs", params={"limit": 1000}).json()
    counts = Counter(job["state"] for job in jobs)
    assert counts == {"submitted": 3, "running": 2, "succeeded": 2, "failed": 1}
    assert totals(client.get("/stats").json()) == {**dict(counts), "total": 8}
    # The retried job is back in the queue, due after its backoff (none here): after j6 and j7,
    # due since their submit (§8: earliest `runAt` first).
    assert [job["jobId"] for job in take(client, 5)] == ["j6", "j7", "j2"]


def test_a_job_completed_twice_in_one_batch_is_applied_once(client: Client) -> None:
    results(post(client, "/jobs/submit", [{"jobId": "a"}, {"jobId": "b"}]), 2)
    a, _ = take(client, 2)
    completions = [
        {"jobId": "a", "status": "succeeded", "leaseId": a["leaseId"]},
        {"jobId": "a", "status": "succeeded", "leaseId": a["leaseId"]},
        {"jobId": "b", "status": "failed"},
        {"jobId": "b", "status": "failed"},
        {"jobId": "b", "status": "succeeded"},
    ]
    answer = results(post(client, "/jobs/complete", completions), 5)
    assert statuses(answer) == [200, 200, 200, 200, 409]
    assert answer[0]["job"] == answer[1]["job"]
    assert answer[2]["job"] == answer[3]["job"]
    assert "failed" in answer[4]["detail"]
    assert [e["error"] for e in get(client, "b")["errors"]] == ["failed"]  # one attempt ended
    assert totals(client.get("/stats").json()) == {
        "submitted": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 1,
        "total": 2,
    }
