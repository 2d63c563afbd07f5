"""`submit_many`, `complete_many` and `next(count=)` against a mocked server (respx), both twins:
the arrays sent, how they are split, and how each item's result is read (CONTRACT §10)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from simplequeue import (
    AsyncClient,
    BatchResult,
    Client,
    ConnectionFailed,
    InvalidRequest,
    JobConflict,
    JobNotFound,
    LeaseLost,
    PayloadTooLarge,
    ServerError,
)
from simplequeue.client.batches import BATCH_BYTES, Batches
from simplequeue.models import MAX_BATCH, MAX_CLAIM_COUNT
from tests.client.conftest import Twin, job_json
from tests.client.test_requests import nested


def sent(route: respx.Route) -> list[list[Any]]:
    """The array each request to ``route`` carried, in order."""
    return [json.loads(call.request.content) for call in route.calls]


def echo(status: int = 201) -> Callable[[httpx.Request], httpx.Response]:
    """A server that accepts every item of a submitted array, with ``status``."""

    def answer(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        return httpx.Response(
            200, json=[{"status": status, "job": job_json(item["jobId"])} for item in items]
        )

    return answer


def problem(status: int, detail: str) -> httpx.Response:
    return httpx.Response(status, json={"status": status, "title": "t", "detail": detail})


# -- submit_many ----------------------------------------------------------------------------------


def test_submit_many_sends_one_array_and_reads_each_items_result(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/submit").respond(
        200,
        json=[
            {"status": 201, "job": job_json("new", data={"n": 1})},
            {"status": 200, "job": job_json("same")},
            {"status": 409, "detail": "job 'other' exists with other content"},
            {"status": 400, "detail": "`data` is nested too deeply"},
        ],
    )
    results = sdk.submit_many(
        [
            {"job_id": "new", "data": {"n": 1}},
            {"job_id": "same", "description": "d", "max_attempts": 2},
            {"job_id": "other"},
            {"job_id": "deep", "data": {"a": [[[]]]}},
        ]
    )

    assert sent(route) == [
        [
            {"jobId": "new", "description": None, "data": {"n": 1}},
            {"jobId": "same", "description": "d", "data": None, "maxAttempts": 2},
            {"jobId": "other", "description": None, "data": None},
            {"jobId": "deep", "description": None, "data": {"a": [[[]]]}},
        ]
    ]
    assert [(r.status, r.ok, r.created) for r in results] == [
        (201, True, True),
        (200, True, False),
        (409, False, False),
        (400, False, False),
    ]
    assert [r.job.job_id if r.job else None for r in results] == ["new", "same", None, None]
    assert results[0].job is not None
    assert results[0].job.data == {"n": 1}
    conflict, invalid = results[2].error, results[3].error
    assert type(conflict) is JobConflict
    assert (conflict.detail, conflict.status_code) == ("job 'other' exists with other content", 409)
    assert type(invalid) is InvalidRequest
    assert invalid.detail == "`data` is nested too deeply"


def test_an_item_the_client_knows_is_invalid_is_not_sent_and_gets_its_error(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/submit").mock(side_effect=echo())
    results = sdk.submit_many(
        [
            {"job_id": "a"},
            {"job_id": "next"},
            {"job_id": "b", "data": {"x": object()}},
            {"job_id": "c"},
        ]
    )
    assert [[item["jobId"] for item in array] for array in sent(route)] == [["a", "c"]]
    assert [r.status for r in results] == [201, 400, 400, 201]
    assert isinstance(results[1].error, InvalidRequest)
    assert "reserved" in results[1].error.detail
    assert isinstance(results[2].error, InvalidRequest)


def test_an_item_nested_beyond_the_encoder_gets_its_own_error_and_the_rest_are_sent(
    api: respx.MockRouter, sdk: Twin
) -> None:
    submits = api.post("/jobs/submit").mock(side_effect=echo())
    completes = api.post("/jobs/complete").respond(
        200, json=[{"status": 200, "job": job_json("b", "succeeded")}]
    )
    submitted = sdk.submit_many([{"job_id": "deep", "data": {"a": nested()}}, {"job_id": "b"}])
    completed = sdk.complete_many(
        [
            {"job_id": "deep", "status": "succeeded", "lease_id": "L", "result": nested()},
            {"job_id": "b", "status": "succeeded", "lease_id": "M"},
        ]
    )
    assert [[item["jobId"] for item in array] for array in sent(submits)] == [["b"]]
    assert [[item["jobId"] for item in array] for array in sent(completes)] == [["b"]]
    for results in (submitted, completed):
        assert [r.status for r in results] == [400, results[1].status]
        assert isinstance(results[0].error, InvalidRequest)
        assert "nested too deeply to encode" in results[0].error.detail
        assert results[1].ok


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"job_id": "a"}, {"job_id": "b", "colour": "red"}], "item 1: not a parameter: 'colour'"),
        ([{"jobId": "a"}], "item 0: not a parameter: 'jobId'"),
        ([{"description": "no id"}], "item 0: missing 'job_id'"),
        ([{"job_id": "a"}, "b"], "item 1 is a str, not a dict of parameters"),
    ],
)
def test_an_item_that_is_not_submits_parameters_raises_before_anything_is_sent(
    api: respx.MockRouter, sdk: Twin, items: list[Any], message: str
) -> None:
    route = api.post("/jobs/submit").mock(side_effect=echo())
    with pytest.raises(TypeError, match=message):
        sdk.submit_many(items)
    assert route.call_count == 0


def test_submit_many_takes_exactly_submits_parameters() -> None:
    from simplequeue.client.wire import complete_body, submit_body

    def names(function: Any) -> list[str]:
        return [name for name in inspect.signature(function).parameters if name != "self"]

    for client in (Client, AsyncClient):
        assert names(submit_body) == names(client.submit)
        assert names(complete_body) == names(client.complete)


def test_nothing_is_sent_for_no_items(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.post("/jobs/submit").mock(side_effect=echo())
    assert sdk.submit_many(iter([])) == []
    assert route.call_count == 0


def test_a_long_list_is_sent_in_arrays_of_at_most_a_batch_in_order(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/submit").mock(side_effect=echo())
    ids = [f"j{n}" for n in range(2 * MAX_BATCH + 500)]
    results = sdk.submit_many({"job_id": i} for i in ids)
    arrays = sent(route)
    assert [len(array) for array in arrays] == [MAX_BATCH, MAX_BATCH, 500]
    assert [item["jobId"] for array in arrays for item in array] == ids
    assert [r.job.job_id for r in results if r.job] == ids


def test_large_items_are_sent_in_arrays_under_the_body_limit(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/submit").mock(side_effect=echo())
    blob = "x" * (BATCH_BYTES // 5)
    ids = [f"big{n}" for n in range(12)]
    results = sdk.submit_many({"job_id": i, "data": {"blob": blob}} for i in ids)
    sizes = [len(call.request.content) for call in route.calls]
    assert len(sizes) == 3  # four a request: a fifth would pass the limit
    assert all(size <= BATCH_BYTES for size in sizes)
    assert [item["jobId"] for array in sent(route) for item in array] == ids
    assert all(r.ok for r in results)


def test_an_array_refused_as_too_large_is_split_until_one_item_is_refused_alone(
    api: respx.MockRouter, sdk: Twin
) -> None:
    # A server whose limit is lower than the client's: any array holding "huge" is refused.
    def answer(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        if any(item["jobId"] == "huge" for item in items):
            return problem(413, "the body is over 4096 bytes")
        return echo()(request)

    route = api.post("/jobs/submit").mock(side_effect=answer)
    ids = ["a", "b", "huge", "c", "d"]
    results = sdk.submit_many({"job_id": i} for i in ids)

    assert [r.status for r in results] == [201, 201, 413, 201, 201]
    assert type(results[2].error) is PayloadTooLarge
    assert results[2].error.detail == "the body is over 4096 bytes"
    arrays = [[item["jobId"] for item in array] for array in sent(route)]
    # The whole, then halves, until "huge" is alone; every other item is sent once, in order.
    assert arrays[0] == ids
    assert ["huge"] in arrays
    accepted = [i for array in arrays if "huge" not in array for i in array]
    assert accepted == ["a", "b", "c", "d"]


def test_submit_many_is_retried_like_submit(api: respx.MockRouter, sdk: Twin) -> None:
    failures: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.Response(503),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        if not failures:
            return echo()(request)
        failure = failures.pop(0)
        if isinstance(failure, Exception):
            raise failure
        return failure

    route = api.post("/jobs/submit").mock(side_effect=answer)
    results = sdk.submit_many([{"job_id": "a"}, {"job_id": "b"}])
    assert [r.status for r in results] == [201, 201]
    assert sent(route) == [sent(route)[0]] * 3  # the same array each time
    assert len(sdk.delays) == 2


def test_a_whole_request_that_fails_raises(api: respx.MockRouter, make_sdk: Any) -> None:
    api.post("/jobs/submit").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ConnectionFailed):
        make_sdk(retries=0).submit_many([{"job_id": "a"}])


@pytest.mark.parametrize(
    "answer",
    [
        [{"status": 201, "job": job_json("a")}],  # one result for two items
        {"status": 201, "job": job_json("a")},  # not an array
        [{"status": 201}, {"status": 201}],  # a success without its job
    ],
)
def test_an_answer_that_does_not_match_the_items_is_a_server_error(
    api: respx.MockRouter, sdk: Twin, answer: object
) -> None:
    api.post("/jobs/submit").respond(200, json=answer)
    with pytest.raises(ServerError, match="could not be read"):
        sdk.submit_many([{"job_id": "a"}, {"job_id": "b"}])


# -- complete_many --------------------------------------------------------------------------------


def test_complete_many_sends_the_completions_and_reads_lost_leases(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/complete").respond(
        200,
        json=[
            {"status": 200, "job": job_json("a", "succeeded", result={"ok": True})},
            {"status": 409, "detail": "lease lost: the job was taken back"},
            {"status": 404, "detail": "no job 'gone'"},
            {"status": 409, "detail": "job 'd' is not running"},
        ],
    )
    results = sdk.complete_many(
        [
            {"job_id": "a", "status": "succeeded", "lease_id": "L1", "result": {"ok": True}},
            {"job_id": "b", "status": "failed", "lease_id": "L2", "error": "e", "retry": True},
            {"job_id": "gone", "status": "failed"},
            {"job_id": "d", "status": "succeeded"},
        ]
    )
    assert sent(route) == [
        [
            {"jobId": "a", "status": "succeeded", "leaseId": "L1", "result": {"ok": True}},
            {"jobId": "b", "status": "failed", "leaseId": "L2", "error": "e", "retry": True},
            {"jobId": "gone", "status": "failed"},
            {"jobId": "d", "status": "succeeded"},
        ]
    ]
    assert results[0].job is not None
    assert results[0].job.result == {"ok": True}
    assert [type(r.error) for r in results[1:]] == [LeaseLost, JobNotFound, JobConflict]


def test_a_completion_that_mixes_what_goes_with_the_other_status_is_refused_unsent(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/complete").respond(200, json=[])
    results = sdk.complete_many(
        [{"job_id": "a", "status": "succeeded", "error": "no"}, {"job_id": "b", "status": "won"}]
    )
    assert [type(r.error) for r in results] == [InvalidRequest, InvalidRequest]
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("completions", "attempts"),
    [
        # Every item is harmless to repeat: resent after a lost answer.
        ([{"job_id": "a", "status": "succeeded"}, {"job_id": "b", "status": "failed"}], 2),
        ([{"job_id": "a", "status": "failed", "lease_id": "L", "retry": True}], 2),
        # One retry without a lease could end the attempt after it: the array is not resent.
        (
            [
                {"job_id": "a", "status": "succeeded"},
                {"job_id": "b", "status": "failed", "retry": True},
            ],
            1,
        ),
    ],
)
def test_complete_many_is_resent_only_when_every_item_may_be(
    api: respx.MockRouter, sdk: Twin, completions: list[dict[str, Any]], attempts: int
) -> None:
    lost = [httpx.ReadTimeout("lost")]  # the first answer is lost

    def answer(request: httpx.Request) -> httpx.Response:
        if lost:
            raise lost.pop()
        items = json.loads(request.content)
        return httpx.Response(
            200, json=[{"status": 200, "job": job_json(i["jobId"], i["status"])} for i in items]
        )

    route = api.post("/jobs/complete").mock(side_effect=answer)
    if attempts == 1:
        with pytest.raises(ConnectionFailed):
            sdk.complete_many(completions)
    else:
        assert all(r.ok for r in sdk.complete_many(completions))
    assert route.call_count == attempts


# -- next(count=) ---------------------------------------------------------------------------------


def test_next_with_a_count_takes_up_to_that_many_jobs(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs/next").respond(
        200,
        json=[
            job_json("a", "running", attempts=1, leaseId="L1"),
            job_json("b", "running", attempts=1, leaseId="L2"),
        ],
    )
    jobs = sdk.next(count=5, wait=2, lease=60)
    assert [(job.job_id, job.lease_id) for job in jobs] == [("a", "L1"), ("b", "L2")]
    assert list(route.calls.last.request.url.params.multi_items()) == [
        ("count", "5"),
        ("wait", "2"),
        ("lease", "60"),
    ]


def test_next_with_a_count_on_an_empty_queue_is_an_empty_list(
    api: respx.MockRouter, sdk: Twin
) -> None:
    api.get("/jobs/next").respond(200, json=[])
    assert sdk.next(count=3) == []


@pytest.mark.parametrize("count", [0, MAX_CLAIM_COUNT + 1, -1, True, 2.0])
def test_a_count_out_of_range_is_refused_without_a_request(
    api: respx.MockRouter, sdk: Twin, count: Any
) -> None:
    route = api.get("/jobs/next").respond(200, json=[])
    with pytest.raises(InvalidRequest, match="`count`"):
        sdk.next(count=count)
    assert route.call_count == 0


def test_a_batch_result_says_whether_it_succeeded() -> None:
    refused = BatchResult(409, error=JobConflict("no"))
    assert (refused.ok, refused.created, refused.job) == (False, False, None)


def test_results_refuse_an_item_left_without_one() -> None:
    # Had results() skipped the unanswered item, the caller would pair "b"'s result with "a".
    batches = Batches("/jobs/submit", [b'{"jobId":"a"}', InvalidRequest("bad")], [True, True])
    with pytest.raises(RuntimeError, match="before every batch was sent"):
        batches.results()
    assert batches.next_call() is not None  # sent, but its answer never recorded
    with pytest.raises(RuntimeError, match="item 0 of 2 has no result"):
        batches.results()
