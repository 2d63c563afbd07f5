"""Queues, priorities, scheduled jobs, cancel and retry, retention (CONTRACT §8-§9) from `sq`,
in-process against the real app."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import respx
from typer.testing import CliRunner, Result

from simplequeue import Client, JobState
from simplequeue.server import Settings
from tests.cli.conftest import Run, cli_app
from tests.cli.test_commands import one_error_line


def answer(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `sq` as its entry point does (usage errors become one line): the stderr of a run
    that must fail with exit code 2 before anything is sent."""
    monkeypatch.setattr(sys, "argv", ["sq", *args])
    with pytest.raises(SystemExit) as ended:
        cli_app.main()
    captured = capsys.readouterr()
    assert ended.value.code == 2, captured.err
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err.strip()


# -- sq serve --keep-succeeded / --keep-failed --------------------------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The settings `sq serve` would run with; nothing is served."""
    import simplequeue.server.run

    seen: list[Settings] = []
    monkeypatch.setattr(simplequeue.server.run, "serve", seen.append)
    return seen


def test_serve_reads_retention_durations(served: list[Settings]) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app.app, ["serve", "--keep-succeeded", "7d", "--keep-failed", "90"])
    assert result.exit_code == 0, result.stderr
    assert (served[0].keep_succeeded, served[0].keep_failed) == (604_800, 90)
    assert runner.invoke(cli_app.app, ["serve", "--keep-failed", "1.5h"]).exit_code == 0
    assert (served[1].keep_succeeded, served[1].keep_failed) == (None, 5400)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--keep-succeeded", "1w"],
            "sq: error: --keep-succeeded: '1w' is not a duration: give a "
            "number of seconds, or one with a unit (90s, 15m, 12h, 7d)",
        ),
        (["--keep-failed", "-1"], "sq: error: --keep-failed: '-1' is not"),
        (["--keep-failed", "99999d"], "--keep-failed: '99999d' is longer"),
    ],
)
def test_serve_refuses_a_bad_duration_in_one_line(
    served: list[Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert message in main(monkeypatch, capsys, "serve", *args)
    assert served == []


# -- sq submit --queue --priority --delay --at ----------------------------------------------


def test_submit_into_a_queue_with_a_priority_and_a_delay(sq: Run, client: Client) -> None:
    job = answer(sq("submit", "--id", "e", "--queue", "emails", "--priority", "-7", "--json"))
    assert (job["queue"], job["priority"]) == ("emails", -7)
    assert job["runAt"] == job["createdAt"]  # due at once
    delayed = answer(sq("submit", "--id", "later", "--delay", "15m", "--json"))
    assert delayed["queue"] == "default"
    created = datetime.fromisoformat(delayed["createdAt"])
    assert datetime.fromisoformat(delayed["runAt"]) - created == timedelta(minutes=15)
    assert client.next() is not None  # "e"
    assert client.next() is None  # "later" is not due


def test_submit_at_a_moment_with_its_zone(sq: Run, client: Client) -> None:
    job = answer(sq("submit", "--id", "a", "--at", "2030-05-01T11:00:00+02:00", "--json"))
    assert datetime.fromisoformat(job["runAt"]) == datetime(2030, 5, 1, 9, tzinfo=UTC)
    human = sq("get", "a").stdout
    assert "2030-05-01 09:00:00 UTC (in " in human
    assert client.get("a").run_at == datetime(2030, 5, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--at", "2030-05-01T09:00:00"],
            "sq: error: --at: '2030-05-01T09:00:00' names no time zone: "
            "add Z (UTC) or an offset such as +02:00",
        ),
        (["--at", "soon"], "--at: 'soon' is not a timestamp"),
        (
            ["--delay", "1m", "--at", "2030-05-01T09:00:00Z"],
            "sq: error: give --delay or --at, not both",
        ),
        (["--delay", "366d"], "--delay: '366d' is longer than 365d"),
        (["--delay", "soon"], "--delay: 'soon' is not a duration"),
        (
            ["--queue", "no spaces"],
            "--queue: 'no spaces' is not a queue name: 1-64 characters from A-Z a-z 0-9 . _ : -",
        ),
        (["--queue", "q" * 65], "is not a queue name"),
        (["--priority", "101"], "sq: error: --priority must be a whole number from -100 to 100"),
        (["--priority", "x"], "sq: error: --priority must be a whole number from -100 to 100"),
        (["--from", "-", "--id", "x"], "sq: error: --from takes every job from its lines"),
    ],
)
def test_a_bad_submit_option_is_one_line_and_nothing_is_sent(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    client: Client,
    args: list[str],
    message: str,
) -> None:
    assert message in main(monkeypatch, capsys, "submit", *args)
    assert client.stats().total == 0


def lines(*jobs: dict[str, Any]) -> str:
    return "".join(json.dumps(job) + "\n" for job in jobs)


def test_submit_from_lines_with_their_own_fields_and_the_options_as_defaults(
    sq: Run, client: Client
) -> None:
    text = lines(
        {"jobId": "own", "queue": "sms", "priority": 3, "delaySeconds": 60},
        {"jobId": "at", "runAt": "2030-01-01T00:00:00Z", "maxAttempts": 1},
        {"jobId": "plain"},
    )
    options = ("--queue", "emails", "--priority", "9", "--max-attempts", "5", "--delay", "2h")
    result = sq("submit", "--from", "-", *options, input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "3 jobs: 3 created, 0 already there, 0 refused"
    own, at, plain = (client.get(job_id) for job_id in ("own", "at", "plain"))
    assert (own.queue, own.priority, own.max_attempts) == ("sms", 3, 5)
    assert own.run_at - own.created_at == timedelta(seconds=60)  # its own delay, not --delay
    assert (at.queue, at.priority, at.max_attempts) == ("emails", 9, 1)
    assert at.run_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert (plain.queue, plain.priority, plain.max_attempts) == ("emails", 9, 5)
    assert plain.run_at - plain.created_at == timedelta(hours=2)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            {"jobId": "a", "runAt": "2030-01-01T00:00:00"},
            "sq: error: --from: line 1: runAt '2030-01-01T00:00:00' names no time zone",
        ),
        ({"jobId": "a", "runAt": "later"}, "sq: error: --from: line 1: runAt 'later' is not a"),
        ({"jobId": "a", "runAt": 5}, "sq: error: --from: line 1: runAt must be a timestamp"),
        (
            {"jobId": "a", "runAt": "2030-01-01T00:00:00Z", "delaySeconds": 5},
            "sq: error: --from: line 1: give runAt or delaySeconds, not both",
        ),
    ],
)
def test_a_line_with_a_bad_run_at_is_refused_before_anything_is_sent(
    sq: Run, client: Client, line: dict[str, Any], message: str
) -> None:
    result = sq("submit", "--from", "-", input=lines({"jobId": "fine"}, line))
    assert result.exit_code == 2
    assert one_error_line(result).startswith(message.replace("line 1", "line 2"))
    assert client.stats().total == 0


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("queue", "a b", "queue"),
        ("priority", 1000, "priority"),
        ("delaySeconds", -1, "delaySeconds"),
        ("delaySeconds", "soon", "delaySeconds"),
    ],
)
def test_a_line_the_server_refuses_is_named_and_the_others_go_in(
    sq: Run, client: Client, field: str, value: object, named: str
) -> None:
    result = sq("submit", "--from", "-", input=lines({"jobId": "ok"}, {"jobId": "x", field: value}))
    assert result.exit_code == 1, result.stderr
    assert result.stdout.strip() == "2 jobs: 1 created, 0 already there, 1 refused"
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("sq: line 2: ")
    assert named in result.stderr
    assert client.stats().total == 1


def test_a_field_given_as_null_takes_the_options_default(sq: Run, client: Client) -> None:
    text = lines({"jobId": "n", "queue": None, "runAt": None, "priority": None})
    result = sq("submit", "--from", "-", "--queue", "q", "--at", "2030-01-01T00:00:00Z", input=text)
    assert result.exit_code == 0, result.stderr
    job = client.get("n")
    assert (job.queue, job.priority, job.run_at) == ("q", 0, datetime(2030, 1, 1, tzinfo=UTC))


# -- sq next / list / stats with queues --------------------------------------------------------


def test_next_takes_only_from_the_queues_named_highest_priority_first(
    sq: Run, client: Client
) -> None:
    client.submit("low", queue="emails")
    client.submit("high", queue="emails", priority=50)
    client.submit("other", queue="sms", priority=100)
    client.submit("third", queue="push")
    taken = [answer(sq("next", "--queue", "emails", "--json"))["jobId"] for _ in range(2)]
    assert taken == ["high", "low"]
    empty = sq("next", "--queue", "emails")
    assert empty.exit_code == 3
    several = answer(sq("next", "--queue", "push", "--queue", "sms", "--count", "5", "--json"))
    assert [job["jobId"] for job in several] == ["other", "third"]


def test_list_filters_by_queue_and_shows_queue_priority_and_due(sq: Run, client: Client) -> None:
    client.submit("a", "first", queue="emails", priority=5)
    client.submit("b", "second", queue="sms", delay=3600)
    client.submit("c", "third", queue="push")
    listed = answer(sq("list", "--queue", "emails", "--queue", "sms", "--json"))
    assert [(job["jobId"], job["queue"], job["priority"]) for job in listed] == [
        ("a", "emails", 5),
        ("b", "sms", 0),
    ]
    table = sq("list", "--queue", "emails", "--queue", "sms").stdout
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
    assert rows["id"][:5] == ["id", "state", "queue", "priority", "due"]
    assert rows["a"][:4] == ["a", "submitted", "emails", "5"]
    assert rows["b"][:5] == ["b", "submitted", "sms", "in", "59m"]
    assert "c" not in rows


def test_list_refuses_a_bad_queue_name_before_sending(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], client: Client
) -> None:
    message = main(monkeypatch, capsys, "list", "--queue", "emails", "--queue", "a/b")
    assert message.startswith("sq: error: --queue: 'a/b' is not a queue name")


def test_stats_has_a_line_per_queue(sq: Run, client: Client) -> None:
    client.submit("a", queue="emails")
    client.submit("b", queue="emails")
    client.submit("c", queue="sms", delay=3600)
    client.next(queues=["emails"])
    stats = answer(sq("stats", "--json"))
    assert stats["total"] == 3
    assert set(stats["queues"]) == {"emails", "sms"}
    emails = stats["queues"]["emails"]
    assert {k: emails[k] for k in ("submitted", "running", "succeeded", "failed")} == {
        "submitted": 1,
        "running": 1,
        "succeeded": 0,
        "failed": 0,
    }
    assert emails["oldestDueAgeSeconds"] >= 0
    assert stats["queues"]["sms"]["oldestDueAgeSeconds"] is None  # not due yet
    shown = sq("stats").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in shown if line.strip()}
    assert rows["emails"][:5] == ["emails", "1", "1", "0", "0"]
    assert rows["emails"][5].endswith("s")
    assert rows["sms"] == ["sms", "1", "0", "0", "0", "-"]
    assert rows["total"] == ["total", "3"]


# -- sq cancel / sq retry ----------------------------------------------------------------------


def test_cancel_one_job_shows_it(sq: Run, client: Client) -> None:
    client.submit("c", "to cancel")
    job = answer(sq("cancel", "c", "--json"))
    assert job["state"] == "failed"
    assert [error["error"] for error in job["errors"]] == ["cancelled"]
    assert "leaseId" not in job
    client.submit("d")
    human = sq("cancel", "d")
    assert human.exit_code == 0, human.stderr
    assert "failed" in human.stdout
    assert "cancelled" in human.stdout
    assert client.get("d").state is JobState.FAILED


def test_cancel_or_retry_of_one_job_in_the_wrong_state_or_unknown_is_exit_1(
    sq: Run, client: Client
) -> None:
    client.submit("done")
    client.next()
    client.complete("done", "succeeded")
    assert one_error_line(sq("cancel", "done")).startswith("sq: error: ")
    assert sq("cancel", "done").exit_code == 1
    assert sq("retry", "done").exit_code == 1
    unknown = sq("retry", "nope")
    assert unknown.exit_code == 1
    assert one_error_line(unknown) == "sq: error: no job has jobId 'nope'"
    assert client.get("done").state is JobState.SUCCEEDED


def test_a_pruned_job_is_exit_1_with_the_servers_reason() -> None:
    detail = "job 'old' succeeded at 2026-01-01T00:00:00Z and was deleted by the server's retention"
    with respx.mock(base_url="http://queue.test") as router:
        router.post("/jobs/cancel").respond(
            410, json={"status": 410, "title": "Gone", "detail": detail}
        )
        result = CliRunner().invoke(cli_app.app, ["--url", "http://queue.test", "cancel", "old"])
    assert result.exit_code == 1
    assert one_error_line(result) == f"sq: error: {detail}"


def test_cancel_many_ids_counts_what_changed(sq: Run, client: Client) -> None:
    for job_id in ("a", "b", "c"):
        client.submit(job_id)
    client.cancel("c")
    result = sq("cancel", "a", "b", "c", "nope", "a")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "cancelled 2 of 4 jobs named; 1 name no job"
    assert answer(sq("cancel", "a", "b", "--json")) == {"matched": 2, "changed": 0}
    assert [client.get(j).state for j in "abc"] == [JobState.FAILED] * 3


def test_cancel_by_filter(sq: Run, client: Client) -> None:
    client.submit("inv-1", queue="emails")
    client.submit("inv-2", queue="emails")
    client.submit("other", queue="emails")
    client.submit("sms-1", queue="sms")
    client.next(queues=["emails"])  # inv-1 is running
    result = sq("cancel", "--queue", "emails", "--prefix", "inv-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "cancelled 2 jobs matching --queue emails --prefix 'inv-'"
    assert answer(sq("cancel", "--queue", "emails", "--state", "submitted", "--json")) == {
        "matched": 1,
        "changed": 1,
    }
    assert client.get("sms-1").state is JobState.SUBMITTED
    everything = sq("cancel", "--all")
    assert everything.stdout.strip() == "cancelled 1 job matching --all"
    assert client.stats().failed == 4


def test_retry_by_ids_and_filter(sq: Run, client: Client) -> None:
    for job_id in ("a", "b", "c"):
        client.submit(job_id, queue="emails", max_attempts=1)
    client.cancel(state=JobState.SUBMITTED, queue="emails")
    job = answer(sq("retry", "a", "--json"))
    assert (job["state"], job["maxAttempts"]) == ("submitted", 1)
    assert sq("retry", "b", "a").stdout.strip() == "retried 1 of 2 jobs named"
    assert answer(sq("retry", "--queue", "emails", "--json")) == {"matched": 1, "changed": 1}
    assert client.stats().submitted == 3


@pytest.mark.parametrize("command", ["cancel", "retry"])
def test_ids_and_filters_do_not_mix_and_no_filter_needs_all(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    client: Client,
    command: str,
) -> None:
    client.submit("a")
    both = main(monkeypatch, capsys, command, "a", "--queue", "emails")
    assert (
        both == "sq: error: give job ids or filters (--state, --queue, --prefix, --all), not both"
    )
    assert "not both" in main(monkeypatch, capsys, command, "a", "--all")
    nothing = main(monkeypatch, capsys, command)
    assert nothing == (
        f"sq: error: name the jobs to {command}: ids, or --state, --queue, --prefix; "
        f"or --all to {command} every job it applies to"
    )
    assert client.get("a").state is JobState.SUBMITTED


def test_a_state_the_action_does_not_apply_to_is_the_servers_refusal(sq: Run) -> None:
    result = sq("retry", "--state", "submitted")
    assert result.exit_code == 1
    assert "filter.state" in one_error_line(result)


@pytest.mark.parametrize("command", [["next"], ["list"], ["work", "--", "true"]])
def test_more_queues_than_one_request_may_name_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    client: Client,
    command: list[str],
) -> None:
    client.submit("untouched", queue="q1")
    queues = [arg for n in range(101) for arg in ("--queue", f"q{n}")]
    message = main(monkeypatch, capsys, command[0], *queues, *command[1:])
    assert message == "sq: error: --queue: name at most 100 queues, not 101"
    assert client.get("untouched").state is JobState.SUBMITTED
