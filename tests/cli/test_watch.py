"""`sq watch`: its sampling pieces in-process, and the real thing in a terminal (tmux)."""

from __future__ import annotations

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
from litestar.testing import TestClient

from simplequeue import Client
from simplequeue.cli.render import Snapshot
from simplequeue.cli.watch import RecentJobs, Throughput, sample
from simplequeue.models import Stats
from simplequeue.server import Settings, create_app
from tests.servers import ServerProcess, free_port


def finished(count: int) -> Stats:
    return Stats(submitted=0, running=0, succeeded=count, failed=0, total=count)


def test_throughput_needs_two_samples_then_averages_over_the_window() -> None:
    rate = Throughput(window=2)
    assert rate.add(10.0, finished(0)) is None
    assert rate.add(11.0, finished(4)) == 4.0
    assert rate.add(12.0, finished(6)) == 3.0  # (6 - 0) / 2s
    assert rate.add(13.0, finished(6)) == 1.0  # the first sample left the window: (6 - 4) / 2s


@pytest.fixture
def http() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(db=":memory:"))) as client:
        yield client


def test_recent_jobs_are_the_newest_and_later_refreshes_start_near_them(http: TestClient) -> None:
    client = Client(http=http)
    for i in range(25):
        client.submit(f"j{i:02}")
    recent = RecentJobs(size=10)
    assert [j.job_id for j in recent.refresh(client)] == [f"j{i:02}" for i in range(24, 14, -1)]

    sent: list[httpx.Request] = []
    http.event_hooks["request"].append(sent.append)
    client.submit("j25")
    client.next()
    sent.clear()
    jobs = recent.refresh(client)
    assert [j.job_id for j in jobs] == [f"j{i:02}" for i in range(25, 15, -1)]
    assert [request.url.params.get("after") for request in sent] == ["j14"]
    assert client.get("j00").state == "running"  # outside the window: not what was listed


def test_a_failed_sample_keeps_the_last_data_and_says_why() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", retries=0) as client:
        last = Snapshot(url=client.url, now=datetime(2026, 1, 1, tzinfo=UTC), stats=finished(3))
        snapshot = sample(client, RecentJobs(5), Throughput(), last)
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
