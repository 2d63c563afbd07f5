"""Regression tests for issue 7's defects in bodies and the store (bugs 13-15, 17-19)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from simplequeue.client.base import TIMEOUT
from simplequeue.jsontext import MAX_DEPTH
from simplequeue.server import Settings, create_app
from simplequeue.store import MemoryStore, SqliteStore
from tests.servers import ServerProcess

Client = TestClient[Any]
JSON = {"Content-Type": "application/json"}
BASE = "http://127.0.0.1:8000"  # a Host the server answers to


@pytest.fixture(params=["sqlite", "memory"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    if request.param == "memory":
        app = create_app(store=MemoryStore())
    else:
        app = create_app(Settings(db=str(tmp_path / "queue.db"), synchronous="normal"))
    with TestClient(app, base_url=BASE) as c:
        yield c


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
    assert "`data` may nest at most 64 levels" in answer.json()["detail"]
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
    with TestClient(create_app(Settings(db=str(db), synchronous="normal")), base_url=BASE) as client:
        # As the first release stored it: no depth limit, the text in the data column.
        with sqlite3.connect(db) as conn:
            conn.execute(
                "INSERT INTO jobs (job_id, data, state, created_at) "
                "VALUES ('old', ?, 'submitted', '2026-11-01T00:00:00.000000Z')",
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
    for answer in (created, client.get("/jobs/exact"), client.get("/jobs"), client.get("/jobs/next")):
        assert data in answer.content
    # Resubmits compare the values that were stored: spacing, key order and number spelling
    # are not content; a different number is.
    same = b'{"long":0.1000000000000000055511151231257827,"negative zero":0,"tiny":1E-400}'
    assert post(client, "/jobs/submit", submit_body("exact", same)).status_code == 200
    other = b'{"tiny": 0.0, "negative zero": -0, "long": 0.1000000000000000055511151231257827}'
    conflict = post(client, "/jobs/submit", submit_body("exact", other))
    assert conflict.status_code == 409
    assert "data" in conflict.json()["detail"]


def test_bug15_an_integer_is_not_the_same_as_a_fraction_or_a_boolean(client: Client) -> None:
    assert post(client, "/jobs/submit", submit_body("n", b'{"n": 1}')).status_code == 201
    assert post(client, "/jobs/submit", submit_body("n", b'{"n": 1.0}')).status_code == 409
    assert post(client, "/jobs/submit", submit_body("n", b'{"n": true}')).status_code == 409
    assert post(client, "/jobs/submit", submit_body("n", b'{ "n" : 1 }')).status_code == 200


# -- 17 ---------------------------------------------------------------------------------------


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A SQLite file and a function that takes its write lock, as another process would."""
    db = tmp_path / "queue.db"
    holder: list[sqlite3.Connection] = []

    def lock() -> None:
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        holder.append(conn)

    yield db, lock
    for conn in holder:
        conn.rollback()
        conn.close()


def test_bug17_a_locked_store_answers_503_and_recovers(
    locked: tuple[Path, Callable[[], None]],
) -> None:
    db, lock = locked
    settings = Settings(db=str(db), synchronous="normal", store_timeout=0.2)
    with TestClient(create_app(settings), base_url=BASE) as client:
        assert post(client, "/jobs/submit", b'{"jobId": "before"}').status_code == 201
        lock()
        for path, body in (("/jobs/submit", b'{"jobId": "during"}'), ("/jobs/next", None)):
            answer = client.get(path) if body is None else post(client, path, body)
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "1"
            assert answer.headers["Content-Type"] == "application/problem+json"
            assert "lock" in answer.json()["detail"]
        # Reads still answer, and show that nothing changed.
        assert client.get("/stats").json()["submitted"] == 1
        assert client.get("/jobs/during").status_code == 404


def test_bug17_the_lock_released_the_server_recovers(
    locked: tuple[Path, Callable[[], None]],
) -> None:
    db, lock = locked
    settings = Settings(db=str(db), synchronous="normal", store_timeout=0.2)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    try:
        with TestClient(create_app(settings), base_url=BASE) as client:
            holder.execute("BEGIN IMMEDIATE")
            assert post(client, "/jobs/submit", b'{"jobId": "a"}').status_code == 503
            holder.execute("ROLLBACK")
            assert post(client, "/jobs/submit", b'{"jobId": "a"}').status_code == 201
            assert client.get("/jobs/next").json()["jobId"] == "a"
    finally:
        holder.close()


def test_bug17_a_full_store_answers_503_keeps_what_it_acknowledged_and_recovers(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "queue.db"), synchronous="normal")
    payload = b'{"blob": "' + b"x" * 50_000 + b'"}'
    with TestClient(create_app(store=store), base_url=BASE) as client, client.portal() as portal:
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
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")

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
            other.execute("ROLLBACK")
            assert [write.result() for write in writes] == [201, 201]
    finally:
        other.close()


# -- 19 ---------------------------------------------------------------------------------------


def test_bug19_the_server_gives_up_on_the_store_before_the_sdk_gives_up_on_it() -> None:
    assert Settings().store_timeout < TIMEOUT


@pytest.mark.slow
def test_bug19_a_claim_the_caller_gave_up_on_is_never_made(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    db = tmp_path / "queue.db"
    server = serve(str(db), "--synchronous", "normal", "--store-timeout", "1")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for n in range(4):
            assert post(http, "/jobs/submit", b'{"jobId": "j%d"}' % n).status_code == 201
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")

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
    finally:
        other.execute("ROLLBACK")
        other.close()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        stats = http.get("/stats").json()
        assert (stats["submitted"], stats["running"]) == (4, 0)
        assert http.get("/jobs/next").json()["jobId"] == "j0"

