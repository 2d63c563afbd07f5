"""The `GET /jobs` parameters the dashboard pages with: `order`, `before` and `prefix`.

They run against both stores through the real app, so the SQLite queries and the in-memory
reference must agree on every page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from simplequeue.server.app import create_app
from simplequeue.store import MemoryStore, SqliteStore, Store
from tests.servers import APP_URL

LINK = re.compile(r'^<([^>]*)>; rel="next"$')


@pytest.fixture(params=["memory", "sqlite"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    store: Store = (
        MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "list.db"))
    )
    with TestClient(create_app(store=store), base_url=APP_URL) as test_client:
        yield test_client


def submit(client: TestClient[Litestar], *job_ids: str) -> None:
    for job_id in job_ids:
        assert client.post("/jobs/submit", json={"jobId": job_id}).status_code == 201


def ids(client: TestClient[Litestar], url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return [job["jobId"] for job in response.json()]


def follow(client: TestClient[Litestar], url: str) -> tuple[list[str], list[str]]:
    """Every job id over all pages, and the Link URLs followed."""
    seen: list[str] = []
    links: list[str] = []
    next_url: str | None = url
    while next_url is not None:
        response = client.get(next_url)
        assert response.status_code == 200, response.text
        seen += [job["jobId"] for job in response.json()]
        link = response.headers.get("link")
        next_url = None
        if link is not None:
            match = LINK.match(link)
            assert match, link
            next_url = match.group(1)
            links.append(next_url)
    return seen, links


def test_desc_pages_newest_first_with_before_cursors(client: TestClient[Litestar]) -> None:
    job_ids = [f"job-{n}" for n in range(7)]
    submit(client, *job_ids)
    seen, links = follow(client, "/jobs?order=desc&limit=3")
    assert seen == job_ids[::-1]
    assert links == [
        "/jobs?limit=3&order=desc&before=job-4",
        "/jobs?limit=3&order=desc&before=job-1",
    ]


def test_asc_links_keep_their_shape_and_before_bounds_them(client: TestClient[Litestar]) -> None:
    submit(client, *(f"job-{n}" for n in range(6)))
    seen, links = follow(client, "/jobs?limit=2")
    assert seen == [f"job-{n}" for n in range(6)]
    assert links == ["/jobs?limit=2&after=job-1", "/jobs?limit=2&after=job-3"]
    assert ids(client, "/jobs?before=job-3") == ["job-0", "job-1", "job-2"]
    assert ids(client, "/jobs?after=job-0&before=job-4&order=desc") == ["job-3", "job-2", "job-1"]
    assert ids(client, "/jobs?after=job-3&before=job-1") == []


def test_desc_with_state_filter(client: TestClient[Litestar]) -> None:
    submit(client, *(f"job-{n}" for n in range(6)))
    for _ in range(3):  # job-0, job-1, job-2 become running
        assert client.get("/jobs/next").status_code == 200
    seen, links = follow(client, "/jobs?state=running&order=desc&limit=2")
    assert seen == ["job-2", "job-1", "job-0"]
    assert links == ["/jobs?state=running&limit=2&order=desc&before=job-1"]
    assert ids(client, "/jobs?state=submitted&order=desc") == ["job-5", "job-4", "job-3"]


def test_prefix_matches_the_start_of_the_id_only(client: TestClient[Litestar]) -> None:
    submit(client, "abc", "abc/1", "ab", "xabc", "abd", "ABC", "a%c", "a_c", "abc\U0010ffff")
    assert ids(client, "/jobs?prefix=abc") == ["abc", "abc/1", "abc\U0010ffff"]
    # `%` and `_` are ordinary characters, not wildcards.
    assert ids(client, "/jobs?prefix=a%25") == ["a%c"]
    assert ids(client, "/jobs?prefix=a_") == ["a_c"]
    assert ids(client, "/jobs?prefix=abc%2F&order=desc") == ["abc/1"]
    assert ids(client, "/jobs?prefix=zzz") == []


def test_prefix_at_the_edges_of_unicode(client: TestClient[Litestar]) -> None:
    # The range's upper end steps over the surrogates and past the last code point.
    submit(client, "\ud7ffx", "\ue000", "\U0010ffff", "\U0010ffffz", "\U0010fffe")
    assert ids(client, "/jobs?prefix=%ED%9F%BF") == ["\ud7ffx"]
    assert ids(client, "/jobs?prefix=%F4%8F%BF%BF") == ["\U0010ffff", "\U0010ffffz"]


def test_prefix_pages_with_state_and_order(client: TestClient[Litestar]) -> None:
    submit(client, *(f"a-{n}" for n in range(5)), "b-0", *(f"a-{n}" for n in range(5, 8)))
    seen, links = follow(client, "/jobs?prefix=a-&order=desc&limit=3")
    assert seen == [f"a-{n}" for n in range(7, -1, -1)]
    assert links[0] == "/jobs?limit=3&prefix=a-&order=desc&before=a-5"
    client.get("/jobs/next")  # a-0 runs
    assert ids(client, "/jobs?prefix=a-&state=running") == ["a-0"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("order=up", "`order`"),
        ("order=", "`order`"),
        ("before=nope", "`before`"),
        ("after=nope&before=job-0", "`after`"),
        ("prefix=", "`prefix`"),
        ("prefix=" + "x" * 257, "`prefix`"),
    ],
)
def test_invalid_values_are_400_naming_the_parameter(
    client: TestClient[Litestar],
    query: str,
    parameter: str,
) -> None:
    submit(client, "job-0")
    response = client.get(f"/jobs?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert parameter in response.json()["detail"]
