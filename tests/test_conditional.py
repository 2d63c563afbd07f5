"""Conditional GET on the polled answers (server/conditional.py): ``/stats``, ``/stats/history``
and ``/jobs`` carry a strong ETag of what they send and ``Cache-Control: no-cache``; an
``If-None-Match`` that names the ETag is answered 304 with no body."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

Client = TestClient[Any]

ETAG = re.compile(r'^"[0-9a-f]{24}"$')
POLLED = ["/stats", "/stats/history", "/jobs"]


def submit(client: Client, job_id: str) -> None:
    assert client.post("/jobs/submit", json={"jobId": job_id}).status_code == 201


def unchanged(client: Client, path: str) -> tuple[Any, Any]:
    """A 200 and the 304 of the same request naming its ETag. ``/stats/history`` moves on once
    a second, when the server samples: a 200 in between must then be a different answer, and
    the pair is asked again (a few times at most)."""
    for _ in range(5):
        first = client.get(path)
        again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
        if again.status_code == 304:
            return first, again
        assert (again.status_code, again.content) != (200, first.content), path
        assert again.headers["etag"] != first.headers["etag"]
    raise AssertionError(f"{path} never answered 304")


@pytest.mark.parametrize("path", POLLED)
def test_an_unchanged_answer_is_304_with_no_body(client: Client, path: str) -> None:
    first, again = unchanged(client, path)
    assert first.status_code == 200
    assert ETAG.match(first.headers["etag"])
    assert first.headers["cache-control"] == "no-cache"
    assert first.headers["content-type"] == "application/json"
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == "no-cache"
    assert "content-length" not in again.headers or again.headers["content-length"] == "0"


@pytest.mark.parametrize("path", ["/stats", "/jobs"])
def test_a_change_is_a_200_with_a_new_etag(client: Client, path: str) -> None:
    before = client.get(path)
    submit(client, "a")
    # Taken at once: a job waiting would change /stats every moment (its queue's latency).
    assert client.get("/jobs/next").status_code == 200
    after = client.get(path, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.content != before.content
    assert after.headers["etag"] != before.headers["etag"]
    # The same answer is the same tag: it is a hash of the bytes, not a counter.
    assert client.get(path).headers["etag"] == after.headers["etag"]


def test_a_new_link_is_a_new_etag_even_with_the_same_jobs(client: Client) -> None:
    submit(client, "a")
    alone = client.get("/jobs", params={"limit": 1})
    assert "link" not in alone.headers
    submit(client, "b")
    followed = client.get(
        "/jobs", params={"limit": 1}, headers={"If-None-Match": alone.headers["etag"]}
    )
    assert followed.content == alone.content  # still only "a"
    assert followed.status_code == 200  # but now with a next page: not the same answer
    assert followed.headers["link"] == '</jobs?limit=1&after=a>; rel="next"'
    assert followed.headers["etag"] != alone.headers["etag"]
    again = client.get(
        "/jobs", params={"limit": 1}, headers={"If-None-Match": followed.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers["link"] == followed.headers["link"]


@pytest.mark.parametrize(
    "if_none_match",
    ['"0000", {etag}', '{etag},"0000"', "W/{etag}", "*", '"0000",\t W/{etag} '],
)
def test_if_none_match_lists_weak_tags_and_star_match(client: Client, if_none_match: str) -> None:
    etag = client.get("/stats").headers["etag"]
    answer = client.get("/stats", headers={"If-None-Match": if_none_match.format(etag=etag)})
    assert answer.status_code == 304


@pytest.mark.parametrize("if_none_match", ['"0000"', "{bare}", "", 'W/"0000"'])
def test_if_none_match_naming_another_tag_is_a_200(client: Client, if_none_match: str) -> None:
    etag = client.get("/stats").headers["etag"]
    sent = if_none_match.format(bare=etag.strip('"'))
    answer = client.get("/stats", headers={"If-None-Match": sent})
    assert answer.status_code == 200
    assert answer.headers["etag"] == etag


def test_head_has_the_etag_and_answers_304_too(client: Client) -> None:
    submit(client, "a")
    got = client.get("/jobs")
    head = client.head("/jobs")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["etag"] == got.headers["etag"]
    assert head.headers["content-length"] == str(len(got.content))
    conditional = client.head("/jobs", headers={"If-None-Match": got.headers["etag"]})
    assert (conditional.status_code, conditional.content) == (304, b"")
    assert conditional.headers["etag"] == got.headers["etag"]


def test_errors_and_other_routes_carry_no_etag(client: Client) -> None:
    refused = client.get("/jobs", params={"limit": 0})
    assert refused.status_code == 400
    assert "etag" not in refused.headers
    assert "etag" not in client.get("/health").headers
