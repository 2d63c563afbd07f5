"""Every `sq` client command, in-process against the real app."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import respx
from typer.testing import CliRunner, Result

from simplequeue import Client, JobState
from simplequeue.client.base import TIMEOUT
from tests.cli.conftest import Run, cli_app
from tests.servers import free_port

app = cli_app.app


def one_error_line(result: Result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


def test_submit_prints_the_job_as_json(sq: Run, client: Client) -> None:
    result = sq("submit", "--id", "a/b", "--description", "d", "--data", '{"n": 1}', "--json")
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["jobId"] == "a/b"
    assert printed["data"] == {"n": 1}
    assert printed["state"] == "submitted"
    assert client.get("a/b").description == "d"


def test_submit_without_an_id_makes_a_uuid(sq: Run, client: Client) -> None:
    result = sq("submit", "--json")
    assert result.exit_code == 0, result.stderr
    job_id = json.loads(result.stdout)["jobId"]
    assert str(uuid.UUID(job_id)) == job_id
    assert client.stats().total == 1


def test_submit_reads_data_from_a_file_or_stdin(sq: Run, client: Client, tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('{"from": "file"}')
    assert sq("submit", "--id", "f", "--data", f"@{path}").exit_code == 0
    assert sq("submit", "--id", "s", "--data", "-", input='{"from": "stdin"}').exit_code == 0
    assert client.get("f").data == {"from": "file"}
    assert client.get("s").data == {"from": "stdin"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{bad", "--data is not valid JSON: JSON is malformed"),
        ("[1, 2]", "--data must be a JSON object, not list"),
        ('"text"', "--data must be a JSON object, not str"),
        ("@/no/such/file.json", "--data: cannot read '/no/such/file.json'"),
        # Refused as the server refuses them: decoded, only the last value would be sent.
        ('{"k": 1, "k": 2}', "--data names the key 'k' twice in one object; send each key once"),
        ('{"a": [{"k": 1}, {"k": 1, "k": 1}]}', "--data names the key 'k' twice in one object"),
        # Deeper than the decoder can follow: RecursionError, not a DecodeError.
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "--data is nested too deeply to read"),
    ],
)
def test_bad_data_is_refused_before_any_request(
    sq: Run, client: Client, data: str, message: str
) -> None:
    result = sq("submit", "--id", "x", "--data", data)
    assert result.exit_code == 2
    assert one_error_line(result).startswith(f"sq: error: {message}")
    assert client.stats().total == 0


def test_a_conflicting_submit_is_refused_with_the_servers_reason(sq: Run, client: Client) -> None:
    client.submit("x", "first")
    result = sq("submit", "--id", "x", "--description", "second")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("sq: error: job 'x' was already submitted with a different")
    assert client.get("x").description == "first"


def test_next_takes_jobs_in_order_then_exits_3(sq: Run, client: Client) -> None:
    client.submit("first")
    client.submit("second")
    taken = [json.loads(sq("next", "--json").stdout)["jobId"] for _ in range(2)]
    assert taken == ["first", "second"]
    empty = sq("next", "--json")
    assert empty.exit_code == 3
    assert empty.stdout == ""
    assert empty.stderr.strip() == "sq: the queue is empty"


def test_complete(sq: Run, client: Client) -> None:
    client.submit("j")
    client.next()
    result = sq("complete", "j", "failed", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "failed"
    assert client.get("j").state is JobState.FAILED
    again = sq("complete", "j", "succeeded")
    assert again.exit_code == 1
    assert one_error_line(again).startswith("sq: error: ")


def test_get_an_unknown_job(sq: Run) -> None:
    result = sq("get", "nope")
    assert result.exit_code == 1
    assert one_error_line(result) == "sq: error: no job has jobId 'nope'"


def test_human_output_shows_the_job_and_never_reads_it_as_markup(sq: Run, client: Client) -> None:
    client.submit("m", "[bold]not markup[/bold] :smile:", {"k": "v"})
    result = sq("get", "m")
    assert result.exit_code == 0, result.stderr
    assert "[bold]not markup[/bold] :smile:" in result.stdout
    assert "submitted" in result.stdout
    assert '"k": "v"' in result.stdout


def test_list_filters_by_state_and_limits(sq: Run, client: Client) -> None:
    for i in range(4):
        client.submit(f"j{i}", f"task {i}")
    client.next()
    listed = sq("list", "--state", "submitted", "--state", "running", "--limit", "3", "--json")
    assert [job["jobId"] for job in json.loads(listed.stdout)] == ["j0", "j1", "j2"]
    running = json.loads(sq("list", "-s", "running", "--json").stdout)
    assert [job["jobId"] for job in running] == ["j0"]
    table = sq("list").stdout
    assert all(f"task {i}" in table for i in range(4))
    assert "running" in table
    assert "more may follow" not in table
    assert "more may follow: --after 'j1'" in sq("list", "--limit", "2").stdout


def listed_ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.stderr
    return [job["jobId"] for job in json.loads(result.stdout)]


def test_list_newest_first_before_and_prefix(sq: Run, client: Client) -> None:
    for job_id in ["inv-1", "other-1", "inv-2", "inv-3", "other-2"]:
        client.submit(job_id)
    newest = sq("list", "--order", "desc", "--json")
    assert listed_ids(newest) == ["other-2", "inv-3", "inv-2", "other-1", "inv-1"]
    assert listed_ids(sq("list", "--before", "inv-2", "--json")) == ["inv-1", "other-1"]
    assert listed_ids(sq("list", "--prefix", "inv-", "--json")) == ["inv-1", "inv-2", "inv-3"]
    page = sq("list", "--order", "desc", "--prefix", "inv-", "--limit", "2", "--json")
    assert listed_ids(page) == ["inv-3", "inv-2"]
    rest = ("list", "--order", "desc", "--prefix", "inv-", "--before", "inv-2", "--json")
    assert listed_ids(sq(*rest)) == ["inv-1"]
    # The caption names the flag that continues the page in the order shown.
    table = sq("list", "--order", "desc", "--prefix", "inv-", "--limit", "2").stdout
    assert "more may follow: --before 'inv-2'" in table
    assert "other" not in table


def test_list_refuses_an_unknown_order_and_an_empty_prefix(sq: Run) -> None:
    bad_order = sq("list", "--order", "newest")
    assert bad_order.exit_code == 2
    assert "newest" in bad_order.stderr
    empty = sq("list", "--prefix", "")
    assert empty.exit_code == 1
    assert one_error_line(empty).startswith("sq: error:")
    assert "prefix" in empty.stderr


def test_stats(sq: Run, client: Client) -> None:
    client.submit("a")
    client.submit("b")
    client.next()
    counts = json.loads(sq("stats", "--json").stdout)
    queues = counts.pop("queues")
    assert counts == {
        "submitted": 1,
        "running": 1,
        "succeeded": 0,
        "failed": 0,
        "total": 2,
        "submittedEver": 2,
        "completedEver": 0,
    }
    assert list(queues) == ["default"]
    human = sq("stats").stdout.split()
    assert human[human.index("running") + 1] == "1"
    assert human[human.index("total") + 1] == "2"


def test_an_unreachable_server_is_one_line_and_exit_4() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["--url", url, "stats"])
    assert result.exit_code == 4
    line = one_error_line(result)
    assert line.startswith(f"sq: error: cannot reach the server at {url}")


def test_a_url_that_is_not_http_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["--url", "localhost:8000", "stats"])
    assert result.exit_code == 2
    assert one_error_line(result) == "sq: error: --url: not an http(s) URL: 'localhost:8000'"


@pytest.mark.parametrize(
    "command",
    [
        "submit",
        "next",
        "heartbeat",
        "complete",
        "get",
        "list",
        "stats",
        "cancel",
        "retry",
        "watch",
        "work",
        "serve",
    ],
)
def test_every_command_has_help_with_an_example(sq: Run, command: str) -> None:
    result = sq(command, "--help")
    assert result.exit_code == 0
    assert "Example: sq" in result.stdout or "Example: job=$(sq" in result.stdout


def test_a_failing_server_is_one_line_and_exit_5() -> None:
    detail = "the server failed while answering; the error is in its log"
    with respx.mock(base_url="http://queue.test") as router:
        router.get("/stats").respond(
            500, json={"status": 500, "title": "Internal Server Error", "detail": detail}
        )
        result = CliRunner().invoke(app, ["--url", "http://queue.test", "stats"])
    assert result.exit_code == 5
    assert one_error_line(result) == f"sq: error: {detail}"


def test_every_command_is_bounded_in_time_by_default_and_by_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Client] = []
    real_connect = cli_app.connect

    def spy(url: str, **options: Any) -> Client:
        made.append(real_connect(url, **options))
        return made[-1]

    monkeypatch.setattr(cli_app, "connect", spy)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: each command ends at once, code 4
    assert CliRunner().invoke(app, ["--url", url, "stats"]).exit_code == 4
    assert CliRunner().invoke(app, ["--url", url, "--timeout", "3", "get", "x"]).exit_code == 4
    assert [client.deadline for client in made] == [cli_app.DEADLINE, 3.0]
    assert made[0].timeout.connect == cli_app.CLI_CONNECT_TIMEOUT
    # One full attempt fits in the default bound: the SDK's read timeout, which stays above the
    # server's limit on a busy store.
    assert made[0].timeout.read == TIMEOUT < cli_app.DEADLINE


def test_a_timeout_that_is_not_positive_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["--timeout", "0", "stats"])
    assert result.exit_code == 2
    assert "Invalid value for '--timeout'" in result.stderr
