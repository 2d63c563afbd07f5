"""One regression test per classic job-queue defect, named for it (docs/bugs.md explains each)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import httpx
import pytest
from litestar.testing import TestClient

from simplequeue.server import Settings, create_app
from simplequeue.store import MemoryStore
from tests.servers import ServerProcess

Client = TestClient[Any]


@pytest.fixture(params=["sqlite", "memory"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    if request.param == "memory":
        app = create_app(store=MemoryStore())
    else:
        app = create_app(Settings(db=str(tmp_path / "queue.db"), synchronous="normal"))
    with TestClient(app) as c:
        yield c


def submit(client: httpx.Client, job_id: str, **fields: Any) -> httpx.Response:
    return client.post("/jobs/submit", json={"jobId": job_id, **fields})


def complete(client: httpx.Client, job_id: str, status: str) -> httpx.Response:
    return client.post("/jobs/complete", json={"jobId": job_id, "status": status})


def job_path(job_id: str) -> str:
    return "/jobs/" + quote(job_id, safe="").replace(".", "%2E")


def state_of(client: httpx.Client, job_id: str) -> str:
    state: str = client.get(job_path(job_id)).json()["state"]
    return state


def all_at_once(count: int, call: Callable[[httpx.Client], httpx.Response], url: str) -> list[Any]:
    """``count`` threads, each with its own connection, released together by a barrier."""
    barrier = threading.Barrier(count)

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=30) as http:
            http.get("/health")  # connect before the barrier, so the calls really overlap
            barrier.wait()
            return call(http)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_bug01_next_route_not_captured_by_job_id_route(client: Client) -> None:
    # A job whose id starts like a route, and one with a leading slash, sit in the queue first.
    for job_id in ("next/", "next/1", "/first", "//"):
        assert submit(client, job_id).status_code == 201
    # Fetching them by id never claims anything ...
    for job_id in ("next/", "next/1", "/first", "//"):
        fetched = client.get(job_path(job_id))
        assert (fetched.status_code, fetched.json()["jobId"]) == (200, job_id)
    assert client.get("/stats").json()["running"] == 0
    # ... a stray leading "/" is part of the id, not trimmed away ...
    assert client.get(job_path("first")).status_code == 404
    # ... and /jobs/next is always the queue's next job.
    claimed = client.get("/jobs/next")
    assert (claimed.status_code, claimed.json()["jobId"], claimed.json()["state"]) == (
        200,
        "next/",
        "running",
    )


def test_bug02_resubmit_never_requeues_reorders_or_resets(client: Client) -> None:
    for job_id in ("a", "b", "c"):
        submit(client, job_id, data={"id": job_id})
    assert client.get("/jobs/next").json()["jobId"] == "a"
    complete(client, "a", "succeeded")
    # Resubmit a finished one and a queued one, identically.
    for job_id in ("a", "c"):
        assert submit(client, job_id, data={"id": job_id}).status_code == 200
    assert state_of(client, "a") == "succeeded"
    assert [j["jobId"] for j in client.get("/jobs").json()] == ["a", "b", "c"]
    claimed = [client.get("/jobs/next").json()["jobId"] for _ in range(2)]
    assert claimed == ["b", "c"]  # c not moved behind b's resubmission, and queued once
    assert client.get("/jobs/next").status_code == 204
    assert client.get("/stats").json()["total"] == 3


@pytest.mark.slow
def test_bug03_concurrent_next_and_submit_never_double_hand_out(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as http:
        for n in range(5):
            submit(http, f"job-{n}")
    answers = all_at_once(16, lambda http: http.get("/jobs/next"), server.url)
    claimed = [r.json()["jobId"] for r in answers if r.status_code == 200]
    assert sorted(claimed) == [f"job-{n}" for n in range(5)]
    assert [r.status_code for r in answers].count(204) == 11

    answers = all_at_once(16, lambda http: submit(http, "same"), server.url)
    assert sorted(r.status_code for r in answers) == [200] * 15 + [201]
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/stats").json()["total"] == 6


@pytest.mark.parametrize("state", ["running", "submitted", "succeeded", "failed"])
def test_bug04_client_supplied_state_is_refused(client: Client, state: str) -> None:
    response = submit(client, "j1", state=state)
    assert response.status_code == 400
    assert "state" in response.json()["detail"]
    assert client.get(job_path("j1")).status_code == 404
    # Nor can a resubmission smuggle a state onto an existing job.
    submit(client, "j2")
    assert submit(client, "j2", state="succeeded").status_code == 400
    assert state_of(client, "j2") == "submitted"


def test_bug05_completing_unclaimed_or_unknown_job_is_refused(client: Client) -> None:
    submit(client, "queued")
    for status in ("succeeded", "failed"):
        refused = complete(client, "queued", status)
        assert refused.status_code == 409
        assert "queued" in refused.json()["detail"]
        assert complete(client, "ghost", status).status_code == 404
    assert state_of(client, "queued") == "submitted"
    assert client.get("/jobs/next").json()["jobId"] == "queued"
    assert client.get(job_path("ghost")).status_code == 404


@pytest.mark.parametrize(("first", "second"), [("succeeded", "failed"), ("failed", "succeeded")])
def test_bug06_completing_twice_never_flips_the_outcome(
    client: Client, first: str, second: str
) -> None:
    submit(client, "j1")
    client.get("/jobs/next")
    done = complete(client, "j1", first).json()
    assert complete(client, "j1", second).status_code == 409
    again = complete(client, "j1", first)
    assert (again.status_code, again.json()) == (200, done)
    assert client.get(job_path("j1")).json() == done


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/jobs/submit", b"{not json"),
        ("/jobs/submit", b""),
        ("/jobs/submit", b"[1, 2]"),
        ("/jobs/submit", b'{"jobId": 42}'),
        ("/jobs/submit", b'{"jobId": "x", "data": [1]}'),
        ("/jobs/submit", b'{"jobId": "x", "data": "text"}'),
        ("/jobs/submit", b'{"jobId": "x", "description": false}'),
        ("/jobs/complete", b"{not json"),
        ("/jobs/complete", b'{"jobId": "x", "status": 1}'),
        ("/jobs/complete", b'{"jobId": ["x"], "status": "failed"}'),
        ("/jobs/complete", b"null"),
    ],
)
def test_bug07_malformed_json_and_wrong_types_are_400_not_500(
    client: Client, path: str, content: bytes
) -> None:
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get("/stats").json()["total"] == 0


@pytest.mark.parametrize(
    "job_id", ["a/b", "a//b", "/", "50%", "%2F", "with space", "q?x=1", "h#1", "é", "日本", "🦆"]
)
def test_bug08_ids_with_slash_percent_space_non_ascii_are_fetchable(
    client: Client, job_id: str
) -> None:
    created = submit(client, job_id)
    assert created.status_code == 201
    for url in (job_path(job_id), created.headers["location"]):
        fetched = client.get(url)
        assert (fetched.status_code, fetched.json()["jobId"]) == (200, job_id)
    assert complete(client, job_id, "failed").status_code == 409  # found, merely not running


UNSAFE_SINKS = re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write(ln)?)\b")
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.DOTALL | re.IGNORECASE)
IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+\.m?js)["']""")


def served_scripts(client: httpx.Client) -> dict[str, str]:
    """Every script the dashboard page loads, following ES module imports."""
    page = client.get("/").text
    pending = []
    for attributes, body in SCRIPT_TAG.findall(page):
        assert not body.strip(), "inline script in the dashboard page"
        src = re.search(r"""src\s*=\s*["']([^"']+)["']""", attributes)
        assert src, attributes
        pending.append(urljoin("/", src[1]))
    scripts: dict[str, str] = {}
    while pending:
        url = pending.pop()
        if url in scripts:
            continue
        response = client.get(url)
        assert response.status_code == 200, url
        scripts[url] = response.text
        pending += [urljoin(url, target) for target in IMPORT.findall(response.text)]
    return scripts


def test_bug09_dashboard_never_injects_job_text_as_html(client: Client) -> None:
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    script_src = directives.get("script-src", directives.get("default-src"))
    assert script_src is not None
    assert "'unsafe-inline'" not in script_src
    assert "'unsafe-eval'" not in script_src
    assert "*" not in script_src
    assert not re.search(r"\son\w+\s*=", response.text), "inline event handler attribute"
    scripts = served_scripts(client)
    assert scripts
    for url, source in scripts.items():
        assert not UNSAFE_SINKS.search(source), (url, UNSAFE_SINKS.search(source))
        assert "eval(" not in source
        assert "new Function" not in source


def test_bug10_job_list_is_bounded(tmp_path: Path) -> None:
    with TestClient(create_app(store=MemoryStore())) as client:
        for n in range(1005):
            submit(client, f"j{n}")
        default = client.get("/jobs")
        assert len(default.json()) == 100
        assert 'rel="next"' in default.headers["link"]
        assert len(client.get("/jobs", params={"limit": 1000}).json()) == 1000
        assert client.get("/jobs", params={"limit": 1001}).status_code == 400
        assert client.get("/jobs", params={"limit": 10**9}).status_code == 400


@pytest.mark.slow
def test_bug11_acknowledged_submissions_survive_a_crash(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    db = str(tmp_path / "durable.db")
    first = serve(db)
    with httpx.Client(base_url=first.url) as http:
        acknowledged = {f"j{n}": submit(http, f"j{n}", data={"n": n}).json() for n in range(20)}
        acknowledged["j0"] = http.get("/jobs/next").json()
        acknowledged["j0"] = complete(http, "j0", "succeeded").json()
    first.kill()
    second = serve(db)
    with httpx.Client(base_url=second.url) as http:
        for job_id, job in acknowledged.items():
            assert http.get(job_path(job_id)).json() == job
        assert http.get("/jobs/next").json()["jobId"] == "j1"


def test_bug12_fifo_is_submission_order_not_id_order(client: Client) -> None:
    # Sorted by id, hash or length these would come out in a different order.
    ids = ["zz", "b", "a", "10", "9", "ccc", "Z", "é", "0"]
    assert sorted(ids) != ids
    for job_id in ids:
        submit(client, job_id)
    handed_out = [client.get("/jobs/next").json()["jobId"] for _ in ids]
    assert handed_out == ids
    assert [j["jobId"] for j in client.get("/jobs").json()] == ids
