"""`sq submit --from` (newline-delimited JSON, sent in batches) and `sq next --count`,
in-process against the real app."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from simplequeue import Client, JobState
from simplequeue.cli import ndjson
from simplequeue.models import MAX_BATCH
from tests.cli.conftest import Run
from tests.cli.test_commands import one_error_line


def lines(*bodies: object) -> str:
    return "".join(json.dumps(body) + "\n" for body in bodies)


def test_submit_from_stdin_sends_every_line_and_prints_one_summary(sq: Run, client: Client) -> None:
    count = MAX_BATCH + 5  # more than one batch
    text = lines(*({"jobId": f"j{n}", "data": {"n": n}} for n in range(count)))
    result = sq("submit", "--from", "-", input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{count:,} jobs: {count:,} created, 0 already there, 0 refused\n"
    assert result.stderr == ""
    assert [job.job_id for job in client.iter_jobs(page_size=1000)] == [
        f"j{n}" for n in range(count)
    ]
    assert client.get("j7").data == {"n": 7}


def test_refused_lines_are_named_inert_and_exit_1(sq: Run, client: Client, tmp_path: Path) -> None:
    client.submit("same", "d")
    client.submit("clash\u202e", "first")
    path = tmp_path / "jobs.ndjson"
    path.write_text(
        lines(
            {"jobId": "new", "description": "d", "maxAttempts": 2},
            {"jobId": "same", "description": "d"},
            {},  # blank lines are skipped, but counted
        ).replace("{}\n", "\n")
        + lines({"jobId": "clash\u202e", "description": "second"}, {"jobId": "next"})
    )
    result = sq("submit", "--from", str(path))
    assert result.exit_code == 1
    assert result.stdout == "4 jobs: 1 created, 1 already there, 2 refused\n"
    refused = result.stderr.splitlines()
    assert len(refused) == 2
    assert refused[0].startswith("sq: line 4: job 'clash\\u202e' was already submitted")
    assert refused[1].startswith("sq: line 5: ")
    assert "reserved" in refused[1]
    assert "\u202e" not in result.stderr
    assert client.get("new").max_attempts == 2
    assert client.get("clash\u202e").description == "first"


def test_submit_from_with_json_prints_each_items_result(sq: Run, client: Client) -> None:
    client.submit("there")
    result = sq("submit", "--from", "-", "--json", input=lines({"jobId": "there"}, {"jobId": "x"}))
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert [(item["status"], item["job"]["jobId"]) for item in printed] == [
        (200, "there"),
        (201, "x"),
    ]
    assert "leaseId" not in printed[0]["job"]


def test_a_line_without_an_id_gets_a_uuid(sq: Run, client: Client) -> None:
    assert sq("submit", "--from", "-", input=lines({"description": "no id"})).exit_code == 0
    (job,) = client.list_jobs()
    assert str(uuid.UUID(job.job_id)) == job.job_id
    assert job.description == "no id"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"jobId": "a"}\n{"jobId": \n', "--from: line 2 is not valid JSON: "),
        ('{"jobId": "a"}\n\n[1, 2]\n', "--from: line 3 must be a JSON object, not list"),
        (
            # Deeper than the decoder can follow: it raises RecursionError, not a DecodeError.
            '{"jobId": "a"}\n{"jobId": "d", "data": {"a": '
            + "[" * 100_000
            + "]" * 100_000
            + "}}\n",
            "--from: line 2 is nested too deeply to read",
        ),
        (b'{"jobId": "a"}\n\xff\xfe\n', "--from: line 2 is not UTF-8 text\n"),
        # Refused as the server refuses them: decoded, only the last value would be sent.
        (
            '{"jobId": "a"}\n{"jobId": "a", "jobId": "b"}\n',
            "--from: line 2 names the key 'jobId' twice in one object; send each key once",
        ),
        (
            '{"jobId": "x", "data": {"k": 1, "n": [{"k": 1, "k": 2}]}}\n',
            "--from: line 1 names the key 'k' twice in one object",
        ),
        (
            '{"jobId": "a", "job_id": "b"}\n',
            "--from: line 1: unknown field 'job_id' (a job has jobId, description, data, "
            "maxAttempts, queue, priority, runAt, delaySeconds)",
        ),
    ],
)
def test_a_line_that_is_not_a_job_is_one_error_and_nothing_is_sent(
    sq: Run, client: Client, text: str | bytes, message: str
) -> None:
    result = sq("submit", "--from", "-", input=text)
    assert result.exit_code == 2
    assert (one_error_line(result) + "\n").startswith(f"sq: error: {message}")
    assert client.stats().total == 0


@pytest.mark.parametrize("options", [["--id", "x"], ["--data", "{}"], ["--description", "d"]])
def test_from_does_not_mix_with_the_options_of_one_job(
    sq: Run, client: Client, options: list[str]
) -> None:
    result = sq("submit", "--from", "-", *options, input=lines({"jobId": "a"}))
    assert result.exit_code == 2
    assert one_error_line(result) == (
        f"sq: error: --from takes every job from its lines: {options[0]} goes in them"
    )
    assert client.stats().total == 0


def test_an_unreadable_file_is_a_usage_error(sq: Run) -> None:
    result = sq("submit", "--from", "/no/such/jobs.ndjson")
    assert result.exit_code == 2
    assert one_error_line(result).startswith("sq: error: --from: cannot read '/no/such/jobs")


def test_a_file_that_is_not_utf8_names_its_line(sq: Run, client: Client, tmp_path: Path) -> None:
    path = tmp_path / "jobs.ndjson"
    path.write_bytes(b'{"jobId": "a"}\n{"jobId": "\xe9"}\n')
    result = sq("submit", "--from", str(path))
    assert result.exit_code == 2
    assert one_error_line(result) == "sq: error: --from: line 2 is not UTF-8 text"
    assert client.stats().total == 0


def test_a_line_ends_only_at_a_line_feed() -> None:
    # U+2028 and U+0085 may stand raw inside a JSON string; CRLF files work too.
    text = '{"jobId": "a", "description": "one\u2028two\x85three"}\r\n{"jobId": "b"}\n'
    parsed = ndjson.parse(text)
    assert [(line.number, line.job["job_id"]) for line in parsed] == [(1, "a"), (2, "b")]
    assert parsed[0].job["description"] == "one\u2028two\x85three"


def test_the_summary_counts() -> None:
    assert ndjson.summary([]) == "0 jobs: 0 created, 0 already there, 0 refused"
    assert ndjson.parse("\n \n") == []


# -- sq next --count ------------------------------------------------------------------------------


def test_next_with_a_count_takes_several_jobs(sq: Run, client: Client) -> None:
    for n in range(3):
        client.submit(f"j{n}", f"job {n}")
    result = sq("next", "--count", "2", "--json")
    assert result.exit_code == 0, result.stderr
    taken = json.loads(result.stdout)
    assert [job["jobId"] for job in taken] == ["j0", "j1"]
    assert all(job["leaseId"] for job in taken)
    assert {client.get(f"j{n}").state for n in range(2)} == {JobState.RUNNING}

    human = sq("next", "--count", "5")
    assert human.exit_code == 0, human.stderr
    assert "job 2" in human.stdout
    assert "lease id" in human.stdout

    empty = sq("next", "--count", "5", "--json")
    assert empty.exit_code == 3
    assert (empty.stdout, empty.stderr.strip()) == ("", "sq: the queue is empty")


@pytest.mark.parametrize("count", ["0", "101"])
def test_a_count_out_of_range_is_a_usage_error(sq: Run, count: str) -> None:
    result = sq("next", "--count", count)
    assert result.exit_code == 2
    assert "--count" in result.stderr
