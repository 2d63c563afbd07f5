"""`sq next --wait --lease`, `sq heartbeat`, `sq complete --lease --result --error --retry` and
`sq submit --max-attempts`, in-process against the real app."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from simplequeue import Client, JobState
from tests.cli.conftest import Run
from tests.cli.test_commands import one_error_line


def answer(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def taken(sq: Run, *args: str) -> dict[str, Any]:
    job: dict[str, Any] = answer(sq("next", *args, "--json"))
    return job


def test_submit_sets_max_attempts_and_refuses_one_out_of_range(sq: Run, client: Client) -> None:
    assert answer(sq("submit", "--id", "m", "--max-attempts", "5", "--json"))["maxAttempts"] == 5
    assert client.get("m").max_attempts == 5
    assert answer(sq("submit", "--id", "d", "--json"))["maxAttempts"] == 3  # the server's default
    for bad in ("0", "101"):
        result = sq("submit", "--id", "x", "--max-attempts", bad)
        assert result.exit_code == 2
        assert "Invalid value for '--max-attempts'" in result.stderr
    assert client.stats().total == 2


def test_next_shows_the_lease_id_and_only_next_and_heartbeat_print_one(
    sq: Run, client: Client
) -> None:
    client.submit("j")
    job = taken(sq, "--lease", "120")
    lease_id = job["leaseId"]
    assert lease_id
    assert job["state"] == "running"
    assert job["leaseExpiresAt"] is not None
    # The worker's own copy carries the lease; everyone else's does not, not even as null.
    assert "leaseId" not in answer(sq("get", "j", "--json"))
    assert all("leaseId" not in listed for listed in answer(sq("list", "--json")))
    human = sq("heartbeat", "j", "--lease", lease_id)
    assert human.exit_code == 0, human.stderr
    assert lease_id in human.stdout
    assert "left (until" in human.stdout
    assert lease_id not in sq("get", "j").stdout


def test_next_in_human_form_shows_the_lease(sq: Run, client: Client) -> None:
    client.submit("h", max_attempts=4)
    shown = sq("next", "--lease", "600")
    assert shown.exit_code == 0, shown.stderr
    assert "1 of 4" in shown.stdout
    assert "lease id" in shown.stdout
    assert re.search(r"\b(9m \d\d|10m 00)s left \(until ", shown.stdout), shown.stdout


def test_next_waits_then_exits_3_when_nothing_comes(sq: Run) -> None:
    empty = sq("next", "--wait", "1", "--json")
    assert empty.exit_code == 3
    assert empty.stdout == ""
    assert empty.stderr.strip() == "sq: the queue is empty"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--wait", "61"], "--wait"),
        (["--wait", "-1"], "--wait"),
        (["--lease", "0"], "--lease"),
        (["--lease", "43201"], "--lease"),
    ],
)
def test_next_refuses_a_wait_or_lease_out_of_range(
    sq: Run, client: Client, args: list[str], option: str
) -> None:
    client.submit("untouched")
    result = sq("next", *args)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.stderr
    assert client.get("untouched").state is JobState.SUBMITTED


def test_heartbeat_renews_the_lease(sq: Run, client: Client) -> None:
    client.submit("j")
    job = taken(sq, "--lease", "5")
    renewed = answer(
        sq("heartbeat", "j", "--lease", job["leaseId"], "--lease-seconds", "900", "--json")
    )
    assert renewed["leaseId"] == job["leaseId"]
    assert renewed["leaseExpiresAt"] > job["leaseExpiresAt"]
    stored = client.get("j")
    assert stored.lease_expires_at is not None
    assert stored.started_at is not None
    assert (stored.lease_expires_at - stored.started_at).total_seconds() > 800


def test_a_lost_lease_is_exit_7_and_one_line(sq: Run, client: Client) -> None:
    client.submit("j")
    job = taken(sq)
    beat = sq("heartbeat", "j", "--lease", "not-the-lease")
    assert beat.exit_code == 7
    assert one_error_line(beat).startswith("sq: error: lease lost")
    late = sq("complete", "j", "succeeded", "--lease", "not-the-lease", "--result", "1")
    assert late.exit_code == 7
    assert one_error_line(late).startswith("sq: error: lease lost")
    assert client.get("j").state is JobState.RUNNING  # nothing changed
    assert answer(sq("complete", "j", "succeeded", "--lease", job["leaseId"], "--json"))[
        "state"
    ] == ("succeeded")


def test_heartbeat_of_an_unknown_job_is_exit_1(sq: Run) -> None:
    result = sq("heartbeat", "nope", "--lease", "x")
    assert result.exit_code == 1
    assert one_error_line(result).startswith("sq: error: ")


def test_complete_records_a_result_inline_from_a_file_or_stdin(
    sq: Run, client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "result.json"
    path.write_text('{"from": "file"}')
    for job_id, value, stdin in [
        ("inline", "[1, 2.5, null]", None),
        ("file", f"@{path}", None),
        ("stdin", "-", '"from stdin"'),
    ]:
        client.submit(job_id)
        lease_id = taken(sq)["leaseId"]
        done = sq("complete", job_id, "succeeded", "--lease", lease_id, "--result", value,
                  input=stdin)  # fmt: skip
        assert done.exit_code == 0, done.stderr
    assert client.get("inline").result == [1, 2.5, None]
    assert client.get("file").result == {"from": "file"}
    assert client.get("stdin").result == "from stdin"
    shown = sq("get", "file").stdout
    assert '"from": "file"' in shown


def test_complete_failed_with_retry_requeues_with_the_error(sq: Run, client: Client) -> None:
    client.submit("r", max_attempts=2)
    first = taken(sq)
    again = answer(sq("complete", "r", "failed", "--lease", first["leaseId"], "--error",
                      "disk full\nline two", "--retry", "--json"))  # fmt: skip
    assert again["state"] == "submitted"
    assert [e["error"] for e in again["errors"]] == ["disk full\nline two"]
    shown = sq("get", "r").stdout
    assert "disk full" in shown
    assert "line two" in shown
    assert "1 of 2" in shown


def test_complete_failed_without_retry_is_final(sq: Run, client: Client) -> None:
    client.submit("f")
    taken(sq)
    done = answer(sq("complete", "f", "failed", "--error", "bad input", "--json"))
    assert done["state"] == "failed"
    assert done["errors"][-1]["error"] == "bad input"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["succeeded", "--error", "x"], "--error and --retry go with failed"),
        (["succeeded", "--retry"], "--error and --retry go with failed"),
        (["failed", "--result", "1"], "--result goes with succeeded"),
        (["failed", "--error", "e" * 4097], "--error is 4097 characters; at most 4096"),
        (["succeeded", "--result", "{bad"], "--result is not valid JSON"),
        (["succeeded", "--result", "@/no/such.json"], "--result: cannot read '/no/such.json'"),
    ],
)
def test_complete_refuses_options_that_do_not_go_together_before_sending(
    sq: Run, client: Client, args: list[str], message: str
) -> None:
    client.submit("j")
    client.next()
    result = sq("complete", "j", *args)
    assert result.exit_code == 2
    assert one_error_line(result).startswith(f"sq: error: {message}")
    assert client.get("j").state is JobState.RUNNING
