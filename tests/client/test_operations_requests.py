"""Queues, priorities, scheduled jobs, cancel and retry (CONTRACT §8, §9): the requests the SDK
sends and how it reads the answers, against a mocked server (respx): both twins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx

from simplequeue import (
    Changed,
    InvalidRequest,
    JobConflict,
    JobGone,
    JobNotFound,
    JobState,
    RequestError,
    Unavailable,
)
from simplequeue.models import MAX_BATCH, MAX_QUEUES_NAMED
from tests.client.conftest import Twin, job_json
from tests.client.test_requests import problem

PARIS = timezone(timedelta(hours=2))


def body(route: respx.Route, n: int = -1) -> Any:
    return json.loads(route.calls[n].request.content)


def params(route: respx.Route) -> list[tuple[str, str]]:
    return list(route.calls.last.request.url.params.multi_items())


# -- submit: queue, priority, run_at, delay ----------------------------------------------------


def test_submit_sends_queue_priority_and_run_at_in_utc(api: respx.MockRouter, sdk: Twin) -> None:
    answer = job_json("j", queue="emails", priority=5, runAt="2026-05-01T10:00:00Z")
    route = api.post("/jobs/submit").respond(201, json=answer)

    job = sdk.submit("j", queue="emails", priority=5, run_at=datetime(2026, 5, 1, 12, tzinfo=PARIS))

    assert body(route) == {
        "jobId": "j",
        "description": None,
        "data": None,
        "queue": "emails",
        "priority": 5,
        "runAt": "2026-05-01T10:00:00Z",  # the same instant, checked and sent in UTC
    }
    assert (job.queue, job.priority, job.run_at) == (
        "emails",
        5,
        datetime(2026, 5, 1, 10, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("delay", "sent"), [(90, 90), (0.25, 0.25), (timedelta(minutes=2, milliseconds=500), 120.5)]
)
def test_submit_sends_a_delay_in_seconds(
    api: respx.MockRouter, sdk: Twin, delay: float | timedelta, sent: float
) -> None:
    route = api.post("/jobs/submit").respond(201, json=job_json("j"))
    sdk.submit("j", delay=delay)
    assert body(route) == {"jobId": "j", "description": None, "data": None, "delaySeconds": sent}


def test_submit_sends_only_the_fields_given(api: respx.MockRouter, sdk: Twin) -> None:
    # The server's defaults apply (queue "default", priority 0, due now): none is sent.
    route = api.post("/jobs/submit").respond(201, json=job_json("j"))
    sdk.submit("j", priority=0)
    assert body(route) == {"jobId": "j", "description": None, "data": None, "priority": 0}


def test_a_run_at_without_a_time_zone_is_refused_before_any_request(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/submit")
    with pytest.raises(ValueError, match="timezone-aware"):
        sdk.submit("j", run_at=datetime(2026, 5, 1, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        sdk.submit_many([{"job_id": "ok"}, {"job_id": "j", "run_at": datetime(2026, 5, 1)}])
    assert not route.called


def test_run_at_and_delay_together_are_refused_before_any_request(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/submit")
    with pytest.raises(ValueError, match="not both"):
        sdk.submit("j", run_at=datetime(2026, 5, 1, tzinfo=UTC), delay=5)
    assert not route.called


def test_a_bad_queue_name_is_the_servers_400_found_early(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.post("/jobs/submit")
    with pytest.raises(InvalidRequest, match="`queue` must be 1-64 characters"):
        sdk.submit("j", queue="no spaces")
    assert not route.called


def test_submit_many_items_carry_the_same_fields_camel_cased(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/submit").respond(
        200, json=[{"status": 201, "job": job_json("a")}, {"status": 201, "job": job_json("b")}]
    )
    sdk.submit_many(
        [
            {"job_id": "a", "queue": "q", "priority": -3, "delay": timedelta(seconds=30)},
            {"job_id": "b", "run_at": datetime(2026, 5, 1, tzinfo=UTC), "max_attempts": 2},
        ]
    )
    assert body(route) == [
        {
            "jobId": "a",
            "description": None,
            "data": None,
            "queue": "q",
            "priority": -3,
            "delaySeconds": 30.0,
        },
        {
            "jobId": "b",
            "description": None,
            "data": None,
            "maxAttempts": 2,
            "runAt": "2026-05-01T00:00:00Z",
        },
    ]


def test_a_submit_many_item_with_a_bad_queue_is_its_own_400(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/submit").respond(200, json=[{"status": 201, "job": job_json("a")}])
    results = sdk.submit_many([{"job_id": "a"}, {"job_id": "b", "queue": ""}])
    assert [r.status for r in results] == [201, 400]
    assert isinstance(results[1].error, InvalidRequest)
    assert [item["jobId"] for item in body(route)] == ["a"]


# -- next and list_jobs: the queues asked for ----------------------------------------------------


def test_next_names_each_queue_asked_for(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs/next").respond(204)
    assert sdk.next(queues="emails") is None
    assert params(route) == [("queue", "emails")]
    assert sdk.next(wait=2, queues=["emails", "reports"]) is None
    assert params(route) == [("wait", "2"), ("queue", "emails"), ("queue", "reports")]
    sdk.next()
    assert params(route) == []


def test_next_with_a_count_names_the_queues_too(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs/next").respond(200, json=[job_json("a", "running", queue="q")])
    jobs = sdk.next(count=5, queues=("q",))
    assert [(job.job_id, job.queue) for job in jobs] == [("a", "q")]
    assert params(route) == [("count", "5"), ("queue", "q")]


def test_queues_are_checked_before_any_request(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs/next")
    with pytest.raises(InvalidRequest, match="not 'a b'"):
        sdk.next(queues=["ok", "a b"])
    with pytest.raises(InvalidRequest, match=f"at most {MAX_QUEUES_NAMED} queues"):
        sdk.next(queues=[f"q{n}" for n in range(MAX_QUEUES_NAMED + 1)])
    assert not route.called


def test_list_jobs_names_one_queue_or_many_and_the_next_page_keeps_them(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.get("/jobs").mock(
        side_effect=[
            httpx.Response(200, json=[job_json("a")]),
            httpx.Response(
                200,
                json=[job_json("a")],
                headers={"Link": '</jobs?queue=x&queue=y&limit=1&after=a>; rel="next"'},
            ),
            httpx.Response(200, json=[job_json("b")]),
        ]
    )
    assert [job.job_id for job in sdk.list_jobs(queue="x", limit=5)] == ["a"]
    assert params(route) == [("queue", "x"), ("limit", "5")]

    assert [job.job_id for job in sdk.iter_jobs("submitted", 1, queue=["x", "y"])] == ["a", "b"]
    first, second = (list(call.request.url.params.multi_items()) for call in route.calls[1:])
    assert first == [("state", "submitted"), ("queue", "x"), ("queue", "y"), ("limit", "1")]
    assert second == [("queue", "x"), ("queue", "y"), ("limit", "1"), ("after", "a")]


def test_stats_reads_each_queue(api: respx.MockRouter, sdk: Twin) -> None:
    counts = {"submitted": 2, "running": 1, "succeeded": 0, "failed": 0}
    api.get("/stats").respond(
        200,
        json={
            **counts,
            "total": 3,
            "queues": {"emails": {**counts, "oldestDueAgeSeconds": 1.5}},
        },
    )
    stats = sdk.stats()
    assert stats.total == 3
    emails = stats.queues["emails"]
    assert (emails.submitted, emails.running, emails.oldest_due_age_seconds) == (2, 1, 1.5)


# -- cancel and retry ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_one_id_is_answered_with_the_job(api: respx.MockRouter, sdk: Twin, action: str) -> None:
    route = api.post(f"/jobs/{action}").respond(200, json=job_json("j", "failed"))
    job = getattr(sdk, action)("j")
    assert job.job_id == "j"
    assert job.state is JobState.FAILED
    assert body(route) == {"jobId": "j"}


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_many_ids_are_answered_with_the_counts(
    api: respx.MockRouter, sdk: Twin, action: str
) -> None:
    route = api.post(f"/jobs/{action}").respond(200, json={"matched": 2, "changed": 1})
    assert getattr(sdk, action)(["a", "b"]) == Changed(matched=2, changed=1)
    assert body(route) == {"jobIds": ["a", "b"]}


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_more_ids_than_a_batch_are_sent_in_batches_and_the_counts_added_up(
    api: respx.MockRouter, sdk: Twin, action: str
) -> None:
    ids = [f"job-{n}" for n in range(2 * MAX_BATCH + 500)]

    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["jobIds"]
        return httpx.Response(200, json={"matched": len(sent), "changed": len(sent) - 1})

    route = api.post(f"/jobs/{action}").mock(side_effect=answer)

    assert getattr(sdk, action)(ids) == Changed(matched=len(ids), changed=len(ids) - 3)
    sent = [body(route, n)["jobIds"] for n in range(route.call_count)]
    assert [len(chunk) for chunk in sent] == [MAX_BATCH, MAX_BATCH, 500]
    assert [job_id for chunk in sent for job_id in chunk] == ids


def test_no_ids_send_nothing(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.post("/jobs/cancel")
    assert sdk.cancel([]) == Changed(matched=0, changed=0)
    assert not route.called


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_a_filter_is_one_request_with_only_the_fields_given(
    api: respx.MockRouter, sdk: Twin, action: str
) -> None:
    route = api.post(f"/jobs/{action}").respond(200, json={"matched": 7, "changed": 7})
    assert getattr(sdk, action)(queue="emails") == Changed(matched=7, changed=7)
    assert body(route) == {"filter": {"queue": "emails"}}
    getattr(sdk, action)(state=JobState.FAILED, queue="q", prefix="invoice-")
    assert body(route) == {"filter": {"state": "failed", "queue": "q", "prefix": "invoice-"}}
    assert route.call_count == 2


def test_ids_and_a_filter_together_are_refused_before_any_request(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/cancel")
    with pytest.raises(ValueError, match="not both"):
        sdk.cancel("j", queue="emails")
    with pytest.raises(ValueError, match="not both"):
        sdk.retry(["a"], state="failed")
    assert not route.called


def test_naming_no_jobs_at_all_is_refused_rather_than_meaning_every_job(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/cancel")
    with pytest.raises(ValueError, match="name the jobs to cancel"):
        sdk.cancel()
    assert not route.called


def test_a_bad_id_state_or_queue_is_refused_before_any_request(
    api: respx.MockRouter, sdk: Twin
) -> None:
    route = api.post("/jobs/cancel")
    ids = [f"j{n}" for n in range(MAX_BATCH)] + ["next"]  # the bad one is in the second batch
    with pytest.raises(InvalidRequest, match="reserved"):
        sdk.cancel(ids)
    with pytest.raises(InvalidRequest, match="`state` must be one of"):
        sdk.cancel(state="done")
    with pytest.raises(InvalidRequest, match="`queue` must be"):
        sdk.cancel(queue="a/b")
    assert not route.called


@pytest.mark.parametrize(
    ("status", "raised"), [(404, JobNotFound), (409, JobConflict), (410, JobGone)]
)
def test_a_refusal_is_its_error(
    api: respx.MockRouter, sdk: Twin, status: int, raised: type[RequestError]
) -> None:
    api.post("/jobs/retry").mock(return_value=problem(status, "why"))
    with pytest.raises(raised, match="why") as caught:
        sdk.retry("j")
    assert caught.value.status_code == status


def test_a_cancel_is_sent_again_after_a_busy_store_but_a_retry_is_not(
    api: respx.MockRouter, sdk: Twin
) -> None:
    busy = problem(503, "busy")
    cancel = api.post("/jobs/cancel").mock(
        side_effect=[busy, httpx.Response(200, json=job_json("j", "failed"))]
    )
    assert sdk.cancel("j").state is JobState.FAILED
    assert cancel.call_count == 2

    retry = api.post("/jobs/retry").mock(side_effect=[busy])
    with pytest.raises(Unavailable):
        sdk.retry("j")
    assert retry.call_count == 1
