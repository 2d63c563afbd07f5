"""The SDK's half of CONTRACT §7 against a mocked server (respx), both twins: the requests of
leases, heartbeats, fenced completion, results and retries, and how their answers are read."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from simplequeue import InvalidRequest, JobConflict, JobState, LeaseLost
from tests.client.conftest import Twin, job_json


def body(route: respx.Route) -> object:
    return json.loads(route.calls.last.request.content)


def conflict(detail: str) -> httpx.Response:
    return httpx.Response(
        409,
        json={"status": 409, "title": "Conflict", "detail": detail},
        headers={"Content-Type": "application/problem+json"},
    )


def test_submit_sends_max_attempts_only_when_given(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.post("/jobs/submit").respond(201, json=job_json("j", maxAttempts=5))
    assert sdk.submit("j", max_attempts=5).max_attempts == 5
    assert body(route) == {"jobId": "j", "description": None, "data": None, "maxAttempts": 5}
    sdk.submit("j")
    assert body(route) == {"jobId": "j", "description": None, "data": None}


def test_next_sends_wait_and_lease_and_returns_the_lease(api: respx.MockRouter, sdk: Twin) -> None:
    answer = job_json(
        "j",
        "running",
        attempts=1,
        startedAt="2026-01-02T03:04:05Z",
        leaseExpiresAt="2026-01-02T03:05:05Z",
        leaseId="lease-1",
    )
    route = api.get("/jobs/next").respond(200, json=answer)

    job = sdk.next(wait=20, lease=60)

    assert job is not None
    assert (job.lease_id, job.lease_expires_at) == (
        "lease-1",
        datetime(2026, 1, 2, 3, 5, 5, tzinfo=UTC),
    )
    assert list(route.calls.last.request.url.params.multi_items()) == [
        ("wait", "20"),
        ("lease", "60"),
    ]


def test_next_without_wait_or_lease_sends_no_query(api: respx.MockRouter, sdk: Twin) -> None:
    route = api.get("/jobs/next").respond(204)
    assert sdk.next() is None
    assert route.calls.last.request.url.query == b""


def test_a_job_read_elsewhere_has_no_lease(api: respx.MockRouter, sdk: Twin) -> None:
    api.get("/jobs/j").respond(200, json=job_json("j", "running"))
    assert sdk.get("j").lease_id is None


def test_heartbeat_sends_the_lease_and_returns_the_renewed_job(
    api: respx.MockRouter, sdk: Twin
) -> None:
    answer = job_json("j", "running", leaseId="L", leaseExpiresAt="2026-01-02T04:00:00Z")
    route = api.post("/jobs/heartbeat").respond(200, json=answer)

    job = sdk.heartbeat("j", "L")
    assert body(route) == {"jobId": "j", "leaseId": "L"}
    assert job.lease_expires_at == datetime(2026, 1, 2, 4, tzinfo=UTC)

    sdk.heartbeat("j", "L", lease_seconds=90)
    assert body(route) == {"jobId": "j", "leaseId": "L", "leaseSeconds": 90}


@pytest.mark.parametrize(
    ("kwargs", "sent"),
    [
        ({"status": "succeeded"}, {"status": "succeeded"}),
        (
            {"status": "succeeded", "lease_id": "L", "result": {"pages": [1, 2]}},
            {"status": "succeeded", "leaseId": "L", "result": {"pages": [1, 2]}},
        ),
        ({"status": "succeeded", "result": 0}, {"status": "succeeded", "result": 0}),
        ({"status": "succeeded", "result": False}, {"status": "succeeded", "result": False}),
        (
            {"status": "failed", "lease_id": "L", "error": "boom", "retry": True},
            {"status": "failed", "leaseId": "L", "error": "boom", "retry": True},
        ),
        ({"status": "failed", "error": "boom"}, {"status": "failed", "error": "boom"}),
    ],
)
def test_complete_sends_only_what_was_given(
    api: respx.MockRouter, sdk: Twin, kwargs: dict[str, Any], sent: dict[str, Any]
) -> None:
    route = api.post("/jobs/complete").respond(200, json=job_json("j", kwargs["status"]))
    sdk.complete("j", **kwargs)
    assert body(route) == {"jobId": "j", **sent}


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"status": "succeeded", "error": "x"}, "`error` and `retry` go with `failed`"),
        ({"status": "succeeded", "retry": True}, "`error` and `retry` go with `failed`"),
        ({"status": "failed", "result": {"a": 1}}, "`result` goes with `succeeded`"),
        ({"status": "succeeded", "result": object()}, "Encoding objects of type object"),
    ],
)
def test_complete_refuses_what_cannot_go_together_without_a_request(
    api: respx.MockRouter, sdk: Twin, kwargs: dict[str, Any], names: str
) -> None:
    route = api.post("/jobs/complete")
    with pytest.raises(InvalidRequest, match=names):
        sdk.complete("j", **kwargs)
    assert not route.called


@pytest.mark.parametrize("method", ["heartbeat", "complete"])
@pytest.mark.parametrize(
    "detail",
    ["lease lost: the job was taken back", "Lease lost: job 'j' is no longer held by this lease"],
)
def test_a_409_lease_lost_is_lease_lost(
    api: respx.MockRouter, sdk: Twin, method: str, detail: str
) -> None:
    api.post(f"/jobs/{method}").mock(return_value=conflict(detail))
    args = ("j", "L") if method == "heartbeat" else ("j", "succeeded")
    kwargs = {} if method == "heartbeat" else {"lease_id": "L"}
    with pytest.raises(LeaseLost) as raised:
        getattr(sdk, method)(*args, **kwargs)
    assert isinstance(raised.value, JobConflict)
    assert (raised.value.status_code, raised.value.detail) == (409, detail)


@pytest.mark.parametrize(
    "detail",
    [
        "job 'j' is submitted, not running",
        # A job may well be called "lease lost": only a detail that starts so is the lease's.
        "job 'lease lost' was already submitted with a different data; nothing was changed",
    ],
)
def test_another_409_stays_a_plain_conflict(api: respx.MockRouter, sdk: Twin, detail: str) -> None:
    api.post("/jobs/complete").mock(return_value=conflict(detail))
    with pytest.raises(JobConflict) as raised:
        sdk.complete("j", "succeeded")
    assert type(raised.value) is JobConflict


@pytest.mark.parametrize(
    ("kwargs", "sends"),
    [
        ({"status": "failed", "retry": True, "lease_id": "L"}, 2),  # the lease fences a repeat
        ({"status": "succeeded", "result": 1}, 2),  # answered 200 unchanged when repeated
        ({"status": "failed", "retry": True}, 1),  # a repeat could end the next attempt
    ],
)
def test_a_completion_is_resent_only_when_a_repeat_is_harmless(
    api: respx.MockRouter, sdk: Twin, kwargs: dict[str, Any], sends: int
) -> None:
    route = api.post("/jobs/complete").mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json=job_json("j", "submitted"))]
    )
    if sends == 2:
        assert sdk.complete("j", **kwargs).state is JobState.SUBMITTED
    else:
        with pytest.raises(Exception, match="502"):
            sdk.complete("j", **kwargs)
    assert route.call_count == sends


def test_a_heartbeat_is_resent_after_a_lost_answer(
    api: respx.MockRouter, make_sdk: Callable[..., Twin]
) -> None:
    route = api.post("/jobs/heartbeat").mock(
        side_effect=[httpx.ReadTimeout("lost"), httpx.Response(200, json=job_json("j"))]
    )
    make_sdk().heartbeat("j", "L")
    assert route.call_count == 2
