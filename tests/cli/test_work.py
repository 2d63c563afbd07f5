"""`sq work`: the command runner on its own, then the real `sq work` against a real `sq serve`."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from rich.console import Console

from simplequeue import Client, JobState
from simplequeue.cli.work import (
    ERROR_ROOM,
    RESULT_LIMIT,
    CommandFailed,
    Worker,
    cannot_run,
    command_error,
    read_result,
)
from simplequeue.client.worker import error_text
from simplequeue.models import MAX_ERROR_LENGTH, Job
from tests.cli.conftest import Run
from tests.cli.test_commands import one_error_line
from tests.servers import ServerProcess

PYTHON = sys.executable


def leased(job_id: str = "job-1", attempts: int = 1) -> Job:
    now = datetime.now(UTC)
    return Job(
        job_id=job_id,
        description="d",
        data={"n": 1},
        state=JobState.RUNNING,
        queue="default",
        priority=0,
        run_at=now,
        created_at=now,
        started_at=now,
        finished_at=None,
        attempts=attempts,
        max_attempts=3,
        lease_expires_at=now,
        result=None,
        errors=[],
        lease_id="lease-abc",
    )


@pytest.fixture
def log() -> Iterator[Console]:
    with open(os.devnull, "w") as sink:
        yield Console(file=sink)


def worker(log: Console, *argv: str) -> Worker:
    return Worker(argv, "http://127.0.0.1:1", log)


# -- the pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (b'{"ok": 1}\n', ({"ok": 1}, None)),
        (b"[1, 2]", ([1, 2], None)),
        (b'"text"', ("text", None)),
        (b"", (None, None)),
        (b"  \n", (None, None)),
        (b"done!\n", (None, "stdout is not JSON: no result recorded")),
        (b'{"a": 1}\n{"b": 2}\n', (None, "stdout is not JSON: no result recorded")),
        (b" " * RESULT_LIMIT + b"1", (None, "stdout is over 960 KiB: no result recorded")),
    ],
)
def test_read_result(stdout: bytes, expected: tuple[Any, str | None]) -> None:
    assert read_result(stdout) == expected


@pytest.mark.parametrize(
    ("returncode", "stderr", "expected"),
    [
        (3, "", "exit code 3"),
        (1, "  oops\n", "exit code 1: oops"),
        (-9, "", "killed by SIGKILL"),
        (-15, "bye", "killed by SIGTERM: bye"),
    ],
)
def test_command_error(returncode: int, stderr: str, expected: str) -> None:
    assert command_error(returncode, stderr) == expected


def test_command_error_keeps_the_end_of_a_long_stderr_within_the_limit() -> None:
    error = command_error(2, "x" * 10_000 + " the end", limit=100)
    assert len(error) == 100
    assert error.startswith("exit code 2: …x")
    assert error.endswith("x the end")


def test_cannot_run() -> None:
    assert cannot_run("sh") is None
    assert cannot_run(PYTHON) is None
    assert cannot_run("/no/such/program") == (
        "cannot run '/no/such/program': no such command, or it is not executable"
    )
    assert cannot_run("no-such-program-sq-test") is not None


def test_the_command_gets_the_job_on_stdin_and_its_ids_in_the_environment(
    log: Console, tmp_path: Path
) -> None:
    seen = tmp_path / "stdin.json"
    script = (
        'cat > "$0"; '
        'printf "%s|%s|%s|%s" "$SQ_JOB_ID" "$SQ_LEASE_ID" "$SQ_ATTEMPT" "$SIMPLEQUEUE_URL"; '
    )
    result = worker(log, "sh", "-c", script, str(seen))(leased("a/b", attempts=2))
    assert result is None  # what it printed is not JSON
    stdin = json.loads(seen.read_text())
    assert (stdin["jobId"], stdin["leaseId"], stdin["data"]) == ("a/b", "lease-abc", {"n": 1})
    assert stdin["maxAttempts"] == 3


def test_the_environment_reaches_the_command(log: Console) -> None:
    printed = worker(log, "sh", "-c", 'echo "[\\"$SQ_JOB_ID\\", $SQ_ATTEMPT]"')(leased("x", 2))
    assert printed == ["x", 2]


def test_exit_0_with_json_on_stdout_is_the_result(log: Console) -> None:
    assert worker(log, "sh", "-c", "cat > /dev/null; echo '{\"ok\": 1}'")(leased()) == {"ok": 1}


def test_a_non_zero_exit_raises_with_the_end_of_stderr(log: Console) -> None:
    failing = worker(log, "sh", "-c", "echo first >&2; echo last >&2; exit 4")
    with pytest.raises(CommandFailed) as caught:
        failing(leased())
    assert str(caught.value) == "exit code 4: first\nlast"
    assert error_text(caught.value) == "CommandFailed: exit code 4: first\nlast"


def test_a_long_stderr_keeps_its_end_once_the_sdk_records_it(log: Console) -> None:
    code = "import sys; sys.stderr.write('x' * 20000 + ' THE END'); sys.exit(2)"
    with pytest.raises(CommandFailed) as caught:
        worker(log, PYTHON, "-c", code)(leased())
    assert len(str(caught.value)) == ERROR_ROOM
    recorded = error_text(caught.value)  # what the SDK's loop sends as `error`
    assert len(recorded) == MAX_ERROR_LENGTH
    assert recorded.endswith("x THE END")


def test_a_command_killed_by_a_signal_says_so(log: Console) -> None:
    with pytest.raises(CommandFailed, match=r"^killed by SIGKILL$"):
        worker(log, "sh", "-c", "kill -KILL $$")(leased())


def test_a_command_that_cannot_start_stops_the_worker(log: Console, tmp_path: Path) -> None:
    script = tmp_path / "no-shebang"
    script.write_bytes(b"\x7fELF not really")
    script.chmod(0o755)
    runner = worker(log, str(script))
    with pytest.raises(CommandFailed, match="cannot run"):
        runner(leased())
    assert runner.stop.is_set()
    assert runner.fatal is not None
    assert runner.fatal.startswith(f"cannot run {str(script)!r}: ")


def test_a_second_ctrl_c_stops_the_running_commands_and_a_repeated_sigterm_does_not(
    log: Console, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    runner = worker(log, "sh", "-c", f'touch "{started}"; exec sleep 30')
    raised: list[BaseException] = []

    def run() -> None:
        try:
            runner(leased())
        except CommandFailed as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(started.exists)
    runner.on_signal(signal.SIGTERM, None)
    runner.on_signal(signal.SIGTERM, None)  # e.g. `timeout`: to the process and its group
    assert runner.stop.is_set()
    thread.join(0.2)
    assert thread.is_alive()  # still running its command
    runner.on_signal(signal.SIGINT, None)
    thread.join(30)
    assert not thread.is_alive()
    assert [str(exc) for exc in raised] == ["killed by SIGTERM"]


def test_no_command_starts_once_the_running_ones_were_told_to_stop() -> None:
    shown = io.StringIO()
    runner = worker(Console(file=shown, width=200), "sh", "-c", "echo 1")
    runner.on_signal(signal.SIGINT, None)
    runner.on_signal(signal.SIGINT, None)
    with pytest.raises(CommandFailed, match="not started"):
        runner(leased())
    # A job held ahead that never ran is not logged as started.
    lines = [line for line in shown.getvalue().splitlines() if "job-1" in line]
    assert len(lines) == 1, shown.getvalue()
    assert " failed " in lines[0]
    assert lines[0].endswith("· not started: sq work was stopped")


def run_in_thread(runner: Worker, job: Job) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def run() -> None:
        try:
            runner(job)
        except CommandFailed as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, raised


def test_a_lost_job_has_its_command_stopped_and_only_that_hand_out(tmp_path: Path) -> None:
    shown = io.StringIO()
    started = tmp_path / "started"
    runner = worker(Console(file=shown, width=300), "sh", "-c", f'touch "{started}"; exec sleep 30')
    job = leased("cancelled-1")
    thread, raised = run_in_thread(runner, job)
    wait_until(started.exists)
    runner.lost(msgspec.structs.replace(job, lease_id="another-lease"))
    runner.lost(leased("another-job"))
    thread.join(0.2)
    assert thread.is_alive()  # neither names this hand-out
    runner.lost(job)
    thread.join(30)
    assert not thread.is_alive()
    assert [str(exc) for exc in raised] == [
        "the job was lost; its command was stopped (killed by SIGTERM)"
    ]
    log = [line for line in shown.getvalue().splitlines() if "cancelled-1" in line]
    assert [line.split()[1] for line in log] == ["started", "lost", "stopped"]
    assert log[1].endswith("· sending SIGTERM to its command (SIGKILL in 5s if it runs on)")
    assert log[2].endswith("· killed by SIGTERM")
    assert not runner.stop.is_set()  # the worker goes on taking jobs


def test_a_lost_job_whose_command_ignores_sigterm_gets_sigkill(
    log: Console, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    script = f'trap "" TERM; touch "{started}"; while :; do sleep 0.05; done'
    runner = Worker(("sh", "-c", script), "http://127.0.0.1:1", log, lost_grace=0.2)
    job = leased()
    thread, raised = run_in_thread(runner, job)
    wait_until(started.exists)
    runner.lost(job)
    runner.lost(job)  # reported twice: one SIGTERM, one timer
    thread.join(30)
    assert not thread.is_alive()
    assert [str(exc) for exc in raised] == [
        "the job was lost; its command was stopped (killed by SIGKILL)"
    ]


def test_a_job_lost_before_its_command_started_stops_nothing(log: Console) -> None:
    runner = worker(log, "sh", "-c", "cat > /dev/null; echo 1")
    runner.lost(leased())
    assert runner(leased()) == 1  # a later hand-out of that job runs as usual


# -- the command line, in-process -------------------------------------------------------------


@pytest.mark.parametrize("program", ["/no/such/program", "no-such-program-sq-test"])
def test_a_command_that_is_not_found_is_one_line_and_exit_2(
    sq: Run, client: Client, program: str
) -> None:
    client.submit("untouched")
    result = sq("work", "--", program, "--flag")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        f"sq: error: cannot run {program!r}: no such command, or it is not executable"
    )
    assert client.get("untouched").state is JobState.SUBMITTED


def test_work_without_a_command_is_a_usage_error(sq: Run) -> None:
    result = sq("work")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


# -- the real `sq work` against a real `sq serve` ---------------------------------------------


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds (bounded): for events in other processes."""
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        done.wait(0.05)
    raise AssertionError(f"timed out waiting for {check}")


class WorkProcess:
    """A real `sq work` process; its log (stderr) goes to a file."""

    def __init__(self, url: str, tmp_path: Path, *args: str) -> None:
        self.log = tmp_path / "work.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "simplequeue", "--url", url, "work", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "SEEN": str(tmp_path), "COLUMNS": "200"},
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Callable[..., WorkProcess]]:
    started: list[WorkProcess] = []

    def start(url: str, *args: str) -> WorkProcess:
        started.append(WorkProcess(url, tmp_path, *args))
        return started[-1]

    yield start
    for process in started:
        process.close()


def gone(pid: int) -> bool:
    """No live process is left in the process group ``pid`` led (Linux: read from /proc). A
    zombie is not running; the grandchild of a killed command is one until init reaps it."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # it ended while being read
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pid and state != "Z":
            return False
    return True


JOB_SCRIPT = """#!/bin/sh
cat > "$SEEN/$SQ_JOB_ID.json"
printf '%s %s' "$SQ_ATTEMPT" "$SQ_LEASE_ID" > "$SEEN/$SQ_JOB_ID.env"
case "$SQ_JOB_ID" in
  ok-*) echo "{\\"ok\\": 1, \\"attempt\\": $SQ_ATTEMPT}" ;;
  text-*) echo "not json" ;;
  fail-*) echo "first line" >&2; printf 'it broke \\033[31mbadly\\n' >&2; exit 4 ;;
esac
"""


@pytest.mark.slow
def test_sq_work_runs_a_real_command_per_job_and_records_results_and_errors(
    server: ServerProcess, work: Callable[..., WorkProcess], tmp_path: Path
) -> None:
    script = tmp_path / "job.sh"
    script.write_text(JOB_SCRIPT)
    script.chmod(0o755)
    with Client(server.url) as client:
        client.submit("ok-1", data={"n": 1})
        client.submit("text-1")
        client.submit("fail-1", max_attempts=2)
        worker = work(server.url, "--concurrency", "2", "--lease", "30", "--", str(script))

        def settled() -> bool:
            return [client.get(j).state for j in ("ok-1", "text-1", "fail-1")] == [
                JobState.SUCCEEDED,
                JobState.SUCCEEDED,
                JobState.FAILED,
            ]

        wait_until(settled, timeout=60)
        assert worker.stop() == 0
        ok, text, failed = (client.get(j) for j in ("ok-1", "text-1", "fail-1"))

    assert ok.result == {"ok": 1, "attempt": 1}
    assert text.result is None
    assert (failed.attempts, failed.max_attempts) == (2, 2)
    assert [(e.attempt, e.error) for e in failed.errors] == [
        (n, "CommandFailed: exit code 4: first line\nit broke \x1b[31mbadly") for n in (1, 2)
    ]
    stdin = json.loads((tmp_path / "ok-1.json").read_text())
    assert (stdin["jobId"], stdin["data"], stdin["state"]) == ("ok-1", {"n": 1}, "running")
    attempt, lease_id = (tmp_path / "ok-1.env").read_text().split()
    assert attempt == "1"
    assert lease_id == stdin["leaseId"]
    log = worker.text()
    assert "succeeded ok-1 (attempt 1 of 3)" in log
    assert "succeeded text-1 (attempt 1 of 3) · " in log
    assert "stdout is not JSON: no result recorded" in log
    assert "failed    fail-1 (attempt 1 of 2, to be retried)" in log
    assert "failed    fail-1 (attempt 2 of 2, final)" in log
    assert "it broke \\x1b[31mbadly" in log  # shown, never obeyed
    assert "\x1b" not in log
    assert "Traceback" not in log


HELD_SCRIPT = """#!/bin/sh
echo $$ > "$SEEN/$SQ_JOB_ID.pid"
i=0
while [ ! -e "$SEEN/go" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
echo '{"finished": true}'
"""


@pytest.mark.slow
def test_sigterm_lets_the_job_in_hand_finish_takes_no_more_and_exits_0(
    server: ServerProcess, work: Callable[..., WorkProcess], tmp_path: Path
) -> None:
    script = tmp_path / "held.sh"
    script.write_text(HELD_SCRIPT)
    script.chmod(0o755)
    pid_file = tmp_path / "held.pid"
    with Client(server.url) as client:
        client.submit("held")
        client.submit("waiting")
        worker = work(server.url, "--", str(script))
        wait_until(pid_file.exists)
        wait_until(lambda: pid_file.read_text().strip() != "")
        pid = int(pid_file.read_text())
        assert client.get("held").state is JobState.RUNNING

        worker.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping: no more jobs" in worker.text())
        assert worker.process.poll() is None  # still finishing the job in hand
        (tmp_path / "go").touch()
        assert worker.process.wait(timeout=60) == 0

        held, waiting = client.get("held"), client.get("waiting")
        stats = client.stats()
    assert (held.state, held.result) == (JobState.SUCCEEDED, {"finished": True})
    assert (waiting.state, waiting.attempts) == (JobState.SUBMITTED, 0)
    assert stats.running == 0
    assert gone(pid)
    assert "sq work: stopped" in worker.text()


@pytest.mark.slow
def test_a_second_ctrl_c_stops_the_command_and_its_job_comes_back_at_once(
    server: ServerProcess, work: Callable[..., WorkProcess], tmp_path: Path
) -> None:
    script = tmp_path / "held.sh"
    script.write_text(HELD_SCRIPT)  # never told to go
    script.chmod(0o755)
    pid_file = tmp_path / "held.pid"
    with Client(server.url) as client:
        client.submit("held")
        worker = work(server.url, "--", str(script))
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
        pid = int(pid_file.read_text())
        worker.process.send_signal(signal.SIGINT)
        wait_until(lambda: "stopping: no more jobs" in worker.text())
        assert worker.stop(signal.SIGINT) == 0
        held = client.get("held")
    assert held.state is JobState.SUBMITTED  # failed with retry: queued again, not left running
    assert [e.error for e in held.errors] == ["CommandFailed: killed by SIGTERM"]
    wait_until(lambda: gone(pid))  # its `sleep` got the SIGTERM too, and may take a moment
    assert "sending SIGTERM to 1 running command(s)" in worker.text()


@pytest.mark.slow
def test_cancelling_a_running_job_stops_its_command_and_the_worker_goes_on(
    server: ServerProcess, work: Callable[..., WorkProcess], tmp_path: Path
) -> None:
    script = tmp_path / "held.sh"
    script.write_text(HELD_SCRIPT)  # never told to go: it would run for 30 s
    script.chmod(0o755)
    pid_file = tmp_path / "held.pid"
    with Client(server.url) as client:
        client.submit("held")
        # A 3 s lease is renewed every second: the heartbeat that finds it gone comes soon.
        worker = work(server.url, "--lease", "3", "--", str(script))
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
        pid = int(pid_file.read_text())
        cancelled = httpx.post(f"{server.url}/jobs/cancel", json={"jobId": "held"}, timeout=10)
        assert cancelled.status_code == 200, cancelled.text
        wait_until(lambda: gone(pid), timeout=20)
        wait_until(lambda: " stopped " in worker.text())
        client.submit("next-one")
        wait_until(lambda: client.get("next-one").state is JobState.RUNNING)
        assert worker.process.poll() is None  # still taking jobs
        (tmp_path / "go").touch()
        wait_until(lambda: client.get("next-one").state is JobState.SUCCEEDED)
        assert worker.stop() == 0
        held = client.get("held")
    assert held.state is JobState.FAILED
    assert [e.error for e in held.errors] == ["cancelled"]  # nothing recorded after it
    log = worker.text()
    assert "job 'held' is no longer this worker's (lease lost: " in log  # the SDK says why
    assert "lost      held (attempt 1 of 3) · sending SIGTERM to its command" in log
    assert "stopped   held (attempt 1 of 3) · " in log
    assert "killed by SIGTERM" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_with_prefetch_a_stop_still_runs_the_jobs_held_ahead(
    server: ServerProcess, work: Callable[..., WorkProcess], tmp_path: Path
) -> None:
    script = tmp_path / "held.sh"
    script.write_text(HELD_SCRIPT)
    script.chmod(0o755)
    with Client(server.url) as client:
        client.submit("held")
        client.submit("ahead")
        client.submit("left")
        worker = work(server.url, "--prefetch", "1", "--", str(script))
        wait_until((tmp_path / "held.pid").exists)
        # One command runs; one more job is held for it (running, by the server's count).
        wait_until(lambda: client.stats().running == 2)
        worker.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping: no more jobs" in worker.text())
        (tmp_path / "go").touch()
        assert worker.process.wait(timeout=60) == 0
        states = [client.get(j).state for j in ("held", "ahead", "left")]
    assert states == [JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.SUBMITTED]


def test_a_negative_prefetch_is_a_usage_error(sq: Run) -> None:
    result = sq("work", "--prefetch", "-1", "--", "true")
    assert result.exit_code == 2
    assert "--prefetch" in result.stderr
