"""`sq watch`: its sampling pieces in-process, and the real thing in a terminal (tmux)."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from simplequeue import Client
from simplequeue.cli.render import Snapshot
from simplequeue.cli.watch import Throughput, sample
from simplequeue.models import Stats
from simplequeue.server import create_app
from simplequeue.store.base import NewJob
from simplequeue.store.memory import MemoryStore
from tests.servers import APP_URL, ServerProcess, free_port


def finished(count: int) -> Stats:
    return Stats(submitted=0, running=0, succeeded=count, failed=0, total=count)


def test_throughput_needs_two_samples_then_averages_over_the_window() -> None:
    rate = Throughput(window=2)
    assert rate.add(10.0, finished(0)) is None
    assert rate.add(11.0, finished(4)) == 4.0
    assert rate.add(12.0, finished(6)) == 3.0  # (6 - 0) / 2s
    assert rate.add(13.0, finished(6)) == 1.0  # the first sample left the window: (6 - 4) / 2s


def seeded_app(count: int) -> TestClient[Litestar]:
    """The app over a store already holding ``count`` jobs (seeded directly: fast at any size)."""
    store = MemoryStore()

    async def seed() -> None:
        for i in range(count):
            await store.submit(NewJob(f"j{i:05}", f"task {i}", None, datetime.now(UTC)))

    asyncio.run(seed())
    return TestClient(create_app(store=store), base_url=APP_URL)


@pytest.mark.parametrize("queued", [3, 2_500])
def test_a_sample_costs_two_requests_whatever_the_size_of_the_queue(queued: int) -> None:
    sent: list[httpx.Request] = []
    with seeded_app(queued) as http:
        http.event_hooks["request"].append(sent.append)
        snapshot = sample(Client(http=http), 10, Throughput(), Snapshot("u", datetime.now(UTC)))

    assert [(request.url.path, request.url.query) for request in sent] == [
        ("/stats", b""),
        ("/jobs", b"limit=10&order=desc"),
    ]
    assert snapshot.error is None
    assert snapshot.stats is not None
    assert snapshot.stats.total == queued
    newest = [f"j{i:05}" for i in range(queued - 1, max(queued - 11, -1), -1)]
    assert [job.job_id for job in snapshot.jobs] == newest


def test_each_sample_shows_the_newest_jobs_with_their_current_state() -> None:
    with seeded_app(12) as http:
        client = Client(http=http)
        rate = Throughput()
        first = sample(client, 5, rate, Snapshot("u", datetime.now(UTC)))
        assert [job.job_id for job in first.jobs] == [
            "j00011",
            "j00010",
            "j00009",
            "j00008",
            "j00007",
        ]

        client.submit("j00012")
        client.next()  # j00000: running, but too old to be shown
        taken = client.next()  # j00001
        assert taken is not None
        second = sample(client, 5, rate, first)

    assert [job.job_id for job in second.jobs] == ["j00012", "j00011", "j00010", "j00009", "j00008"]
    assert all(job.state == "submitted" for job in second.jobs)
    assert second.stats is not None
    assert (second.stats.running, second.stats.total) == (2, 13)


def test_a_failed_sample_keeps_the_last_data_and_says_why() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", retries=0) as client:
        last = Snapshot(url=client.url, now=datetime(2026, 1, 1, tzinfo=UTC), stats=finished(3))
        snapshot = sample(client, 5, Throughput(), last)
    assert snapshot.stats == finished(3)
    assert snapshot.error is not None
    assert snapshot.error.startswith(f"cannot reach the server at {client.url}")
    assert snapshot.now > last.now


# -- the real `sq watch`, in a real terminal --------------------------------------------------


class Tmux:
    """One detached tmux session on a private server socket, so nothing else is touched."""

    def __init__(self, tmp_path: Path, command: str) -> None:
        self.socket = f"sq-test-{free_port()}"
        self.rc = tmp_path / "rc"
        shell = f"{command}; echo $? > {shlex.quote(str(self.rc))}; sleep 60"
        self.tmux("new-session", "-d", "-s", "w", "-x", "120", "-y", "40", shell)

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], check=False, capture_output=True, text=True
        )
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "w")

    def wait_for(self, check: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; the screen shows:\n{self.screen()}")
            time.sleep(0.1)

    def exit_code(self) -> int:
        self.wait_for(lambda: self.rc.exists() and self.rc.read_text().strip() != "")
        return int(self.rc.read_text())

    def close(self) -> None:
        self.tmux("kill-server")


def has_count(screen: str, label: str, value: int) -> bool:
    words = screen.split()
    return any(w == label and words[i + 1] == str(value) for i, w in enumerate(words[:-1]))


@pytest.fixture
def watch_in_tmux(server: ServerProcess, tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the terminal test of `sq watch`: .ci/run installs tmux")
        pytest.skip("tmux is not installed: the terminal test of `sq watch` needs it")
    command = shlex.join([sys.executable, "-m", "simplequeue", "--url", server.url, "watch"])
    session = Tmux(tmp_path, command)
    yield session
    session.close()


@pytest.mark.slow
@pytest.mark.parametrize("leave_with", ["q", "C-c"])
def test_watch_shows_live_counts_and_leaves_cleanly(
    server: ServerProcess, watch_in_tmux: Tmux, leave_with: str
) -> None:
    with Client(server.url) as client:
        for i in range(3):
            client.submit(f"watched-{i}", f"task {i}")
        client.next()
        client.complete("watched-0", "succeeded")
        watch_in_tmux.wait_for(lambda: has_count(watch_in_tmux.screen(), "succeeded", 1))
        screen = watch_in_tmux.screen()
        assert has_count(screen, "submitted", 2)
        assert has_count(screen, "total", 3)
        assert "watched-2" in screen
        assert "task 1" in screen

        client.next()  # the frame follows the server
        watch_in_tmux.wait_for(lambda: has_count(watch_in_tmux.screen(), "running", 1))

    watch_in_tmux.tmux("send-keys", "-t", "w", leave_with)
    assert watch_in_tmux.exit_code() == 0
    assert "Traceback" not in watch_in_tmux.screen()


@pytest.mark.slow
def test_watch_says_when_the_server_is_gone_and_keeps_going(
    server: ServerProcess, watch_in_tmux: Tmux
) -> None:
    watch_in_tmux.wait_for(lambda: has_count(watch_in_tmux.screen(), "total", 0))
    server.stop()
    watch_in_tmux.wait_for(lambda: "cannot reach the server" in watch_in_tmux.screen())
    assert "(retrying)" in watch_in_tmux.screen()
    watch_in_tmux.tmux("send-keys", "-t", "w", "q")
    assert watch_in_tmux.exit_code() == 0
