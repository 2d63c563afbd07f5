"""CONTRACT §1 and §3 against the app in-process: every endpoint, status, header and error."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from litestar.testing import TestClient

from simplequeue.models import MAX_BATCH
from tests.servers import open_client, without_ages

JOB_KEYS = {
    "jobId",
    "description",
    "data",
    "state",
    "createdAt",
    "startedAt",
    "finishedAt",
    "attempts",
    # §7: leases, retries and results
    "maxAttempts",
    "leaseExpiresAt",
    "result",
    "errors",
    # §8: queues, priorities and scheduled jobs
    "queue",
    "priority",
    "runAt",
}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
MIB = 1024 * 1024

Client = TestClient[Any]


@pytest.fixture(params=["sqlite", "memory"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    with open_client(tmp_path, request.param) as c:
        yield c


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[Client]:
    """For requests refused before the store is reached: one backend is enough."""
    with open_client(tmp_path, "sqlite") as c:
        yield c


def job_path(job_id: str) -> str:
    # "." and ".." would be dot segments that an HTTP client removes; everything else as quote.
    return "/jobs/" + quote(job_id, safe="").replace(".", "%2E")


def submit(client: Client, job_id: str, **fields: Any) -> httpx.Response:
    return client.post("/jobs/submit", json={"jobId": job_id, **fields})


def complete(client: Client, job_id: str, status: str) -> httpx.Response:
    return client.post("/jobs/complete", json={"jobId": job_id, "status": status})


def assert_problem(response: httpx.Response, status: int, *named: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    for word in named:
        assert word in body["detail"], (word, body["detail"])
    return body


def assert_job(body: Any, *, lease: bool = False) -> dict[str, Any]:
    """The §1 job shape: exactly these camelCase keys, RFC 3339 UTC timestamps. ``leaseId`` is
    in the answers of next and heartbeat (``lease=True``) and in no other (§7)."""
    assert isinstance(body, dict)
    assert set(body) == JOB_KEYS | ({"leaseId"} if lease else set())
    assert isinstance(body["jobId"], str)
    assert body["state"] in {"submitted", "running", "succeeded", "failed"}
    assert isinstance(body["attempts"], int)
    for key in ("createdAt", "runAt", "startedAt", "finishedAt"):
        if key in ("createdAt", "runAt") or body[key] is not None:
            assert RFC3339_UTC.match(body[key]), body[key]
            assert datetime.fromisoformat(body[key]).utcoffset() == timedelta(0)
    return body


def snapshot(client: Client) -> tuple[Any, Any]:
    jobs = client.get("/jobs", params={"limit": 1000}).json()
    return jobs, without_ages(client.get("/stats").json())


@contextmanager
def changes_nothing(client: Client) -> Iterator[None]:
    before = snapshot(client)
    yield
    assert snapshot(client) == before


def seeded(client: Client) -> None:
    """Something to lose: a submitted, a running and a finished job."""
    for job_id in ("s1", "r1", "f1"):
        assert submit(client, job_id, data={"k": job_id}).status_code == 201
    client.get("/jobs/next")
    client.get("/jobs/next")
    complete(client, "s1", "failed")


# -- the job --------------------------------------------------------------------------------


def test_a_new_job_has_the_contract_shape_and_null_defaults(client: Client) -> None:
    response = submit(client, "j1")
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    job = assert_job(response.json())
    assert job["jobId"] == "j1"
    assert (job["description"], job["data"], job["startedAt"], job["finishedAt"]) == (None,) * 4
    assert (job["state"], job["attempts"]) == ("submitted", 0)


def test_every_route_that_returns_a_job_uses_the_same_shape(client: Client) -> None:
    created = assert_job(submit(client, "j1", description="d", data={"a": [1, {"b": None}]}).json())
    assert assert_job(client.get("/jobs/j1").json()) == created
    running = assert_job(client.get("/jobs/next").json(), lease=True)
    assert isinstance(running.pop("leaseId"), str)
    listed = client.get("/jobs").json()
    assert [assert_job(job) for job in listed] == [running]
    finished = assert_job(complete(client, "j1", "succeeded").json())
    assert (finished["description"], finished["data"]) == ("d", {"a": [1, {"b": None}]})
    assert running["startedAt"] is not None
    assert finished["finishedAt"] is not None
    times = [created["createdAt"], running["startedAt"], finished["finishedAt"]]
    assert [datetime.fromisoformat(t) for t in times] == sorted(
        datetime.fromisoformat(t) for t in times
    )
    assert finished["createdAt"] == created["createdAt"]
    assert finished["startedAt"] == running["startedAt"]


# -- POST /jobs/submit ----------------------------------------------------------------------


def test_submit_new_id_is_201_with_location_of_the_job(client: Client) -> None:
    response = submit(client, "a/b c", description="x", data={"n": 1})
    assert response.status_code == 201
    assert response.headers["location"] == "/jobs/a%2Fb%20c"
    fetched = client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == response.json()
    assert client.get("/stats").json()["submitted"] == 1


@pytest.mark.parametrize("state_after", ["submitted", "running", "succeeded", "failed"])
def test_submit_same_content_again_is_200_unchanged_whatever_the_state(
    client: Client, state_after: str
) -> None:
    submit(client, "j1", description="d", data={"n": 1})
    if state_after != "submitted":
        client.get("/jobs/next")
    if state_after in {"succeeded", "failed"}:
        complete(client, "j1", state_after)
    stored = client.get("/jobs/j1").json()
    with changes_nothing(client):
        again = submit(client, "j1", description="d", data={"n": 1})
        assert again.status_code == 200
        assert "location" not in again.headers
        assert again.json() == stored
    assert again.json()["state"] == state_after


def test_submit_without_optional_fields_equals_explicit_nulls(client: Client) -> None:
    assert submit(client, "j1").status_code == 201
    assert submit(client, "j1", description=None, data=None).status_code == 200


def test_submit_key_order_of_data_does_not_matter(client: Client) -> None:
    submit(client, "j1", data={"a": 1, "b": {"x": 1, "y": [1, 2]}})
    with changes_nothing(client):
        again = client.post(
            "/jobs/submit",
            content=b'{"data": {"b": {"y": [1, 2], "x": 1}, "a": 1}, "jobId": "j1"}',
            headers={"content-type": "application/json"},
        )
        assert again.status_code == 200


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        ({"description": "a"}, {"description": "b"}, "description"),
        ({"description": "a"}, {}, "description"),
        ({"data": {"n": 1}}, {"data": {"n": True}}, "data"),
        ({"data": {"n": 1}}, {"data": {"n": 1.0}}, "data"),
        ({"data": {"n": True}}, {"data": {"n": 1.0}}, "data"),
        ({"data": {"n": 0}}, {"data": {"n": False}}, "data"),
        ({"data": {"n": None}}, {"data": {}}, "data"),
        ({"data": {"l": [1, 2]}}, {"data": {"l": [2, 1]}}, "data"),
        ({}, {"data": {}}, "data"),
    ],
)
def test_submit_different_content_is_409_naming_the_field(
    client: Client, first: dict[str, Any], second: dict[str, Any], field: str
) -> None:
    submit(client, "j1", **first)
    with changes_nothing(client):
        body = assert_problem(submit(client, "j1", **second), 409, "j1", field)
    other = {"description", "data"} - {field}
    assert not any(name in body["detail"] for name in other)


def test_submit_409_names_both_fields_when_both_differ(client: Client) -> None:
    submit(client, "j1", description="a", data={"n": 1})
    with changes_nothing(client):
        assert_problem(
            submit(client, "j1", description="b", data={"n": 2}), 409, "description", "data"
        )


@pytest.mark.parametrize(
    "job_id",
    [
        "x",
        "x" * 256,
        "a/b",
        "/leading",
        "trailing/",
        "/",
        "//",
        "a//b",
        "with space",
        " ",
        "100%",
        "%2F",
        "what?",
        "#hash",
        "a?b=c#d",
        "é",
        "日本語",
        "😀",
        "next/",
        "next/1",
        "submit/",
        "complete/",
        "NEXT",
        "jobs",
        ".",
        "..",
        "a+b",
        "<script>",
    ],
)
def test_valid_ids_are_accepted_and_fetchable_percent_encoded(client: Client, job_id: str) -> None:
    submit(client, "decoy")  # something /jobs/next or /jobs would answer instead
    response = submit(client, job_id)
    assert response.status_code == 201, response.text
    assert response.json()["jobId"] == job_id
    fetched = client.get(job_path(job_id))
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == response.json()
    assert client.get(response.headers["location"]).json() == response.json()
    # Fetching is read-only: no job was claimed.
    assert client.get("/stats").json()["running"] == 0


CONTROL_CHARS = [chr(c) for c in range(0x20)] + ["\x7f"]


def test_control_characters_are_refused_in_ids(sqlite_client: Client) -> None:
    with changes_nothing(sqlite_client):
        for char in CONTROL_CHARS:
            for job_id in (char, f"a{char}b", f"ab{char}"):
                assert_problem(submit(sqlite_client, job_id), 400, "jobId")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "jobId"),
        ({"jobId": ""}, "jobId"),
        ({"jobId": "x" * 257}, "jobId"),
        ({"jobId": "next"}, "jobId"),
        ({"jobId": "submit"}, "jobId"),
        ({"jobId": "complete"}, "jobId"),
        ({"jobId": "heartbeat"}, "jobId"),
        ({"jobId": "cancel"}, "jobId"),
        ({"jobId": "retry"}, "jobId"),
        ({"jobId": 5}, "jobId"),
        ({"jobId": None}, "jobId"),
        ({"jobId": ["x"]}, "jobId"),
        ({"jobId": "x", "state": "submitted"}, "state"),
        ({"jobId": "x", "state": "succeeded"}, "state"),
        ({"jobId": "x", "attempts": 0}, "attempts"),
        ({"jobId": "x", "job_id": "x"}, "job_id"),
        ({"jobId": "x", "extra": 1}, "extra"),
        ({"jobId": "x", "data": [1, 2]}, "data"),
        ({"jobId": "x", "data": "text"}, "data"),
        ({"jobId": "x", "data": 5}, "data"),
        ({"jobId": "x", "data": True}, "data"),
        ({"jobId": "x", "description": 5}, "description"),
        ({"jobId": "x", "description": {"a": 1}}, "description"),
        ({"jobId": "x", "description": "d" * 4097}, "description"),
    ],
)
def test_invalid_submit_bodies_are_400_naming_the_field(
    sqlite_client: Client, body: dict[str, Any], named: str
) -> None:
    seeded(sqlite_client)
    with changes_nothing(sqlite_client):
        assert_problem(sqlite_client.post("/jobs/submit", json=body), 400, named)


def test_reserved_id_of_an_existing_job_name_is_not_a_conflict(client: Client) -> None:
    with changes_nothing(client):
        assert_problem(submit(client, "next", description="d"), 400, "reserved")


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"{'jobId': 'x'}", b'{"jobId": "x",}', b"[]", b'"x"', b"null", b"1", b"\xff\xfe"],
)
def test_submit_body_that_is_not_a_json_object_is_400(
    sqlite_client: Client, content: bytes
) -> None:
    seeded(sqlite_client)
    with changes_nothing(sqlite_client):
        assert_problem(
            sqlite_client.post(
                "/jobs/submit", content=content, headers={"content-type": "application/json"}
            ),
            400,
        )


def test_description_of_4096_characters_is_accepted(client: Client) -> None:
    text = "é" * 2048 + "😀" * 2048  # characters, not bytes
    response = submit(client, "j1", description=text)
    assert response.status_code == 201
    assert client.get("/jobs/j1").json()["description"] == text


def body_of_size(size: int) -> bytes:
    """A valid submit body of exactly ``size`` bytes."""
    empty = json.dumps({"jobId": "big", "data": {"pad": ""}}).encode()
    body = json.dumps({"jobId": "big", "data": {"pad": "x" * (size - len(empty))}}).encode()
    assert len(body) == size
    return body


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_body_over_the_default_limit_is_413(tmp_path: Path, backend: str) -> None:
    with open_client(tmp_path, backend) as client:
        headers = {"content-type": "application/json"}
        with changes_nothing(client):
            response = client.post("/jobs/submit", content=body_of_size(MIB + 1), headers=headers)
            assert_problem(response, 413)
        ok = client.post("/jobs/submit", content=body_of_size(MIB), headers=headers)
        assert ok.status_code == 201


@pytest.mark.parametrize("path", ["/jobs/submit", "/jobs/complete"])
def test_body_limit_is_configurable(tmp_path: Path, path: str) -> None:
    with open_client(tmp_path, "memory", max_body_size=200) as client:
        headers = {"content-type": "application/json"}
        with changes_nothing(client):
            assert_problem(client.post(path, content=body_of_size(201), headers=headers), 413)
        assert client.post("/jobs/submit", content=body_of_size(200), headers=headers).is_success


# -- GET /jobs/next -------------------------------------------------------------------------


def test_next_on_an_empty_queue_is_204_without_body(client: Client) -> None:
    with changes_nothing(client):
        response = client.get("/jobs/next")
    assert response.status_code == 204
    assert response.content == b""


def test_next_hands_out_the_oldest_submitted_job_as_running(client: Client) -> None:
    for job_id in ("b", "a", "c"):
        submit(client, job_id)
    first = assert_job(client.get("/jobs/next").json(), lease=True)
    assert (first["jobId"], first["state"], first["attempts"]) == ("b", "running", 1)
    assert first["startedAt"] is not None
    assert first["leaseExpiresAt"] > first["startedAt"]
    del first["leaseId"]  # the worker's alone: GET never shows it
    assert client.get("/jobs/b").json() == first
    assert [client.get("/jobs/next").json()["jobId"] for _ in range(2)] == ["a", "c"]
    assert client.get("/jobs/next").status_code == 204
    assert client.get("/stats").json() == {
        "submitted": 0,
        "running": 3,
        "succeeded": 0,
        "failed": 0,
        "total": 3,
        "queues": {
            "default": {
                "submitted": 0,
                "running": 3,
                "succeeded": 0,
                "failed": 0,
                "oldestDueAgeSeconds": None,
            }
        },
        "submittedEver": 3,
        "completedEver": 0,
    }


# -- GET /jobs/{jobId} ----------------------------------------------------------------------


def test_get_unknown_job_is_404_naming_it(client: Client) -> None:
    seeded(client)
    with changes_nothing(client):
        assert_problem(client.get(job_path("no such/job")), 404, "no such/job")


def test_get_invalid_utf8_path_is_400(client: Client) -> None:
    assert_problem(client.get("/jobs/%FF"), 400)


# -- POST /jobs/complete --------------------------------------------------------------------


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_complete_a_running_job_then_retry_it(client: Client, status: str) -> None:
    submit(client, "j1")
    client.get("/jobs/next")
    done = complete(client, "j1", status)
    assert done.status_code == 200
    job = assert_job(done.json())
    assert job["state"] == status
    assert job["finishedAt"] is not None
    with changes_nothing(client):
        retried = complete(client, "j1", status)
        assert retried.status_code == 200
        assert retried.json() == job
        other = "failed" if status == "succeeded" else "succeeded"
        assert_problem(complete(client, "j1", other), 409, "j1", status)
    assert client.get("/jobs/j1").json() == job


def test_complete_a_submitted_job_is_409(client: Client) -> None:
    submit(client, "j1")
    with changes_nothing(client):
        assert_problem(complete(client, "j1", "succeeded"), 409, "j1", "submitted")
    assert client.get("/jobs/next").json()["jobId"] == "j1"


def test_complete_an_unknown_job_is_404(client: Client) -> None:
    seeded(client)
    with changes_nothing(client):
        assert_problem(complete(client, "ghost", "failed"), 404, "ghost")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"jobId": "r1"}, "status"),
        ({"jobId": "r1", "status": "running"}, "status"),
        ({"jobId": "r1", "status": "submitted"}, "status"),
        ({"jobId": "r1", "status": "SUCCEEDED"}, "status"),
        ({"jobId": "r1", "status": 1}, "status"),
        ({"jobId": "r1", "status": None}, "status"),
        ({"status": "succeeded"}, "jobId"),
        ({"jobId": "", "status": "succeeded"}, "jobId"),
        ({"jobId": 5, "status": "succeeded"}, "jobId"),
        ({"jobId": "x" * 257, "status": "succeeded"}, "jobId"),
        ({"jobId": "next", "status": "succeeded"}, "jobId"),
        ({"jobId": "r\x00", "status": "succeeded"}, "jobId"),
        ({"jobId": "r1", "status": "succeeded", "state": "failed"}, "state"),
        ({"jobId": "r1", "status": "succeeded", "extra": 1}, "extra"),
    ],
)
def test_invalid_complete_bodies_are_400_naming_the_field(
    sqlite_client: Client, body: dict[str, Any], named: str
) -> None:
    seeded(sqlite_client)
    with changes_nothing(sqlite_client):
        assert_problem(sqlite_client.post("/jobs/complete", json=body), 400, named)


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b"nope"])
def test_complete_malformed_json_is_400(sqlite_client: Client, content: bytes) -> None:
    seeded(sqlite_client)
    with changes_nothing(sqlite_client):
        response = sqlite_client.post(
            "/jobs/complete", content=content, headers={"content-type": "application/json"}
        )
        assert_problem(response, 400)


# -- GET /jobs ------------------------------------------------------------------------------


def test_list_is_in_submission_order(client: Client) -> None:
    ids = ["zeta", "alpha", "10", "9", "mid"]
    for job_id in ids:
        submit(client, job_id)
    client.get("/jobs/next")
    response = client.get("/jobs")
    assert response.status_code == 200
    assert [job["jobId"] for job in response.json()] == ids
    assert "link" not in response.headers


def test_list_of_an_empty_queue(client: Client) -> None:
    response = client.get("/jobs")
    assert (response.status_code, response.json()) == (200, [])


def test_list_state_filter_is_repeatable(client: Client) -> None:
    seeded(client)  # s1 failed, r1 running, f1 submitted
    submit(client, "s2")

    def ids(*states: str) -> list[str]:
        response = client.get("/jobs", params=[("state", s) for s in states])
        assert response.status_code == 200
        return [job["jobId"] for job in response.json()]

    assert ids("submitted") == ["f1", "s2"]
    assert ids("running") == ["r1"]
    assert ids("failed") == ["s1"]
    assert ids("succeeded") == []
    assert ids("failed", "submitted") == ["s1", "f1", "s2"]
    assert ids("submitted", "running", "succeeded", "failed") == ["s1", "r1", "f1", "s2"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("state=bogus", "state"),
        ("state=submitted&state=Running", "state"),
        ("state=", "state"),
        ("after=ghost", "after"),
        ("before=ghost", "before"),
    ],
)
def test_list_invalid_query_is_400_naming_it(sqlite_client: Client, query: str, named: str) -> None:
    seeded(sqlite_client)
    with changes_nothing(sqlite_client):
        assert_problem(sqlite_client.get(f"/jobs?{query}"), 400, named)


def test_list_limit_bounds_and_default(tmp_path: Path) -> None:
    with open_client(tmp_path, "memory") as client:
        for n in range(101):
            submit(client, f"j{n:03}")
        default = client.get("/jobs")
        assert [j["jobId"] for j in default.json()] == [f"j{n:03}" for n in range(100)]
        assert 'rel="next"' in default.headers["link"]
        one = client.get("/jobs", params={"limit": 1})
        assert [j["jobId"] for j in one.json()] == ["j000"]
        most = client.get("/jobs", params={"limit": 1000})
        assert len(most.json()) == 101
        assert "link" not in most.headers


def test_list_after_starts_past_the_named_job(client: Client) -> None:
    for job_id in ("c", "a", "b"):
        submit(client, job_id)
    assert [j["jobId"] for j in client.get("/jobs", params={"after": "c"}).json()] == ["a", "b"]
    assert client.get("/jobs", params={"after": "b"}).json() == []


LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def follow_pages(client: Client, url: str) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.text
        pages += 1
        seen += [job["jobId"] for job in response.json()]
        link = response.headers.get("link")
        if link is None:
            return seen, pages
        match = LINK.match(link)
        assert match, link
        url = match["url"]
        assert pages < 100, "the Link header never ends"


WEIRD_IDS = ["a&b", "c d", "e/f", "g?h", "i#j", "k%l", "m+n", "o;p", "q>r", "é", "😀", "s,t"]


def test_link_header_pages_through_every_job_exactly_once(client: Client) -> None:
    ids = [f"{weird}-{n}" for n in range(2) for weird in WEIRD_IDS]
    for job_id in ids:
        submit(client, job_id)
    seen, pages = follow_pages(client, "/jobs?limit=5")
    assert seen == ids
    assert pages == 5  # 24 jobs: 5 + 5 + 5 + 5 + 4


def test_link_header_keeps_the_state_filter(client: Client) -> None:
    ids = [f"{weird}-{n}" for n in range(2) for weird in WEIRD_IDS]
    for job_id in ids:
        submit(client, job_id)
    running = [client.get("/jobs/next").json()["jobId"] for _ in range(7)]
    seen, _ = follow_pages(client, "/jobs?state=submitted&limit=3")
    assert seen == ids[7:]
    seen, _ = follow_pages(client, "/jobs?state=running&state=failed&limit=2")
    assert seen == running


def test_link_header_is_absent_on_an_exactly_full_last_page(client: Client) -> None:
    for n in range(4):
        submit(client, f"j{n}")
    assert "link" in client.get("/jobs?limit=3").headers
    assert "link" not in client.get("/jobs?limit=4").headers


# -- the other routes -----------------------------------------------------------------------


def test_stats_counts_every_state(client: Client) -> None:
    assert client.get("/stats").json() == {
        **dict.fromkeys(["submitted", "running", "succeeded", "failed", "total"], 0),
        "queues": {},
        "submittedEver": 0,
        "completedEver": 0,
    }
    seeded(client)
    submit(client, "s2")
    client.get("/jobs/next")
    complete(client, "r1", "succeeded")
    response = client.get("/stats")
    assert response.status_code == 200
    counts = {"submitted": 1, "running": 1, "succeeded": 1, "failed": 1}
    assert without_ages(response.json()) == {
        **counts,
        "total": 4,
        "queues": {"default": {**counts, "oldestDueAgeSeconds": True}},
        # Every job ever submitted, and every one that finished (s1 failed, r1 succeeded).
        "submittedEver": 4,
        "completedEver": 2,
    }


def test_health(client: Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_schema_is_an_html_page(client: Client) -> None:
    response = client.get("/schema")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()


def test_schema_page_loads_nothing_from_elsewhere(client: Client) -> None:
    # Litestar's default loads Redoc, fonts and an icon from CDNs: offline, a blank page.
    page = client.get("/schema").text
    assets = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)""", page)
    assert assets, "the page names no script: the test would prove nothing"
    assert [url for url in assets if not url.startswith("/")] == []
    for url in assets:
        served = client.get(url)
        assert served.status_code == 200, url
        assert len(served.content) > 100_000, url  # the Redoc bundle itself, not a stub


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_openapi_document_describes_every_route(client: Client) -> None:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    paths = doc["paths"]
    get_job = next(path for path in paths if re.fullmatch(r"/jobs/\{[^}]+\}", path))
    expected = {
        ("/jobs/submit", "post"): {"201", "200", "400", "409", "413"},
        ("/jobs/next", "get"): {"200", "204"},
        ("/jobs/complete", "post"): {"200", "400", "404", "409"},
        ("/jobs/cancel", "post"): {"200", "400", "404", "409", "410"},
        ("/jobs/retry", "post"): {"200", "400", "404", "409", "410"},
        (get_job, "get"): {"200", "404", "410"},
        ("/jobs", "get"): {"200", "304", "400"},
        ("/stats", "get"): {"200", "304"},
        ("/stats/history", "get"): {"200", "304", "400"},
        ("/health", "get"): {"200"},
    }
    for (path, method), codes in expected.items():
        operation = paths[path][method]
        assert codes <= set(operation["responses"]), (path, method, operation["responses"])
        for code in codes - {"200", "201", "204", "304"}:
            content = operation["responses"][code]["content"]
            assert "application/problem+json" in content, (path, code)
    for path, field in (("/jobs/submit", "jobId"), ("/jobs/complete", "status")):
        # One object, or an array of them (a batch, CONTRACT §10).
        one, many = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "oneOf"
        ]
        assert field in one["properties"]
        assert one["additionalProperties"] is False
        assert (many["type"], many["items"]["anyOf"][0], many["minItems"]) == ("array", one, 1)
        assert many["maxItems"] == MAX_BATCH
    submit_schema = paths["/jobs/submit"]["post"]["requestBody"]["content"]["application/json"]
    assert "state" not in submit_schema["schema"]["oneOf"][0]["properties"]
    query = {p["name"] for p in paths["/jobs"]["get"]["parameters"]}
    assert {"state", "limit", "after", "queue"} <= query
    assert "queue" in {p["name"] for p in paths["/jobs/next"]["get"]["parameters"]}
    one = submit_schema["schema"]["oneOf"][0]["properties"]
    assert {"queue", "priority", "runAt", "delaySeconds"} <= set(one)
    for path in ("/jobs/cancel", "/jobs/retry"):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert set(body["properties"]) == {"jobId", "jobIds", "filter"}
        assert body["additionalProperties"] is False
    stats = resolve(
        doc,
        paths["/stats"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
    )
    assert {"queues", "submittedEver", "completedEver"} <= set(stats["properties"])
    for ref in set(refs(doc)):
        assert resolve(doc, ref) is not None, ref


def test_dashboard_is_html_with_a_strict_csp(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    csp = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_unknown_route_and_wrong_method_are_problems(client: Client) -> None:
    assert_problem(client.get("/nope"), 404)
    assert_problem(client.put("/jobs/submit", json={"jobId": "x"}), 405)
    assert_problem(client.get("/jobs/submit"), 405)
