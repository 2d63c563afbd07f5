"""The installed `sq` executable against a real `sq serve`: exit codes, stderr, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from simplequeue import Client
from tests.servers import ServerProcess, free_port

SQ = str(Path(sys.executable).with_name("sq"))

pytestmark = pytest.mark.slow


def sq(
    url: str, *args: str, stdin: str | None = None, columns: int = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SIMPLEQUEUE_URL"}
    return subprocess.run(
        [SQ, *args], check=False, input=stdin, capture_output=True, text=True, timeout=60,
        env={**env, "SIMPLEQUEUE_URL": url, "COLUMNS": str(columns)},
    )  # fmt: skip


def assert_one_error_line(done: subprocess.CompletedProcess[str], code: int, start: str) -> None:
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(start), done.stderr


def test_a_worker_loop_in_the_shell(server: ServerProcess) -> None:
    for i in range(3):
        done = sq(server.url, "submit", "--id", f"job/{i}", "--data", f'{{"n": {i}}}', "--json")
        assert done.returncode == 0, done.stderr
    # What a shell worker does: take jobs until exit code 3, complete each by its id.
    script = f"""
        while :; do
            job=$({SQ} next --json); rc=$?
            [ $rc -eq 0 ] || break
            id=$(printf '%s' "$job" | {sys.executable} -c 'import json,sys; print(json.load(sys.stdin)["jobId"])')
            {SQ} complete "$id" succeeded --json > /dev/null || exit 10
        done
        exit $rc
    """  # noqa: E501
    loop = subprocess.run(
        ["sh", "-c", script], check=False, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SIMPLEQUEUE_URL": server.url},
    )  # fmt: skip
    assert loop.returncode == 3, loop.stderr
    assert loop.stderr.strip() == "sq: the queue is empty"
    stats = json.loads(sq(server.url, "stats", "--json").stdout)
    assert stats.pop("queues") == {
        "default": {
            "submitted": 0,
            "running": 0,
            "succeeded": 3,
            "failed": 0,
            "oldestDueAgeSeconds": None,
        }
    }
    assert stats == {
        "submitted": 0,
        "running": 0,
        "succeeded": 3,
        "failed": 0,
        "total": 3,
        "submittedEver": 3,
        "completedEver": 3,
    }
    listed = json.loads(sq(server.url, "list", "--json").stdout)
    assert [(j["jobId"], j["state"], j["data"]) for j in listed] == [
        (f"job/{i}", "succeeded", {"n": i}) for i in range(3)
    ]


def test_refusals_are_one_line_with_exit_1(server: ServerProcess) -> None:
    assert_one_error_line(sq(server.url, "get", "nope"), 1, "sq: error: no job has jobId")
    assert sq(server.url, "submit", "--id", "x", "--description", "a").returncode == 0
    assert_one_error_line(
        sq(server.url, "submit", "--id", "x", "--description", "b"),
        1,
        "sq: error: job 'x' was already submitted with a different description",
    )
    assert_one_error_line(sq(server.url, "complete", "x", "succeeded"), 1, "sq: error: ")
    assert_one_error_line(sq(server.url, "cancel", "nope"), 1, "sq: error: no job has jobId")
    assert_one_error_line(sq(server.url, "retry", "x"), 1, "sq: error: ")  # not failed
    cancelled = sq(server.url, "cancel", "x", "nope", "--json")
    assert (cancelled.returncode, json.loads(cancelled.stdout)) == (0, {"matched": 1, "changed": 1})


def test_usage_errors_are_one_line_with_exit_2(server: ServerProcess) -> None:
    for args, start in [
        (["list", "--limit", "0"], "sq: error: --limit must be a whole number from 1 to 1,000"),
        (["list", "--state", "sleeping"], "sq: error: --state must be submitted, running,"),
        (["complete", "x", "done"], "sq: error: STATUS must be succeeded or failed"),
        (["complete", "x"], "sq: error: missing STATUS: succeeded or failed"),
        (["get"], "sq: error: missing ID"),
        (["get", "a\tb"], "sq: error: ID: 'a\\tb' holds a control character (\\t)"),
        (["cancel", "--prefix", "a\tb"], "sq: error: --prefix: 'a\\tb' holds a control"),
        (["submit", "--nope"], "sq: error: No such option: --nope"),
        (["submit", "--data", "[1]"], "sq: error: --data must be a JSON object"),
        (["submit", "--at", "2030-01-01T00:00"], "sq: error: --at: "),
        (["submit", "--delay", "1m", "--at", "2030-01-01T00:00Z"], "sq: error: give --delay"),
        (["next", "--queue", "a b"], "sq: error: --queue: 'a b' is not"),
        (["cancel"], "sq: error: name the jobs to cancel: ids, or --state, --queue, --prefix;"),
        (["retry", "x", "--all"], "sq: error: give job ids or filters"),
    ]:
        assert_one_error_line(sq(server.url, *args), 2, start)


def test_list_piped_at_80_columns_keeps_ids_whole_and_states_uncut(server: ServerProcess) -> None:
    ids = [str(uuid.uuid4()) for _ in range(5)]
    with Client(server.url) as client:
        for i, job_id in enumerate(ids):
            queue = "invoices-eu-west-1" if i % 2 else "emails"
            client.submit(job_id, "send the monthly invoice to the customer " * 3, queue=queue)
        client.next(queues=["emails"])
    done = sq(server.url, "list", columns=80)  # a pipe: not a terminal
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), done.stdout
    rows = [line.split() for line in lines[2:]]
    assert [row[:2] for row in rows] == [
        [ids[0], "running"],
        *([job_id, "submitted"] for job_id in ids[1:]),
    ]

    # An id longer than the line: its row runs past 80 columns rather than cut or fold it.
    long_id = "reports/2026/quarterly-summary-for-the-board-of-directors-and-the-investors-v2"
    assert sq(server.url, "submit", "--id", long_id, "--json").returncode == 0
    done = sq(server.url, "list", "--prefix", "reports/", columns=80)
    assert done.stdout.splitlines()[2].split()[:2] == [long_id, "submitted"]


def test_an_unreachable_server_is_one_line_with_exit_4() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert_one_error_line(sq(url, "next"), 4, f"sq: error: cannot reach the server at {url}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "--from", "-"], "sq: error: --from: line 2 is not UTF-8 text\n"),
        (["submit", "--data", "-"], "sq: error: --data (stdin) is not UTF-8 text"),
    ],
)
def test_stdin_that_is_not_utf8_is_one_line_with_exit_2(args: list[str], message: str) -> None:
    # A real process: its stdin decodes bytes that are not UTF-8 to surrogates (C.UTF-8 locale),
    # which an in-process runner does not; nothing is sent, so no server is needed.
    env = {k: v for k, v in os.environ.items() if k != "SIMPLEQUEUE_URL"}
    done = subprocess.run(
        [SQ, "--url", f"http://127.0.0.1:{free_port()}", *args], check=False, timeout=60,
        input=b'{"jobId": "a"}\n\xff\xfe\n', capture_output=True, env={**env, "LC_ALL": "C.UTF-8"},
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, b""), done.stderr
    assert done.stderr.count(b"\n") == 1, done.stderr
    assert done.stderr.decode().startswith(message)


def test_next_on_an_empty_queue_exits_3_with_nothing_on_stdout(server: ServerProcess) -> None:
    done = sq(server.url, "next", "--json")
    assert (done.returncode, done.stdout) == (3, "")


def test_client_commands_do_not_load_the_server() -> None:
    code = (
        "import sys; from simplequeue.cli import main; sys.argv = ['sq', 'stats', '--help']\n"
        "try: main()\n"
        "except SystemExit: print('litestar' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"
