"""`sq watch`: its sampling pieces in-process, and the real thing in a terminal (tmux)."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx
from litestar import Litestar
from litestar.testing import TestClient

from simplequeue import Client
from simplequeue.cli.render import Snapshot
from simplequeue.cli.watch import Rates, sample
from simplequeue.models import Stats
from simplequeue.server import create_app
from simplequeue.store.base import NewJob
from simplequeue.store.memory import MemoryStore
from tests.servers import APP_URL, ServerProcess, free_port


def counters(submitted: int, completed: int) -> Stats:
    return Stats(
        submitted=0,
        running=0,
        succeeded=0,
        failed=0,
        total=0,
        submitted_ever=submitted,
        completed_ever=completed,
    )


def test_without_the_servers_history_rates_come_from_successive_samples() -> None:
    rates = Rates()
    assert rates.add(10.0, counters(0, 0)) == ((), ())
    assert rates.add(11.0, counters(4, 1)) == ((4.0,), (1.0,))
    assert rates.add(13.0, counters(10, 1)) == ((4.0, 3.0), (1.0, 0.0))


def test_a_server_without_the_ever_counters_is_read_from_its_totals() -> None:
    rates = Rates()
    old = Stats(submitted=3, running=0, succeeded=1, failed=0, total=4)
    rates.add(0.0, old)
    # Retention deleted 2 finished jobs: never a negative rate.
    later = Stats(submitted=3, running=0, succeeded=0, failed=1, total=3)
    assert rates.add(1.0, later) == ((0.0,), (0.0,))


HISTORY = {
    "interval": 1,
    "end": "2026-03-04T12:00:00Z",
    "submitted": [0, 5, 2],
    "completed": [1, 0, 3],
}


def test_rates_come_from_the_servers_history_of_the_last_minute() -> None:
    stats = Stats(submitted=0, running=0, succeeded=0, failed=0, total=0)
    with respx.mock(base_url="http://queue.test") as server:
        route = server.get("/stats/history").respond(200, json=HISTORY)
        with Client("http://queue.test") as client:
            assert Rates().sample(client, stats, 1.0) == ([0, 5, 2], [1, 0, 3])
    assert route.calls.last.request.url.params["seconds"] == "60"


def test_a_server_without_the_history_route_is_sampled_instead() -> None:
    rates = Rates()
    with respx.mock(base_url="http://queue.test") as server:
        route = server.get("/stats/history").respond(
            404, json={"status": 404, "title": "Not Found", "detail": "Not Found"}
        )
        with Client("http://queue.test") as client:
            assert rates.sample(client, counters(1, 0), 1.0) == ((), ())
            assert rates.sample(client, counters(3, 1), 2.0) == ((2.0,), (1.0,))
    assert route.call_count == 1  # asked once, then no more


def seeded_app(count: int) -> TestClient[Litestar]:
    """The app over a store already holding ``count`` jobs (seeded directly: fast at any size)."""
    store = MemoryStore()

    async def seed() -> None:
        for i in range(count):
            await store.submit(NewJob(f"j{i:05}", f"task {i}", None, datetime.now(UTC)))

    asyncio.run(seed())
    return TestClient(create_app(store=store), base_url=APP_URL)


@pytest.mark.parametrize("queued", [3, 2_500])
def test_a_sample_costs_three_requests_whatever_the_size_of_the_queue(queued: int) -> None:
    sent: list[httpx.Request] = []
    with seeded_app(queued) as http:
        http.event_hooks["request"].append(sent.append)
        snapshot = sample(Client(http=http), 10, Rates(), Snapshot("u", datetime.now(UTC)))

    assert [(request.url.path, request.url.query) for request in sent] == [
        ("/stats", b""),
        ("/stats/history", b"seconds=60"),
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
        rates = Rates()
        first = sample(client, 5, rates, Snapshot("u", datetime.now(UTC)))
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
        second = sample(client, 5, rates, first)

    assert [job.job_id for job in second.jobs] == ["j00012", "j00011", "j00010", "j00009", "j00008"]
    assert all(job.state == "submitted" for job in second.jobs)
    assert second.stats is not None
    assert (second.stats.running, second.stats.total) == (2, 13)


def test_a_failed_sample_keeps_the_last_data_and_says_why() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", retries=0) as client:
        last = Snapshot(
            url=client.url,
            now=datetime(2026, 1, 1, tzinfo=UTC),
            stats=counters(3, 1),
            submitted=(0.0, 2.0),
            completed=(0.0, 1.0),
        )
        snapshot = sample(client, 5, Rates(), last)
    assert snapshot.stats == counters(3, 1)
    # No rate is known while the server cannot be reached: none is shown as if it were.
    assert (snapshot.submitted, snapshot.completed) == ((), ())
    assert snapshot.error is not None
    assert snapshot.error.startswith(f"cannot reach the server at {client.url}")
    assert snapshot.now > last.now


# -- the real `sq watch`, in a real terminal --------------------------------------------------


class Tmux:
    """One detached tmux session on a private server socket, so nothing else is touched."""

    def __init__(self, tmp_path: Path, command: str, width: int = 120, height: int = 40) -> None:
        self.socket = f"sq-test-{free_port()}"
        self.width = width
        self.rc = tmp_path / "rc"
        shell = f"{command}; echo $? > {shlex.quote(str(self.rc))}; sleep 60"
        self.tmux("new-session", "-d", "-s", "w", "-x", str(width), "-y", str(height), shell)

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


def frame_lines(screen: str) -> list[str]:
    """The lines inside the frame's border, without it."""
    return [line.strip()[1:-1] for line in screen.splitlines() if line.strip().startswith("│")]


def queue_line(screen: str, name: str) -> list[str] | None:
    """A queue's line (counts per state, latency), as words; ``None`` while not shown."""
    for line in frame_lines(screen):
        words = line.split()
        if words and words[0] == name:
            return words[1:]
    return None


def rates_line(screen: str) -> str:
    return next((line for line in frame_lines(screen) if "submitted/s" in line), "")


def has_counts(screen: str, name: str, *counts: str) -> bool:
    shown = queue_line(screen, name)
    return shown is not None and shown[: len(counts)] == list(counts)


def start_watch(tmp_path: Path, url: str, *args: str, width: int = 120, tz: str = "") -> Tmux:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the terminal test of `sq watch`: .ci/run installs tmux")
        pytest.skip("tmux is not installed: the terminal test of `sq watch` needs it")
    # The pane's size, not a COLUMNS or LINES this process may have (Rich prefers those).
    env = ["env", "-u", "COLUMNS", "-u", "LINES", *([f"TZ={tz}"] if tz else [])]
    command = shlex.join([*env, sys.executable, "-m", "simplequeue", "--url", url, "watch", *args])
    return Tmux(tmp_path, command, width=width)


@pytest.fixture
def watch_in_tmux(server: ServerProcess, tmp_path: Path) -> Iterator[Tmux]:
    session = start_watch(tmp_path, server.url)
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
        # default: submitted, running, succeeded, failed
        watch_in_tmux.wait_for(lambda: has_counts(watch_in_tmux.screen(), "default", "2", "0", "1"))
        screen = watch_in_tmux.screen()
        assert "watched-2" in screen
        assert "task 1" in screen

        client.next()  # the frame follows the server
        watch_in_tmux.wait_for(lambda: has_counts(watch_in_tmux.screen(), "default", "1", "1"))

    watch_in_tmux.tmux("send-keys", "-t", "w", leave_with)
    assert watch_in_tmux.exit_code() == 0
    assert "Traceback" not in watch_in_tmux.screen()


@pytest.mark.slow
def test_watch_says_when_the_server_is_gone_and_keeps_going(
    server: ServerProcess, watch_in_tmux: Tmux
) -> None:
    watch_in_tmux.wait_for(lambda: "no jobs yet" in watch_in_tmux.screen())
    server.stop()
    watch_in_tmux.wait_for(lambda: "cannot reach the server" in watch_in_tmux.screen())
    assert "(retrying)" in watch_in_tmux.screen()
    watch_in_tmux.tmux("send-keys", "-t", "w", "q")
    assert watch_in_tmux.exit_code() == 0


def seed(client: Client) -> list[tuple[str, str]]:
    """1,200 jobs in ``emails``, 10 in ``sms`` (2 running, 1 failed), then 4 in ``reports``, one
    in each state: those last four (id, state), newest first."""
    emails = [{"job_id": f"email-{i:04}", "description": "newsletter"} for i in range(1200)]
    client.submit_many([{**job, "queue": "emails"} for job in emails])
    client.submit_many([{"job_id": f"sms-{i}", "queue": "sms"} for i in range(10)])
    client.next(queues=["sms"], count=2)
    client.cancel("sms-9")
    reports = [str(uuid.uuid4()) for _ in range(4)]
    for i, job_id in enumerate(reports):
        client.submit(job_id, f"quarterly report for the board, part {i}", queue="reports")
    client.next(queues=["reports"])
    done = client.next(queues=["reports"])
    failed = client.next(queues=["reports"])
    assert done is not None
    assert failed is not None
    client.complete(done.job_id, "succeeded")
    client.complete(failed.job_id, "failed", error="no data")
    states = ["running", "succeeded", "failed", "submitted"]
    return list(zip(reversed(reports), reversed(states), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("width", "args", "tz", "clock"),
    [(60, ["--utc"], "", "UTC"), (120, [], "XYZ-5:30", "XYZ")],  # POSIX TZ: no tzdata needed
)
def test_watch_fits_the_terminal_with_queues_rates_and_whole_ids(
    server: ServerProcess, tmp_path: Path, width: int, args: list[str], tz: str, clock: str
) -> None:
    with Client(server.url) as client:
        latest = seed(client)
    session = start_watch(tmp_path, server.url, *args, width=width, tz=tz)
    try:
        # emails: 1,200 submitted; sms: 7 submitted, 2 running, 1 failed (cancelled).
        session.wait_for(lambda: has_counts(session.screen(), "emails", "1,200", "0", "0", "0"))
        session.wait_for(lambda: has_counts(session.screen(), "sms", "7", "2", "0", "1"))
        # The server's rate history: the second of 1,214 submits stands out in the sparkline.
        session.wait_for(lambda: any(bar in rates_line(session.screen()) for bar in "▃▄▅▆▇█"))
        screen = session.screen()
    finally:
        session.close()

    # Nothing wrapped: the frame is whole, every line of it between its two borders.
    lines = screen.rstrip("\n").splitlines()
    top = next((i for i, line in enumerate(lines) if line.startswith("╭")), None)
    bottom = next((i for i, line in enumerate(lines) if line.startswith("╰")), None)
    assert top is not None, screen
    assert bottom is not None, screen
    assert all(len(line) == width for line in lines[top : bottom + 1]), screen
    assert all(line[0] == line[-1] == "│" for line in lines[top + 1 : bottom]), screen
    inside = frame_lines(screen)
    assert len(inside) >= 20, screen
    assert has_counts(screen, "reports", "1", "1", "1", "1")
    assert has_counts(screen, "total", "1,208", "3", "1", "2")
    for job_id, state in latest:  # whole, on one line, with its state
        assert any(job_id in line and state in line.split() for line in inside), (job_id, screen)
    assert f" {clock} · q or Ctrl-C to quit" in lines[bottom]
    if width >= 120:
        assert "quarterly report for the board, part 3" in screen
    else:  # the description gave way first; the queue stayed, cut if it must be
        assert "description" not in screen
        row = next(line.split() for line in inside if latest[0][0] in line)
        assert row[2].startswith("repor"), row
