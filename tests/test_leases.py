"""CONTRACT §7 over HTTP: leases, heartbeats, fenced completion, results, errors, retries and
long-poll.

Status codes and shapes run against the app in-process (Litestar's TestClient, both stores).
What needs time to pass, a socket to close or a process to die runs against real `sq serve`
processes (marked slow); every wait there is a bounded poll for an observable state.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from simplequeue.models import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    MAX_ERROR_LENGTH,
    MAX_LEASE_SECONDS,
    MAX_WAIT_SECONDS,
)
from tests.servers import ServerProcess, open_client, totals, without_ages

Client = TestClient[Any]
Json = dict[str, Any]

# -- helpers --------------------------------------------------------------------------------


def submit(http: httpx.Client, job_id: str, **fields: Any) -> httpx.Response:
    return http.post("/jobs/submit", json={"jobId": job_id, **fields})


def take(http: httpx.Client, **params: Any) -> Json:
    """The next job (with its lease), which must be there."""
    response = http.get("/jobs/next", params=params)
    assert response.status_code == 200, response.text
    job: Json = response.json()
    assert isinstance(job["leaseId"], str)
    return job


def complete(http: httpx.Client, job_id: str, status: str, **fields: Any) -> httpx.Response:
    return http.post("/jobs/complete", json={"jobId": job_id, "status": status, **fields})


def heartbeat(http: httpx.Client, job_id: str, lease_id: str, **fields: Any) -> httpx.Response:
    return http.post("/jobs/heartbeat", json={"jobId": job_id, "leaseId": lease_id, **fields})


def get(http: httpx.Client, job_id: str) -> Json:
    response = http.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: Json = response.json()
    return job


def problem(response: httpx.Response, status: int, *named: str) -> str:
    """The problem's detail, after checking its status and that it names ``named``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail: str = response.json()["detail"]
    for word in named:
        assert word in detail, (word, detail)
    return detail


def when(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def lease_length(job: Json) -> timedelta:
    return when(job["leaseExpiresAt"]) - when(job["startedAt"])


def snapshot(http: httpx.Client) -> tuple[Any, Any]:
    jobs = http.get("/jobs", params={"limit": 1000}).json()
    return jobs, without_ages(http.get("/stats").json())


@contextmanager
def changes_nothing(http: httpx.Client) -> Iterator[None]:
    before = snapshot(http)
    yield
    assert snapshot(http) == before


def running(client: Client, job_id: str = "j1", **fields: Any) -> Json:
    """A job submitted and taken: it is running under the lease the answer carries."""
    assert submit(client, job_id, **fields).status_code == 201
    job = take(client)
    assert job["jobId"] == job_id
    return job


# -- GET /jobs/next: leases ------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"lease": 0},
        {"lease": MAX_LEASE_SECONDS + 1},
        {"lease": -1},
        {"lease": "x"},
        {"wait": MAX_WAIT_SECONDS + 1},
        {"wait": -1},
        {"wait": "soon"},
    ],
)
def test_next_refuses_a_lease_or_wait_out_of_bounds_and_claims_nothing(
    client: Client, query: dict[str, Any]
) -> None:
    submit(client, "j1")
    with changes_nothing(client):
        problem(client.get("/jobs/next", params=query), 400, next(iter(query)))


@pytest.mark.parametrize("seconds", [1, 90, MAX_LEASE_SECONDS])
def test_next_holds_the_job_for_the_lease_asked(client: Client, seconds: int) -> None:
    submit(client, "j1")
    job = take(client, lease=seconds)
    assert (job["state"], job["attempts"]) == ("running", 1)
    assert lease_length(job) == timedelta(seconds=seconds)
    assert get(client, "j1")["leaseExpiresAt"] == job["leaseExpiresAt"]


def test_next_without_a_lease_uses_the_servers_default(backend: str, tmp_path: Path) -> None:
    with open_client(tmp_path, backend, lease_seconds=42) as client:
        submit(client, "j1")
        assert lease_length(take(client)) == timedelta(seconds=42)


def test_every_hand_out_gets_a_new_unguessable_lease(client: Client) -> None:
    submit(client, "j1", maxAttempts=3)
    leases = []
    for n in range(3):
        job = take(client)
        leases.append(job["leaseId"])
        assert job["attempts"] == n + 1
        # Back in the queue, to be handed out again under a new lease.
        complete(client, "j1", "failed", leaseId=job["leaseId"], retry=True)
    assert len(set(leases)) == 3
    assert all(len(lease) >= 16 for lease in leases)


def test_the_lease_id_is_only_in_the_answers_of_next_and_heartbeat(client: Client) -> None:
    submitted = submit(client, "j1", maxAttempts=2).json()
    assert "leaseId" not in submitted
    job = take(client)
    lease_id = job["leaseId"]
    renewed = heartbeat(client, "j1", lease_id).json()
    assert renewed["leaseId"] == lease_id
    assert "leaseId" not in submit(client, "j1", maxAttempts=2).json()  # a 200 resubmit
    assert "leaseId" not in get(client, "j1")
    assert all("leaseId" not in listed for listed in client.get("/jobs").json())
    assert lease_id not in client.get("/jobs", params={"state": "running"}).text
    done = complete(client, "j1", "succeeded", leaseId=lease_id)
    assert done.status_code == 200
    assert "leaseId" not in done.json()
    assert lease_id not in done.text


# -- POST /jobs/heartbeat -------------------------------------------------------------------


def test_heartbeat_renews_the_lease_for_its_own_length(client: Client) -> None:
    job = running(client)
    renewed = heartbeat(client, "j1", job["leaseId"])
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert (body["state"], body["attempts"], body["leaseId"]) == ("running", 1, job["leaseId"])
    # The lease's own length (the server's default) from now: later than the first end.
    assert when(body["leaseExpiresAt"]) >= when(job["leaseExpiresAt"])
    own = timedelta(seconds=DEFAULT_LEASE_SECONDS)
    assert when(body["leaseExpiresAt"]) - when(job["startedAt"]) >= own
    assert get(client, "j1")["leaseExpiresAt"] == body["leaseExpiresAt"]


def test_heartbeat_with_lease_seconds_sets_the_new_length(client: Client) -> None:
    job = running(client)
    before = datetime.now(UTC)
    body = heartbeat(client, "j1", job["leaseId"], leaseSeconds=5000).json()
    after = datetime.now(UTC)
    ends = when(body["leaseExpiresAt"])
    # From the moment of the heartbeat (the server's clock is this one; its timestamps are
    # kept to the microsecond).
    assert before + timedelta(seconds=5000) - timedelta(milliseconds=1) <= ends
    assert ends <= after + timedelta(seconds=5000)
    # The new length is the lease's own from now on.
    again = heartbeat(client, "j1", job["leaseId"]).json()
    assert when(again["leaseExpiresAt"]) >= ends


def test_heartbeat_with_another_lease_is_409_lease_lost_and_changes_nothing(
    client: Client,
) -> None:
    running(client)
    with changes_nothing(client):
        problem(heartbeat(client, "j1", "not-the-lease"), 409, "lease lost")


def test_heartbeat_after_the_job_finished_is_409_lease_lost(client: Client) -> None:
    job = running(client)
    complete(client, "j1", "succeeded", leaseId=job["leaseId"])
    with changes_nothing(client):
        problem(heartbeat(client, "j1", job["leaseId"]), 409, "lease lost")


def test_heartbeat_of_a_job_never_handed_out_is_409_lease_lost(client: Client) -> None:
    submit(client, "j1")
    problem(heartbeat(client, "j1", "some-lease"), 409, "lease lost")
    assert get(client, "j1")["state"] == "submitted"


def test_heartbeat_of_an_unknown_job_is_404(client: Client) -> None:
    problem(heartbeat(client, "nobody", "some-lease"), 404, "nobody")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"jobId": "j1"}, "leaseId"),
        ({"leaseId": "L"}, "jobId"),
        ({"jobId": "j1", "leaseId": ""}, "leaseId"),
        ({"jobId": "j1", "leaseId": "L", "leaseSeconds": 0}, "leaseSeconds"),
        ({"jobId": "j1", "leaseId": "L", "leaseSeconds": MAX_LEASE_SECONDS + 1}, "leaseSeconds"),
        ({"jobId": "j1", "leaseId": "L", "leaseSeconds": "60"}, "leaseSeconds"),
        ({"jobId": "j1", "leaseId": "L", "state": "running"}, "state"),
    ],
)
def test_heartbeat_with_a_bad_body_is_400_and_changes_nothing(
    client: Client, body: Json, named: str
) -> None:
    job = running(client)
    if body.get("leaseId") == "L":
        body = {**body, "leaseId": job["leaseId"]}
    with changes_nothing(client):
        problem(client.post("/jobs/heartbeat", json=body), 400, named)


def test_heartbeat_with_malformed_json_is_400(client: Client) -> None:
    running(client)
    with changes_nothing(client):
        response = client.post(
            "/jobs/heartbeat",
            content=b'{"jobId": "j1",',
            headers={"content-type": "application/json"},
        )
        problem(response, 400)


# -- POST /jobs/complete: fencing ------------------------------------------------------------


def test_complete_with_the_current_lease_records_the_result(client: Client) -> None:
    job = running(client)
    result = {"total": 2.50, "lines": [1, "two", None], "nested": {"ok": True}}
    done = complete(client, "j1", "succeeded", leaseId=job["leaseId"], result=result)
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["state"], body["result"], body["errors"]) == ("succeeded", result, [])
    assert body["leaseExpiresAt"] is None
    assert get(client, "j1") == body


@pytest.mark.parametrize("result", [[1, 2], "text", 7, 0.5, False])
def test_a_result_may_be_any_json_value(client: Client, result: Any) -> None:
    job = running(client)
    done = complete(client, "j1", "succeeded", leaseId=job["leaseId"], result=result)
    assert done.json()["result"] == result
    assert get(client, "j1")["result"] == result


def test_complete_with_a_stale_lease_is_409_lease_lost_and_changes_nothing(
    client: Client,
) -> None:
    first = running(client)
    # The first attempt fails and is retried (due at once here): the job runs a second time.
    complete(client, "j1", "failed", leaseId=first["leaseId"], error="flaky", retry=True)
    second = take(client)
    assert second["leaseId"] != first["leaseId"]
    with changes_nothing(client):
        late: list[tuple[str, Json]] = [
            ("succeeded", {"result": {"late": True}}),
            ("failed", {"error": "late"}),
            ("failed", {"retry": True}),
        ]
        for status, fields in late:
            response = complete(client, "j1", status, leaseId=first["leaseId"], **fields)
            problem(response, 409, "lease lost")
        problem(heartbeat(client, "j1", first["leaseId"]), 409, "lease lost")
    assert complete(client, "j1", "succeeded", leaseId=second["leaseId"]).status_code == 200


def test_complete_with_a_forged_lease_is_409_lease_lost(client: Client) -> None:
    running(client)
    with changes_nothing(client):
        problem(complete(client, "j1", "succeeded", leaseId="forged"), 409, "lease lost")


def test_complete_with_the_lease_of_another_job_is_409_lease_lost(client: Client) -> None:
    one = running(client, "j1")
    running(client, "j2")
    with changes_nothing(client):
        problem(complete(client, "j2", "succeeded", leaseId=one["leaseId"]), 409, "lease lost")


def test_complete_without_a_lease_completes_whatever_attempt_runs(client: Client) -> None:
    job = running(client)
    done = complete(client, "j1", "failed")
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "failed"
    # The worker's lease ended with it: its outcome can no longer be recorded.
    with changes_nothing(client):
        problem(complete(client, "j1", "succeeded", leaseId=job["leaseId"]), 409, "lease lost")
        problem(heartbeat(client, "j1", job["leaseId"]), 409, "lease lost")
        # Without a lease, the same final status again is a retried call.
        assert complete(client, "j1", "failed").status_code == 200
        problem(complete(client, "j1", "succeeded"), 409, "failed")


@pytest.mark.parametrize(
    ("status", "fields"),
    [
        ("succeeded", {"result": {"n": 1}}),
        ("failed", {"error": "broken"}),
        ("failed", {"error": "flaky", "retry": True}),
    ],
)
def test_a_repeated_completion_by_the_same_lease_is_200_unchanged(
    client: Client, status: str, fields: Json
) -> None:
    job = running(client)
    first = complete(client, "j1", status, leaseId=job["leaseId"], **fields)
    assert first.status_code == 200, first.text
    with changes_nothing(client):
        again = complete(client, "j1", status, leaseId=job["leaseId"], **fields)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()


@pytest.mark.parametrize(
    ("status", "fields", "named"),
    [
        ("failed", {"result": {"n": 1}}, "result"),
        ("failed", {"result": 0}, "result"),
        ("succeeded", {"error": "boom"}, "error"),
        ("succeeded", {"retry": True}, "retry"),
        ("failed", {"error": "x" * (MAX_ERROR_LENGTH + 1)}, "error"),
        ("failed", {"error": 7}, "error"),
        ("failed", {"retry": "yes"}, "retry"),
        ("succeeded", {"leaseId": ""}, "leaseId"),
    ],
)
def test_complete_with_fields_that_do_not_go_together_is_400_and_changes_nothing(
    client: Client, status: str, fields: Json, named: str
) -> None:
    job = running(client)
    fields = {"leaseId": job["leaseId"], **fields}
    with changes_nothing(client):
        problem(complete(client, "j1", status, **fields), 400, named)


def test_an_error_of_the_longest_length_is_kept_whole(client: Client) -> None:
    job = running(client)
    error = "é" * MAX_ERROR_LENGTH
    done = complete(client, "j1", "failed", leaseId=job["leaseId"], error=error)
    assert done.status_code == 200, done.text
    assert [e["error"] for e in done.json()["errors"]] == [error]


# -- retries, errors and maxAttempts --------------------------------------------------------


def test_failed_is_final_and_records_its_error(client: Client) -> None:
    job = running(client, maxAttempts=3)
    body = complete(client, "j1", "failed", leaseId=job["leaseId"], error="no disk").json()
    assert (body["state"], body["attempts"]) == ("failed", 1)
    assert body["finishedAt"] is not None
    [entry] = body["errors"]
    assert (entry["attempt"], entry["error"]) == (1, "no disk")
    assert when(entry["at"]) == when(body["finishedAt"])
    assert client.get("/jobs/next").status_code == 204


def test_retry_requeues_while_attempts_remain_then_fails(client: Client) -> None:
    submit(client, "j1", maxAttempts=2)
    submit(client, "j2")
    first = take(client)
    body = complete(client, "j1", "failed", leaseId=first["leaseId"], error="e1", retry=True)
    assert body.status_code == 200, body.text
    requeued = body.json()
    assert (requeued["state"], requeued["attempts"], requeued["finishedAt"]) == (
        "submitted",
        1,
        None,
    )
    assert requeued["leaseExpiresAt"] is None
    # Due again after its backoff (none here), so after j2, which has been due since its
    # submit: among due jobs the earliest `runAt` goes first (§8).
    assert when(requeued["runAt"]) > when(requeued["createdAt"])
    assert take(client)["jobId"] == "j2"
    second = take(client)
    assert (second["jobId"], second["attempts"]) == ("j1", 2)
    final = complete(client, "j1", "failed", leaseId=second["leaseId"], error="e2", retry=True)
    body = final.json()
    assert (body["state"], body["attempts"]) == ("failed", 2)
    assert [(e["attempt"], e["error"]) for e in body["errors"]] == [(1, "e1"), (2, "e2")]
    assert client.get("/jobs/next").status_code == 204


def test_a_failure_without_an_error_text_still_records_the_attempt(client: Client) -> None:
    job = running(client)
    body = complete(client, "j1", "failed", leaseId=job["leaseId"]).json()
    assert [e["attempt"] for e in body["errors"]] == [1]
    assert isinstance(body["errors"][0]["error"], str)


@pytest.mark.parametrize("attempts", [1, 100])
def test_submit_takes_max_attempts_within_bounds(client: Client, attempts: int) -> None:
    response = submit(client, "j1", maxAttempts=attempts)
    assert response.status_code == 201, response.text
    assert response.json()["maxAttempts"] == attempts
    assert get(client, "j1")["maxAttempts"] == attempts


@pytest.mark.parametrize("attempts", [0, 101, -1, "3", 2.5, True])
def test_submit_refuses_max_attempts_out_of_bounds(client: Client, attempts: Any) -> None:
    with changes_nothing(client):
        problem(submit(client, "j1", maxAttempts=attempts), 400, "maxAttempts")


def test_submit_with_null_max_attempts_uses_the_default(client: Client) -> None:
    body = submit(client, "j1", maxAttempts=None).json()
    assert body["maxAttempts"] == DEFAULT_MAX_ATTEMPTS


def test_submit_without_max_attempts_uses_the_servers_default(backend: str, tmp_path: Path) -> None:
    with open_client(tmp_path, backend, max_attempts=7) as client:
        assert submit(client, "j1").json()["maxAttempts"] == 7
        # Not given again is the same default: the same job.
        assert submit(client, "j1").status_code == 200
        assert submit(client, "j1", maxAttempts=7).status_code == 200


def test_resubmit_with_other_max_attempts_is_409_naming_it(client: Client) -> None:
    submit(client, "j1", maxAttempts=2, description="d")
    with changes_nothing(client):
        detail = problem(submit(client, "j1", maxAttempts=5, description="d"), 409, "maxAttempts")
        assert "description" not in detail
    assert submit(client, "j1", maxAttempts=2, description="d").status_code == 200


def test_a_new_job_has_no_lease_result_or_errors(client: Client) -> None:
    body = submit(client, "j1").json()
    assert (body["leaseExpiresAt"], body["result"], body["errors"]) == (None, None, [])


# -- long-poll, in-process -----------------------------------------------------------------


def test_next_with_wait_on_an_empty_queue_is_204(client: Client) -> None:
    response = client.get("/jobs/next", params={"wait": 1})
    assert response.status_code == 204
    assert response.content == b""


def test_next_with_wait_takes_a_waiting_job_at_once(client: Client) -> None:
    submit(client, "j1")
    job = take(client, wait=MAX_WAIT_SECONDS)
    assert job["jobId"] == "j1"


# -- real processes ------------------------------------------------------------------------

DEADLINE = 15.0
"""Seconds a real-process test waits for something the server does within about a second."""


def poll(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """``check()``'s first truthy value, looked for every 0.05 s, or fail after ``deadline``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if value := check():
            return value
        time.sleep(0.05)
    pytest.fail(f"not within {deadline}s: {what}")


@pytest.mark.slow
def test_retry_backs_off_until_max_attempts_then_fails_with_every_error(
    serve: Callable[..., ServerProcess],
) -> None:
    backoff = 0.2
    server = serve(None, "--synchronous", "normal", "--retry-backoff", str(backoff))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        submit(http, "j1", maxAttempts=3)
        answers: list[Json] = []
        for attempt in range(1, 4):
            # Long-poll: a retry that falls due wakes the waiting worker.
            job = take(http, wait=20, lease=60)
            assert (job["jobId"], job["attempts"]) == ("j1", attempt)
            if answers:
                # Not handed out before its backoff ended: base * 2^(n-1), jitter at most halves.
                failed_at = when(answers[-1]["errors"][-1]["at"])
                least = timedelta(seconds=backoff * 2 ** (attempt - 2) * 0.5)
                assert when(job["startedAt"]) >= failed_at + least
            response = complete(
                http, "j1", "failed", leaseId=job["leaseId"], error=f"try {attempt}", retry=True
            )
            assert response.status_code == 200, response.text
            answers.append(response.json())
        assert [a["state"] for a in answers] == ["submitted", "submitted", "failed"]
        final = get(http, "j1")
        assert final == answers[-1]
        assert (final["attempts"], final["maxAttempts"]) == (3, 3)
        assert [(e["attempt"], e["error"]) for e in final["errors"]] == [
            (1, "try 1"),
            (2, "try 2"),
            (3, "try 3"),
        ]
        assert http.get("/jobs/next", params={"wait": 1}).status_code == 204


@pytest.mark.slow
def test_heartbeats_keep_a_job_past_its_lease_until_they_stop(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve(None, "--synchronous", "normal")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        submit(http, "j1")
        # A 2 s lease renewed every 0.3 s: a heartbeat late by 1.7 s (a loaded machine) is fine.
        job = take(http, lease=2)
        lease_id = job["leaseId"]
        end = time.monotonic() + 6.0  # three times the lease
        beats = 0
        while time.monotonic() < end:
            time.sleep(0.3)
            renewed = heartbeat(http, "j1", lease_id)
            assert renewed.status_code == 200, renewed.text
            assert renewed.json()["leaseId"] == lease_id
            beats += 1
        held = get(http, "j1")
        assert (held["state"], held["attempts"], held["errors"]) == ("running", 1, [])
        assert beats >= 5

        # No more heartbeats: the server takes the job back on its own.
        back = poll(lambda: (j := get(http, "j1"))["state"] != "running" and j, "taken back")
        assert (back["state"], back["attempts"], back["leaseExpiresAt"]) == ("submitted", 1, None)
        assert [(e["attempt"], e["error"]) for e in back["errors"]] == [(1, "lease expired")]
        problem(heartbeat(http, "j1", lease_id), 409, "lease lost")
        problem(complete(http, "j1", "succeeded", leaseId=lease_id), 409, "lease lost")
        assert get(http, "j1") == back


@pytest.mark.slow
def test_an_expired_lease_with_no_attempts_left_fails_the_job(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve(None, "--synchronous", "normal")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        submit(http, "j1", maxAttempts=1)
        take(http, lease=1)
        done = poll(lambda: (j := get(http, "j1"))["state"] != "running" and j, "taken back")
        assert (done["state"], done["attempts"]) == ("failed", 1)
        assert done["finishedAt"] is not None
        assert [e["error"] for e in done["errors"]] == ["lease expired"]
        assert http.get("/stats").json()["running"] == 0


def runs(http: httpx.Client, count: int) -> bool:
    """Whether ``count`` jobs are running."""
    running: int = http.get("/stats").json()["running"]
    return running == count


class Waiter(threading.Thread):
    """One ``GET /jobs/next?wait=S`` on its own connection, in the background."""

    def __init__(self, url: str, wait: float, lease: int = 60) -> None:
        super().__init__(daemon=True)
        self.url, self.wait, self.lease = url, wait, lease
        self.response: httpx.Response | None = None
        self.took = 0.0

    def run(self) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=self.wait + 30) as http:
            self.response = http.get("/jobs/next", params={"wait": self.wait, "lease": self.lease})
        self.took = time.monotonic() - started

    def answer(self) -> httpx.Response:
        self.join(timeout=self.wait + 30)
        assert not self.is_alive(), "the waiter never got an answer"
        assert self.response is not None
        return self.response


@pytest.mark.slow
def test_a_waiting_next_returns_soon_after_a_submit_from_another_client(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve(None, "--synchronous", "normal")
    wait = 20
    waiter = Waiter(server.url, wait)
    waiter.start()
    time.sleep(0.3)  # not needed for correctness: a waiter that came late takes it at once
    with httpx.Client(base_url=server.url) as http:
        assert submit(http, "j1").status_code == 201
    response = waiter.answer()
    assert response.status_code == 200
    assert response.json()["jobId"] == "j1"
    # It answered because of the submit, not because its wait ran out.
    assert waiter.took < wait


@pytest.mark.slow
def test_a_waiting_next_on_an_empty_queue_is_204_when_its_wait_runs_out(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve(None, "--synchronous", "normal")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.get("/jobs/next", params={"wait": 1})
        assert response.status_code == 204
        assert http.get("/stats").json()["total"] == 0


def raw_waiter(port: int, wait: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /jobs/next?wait={wait} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock


@pytest.mark.slow
@pytest.mark.parametrize("how", ["socket closed", "httpx request given up"])
def test_a_waiter_that_went_away_is_given_no_job(
    serve: Callable[..., ServerProcess], how: str
) -> None:
    server = serve(None, "--synchronous", "normal")
    if how == "socket closed":
        raw_waiter(server.port, 30).close()
    else:
        with (
            httpx.Client(base_url=server.url, timeout=0.5) as gone,
            pytest.raises(httpx.ReadTimeout),
        ):
            gone.get("/jobs/next", params={"wait": 30})
    time.sleep(0.3)  # the server sees the connection end: nothing to await from out here
    # A live waiter arrives after the one that went away: waiters are served in arrival order,
    # so only if the first really left the line does this one get the job.
    live = Waiter(server.url, 20)
    live.start()
    time.sleep(0.3)
    with httpx.Client(base_url=server.url) as http:
        submit(http, "j1")
        submit(http, "j2")
        assert live.answer().json()["jobId"] == "j1"
        # The second job, submitted with no live waiter, stays in the queue.
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            job = get(http, "j2")
            assert (job["state"], job["attempts"]) == ("submitted", 0)
            time.sleep(0.1)
        assert get(http, "j1")["attempts"] == 1
        assert totals(http.get("/stats").json()) == {
            "submitted": 1,
            "running": 1,
            "succeeded": 0,
            "failed": 0,
            "total": 2,
        }


@pytest.mark.slow
def test_several_waiters_are_served_one_job_each_in_arrival_order(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve(None, "--synchronous", "normal")
    waiters = []
    for _ in range(3):
        waiter = Waiter(server.url, 30)
        waiter.start()
        waiters.append(waiter)
        # The only way to know from out here that a waiter is in line; each start is given
        # ample time, and the order check below then tolerates nothing else.
        time.sleep(0.5)
    with httpx.Client(base_url=server.url) as http:
        for n in range(3):
            submit(http, f"j{n}")
            poll(partial(runs, http, n + 1), f"j{n} taken")
        answers = [w.answer() for w in waiters]
        assert [a.status_code for a in answers] == [200, 200, 200]
        jobs = [a.json() for a in answers]
        assert [j["jobId"] for j in jobs] == ["j0", "j1", "j2"]
        assert len({j["leaseId"] for j in jobs}) == 3
        assert all(get(http, j["jobId"])["attempts"] == 1 for j in jobs)


WORKER = textwrap.dedent(
    """
    import sys, time, httpx
    job = httpx.get(sys.argv[1] + "/jobs/next", params={"lease": 1}, timeout=10).json()
    print(job["jobId"], job["leaseId"], flush=True)
    time.sleep(120)  # "working" until killed
    """
)


@pytest.mark.slow
def test_a_worker_killed_mid_job_loses_it_to_another_worker(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve(None, "--synchronous", "normal")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        submit(http, "j1", data={"n": 1})
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, server.url], stdout=subprocess.PIPE, text=True
        )
        try:
            assert worker.stdout is not None
            line = worker.stdout.readline()  # ends at the worker's print, or its exit
            assert line, "the worker took no job"
            job_id, dead_lease = line.split()
            assert job_id == "j1"
            assert get(http, "j1")["state"] == "running"
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            if worker.stdout is not None:
                worker.stdout.close()
        assert worker.returncode == -signal.SIGKILL

        # Another worker waits for it: the job comes back when the dead one's lease ends.
        job = take(http, wait=20, lease=60)
        assert (job["jobId"], job["attempts"], job["data"]) == ("j1", 2, {"n": 1})
        assert [(e["attempt"], e["error"]) for e in job["errors"]] == [(1, "lease expired")]
        done = complete(http, "j1", "succeeded", leaseId=job["leaseId"], result="by the second")
        assert done.status_code == 200, done.text

        # The dead worker's late completion is fenced off.
        with changes_nothing(http):
            late = complete(http, "j1", "failed", leaseId=dead_lease, error="late")
            problem(late, 409, "lease lost")
        final = get(http, "j1")
        assert (final["state"], final["result"]) == ("succeeded", "by the second")
        assert http.get("/stats").json()["running"] == 0
