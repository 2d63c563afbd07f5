"""One regression test per classic job-queue defect, named for it (docs/bugs.md explains each)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import json
import os
import re
import selectors
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import respx
from litestar.testing import TestClient
from rich.console import Console
from typer.testing import CliRunner, Result

from simplequeue import Client as SDKClient
from simplequeue.cli.render import Snapshot, dashboard
from simplequeue.client.base import CLAIM_WAIT, TIMEOUT
from simplequeue.jsontext import MAX_DEPTH
from simplequeue.models import job_path
from simplequeue.server import Settings, create_app
from simplequeue.server.app import canonical_path
from simplequeue.server.guard import LOOPBACK_HOSTS, allowed_hosts, is_json, refusal
from simplequeue.store import MemoryStore, NewJob, SqliteStore
from tests.servers import APP_URL, ServerProcess, free_port, open_client

Client = TestClient[Any]


@pytest.fixture(params=["sqlite", "memory"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    with open_client(tmp_path, request.param) as c:
        yield c


def submit(client: httpx.Client, job_id: str, **fields: Any) -> httpx.Response:
    return client.post("/jobs/submit", json={"jobId": job_id, **fields})


def complete(client: httpx.Client, job_id: str, status: str) -> httpx.Response:
    return client.post("/jobs/complete", json={"jobId": job_id, "status": status})


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
        ("/jobs/submit", b"[1, 2"),
        ("/jobs/submit", b"[]"),
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
    with TestClient(create_app(store=MemoryStore()), base_url=APP_URL) as client:
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


# =================================================================================================
# Issue 7: bodies and the store (13-15, 17-19)
# =================================================================================================


JSON = {"content-type": "application/json"}


def post(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers=JSON)


def nested(levels: int) -> bytes:
    """A JSON object ``levels`` deep: {"a": {"a": ... {} ...}}."""
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def submit_body(job_id: str, data: bytes) -> bytes:
    return b'{"jobId": "' + job_id.encode() + b'", "data": ' + data + b"}"


# -- 13 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 970, 5000])
def test_bug13_deeply_nested_data_is_refused_before_anything_is_stored(
    client: Client, levels: int
) -> None:
    answer = post(client, "/jobs/submit", submit_body("deep", nested(levels)))
    assert answer.status_code == 400, answer.text
    assert "may nest at most 64 levels" in answer.json()["detail"]
    assert client.get("/jobs/deep").status_code == 404
    assert client.get("/stats").json()["total"] == 0
    assert client.get("/jobs/next").status_code == 204

    # The limit itself is fine, and every read of such a job works.
    assert post(client, "/jobs/submit", submit_body("ok", nested(MAX_DEPTH))).status_code == 201
    assert client.get("/jobs/ok").status_code == 200
    assert client.get("/jobs").status_code == 200
    assert client.get("/jobs/next").json()["jobId"] == "ok"


def test_bug13_a_deep_job_stored_by_an_earlier_release_never_breaks_a_read(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    deep = nested(970).decode()
    with TestClient(
        create_app(Settings(db=str(db), synchronous="normal")), base_url=APP_URL
    ) as client:
        # As the first release stored it: no depth limit, the text in the data column.
        with sqlite3.connect(db) as conn:
            # (`run_at` as the upgrade to version 2 sets it: the time it was created.)
            conn.execute(
                "INSERT INTO jobs (job_id, data, state, created_at, run_at) "
                "VALUES ('old', ?, 'submitted', '2026-11-01T00:00:00.000000Z', "
                "'2026-11-01T00:00:00.000000Z')",
                (deep,),
            )
        conn.close()
        for path in ("/jobs/old", "/jobs", "/jobs?order=desc", "/jobs/next"):
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            assert deep in answer.text
        # The claim answered 200, so it is running, not stranded by a failed answer.
        assert client.get("/stats").json()["running"] == 1
        # Resubmitting it (within the limit) is a conflict, not a crash.
        assert post(client, "/jobs/submit", submit_body("old", b"{}")).status_code == 409


# -- 14 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"jobId": "dupA", "jobId": "dupB"}',
        b'{"jobId": "dupA", "data": {"n": 1, "n": 2}}',
        b'{"jobId": "dupA", "data": {"deep": [{"k": 1, "\\u006b": 2}]}}',
        b'{"jobId": "dupA", "description": "x", "description": "y"}',
    ],
)
def test_bug14_a_body_with_a_duplicate_key_is_refused(client: Client, body: bytes) -> None:
    answer = post(client, "/jobs/submit", body)
    assert answer.status_code == 400, answer.text
    assert "twice in one object" in answer.json()["detail"]
    assert client.get("/stats").json()["total"] == 0


def test_bug14_a_completion_with_a_duplicate_key_changes_nothing(client: Client) -> None:
    post(client, "/jobs/submit", b'{"jobId": "j"}')
    client.get("/jobs/next")
    body = b'{"jobId": "j", "status": "succeeded", "status": "failed"}'
    answer = post(client, "/jobs/complete", body)
    assert answer.status_code == 400, answer.text
    assert "'status' twice" in answer.json()["detail"]
    assert client.get("/jobs/j").json()["state"] == "running"


# -- 15 ---------------------------------------------------------------------------------------


def test_bug15_data_is_stored_and_answered_exactly_as_sent(client: Client) -> None:
    data = b'{"tiny": 1e-400, "negative zero": -0, "long": 0.1000000000000000055511151231257827}'
    created = post(client, "/jobs/submit", submit_body("exact", data))
    assert created.status_code == 201, created.text
    for answer in (
        created,
        client.get("/jobs/exact"),
        client.get("/jobs"),
        client.get("/jobs/next"),
    ):
        assert data in answer.content
    # Resubmits compare the values that were stored: spacing, key order and number spelling
    # are not content; a different number is.
    same = b'{"long":0.1000000000000000055511151231257827,"negative zero":0,"tiny":1E-400}'
    assert post(client, "/jobs/submit", submit_body("exact", same)).status_code == 200
    other = b'{"tiny": 0.0, "negative zero": -0, "long": 0.1000000000000000055511151231257827}'
    conflict = post(client, "/jobs/submit", submit_body("exact", other))
    assert conflict.status_code == 409
    assert "data" in conflict.json()["detail"]


def test_bug15_no_data_is_stored_as_sql_null_and_resubmits_match_earlier_rows(
    tmp_path: Path,
) -> None:
    db = tmp_path / "queue.db"
    with TestClient(create_app(Settings(db=str(db), synchronous="normal")), base_url=APP_URL) as c:
        assert post(c, "/jobs/submit", b'{"jobId": "bare"}').status_code == 201
        assert post(c, "/jobs/submit", b'{"jobId": "nulled", "data": null}').status_code == 201
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = conn.execute("SELECT job_id FROM jobs WHERE data IS NULL ORDER BY seq")
            assert [job_id for (job_id,) in rows] == ["bare", "nulled"]
            # As the first release stored a job without data: NULL, with no text at all.
            # (`run_at` as the upgrade to version 2 sets it: the time it was created.)
            conn.execute(
                "INSERT INTO jobs (job_id, state, created_at, run_at) VALUES ('old', "
                "'submitted', '2026-11-01T00:00:00.000000Z', '2026-11-01T00:00:00.000000Z')"
            )
            conn.commit()
        for job_id in ("bare", "nulled", "old"):
            body = b'{"jobId": "%s", "data": null}' % job_id.encode()
            assert post(c, "/jobs/submit", body).status_code == 200, job_id
            assert post(c, "/jobs/submit", b'{"jobId": "%s"}' % job_id.encode()).status_code == 200


def test_bug15_an_integer_is_not_the_same_as_a_fraction_or_a_boolean(client: Client) -> None:
    assert post(client, "/jobs/submit", submit_body("n", b'{"n": 1}')).status_code == 201
    assert post(client, "/jobs/submit", submit_body("n", b'{"n": 1.0}')).status_code == 409
    assert post(client, "/jobs/submit", submit_body("n", b'{"n": true}')).status_code == 409
    assert post(client, "/jobs/submit", submit_body("n", b'{ "n" : 1 }')).status_code == 200


# -- 17 ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def another_writer(db: Path) -> Iterator[Callable[[], None]]:
    """Another process's connection to the file, holding its write lock until the function
    this yields is called (or the block ends)."""
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    def release() -> None:
        if other.in_transaction:
            other.execute("ROLLBACK")

    try:
        yield release
    finally:
        release()
        other.close()


def test_bug17_a_locked_store_answers_503_and_recovers(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    settings = Settings(db=str(db), synchronous="normal", store_timeout=0.2)
    with TestClient(create_app(settings), base_url=APP_URL) as client:
        assert post(client, "/jobs/submit", b'{"jobId": "before"}').status_code == 201
        with another_writer(db) as release:
            for path, body in (("/jobs/submit", b'{"jobId": "during"}'), ("/jobs/next", None)):
                answer = client.get(path) if body is None else post(client, path, body)
                assert answer.status_code == 503, answer.text
                assert answer.headers["Retry-After"] == "1"
                assert answer.headers["Content-Type"] == "application/problem+json"
                assert "lock" in answer.json()["detail"]
            # Reads still answer, and show that nothing changed.
            assert client.get("/stats").json()["submitted"] == 1
            assert client.get("/jobs/during").status_code == 404
            # Once the other writer lets go, the same server works again by itself.
            release()
            assert post(client, "/jobs/submit", b'{"jobId": "during"}').status_code == 201
            assert client.get("/jobs/next").json()["jobId"] == "before"


def test_bug17_a_full_store_answers_503_keeps_what_it_acknowledged_and_recovers(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "queue.db"), synchronous="normal")
    payload = b'{"blob": "' + b"x" * 50_000 + b'"}'
    with TestClient(create_app(store=store), base_url=APP_URL) as client, client.portal() as portal:
        # A file that may not grow: what a full disk looks like to SQLite (SQLITE_FULL).
        pages = portal.call(
            store._write, lambda conn: conn.execute("PRAGMA page_count").fetchone()[0]
        )
        portal.call(
            store._write, lambda conn: conn.execute(f"PRAGMA max_page_count = {pages + 40}")
        )
        acknowledged = []
        for n in range(20):
            answer = post(client, "/jobs/submit", submit_body(f"big-{n}", payload))
            if answer.status_code == 503:
                break
            assert answer.status_code == 201, answer.text
            acknowledged.append(f"big-{n}")
        else:
            pytest.fail("the store never filled up")
        assert answer.headers["Retry-After"] == "1"
        assert "full" in answer.json()["detail"]
        refused = f"big-{len(acknowledged)}"
        assert client.get(f"/jobs/{refused}").status_code == 404
        for job_id in acknowledged:
            assert client.get(f"/jobs/{job_id}").status_code == 200
        assert client.get("/stats").json()["total"] == len(acknowledged)
        # Room again (space freed on the disk): the same request now succeeds.
        portal.call(store._write, lambda conn: conn.execute("PRAGMA max_page_count = 1000000"))
        assert post(client, "/jobs/submit", submit_body(refused, payload)).status_code == 201


# -- 18 ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bug18_reads_do_not_wait_for_a_writer_blocked_on_the_lock(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    db = tmp_path / "queue.db"
    server = serve(str(db), "--synchronous", "normal", "--store-timeout", "60")
    with httpx.Client(base_url=server.url, timeout=90) as http:
        assert post(http, "/jobs/submit", b'{"jobId": "known"}').status_code == 201
    with another_writer(db) as release:

        def blocked_submit(n: int) -> int:
            with httpx.Client(base_url=server.url, timeout=90) as http:
                body = b'{"jobId": "w%d"}' % n
                return post(http, "/jobs/submit", body).status_code

        with ThreadPoolExecutor(2) as pool:
            writes = [pool.submit(blocked_submit, n) for n in range(2)]
            with httpx.Client(base_url=server.url, timeout=90) as http:
                # Give the writes time to reach the store's lock; if they had not, the reads
                # below would prove nothing, but could not fail either.
                threading.Event().wait(0.5)
                assert http.get("/stats").json()["total"] == 1
                assert http.get("/jobs/known").status_code == 200
                assert http.get("/jobs?limit=5").status_code == 200
                # The reads answered while both writes still wait for the lock.
                assert not any(write.done() for write in writes)
            release()
            assert [write.result() for write in writes] == [201, 201]


def test_bug18_a_read_answers_while_the_writer_waits_for_the_lock(tmp_path: Path) -> None:
    # The same, made certain in one process: the writer is seen to have begun its wait for the
    # lock (SQLite's trace of its BEGIN IMMEDIATE) before the reads are made.
    db = tmp_path / "queue.db"

    async def scenario() -> None:
        store = SqliteStore(str(db), synchronous="normal", timeout=60)
        await store.open()
        try:
            await store.submit(NewJob("known", None, None, datetime.now(UTC)))
            waiting = threading.Event()

            def trace(sql: str) -> None:
                if sql.startswith("BEGIN IMMEDIATE"):
                    waiting.set()

            def watch() -> None:
                assert store._conn is not None
                store._conn.set_trace_callback(trace)

            await asyncio.get_running_loop().run_in_executor(store._writer, watch)
            with another_writer(db) as release:
                write = asyncio.create_task(
                    store.submit(NewJob("w", None, None, datetime.now(UTC)))
                )
                assert await asyncio.to_thread(waiting.wait, 30)
                assert (await store.stats(datetime.now(UTC))).total == 1
                assert await store.get("known") is not None
                assert not write.done()  # the reads answered while the write waits
                release()
                assert (await write)[1] is True
        finally:
            await store.close()

    asyncio.run(scenario())


# -- 19 ---------------------------------------------------------------------------------------


def test_bug19_the_server_gives_up_on_the_store_before_the_sdk_gives_up_on_it() -> None:
    # With a margin: a claim's answer is awaited for longer than the server may take to make it.
    assert Settings().store_timeout + 1 <= CLAIM_WAIT <= TIMEOUT


@pytest.mark.slow
def test_bug19_a_claim_the_caller_gave_up_on_is_never_made(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    db = tmp_path / "queue.db"
    server = serve(str(db), "--synchronous", "normal", "--store-timeout", "1")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for n in range(4):
            assert post(http, "/jobs/submit", b'{"jobId": "j%d"}' % n).status_code == 201
    with another_writer(db):

        def claim(_: int) -> int | str:
            # A worker that waits 3 s for its answer, three times the server's store timeout.
            with httpx.Client(base_url=server.url, timeout=3) as http:
                try:
                    return http.get("/jobs/next").status_code
                except httpx.TimeoutException:
                    return "timed out"

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(claim, range(4)))
        # Every claim was refused by the server, in time for its caller to hear it.
        assert answers == [503, 503, 503, 503]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        stats = http.get("/stats").json()
        assert (stats["submitted"], stats["running"]) == (4, 0)
        assert http.get("/jobs/next").json()["jobId"] == "j0"


# =================================================================================================
# Issue 7: the server process (16, 20, 23, 27)
# =================================================================================================


IDLE = 1000
"""Idle connections held open against one server (the issue's number)."""
WAIT = 15.0
"""Seconds any one thing in these tests may take before it counts as never: far above the
one-second timeouts the servers under test are given, and far below a hung test."""


def _raise_file_limit(needed: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@contextlib.contextmanager
def _idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` TCP connections that send nothing, all established before this yields."""
    socks: list[socket.socket] = []
    try:
        with selectors.DefaultSelector() as selector:
            for _ in range(count):
                sock = socket.socket()
                socks.append(sock)
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                selector.register(sock, selectors.EVENT_WRITE)
            pending, deadline = count, time.monotonic() + WAIT
            while pending and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=1):
                    selector.unregister(key.fileobj)
                    pending -= 1
        established = [s for s in socks if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0]
        assert len(established) == count, f"only {len(established)} of {count} connected"
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _closed_by_server(sock: socket.socket, trickle: bytes = b"") -> bytes:
    """Wait (at most `WAIT`) until the server closes ``sock``, sending ``trickle`` one byte at a
    time meanwhile; return what the server sent. Fails if it is still open."""
    received = b""
    sock.settimeout(0.2)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            if trickle:
                try:
                    sock.send(trickle[:1])
                except OSError:  # reset by the server: closed
                    return received
                trickle = trickle[1:]
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    pytest.fail(f"the server kept the connection open for {WAIT}s (got {received[:60]!r})")


def test_bug16_idle_connections_do_not_take_the_server_offline(
    serve: Callable[..., ServerProcess],
) -> None:
    _raise_file_limit(IDLE + 256)
    # With every default: 1,000 connections that send nothing leave the server reachable.
    server = serve()
    with (
        _idle_connections(server.port, IDLE),
        httpx.Client(base_url=server.url, timeout=WAIT) as client,
    ):
        assert client.get("/health").status_code == 200
        answer = client.post("/jobs/submit", json={"jobId": "submitted-past-the-idle-crowd"})
        assert answer.status_code == 201

    # And a connection that sends nothing, or trickles its headers or its body, is cut off.
    quick = serve(None, "--header-timeout", "1", "--body-timeout", "1")
    head = b"POST /jobs/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    body_head = head + b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    with socket.create_connection(("127.0.0.1", quick.port), timeout=WAIT) as idle:
        assert _closed_by_server(idle) == b""
    with socket.create_connection(("127.0.0.1", quick.port), timeout=WAIT) as headers:
        headers.sendall(head[:5])
        _closed_by_server(headers, trickle=head[5:] + b"X-Slow: " + b"a" * 200)
    with socket.create_connection(("127.0.0.1", quick.port), timeout=WAIT) as body:
        body.sendall(body_head + b"{")
        answer_bytes = _closed_by_server(body, trickle=b" " * 300)
        assert answer_bytes.startswith(b"HTTP/1.1 408 "), answer_bytes[:60]
    # A keep-alive connection left idle after an answer is closed too.
    with socket.create_connection(("127.0.0.1", quick.port), timeout=WAIT) as kept:
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _closed_by_server(kept).startswith(b"HTTP/1.1 200 ")
    assert httpx.get(f"{quick.url}/health", timeout=WAIT).status_code == 200


def _sq_serve(port: int, db: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`sq serve` expected to end by itself: its exit code and output. ``--log-level info``, so
    a "Listening at" line would show if it got that far."""
    command = [sys.executable, "-m", "simplequeue", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--db", str(db), "--log-level", "info", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            out, err = process.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"sq serve did not exit; it is serving: {err[-300:]!r}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _assert_one_line_failure(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert "Listening" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("sq: error: "), output
    for word in expected:
        assert word in lines[0], lines[0]
    return lines[0]


def test_bug20_second_server_on_a_port_in_use_exits_with_one_line(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    first = serve()
    other_db = tmp_path / "other.db"
    _assert_one_line_failure(_sq_serve(first.port, other_db), str(first.port), "in use")
    assert not other_db.exists()  # refused before it opened a database of its own

    # A listener that allows port sharing (SO_REUSEPORT, as granian's own bind does) is no
    # excuse to share it: the port is in use all the same.
    if hasattr(socket, "SO_REUSEPORT"):
        with socket.socket() as sharing:
            sharing.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sharing.bind(("127.0.0.1", 0))
            sharing.listen()
            port = sharing.getsockname()[1]
            _assert_one_line_failure(_sq_serve(port, other_db), str(port), "in use")

    # Every request still reaches the first server and its database.
    with httpx.Client(base_url=first.url, timeout=WAIT) as client:
        for n in range(20):
            assert client.post("/jobs/submit", json={"jobId": f"j{n}"}).status_code == 201
        assert client.get("/stats").json()["total"] == 20


def test_bug23_access_log_escapes_control_characters(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = serve(None, "--log-level", "info", "--access-log")
    assert server.log_path is not None
    forged = "2026-01-01 00:00:00,000 INFO simplequeue.server: FORGED admin logged in"
    paths = [
        "/health%0A" + forged.replace(" ", "%20"),  # line feed
        "/health%0D%0A" + "FORGED%1B[2J",  # CR LF, and an escape sequence for whoever tails it
        "/health%C2%85FORGED%E2%80%A8FORGED",  # NEL, LINE SEPARATOR: line breaks to some tools
    ]
    for path in paths:
        with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 404 ")

    def logged() -> list[str]:
        text = server.log_path.read_bytes().decode("utf-8") if server.log_path else ""
        return [line for line in text.split("\n") if "FORGED" in line]

    deadline = time.monotonic() + WAIT
    while len(logged()) < len(paths) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = logged()
    assert len(lines) == len(paths), lines
    for line in lines:
        assert re.match(r'\d{4}-\d\d-\d\d [\d:,]+ INFO granian\.access: 127\.0\.0\.1 "GET ', line)
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", line), line
    assert "/health\\n2026-01-01" in lines[0]
    assert "/health\\r\\nFORGED\\x1b[2J" in lines[1]


def _damaged_database(path: Path) -> Path:
    """A real SQLite file with some of its pages overwritten: it opens, and reads go wrong."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("CREATE INDEX t_x ON t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(100),) for _ in range(2000)])
        conn.commit()
    with path.open("r+b") as file:
        file.seek(4096 * 2)
        file.write(os.urandom(4096 * 4))
    return path


def _too_new_database(path: Path) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 999")
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    return path


STARTUP_PROBLEMS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...], tuple[str, ...]]] = {
    # case: (the --db it is given, extra options, words the one line must hold)
    "garbage": (lambda d: _written(d / "garbage.db", os.urandom(8192)), (), ("garbage.db",)),
    "damaged": (lambda d: _damaged_database(d / "damaged.db"), (), ("corrupt",)),
    "too-new": (lambda d: _too_new_database(d / "new.db"), (), ("999",)),
    "unwritable": (lambda d: _written(d / "a-file", b"") / "queue.db", (), ("a-file",)),
    "bad-option": (lambda d: d / "q.db", ("--max-connections", "0"), ("--max-connections",)),
    "bad-timeout": (lambda d: d / "q.db", ("--header-timeout", "0"), ("--header-timeout",)),
    "bad-port": (lambda d: d / "q.db", ("--port", "70000"), ("--port",)),
    "bad-host": (lambda d: d / "q.db", ("--host", "no.such.host.invalid"), ("--host",)),
}


def _written(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", STARTUP_PROBLEMS)
def test_bug27_start_up_problems_are_one_line_and_nonzero(case: str, tmp_path: Path) -> None:
    make_db, options, expected = STARTUP_PROBLEMS[case]
    result = _sq_serve(free_port(), make_db(tmp_path), *options)
    _assert_one_line_failure(result, *expected)


def test_bug27_a_port_in_use_by_another_program_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = _sq_serve(port, tmp_path / "q.db")
    _assert_one_line_failure(result, str(port), "in use")
    assert result.returncode == 6  # docs/operations.md: could not start


# =================================================================================================
# Issue 7: browsers, proxies and odd requests (21, 22, 24-26)
# =================================================================================================


def submitted(client: httpx.Client, job_id: str) -> None:
    assert client.post("/jobs/submit", json={"jobId": job_id}).status_code == 201


def assert_problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


def test_bug21_cross_site_requests_cannot_change_the_queue(client: Client) -> None:
    submitted(client, "queued")
    client.get("/jobs/next")
    submitted(client, "waiting")
    before = client.get("/jobs").json()
    body = b'{"jobId": "forged"}'
    evil = {"origin": "http://evil.example", "sec-fetch-site": "cross-site"}

    # An HTML form on any site can post these; none of them is JSON.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = client.post("/jobs/submit", content=body, headers={"content-type": content_type})
        assert content_type in assert_problem(response, 415)
        assert response.headers["accept-post"] == "application/json"
    assert_problem(client.post("/jobs/submit", content=body), 415)  # no Content-Type at all
    # Other sites, by Origin or by Sec-Fetch-Site (same-site too: another port on localhost).
    for headers in (
        evil,
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:9999"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ):
        for path, payload in (
            ("/jobs/submit", body),
            ("/jobs/complete", b'{"jobId": "queued", "status": "failed"}'),
        ):
            response = client.post(path, content=payload, headers={**JSON, **headers})
            assert "another site" in assert_problem(response, 403)
        # <img src=".../jobs/next"> on another page.
        assert_problem(client.get("/jobs/next", headers=headers), 403)
    # DNS rebinding: a hostile name resolved to this machine; the page is then "same-origin".
    rebound = {"host": "evil.example:8000", "origin": "http://evil.example:8000"}
    rebound |= {"sec-fetch-site": "same-origin"}
    assert "evil.example" in assert_problem(client.get("/jobs", headers=rebound), 400)
    assert_problem(client.get("/jobs/next", headers=rebound), 400)
    assert_problem(client.post("/jobs/submit", content=body, headers={**JSON, **rebound}), 400)
    assert client.get("/jobs").json() == before  # nothing changed

    # The server's own page (the dashboard), the SDK and curl still get through.
    own = {"origin": APP_URL, "sec-fetch-site": "same-origin"}
    assert client.post("/jobs/submit", json={"jobId": "mine"}, headers=own).status_code == 201
    utf8 = {"content-type": "application/json; charset=UTF-8"}
    assert client.post("/jobs/submit", content=b'{"jobId": "b"}', headers=utf8).is_success
    assert client.get("/jobs/next", headers={"sec-fetch-site": "none"}).status_code == 200
    assert client.get("/jobs", headers={"sec-fetch-site": "cross-site"}).status_code == 200


def test_bug22_only_the_exact_path_claims_a_job(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for n in range(6):
            submitted(http, f"j{n}")
        for path in ("/jobs/next/", "//jobs/next", "/jobs%2Fnext", "/jobs%2fnext", "/jobs/"):
            assert_problem(http.get(server.url + path), 404)
        # Nor do the variants reach other routes: a trailing slash, an encoded letter.
        for path in ("/stats/", "//stats", "/st%61ts", "/jobs/j0/", "/jobs/j0/x"):
            assert_problem(http.get(server.url + path), 404)
        assert http.get("/stats").json()["running"] == 0
        # Ids that look like routes still work percent-encoded, and claim nothing.
        submitted(http, "next/")
        assert http.get("/jobs/next%2F").json()["jobId"] == "next/"
        assert http.get("/jobs/nex%74").status_code == 404  # the job "next" cannot exist
        assert http.get("/stats").json()["running"] == 0
        claimed = http.get("/jobs/next")
        assert (claimed.status_code, claimed.json()["jobId"]) == (200, "j0")


def test_bug24_odd_static_paths_are_404_and_schema_has_csp(client: Client) -> None:
    for path in (
        "/static/app.js%00.css",
        "/static/app.js%00",
        "/static/%2e%2e/__init__.py",
        "/static/app%2Ejs",
        "/vendor/redoc/redoc.standalone.js%00",
    ):
        assert_problem(client.get(path), 404)
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/vendor/redoc/redoc.standalone.js").status_code == 200

    page = client.get("/schema")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["frame-ancestors"] == "'none'"
    # Every script on the page is a file from the server itself.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.DOTALL)
    assert scripts
    assert all('src="/' in attributes and not body.strip() for attributes, body in scripts)
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get("/schema/openapi.json").headers["content-security-policy"] == csp


def test_bug25_head_works_wherever_get_does(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        # Scheduled ahead, so that no job is due: /stats then holds no growing queue latency,
        # and a GET and a HEAD a moment apart answer the same length.
        scheduled = {"jobId": "a/b", "delaySeconds": 3600}
        assert http.post("/jobs/submit", json=scheduled).status_code == 201
        paths = [
            "/health",
            "/stats",
            "/jobs",
            "/jobs?limit=1",
            "/jobs/a%2Fb",
            "/jobs/unknown",
            "/jobs?limit=0",
            "/",
            "/static/app.js",
            "/schema",
            "/schema/openapi.json",
            "/jobs/submit",
            "/no/such/route",
        ]
        for path in paths:
            got, head = http.get(path), http.head(path)
            assert head.status_code == got.status_code, path
            assert head.content == b"", path
            for name in ("content-type", "content-length", "content-security-policy", "allow"):
                assert head.headers.get(name) == got.headers.get(name), (path, name)
        # HEAD /jobs/next would hand out a job whose answer nobody reads.
        head = http.head("/jobs/next")
        assert (head.status_code, head.headers["allow"], head.content) == (405, "GET", b"")
        assert http.get("/stats").json()["running"] == 0


def test_bug26_empty_cursor_is_refused_as_the_schema_says(client: Client) -> None:
    submitted(client, "a")
    for name in ("after", "before"):
        for value in ("", "x" * 257):
            detail = assert_problem(client.get("/jobs", params={name: value}), 400)
            assert detail.startswith(f"`{name}`: "), detail
            assert "names no job" not in detail
        # A real cursor still works, and one that names no job is still the queue's 400.
        assert client.get("/jobs", params={name: "a"}).status_code == 200
        assert "names no job" in assert_problem(client.get("/jobs", params={name: "zz"}), 400)
    parameters = {
        p["name"]: p["schema"]
        for p in client.get("/schema/openapi.json").json()["paths"]["/jobs"]["get"]["parameters"]
    }
    for name in ("after", "before", "prefix"):
        assert (parameters[name]["minLength"], parameters[name]["maxLength"]) == (1, 256), name


# -- the edge's decisions, one by one --------------------------------------------------------


def test_allowed_host_names_are_answered() -> None:
    settings = Settings(db=":memory:", allowed_hosts=("queue.example",))
    with TestClient(create_app(settings), base_url="http://queue.example:8000") as client:
        assert client.get("/stats").status_code == 200
        own = {"origin": "http://queue.example:8000"}
        response = client.post("/jobs/submit", json={"jobId": "a"}, headers=own)
        assert response.status_code == 201
        assert_problem(client.get("/stats", headers={"host": "other.example"}), 400)


@pytest.mark.parametrize(
    ("bind", "extra", "expected"),
    [
        ("127.0.0.1", (), LOOPBACK_HOSTS),
        ("0.0.0.0", (), LOOPBACK_HOSTS),  # a wildcard names no host
        ("::", (), LOOPBACK_HOSTS),
        ("192.168.1.5", (), LOOPBACK_HOSTS | {"192.168.1.5"}),
        ("fe80::1", (), LOOPBACK_HOSTS | {"[fe80::1]"}),
        ("0.0.0.0", ("Queue.Example.", "[::2]"), LOOPBACK_HOSTS | {"queue.example", "[::2]"}),
        ("0.0.0.0", ("*",), None),
    ],
)
def test_allowed_hosts(bind: str, extra: tuple[str, ...], expected: frozenset[str] | None) -> None:
    assert allowed_hosts(bind, extra) == expected


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("LOCALHOST:1", True),
        ("127.0.0.1:8000", True),
        ("[::1]:8000", True),
        ("[::1]", True),
        ("queue.example:443", True),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("localhost:8000, evil.example", False),  # a repeated Host header, joined
        ("", False),
    ],
)
def test_host_check(host: str, allowed: bool) -> None:
    hosts = allowed_hosts("127.0.0.1", ["queue.example"])
    assert (refusal("GET", "/jobs", {"host": host}, hosts) is None) == allowed
    assert refusal("GET", "/health", {"host": host}, hosts) is None  # probes use an IP address
    assert refusal("GET", "/jobs", {"host": host}, None) is None  # --allowed-host '*'


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/jobs", {"origin": "http://evil.example"}, None),  # reads: CORS protects them
        ("GET", "/jobs/next", {"origin": "http://evil.example"}, 403),
        ("GET", "/jobs/next", {"origin": "http://localhost:8000"}, None),
        ("GET", "/jobs/next", {"sec-fetch-site": "same-site"}, 403),
        ("POST", "/jobs/submit", {}, 415),  # no Content-Type
        ("POST", "/jobs/submit", JSON, None),
        # The same host and port, whatever the scheme: a TLS proxy in front speaks http here.
        ("POST", "/jobs/submit", {**JSON, "origin": "https://localhost:8000"}, None),
        ("POST", "/jobs/submit", {**JSON, "origin": "http://localhost:8001"}, 403),  # port
        ("POST", "/jobs/submit", {**JSON, "origin": "http://LocalHost:8000"}, None),
        ("POST", "/jobs/submit", {**JSON, "sec-fetch-site": "none"}, None),
        ("POST", "/jobs/submit", {"content-type": "text/plain", "origin": "http://e.x"}, 403),
        ("DELETE", "/jobs/a", {"sec-fetch-site": "cross-site"}, 403),
        ("OPTIONS", "/jobs/submit", {"sec-fetch-site": "cross-site"}, None),
    ],
)
def test_cross_site_and_content_type(
    method: str, path: str, headers: dict[str, str], status: int | None
) -> None:
    refused = refusal(method, path, {"host": "localhost:8000", **headers}, LOOPBACK_HOSTS)
    assert (refused and refused.status) == status


def test_origin_with_a_default_port_matches_a_host_without_one() -> None:
    headers = {**JSON, "host": "queue.example", "origin": "https://queue.example:443"}
    assert refusal("POST", "/jobs/submit", headers, None) is None


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/json", True),
        ("Application/JSON", True),
        ("application/json; charset=utf-8", True),
        ('application/json;charset="UTF-8"', True),
        ("application/json; charset=latin-1", False),
        ("application/problem+json", False),
        ("application/merge-patch+json", False),
        ("text/json", False),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("application/json, text/plain", False),
        ("", False),
        (None, False),
    ],
)
def test_is_json(content_type: str | None, accepted: bool) -> None:
    assert is_json(content_type) == accepted


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (b"/", True),
        (b"/jobs", True),
        (b"/jobs/next", True),
        (b"/jobs/a%2Fb", True),
        (b"/jobs/%2E", True),
        (b"/jobs/next%2F", True),
        (b"/static/app.js", True),
        (b"/schema/openapi.json", True),
        (b"/jobs/", False),
        (b"/jobs/next/", False),
        (b"//jobs/next", False),
        (b"/jobs//next", False),
        (b"/jobs%2Fnext", False),
        (b"/jobs/a/b", False),
        (b"/jobs/.", False),
        (b"/./jobs", False),
        (b"/static/../x", False),
        (b"/static/app.js%00.css", False),
        (b"jobs", False),
        (b"", False),
    ],
)
def test_canonical_path(raw: bytes, canonical: bool) -> None:
    assert canonical_path(raw) == canonical


# =================================================================================================
# Issue 7: the terminal (28, 29)
# =================================================================================================


# The module, not the Typer object that `simplequeue.cli` re-exports under the same name.
cli_app = importlib.import_module("simplequeue.cli.app")
real_connect = cli_app.connect


def only_line(result: Result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


# -- 28: a command against a hung server ends within its bound ----------------------------------


@pytest.fixture
def hung_url() -> Iterator[str]:
    """A server that accepts connections (the kernel completes them from the backlog) and never
    reads a request or answers one."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_bug28_cli_gives_up_on_a_hung_server_within_its_bound(hung_url: str) -> None:
    bound = 1.0
    for command in (["stats"], ["get", "x"]):  # retried calls
        started = time.monotonic()
        result = CliRunner().invoke(
            cli_app.app, ["--url", hung_url, "--timeout", f"{bound:g}", *command]
        )
        took = time.monotonic() - started
        assert result.exit_code == 4, (command, result.stderr)
        line = only_line(result)
        assert line.startswith(f"sq: error: the server at {hung_url} did not answer within 1 s")
        # Before the fix: 4 attempts of 10 s each. The margin here is for a loaded machine.
        assert took < 10 * bound, (command, took)
    # `next` is sent once, and its answer awaited for CLAIM_WAIT (never less: a claim the
    # client gave up on could strand a job), then it gives up too.
    started = time.monotonic()
    result = CliRunner().invoke(cli_app.app, ["--url", hung_url, "--timeout", "1", "next"])
    took = time.monotonic() - started
    assert result.exit_code == 4, result.stderr
    assert only_line(result).startswith(f"sq: error: the server at {hung_url} did not answer")
    assert took < 2 * CLAIM_WAIT, took


# -- 29: strings from the server cannot drive the terminal --------------------------------------

HOSTILE_ID = "job\u202eevil\u2066\x9b2J"  # an id may hold C1 and bidi characters (not C0)
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x9b31m\u202ereversed\u202c\u2067iso\u2069\r\nnext"
DATA = {"key\u202e": HOSTILE, "list": ["\x1b[2J", "\x9b"]}

# Rich's own colours and styles, when it styles its output: the only escapes allowed through.
RICH_STYLE = re.compile(r"\x1b\[[0-9;]*m")
BIDI_FORMATTING = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}


def assert_inert(output: str, *, raw_newlines: bool = True) -> None:
    """Nothing in ``output`` that a terminal would obey, apart from line breaks and Rich's own
    styles; checked against Unicode's properties, not the code's list."""
    shown = RICH_STYLE.sub("", output)
    if raw_newlines:
        shown = shown.replace("\n", "")
    obeyed = [
        char
        for char in shown
        if unicodedata.category(char) in {"Cc", "Zl", "Zp"}
        or unicodedata.bidirectional(char) in BIDI_FORMATTING
        or char in "\u200e\u200f\u061c"
    ]
    assert not obeyed, obeyed


@pytest.fixture
def sq(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SDKClient, CliRunner]]:
    """`sq` in-process against the real app, holding one hostile job."""
    with TestClient(create_app(Settings(db=":memory:")), base_url=APP_URL) as http:
        monkeypatch.setattr(
            cli_app, "connect", lambda url, **options: SDKClient(http=http, **options)
        )
        client = SDKClient(http=http)
        client.submit(HOSTILE_ID, HOSTILE, DATA)
        yield client, CliRunner(env={"COLUMNS": "200"})  # wide enough not to fold the id


def test_bug29_terminal_output_makes_control_and_bidi_characters_inert(
    sq: tuple[SDKClient, CliRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, runner = sq

    # Human output: every control shown as its escape, the text around it intact.
    for command in (["get", HOSTILE_ID], ["list"], ["complete", HOSTILE_ID, "failed"]):
        if command[0] == "complete":
            client.next()
        result = runner.invoke(cli_app.app, command)
        assert result.exit_code == 0, (command, result.stderr)
        assert_inert(result.stdout)
        assert "\\x1b[2J" in result.stdout, command
        assert "job\\u202eevil\\u2066\\x9b2J" in result.stdout, command
    shown = runner.invoke(cli_app.app, ["get", HOSTILE_ID]).stdout
    assert "\\x1b]0;pwned\\x07\\x9b31m\\u202ereversed" in shown  # the description
    assert "\\u202e" in shown.split("data", 1)[1]  # the data, through the JSON view

    # --json: valid JSON, equal to the job when parsed, and inert as it is printed.
    for command in (["get", HOSTILE_ID, "--json"], ["list", "--json"]):
        result = runner.invoke(cli_app.app, command)
        assert result.exit_code == 0, (command, result.stderr)
        assert_inert(result.stdout.removesuffix("\n"), raw_newlines=False)
        printed = json.loads(result.stdout)
        job = printed[0] if isinstance(printed, list) else printed
        assert (job["jobId"], job["description"], job["data"]) == (HOSTILE_ID, HOSTILE, DATA)

    # An error line on stderr, whose detail quotes what the server was sent.
    monkeypatch.setattr(cli_app, "connect", real_connect)
    with respx.mock(base_url="http://queue.test") as server:
        server.get("/stats").respond(
            409, json={"status": 409, "title": "Conflict", "detail": f"job '{HOSTILE}' differs"}
        )
        result = CliRunner().invoke(cli_app.app, ["--url", "http://queue.test", "stats"])
    assert result.exit_code == 1
    line = only_line(result)
    assert_inert(line)
    assert line == (
        "sq: error: job '\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202ereversed\\u202c"
        "\\u2067iso\\u2069 next' differs"
    )

    # `sq watch`: one frame, in a terminal that takes colours, the jobs and an error on it.
    frame = io.StringIO()
    Console(file=frame, force_terminal=True, width=200).print(
        dashboard(
            Snapshot(
                url="http://queue.test",
                now=datetime.now(UTC),
                stats=client.stats(),
                jobs=client.list_jobs(),
                error=f"cannot reach {HOSTILE}",
            )
        )
    )
    assert_inert(frame.getvalue())
    assert "\\x1b[2J" in frame.getvalue()
    assert "job\\u202eevil" in frame.getvalue()
