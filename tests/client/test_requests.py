"""The SDK's requests and how it reads answers, against a mocked server (respx): both twins."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from simplequeue import (
    Client,
    CompletionStatus,
    ConnectionFailed,
    InvalidRequest,
    JobConflict,
    JobNotFound,
    JobState,
    PayloadTooLarge,
    RequestError,
    ServerError,
    SimpleQueueError,
    Stats,
)
from simplequeue.models import HISTORY_SECONDS, StatsHistory
from tests.client.conftest import URL, Twin, job_json


def body(route: respx.Route) -> object:
    return json.loads(route.calls.last.request.content)


def problem(status: int, detail: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"status": status, "title": "t", "detail": detail},
        headers={"Content-Type": "application/problem+json"},
    )


# -- one test per endpoint: the request it sends and the model it returns -----------------------


def test_submit_sends_the_job_and_returns_it_decoded(api: respx.MockRouter, sdk: Twin) -> None:
    answer = job_json("invoice-42", description="send it", data={"amount": 12})
    route = api.post("/jobs/submit").respond(201, json=answer)

    job = sdk.submit("invoice-42", "send it", {"amount": 12})

    assert body(route) == {"jobId": "invoice-42", "description": "send it", "data": {"amount": 12}}
    assert route.calls.last.request.headers["Content-Type"] == "application/json"
    assert job.job_id == "invoice-42"
    assert job.data == {"amount": 12}
    assert job.state is JobState.SUBMITTED
    assert job.created_at == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_submit_without_description_or_data_sends_nulls(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.post("/jobs/submit").respond(201, json=job_json("bare"))
    sdk.submit("bare")
    assert body(route) == {"jobId": "bare", "description": None, "data": None}


def test_submit_refuses_a_reserved_id_without_a_request(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.post("/jobs/submit")
    with pytest.raises(InvalidRequest, match="reserved"):
        sdk.submit("next")
    assert not route.called


def nested(levels: int = 100_000) -> list[Any]:
    """A value nested deeper than msgspec can follow: encoding it raises `RecursionError`."""
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def test_data_or_a_result_nested_beyond_the_encoder_is_refused_without_a_request(
    api: respx.MockRouter, sdk: Twin
) -> None:
    submit, complete = api.post("/jobs/submit"), api.post("/jobs/complete")
    with pytest.raises(InvalidRequest, match="nested too deeply to encode"):
        sdk.submit("deep", data={"a": nested()})
    with pytest.raises(InvalidRequest, match="nested too deeply to encode"):
        sdk.complete("deep", "succeeded", lease_id="L", result=nested())
    assert not submit.called
    assert not complete.called


def test_next_takes_a_job(api: respx.MockRouter, sdk: Twin) -> None:
    api.get("/jobs/next").respond(200, json=job_json("j", "running", attempts=1))
    job = sdk.next()
    assert job is not None
    assert (job.job_id, job.state, job.attempts) == ("j", JobState.RUNNING, 1)


def test_next_on_an_empty_queue_is_none(api: respx.MockRouter, sdk: Twin) -> None:
    api.get("/jobs/next").respond(204)
    assert sdk.next() is None


@pytest.mark.parametrize("status", [CompletionStatus.FAILED, "failed"])
def test_complete_sends_the_status(
    api: respx.MockRouter, sdk: Twin, status: CompletionStatus | str
) -> None:
    route = api.post("/jobs/complete").respond(200, json=job_json("j", "failed"))
    assert sdk.complete("j", status).state is JobState.FAILED
    assert body(route) == {"jobId": "j", "status": "failed"}


def test_complete_refuses_an_unknown_status_without_a_request(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/complete")
    with pytest.raises(InvalidRequest, match="'succeeded' or 'failed'"):
        sdk.complete("j", "done")
    assert not route.called


@pytest.mark.parametrize(
    ("job_id", "encoded"),
    [
        ("plain", "plain"),
        ("a/b", "a%2Fb"),
        ("50%", "50%25"),
        ("q?x#y", "q%3Fx%23y"),
        ("sp ace", "sp%20ace"),
        ("été", "%C3%A9t%C3%A9"),
        ("next", "next"),
    ],
)
def test_get_percent_encodes_the_id(
    api: respx.MockRouter, sdk: Twin, job_id: str, encoded: str
) -> None:
    route = api.get(url__regex=r"/jobs/.+").respond(200, json=job_json(job_id))
    assert sdk.get(job_id).job_id == job_id
    assert route.calls.last.request.url.raw_path == f"/jobs/{encoded}".encode()


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, []),
        ("running", ["running"]),
        (JobState.FAILED, ["failed"]),
        ([JobState.SUBMITTED, "running"], ["submitted", "running"]),
    ],
)
def test_list_jobs_sends_the_query(
    api: respx.MockRouter, sdk: Twin, state: object, expected: list[str]
) -> None:
    route = api.get("/jobs").respond(200, json=[job_json("a"), job_json("b")])

    jobs = sdk.list_jobs(state, limit=7, after="a/b")

    assert [job.job_id for job in jobs] == ["a", "b"]
    params = route.calls.last.request.url.params
    assert params.get_list("state") == expected
    assert (params["limit"], params["after"]) == ("7", "a/b")


def test_list_jobs_defaults(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs").respond(200, json=[])
    assert sdk.list_jobs() == []
    assert list(route.calls.last.request.url.params.multi_items()) == [("limit", "100")]


def test_list_jobs_sends_before_order_and_prefix(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs").respond(200, json=[job_json("b"), job_json("a")])

    jobs = sdk.list_jobs("running", 5, "x", before="z/9", order="desc", prefix="inv-")

    assert [job.job_id for job in jobs] == ["b", "a"]
    assert list(route.calls.last.request.url.params.multi_items()) == [
        ("state", "running"),
        ("limit", "5"),
        ("after", "x"),
        ("before", "z/9"),
        ("order", "desc"),
        ("prefix", "inv-"),
    ]


def test_the_default_order_is_not_sent(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs").respond(200, json=[])
    sdk.list_jobs(order="asc", before="b")
    assert list(route.calls.last.request.url.params.multi_items()) == [
        ("limit", "100"),
        ("before", "b"),
    ]


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("a b", "a+b"),  # a query's space; the app reads it back as one (test_against_app)
        ("50%_", "50%25_"),
        ("x&state=failed", "x%26state%3Dfailed"),
        ("1+1", "1%2B1"),
        ("q?#", "q%3F%23"),
        ("été", "%C3%A9t%C3%A9"),
    ],
)
def test_prefix_and_before_are_percent_encoded_in_the_query(
    api: respx.MockRouter, sdk: Twin, text: str, encoded: str
) -> None:
    route = api.get("/jobs").respond(200, json=[])
    sdk.list_jobs(before=text, prefix=text)
    request = route.calls.last.request
    assert request.url.query == f"limit=100&before={encoded}&prefix={encoded}".encode()
    assert (request.url.params["before"], request.url.params["prefix"]) == (text, text)


def test_an_unknown_order_is_refused_without_a_request(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs")
    with pytest.raises(InvalidRequest, match="'asc' or 'desc'"):
        sdk.list_jobs(order="newest")
    with pytest.raises(InvalidRequest, match="'asc' or 'desc'"):
        sdk.iter_jobs(order="DESC")
    assert not route.called


def paged(request: httpx.Request) -> httpx.Response:
    """Five jobs, two per page, linked the way the server links them."""
    ids = [f"j{i}" for i in range(5)]
    after = request.url.params.get("after")
    start = ids.index(after) + 1 if after else 0
    limit = int(request.url.params["limit"])
    page = ids[start : start + limit]
    headers = {}
    if start + limit < len(ids):
        headers["Link"] = f'</jobs?state=submitted&limit={limit}&after={page[-1]}>; rel="next"'
    return httpx.Response(200, json=[job_json(i) for i in page], headers=headers)


def test_iter_jobs_follows_the_next_links(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs").mock(side_effect=paged)

    jobs = sdk.iter_jobs(state="submitted", page_size=2)

    assert [job.job_id for job in jobs] == ["j0", "j1", "j2", "j3", "j4"]
    assert route.call_count == 3
    assert [call.request.url.params.get("after") for call in route.calls] == [None, "j1", "j3"]
    assert all(call.request.url.params["state"] == "submitted" for call in route.calls)


def newest_first(request: httpx.Request) -> httpx.Response:
    """Five jobs whose ids start with "p", two per page, newest first, linked like the server."""
    ids = [f"p{i}" for i in range(4, -1, -1)]
    before = request.url.params.get("before")
    start = ids.index(before) + 1 if before else 0
    limit = int(request.url.params["limit"])
    page = ids[start : start + limit]
    headers = {}
    if start + limit < len(ids):
        link = f"/jobs?limit={limit}&prefix=p&order=desc&before={page[-1]}"
        headers["Link"] = f'<{link}>; rel="next"'
    return httpx.Response(200, json=[job_json(i) for i in page], headers=headers)


def test_iter_jobs_newest_first_follows_the_before_links(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs").mock(side_effect=newest_first)

    jobs = sdk.iter_jobs(page_size=2, order="desc", prefix="p")

    assert [job.job_id for job in jobs] == ["p4", "p3", "p2", "p1", "p0"]
    assert [call.request.url.params.get("before") for call in route.calls] == [None, "p3", "p1"]
    for call in route.calls:
        assert (call.request.url.params["order"], call.request.url.params["prefix"]) == (
            "desc",
            "p",
        )


def test_iter_jobs_fetches_pages_only_as_needed(api: respx.MockRouter) -> None:
    route = api.get("/jobs").mock(side_effect=paged)
    with Client(URL) as client:
        jobs = client.iter_jobs(page_size=2)
        assert route.call_count == 0
        assert next(jobs).job_id == "j0"
        assert next(jobs).job_id == "j1"
        assert route.call_count == 1
        assert next(jobs).job_id == "j2"
        assert route.call_count == 2


def test_stats_and_health(api: respx.MockRouter, sdk: Twin) -> None:
    counts = {"submitted": 1, "running": 2, "succeeded": 3, "failed": 4, "total": 10}
    api.get("/stats").respond(200, json=counts)
    api.get("/health").respond(200, json={"status": "ok"})
    # A server from before queues (CONTRACT §8) sends none: read as no queue.
    assert sdk.stats() == Stats(submitted=1, running=2, succeeded=3, failed=4, total=10)
    assert sdk.health().status == "ok"


def test_stats_history_asks_for_the_seconds_and_reads_the_rates(
    api: respx.MockRouter, sdk: Twin
) -> None:
    answer = {
        "interval": 1,
        "end": "2030-01-01T00:00:05Z",
        "submitted": [1, 2],
        "completed": [0, 3],
    }
    route = api.get("/stats/history").respond(200, json=answer)
    assert sdk.stats_history(2) == StatsHistory(
        interval=1,
        end=datetime(2030, 1, 1, 0, 0, 5, tzinfo=UTC),
        submitted=[1, 2],
        completed=[0, 3],
    )
    assert route.calls.last.request.url.params["seconds"] == "2"
    sdk.stats_history()
    assert route.calls.last.request.url.params["seconds"] == str(HISTORY_SECONDS)


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequest),
        (404, JobNotFound),
        (409, JobConflict),
        (413, PayloadTooLarge),
        (422, RequestError),
        (500, ServerError),
        (501, ServerError),
    ],
)
def test_problem_documents_become_typed_errors(
    api: respx.MockRouter, sdk: Twin, status: int, error: type[SimpleQueueError]
) -> None:
    api.get(url__regex=r"/jobs/.+").mock(return_value=problem(status, f"detail {status}"))
    with pytest.raises(error) as raised:
        sdk.get("x")
    assert type(raised.value) is error
    assert raised.value.detail == f"detail {status}"
    assert raised.value.status_code == status


def test_an_answer_that_is_not_a_problem_document_still_says_what_came_back(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    api.get("/stats").respond(502, text="<html>bad gateway</html>")
    with pytest.raises(ServerError, match="HTTP 502 Bad Gateway"):
        make_sdk(retries=0).stats()


@pytest.mark.parametrize("content", [b"not json", b'{"submitted": "many"}', b"[]"])
def test_an_unreadable_success_is_a_server_error(
    api: respx.MockRouter, sdk: Twin, content: bytes
) -> None:
    api.get("/stats").respond(200, content=content)
    with pytest.raises(ServerError, match="could not be read"):
        sdk.stats()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
def test_transport_failures_become_connection_failed(
    api: respx.MockRouter, make_sdk: Callable[..., Twin], failure: httpx.TransportError
) -> None:
    api.get("/stats").mock(side_effect=failure)
    with pytest.raises(ConnectionFailed) as raised:
        make_sdk(retries=0).stats()
    assert URL in raised.value.detail
    assert str(failure) in raised.value.detail
    assert raised.value.__cause__ is None  # no httpx exception escapes, not even chained
    assert raised.value.__suppress_context__


# -- retries --------------------------------------------------------------------------------------


def test_submit_is_retried_on_connection_errors_and_gateway_errors(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/submit").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(504),
            httpx.Response(200, json=job_json("j")),
        ]
    )
    assert sdk.submit("j").job_id == "j"
    assert route.call_count == 4
    sent = [json.loads(call.request.content) for call in route.calls]
    assert sent == [{"jobId": "j", "description": None, "data": None}] * 4
    # Exponential with jitter in [0.5, 1]: each wait is in its own doubling band.
    assert len(sdk.delays) == 3
    for attempt, delay in enumerate(sdk.delays):
        assert 0.1 * 2**attempt * 0.5 <= delay <= 0.1 * 2**attempt


def test_retries_stop_after_the_configured_count(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    route = api.post("/jobs/submit").mock(side_effect=httpx.ConnectError("refused"))
    sdk = make_sdk(retries=2)
    with pytest.raises(ConnectionFailed):
        sdk.submit("j")
    assert route.call_count == 3
    assert len(sdk.delays) == 2


@pytest.mark.parametrize("status", [400, 404, 409, 413, 500])
def test_answers_that_would_not_change_are_not_retried(
    api: respx.MockRouter, sdk: Twin, status: int
) -> None:
    route = api.post("/jobs/submit").mock(return_value=problem(status, "no"))
    with pytest.raises(SimpleQueueError):
        sdk.submit("j")
    assert route.call_count == 1
    assert sdk.delays == []


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("lost"), httpx.Response(503)]
)
def test_next_is_retried_since_a_lost_claim_comes_back_when_its_lease_ends(
    api: respx.MockRouter, sdk: Twin, failure: httpx.Response | Exception
) -> None:
    route = api.get("/jobs/next").mock(
        side_effect=[failure, httpx.Response(200, json=job_json("j", "running", leaseId="L"))]
    )
    job = sdk.next(wait=3, lease=60)
    assert job is not None
    assert job.lease_id == "L"
    assert route.call_count == 2
    assert len(sdk.delays) == 1
    # The same claim both times: the same long-poll and the same lease.
    assert {call.request.url.query for call in route.calls} == {b"wait=3&lease=60"}


@pytest.mark.parametrize(
    ("method", "path", "args"),
    [
        ("get", "/jobs/j", ("j",)),
        ("stats", "/stats", ()),
        ("complete", "/jobs/complete", ("j", "succeeded")),
    ],
)
def test_safe_calls_are_retried(
    api: respx.MockRouter, sdk: Twin, method: str, path: str, args: tuple[str, ...]
) -> None:
    answer = (
        {"submitted": 0, "running": 0, "succeeded": 0, "failed": 0, "total": 0}
        if method == "stats"
        else job_json("j", "succeeded")
    )
    route = api.route(path=path).mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json=answer)]
    )
    getattr(sdk, method)(*args)
    assert route.call_count == 2


# -- configuration --------------------------------------------------------------------------------


def test_the_url_comes_from_the_argument_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIMPLEQUEUE_URL", "http://from-env:1234/")
    assert Client("http://given:1").url == "http://given:1"
    assert Client().url == "http://from-env:1234"
    monkeypatch.delenv("SIMPLEQUEUE_URL")
    assert Client().url == "http://127.0.0.1:8000"


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://host", "http://"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        Client(url)


def test_a_path_prefix_in_the_url_is_kept() -> None:
    with respx.mock(base_url="http://proxy.test/queue") as router:
        route = router.get("/jobs/a%2Fb").respond(200, json=job_json("a/b"))
        with Client("http://proxy.test/queue/") as client:
            client.get("a/b")
        assert route.called


def test_an_injected_http_client_is_used_with_its_headers_and_left_open(
    api: respx.MockRouter,
) -> None:
    route = api.get("/stats").respond(
        200, json={"submitted": 0, "running": 0, "succeeded": 0, "failed": 0, "total": 0}
    )
    http = httpx.Client(base_url=URL, headers={"Authorization": "Bearer t"})
    with Client(http=http) as client:
        assert client.url == URL
        client.stats()
    assert route.calls.last.request.headers["Authorization"] == "Bearer t"
    assert not http.is_closed
    http.close()


def test_a_transport_can_be_injected() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(204)

    with Client("http://any.test", transport=httpx.MockTransport(handler)) as client:
        assert client.next() is None
    assert seen == ["/jobs/next"]


def test_the_client_closes_the_http_client_it_made() -> None:
    client = Client(URL)
    with client:
        pass
    assert client._http.is_closed
