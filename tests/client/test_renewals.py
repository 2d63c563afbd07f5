"""A worker's heartbeats are independent of one another (both twins), against a fake server on
127.0.0.1 that leaves one job's heartbeats unanswered: the other job's leases are still renewed,
and the hung renewal is given up within the time left on its lease, not the client's timeouts.

A real socket, not respx: what is tested is a request that gets no answer, and how long the
client waits for it."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from simplequeue import AsyncClient, Client, Job
from tests.client.conftest import job_json

LEASE = 3
"""Seconds of each lease: a heartbeat every second (a third of it)."""
GIVE_UP = 30.0
"""Seconds after which a wait fails the test instead of hanging it."""


class FakeQueue:
    """Hands out jobs ``a`` and ``b`` in one ``next``; answers ``b``'s heartbeats at once and
    leaves ``a``'s unanswered until `release`; takes every completion."""

    def __init__(self) -> None:
        self.beats: list[str] = []
        """The job of each heartbeat request, in the order they arrived."""
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.handed_out = False

    def count(self, job_id: str) -> int:
        with self.lock:
            return self.beats.count(job_id)

    def wait_for(self, what: Callable[[], bool]) -> None:
        deadline = time.monotonic() + GIVE_UP
        while not what():
            assert time.monotonic() < deadline, f"gave up waiting; heartbeats: {self.beats}"
            time.sleep(0.02)

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/jobs/next":
            with self.lock:
                first, self.handed_out = not self.handed_out, True
            return (200, [leased("a"), leased("b")]) if first else (204, None)
        if path == "/jobs/heartbeat":
            with self.lock:
                self.beats.append(body["jobId"])
            if body["jobId"] == "a":
                self.release.wait(GIVE_UP)  # no answer while the client waits for one
            return 200, leased(body["jobId"])
        if path == "/jobs/complete":
            return 200, [
                {"status": 200, "job": job_json(item["jobId"], "succeeded")} for item in body
            ]
        return 404, {"status": 404, "title": "Not Found", "detail": path}


def leased(job_id: str) -> dict[str, Any]:
    started = datetime.now(UTC)
    return job_json(
        job_id,
        "running",
        attempts=1,
        leaseId=f"lease-{job_id}",
        startedAt=started.isoformat().replace("+00:00", "Z"),
        leaseExpiresAt=(started + timedelta(seconds=LEASE)).isoformat().replace("+00:00", "Z"),
    )


@pytest.fixture
def fake() -> Iterator[tuple[FakeQueue, str]]:
    queue = FakeQueue()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = queue.answer(self.command, self.path.split("?")[0], body)
            content = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # the answer to a heartbeat the client gave up on: nobody is listening

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield queue, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        queue.release.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_heartbeat_that_hangs_holds_up_no_other_and_is_given_up_within_its_lease(
    fake: tuple[FakeQueue, str], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="simplequeue.worker")
    queue, url = fake

    def until_renewals_went_on() -> None:
        # a's first heartbeat hangs. b's are sent all the same, and a's is given up within the
        # time left on a's lease (under 3 s), far sooner than the client's 10 s read timeout:
        # only then is a's next one sent.
        queue.wait_for(lambda: queue.count("a") >= 2 and queue.count("b") >= 3)

    # No prefetch and two slots: both jobs run, and no other `next` is sent while they do.
    options: dict[str, Any] = {"concurrency": 2, "prefetch": 0, "lease": LEASE, "wait": 0}
    if kind == "sync":
        stop = threading.Event()

        def handler(job: Job) -> str:
            until_renewals_went_on()
            stop.set()
            return "done"

        with Client(url) as client:
            client.work(handler, stop=stop, **options)
    else:

        async def work() -> None:
            astop = asyncio.Event()

            async def ahandler(job: Job) -> str:
                await asyncio.to_thread(until_renewals_went_on)
                astop.set()
                return "done"

            async with AsyncClient(url) as client:
                await client.work(ahandler, stop=astop, **options)

        asyncio.run(work())

    with queue.lock:
        beats = list(queue.beats)
    first_a, second_a = [n for n, job in enumerate(beats) if job == "a"][:2]
    assert "b" in beats[first_a + 1 : second_a], beats  # renewed while a's hung
    assert "a heartbeat of job 'a' failed: the server at" in caplog.text
    assert "did not answer within" in caplog.text
    assert "job 'b'" not in caplog.text
