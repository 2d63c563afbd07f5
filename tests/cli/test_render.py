"""The renderers are pure: known models in, known text out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console, RenderableType

from simplequeue.cli.render import (
    Snapshot,
    age,
    dashboard,
    duration,
    elapsed,
    job_table,
    jobs_table,
    stats_table,
    work_line,
)
from simplequeue.models import AttemptError, Job, JobState, Stats

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


def text(renderable: RenderableType, width: int = 100) -> str:
    console = Console(record=True, width=width, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    console.file.close()
    return console.export_text()


def job(
    job_id: str,
    state: JobState,
    minutes_ago: int,
    description: str | None = None,
    **fields: Any,
) -> Job:
    created = NOW - timedelta(minutes=minutes_ago)
    defaults: dict[str, Any] = {
        "max_attempts": 3,
        "lease_expires_at": None,
        "result": None,
        "errors": [],
    }
    return Job(
        job_id=job_id,
        description=description,
        data=None,
        state=state,
        created_at=created,
        started_at=None if state is JobState.SUBMITTED else created + timedelta(seconds=5),
        finished_at=created + timedelta(seconds=9) if state.finished else None,
        attempts=0 if state is JobState.SUBMITTED else 1,
        **{**defaults, **fields},
    )


STATS = Stats(submitted=12, running=3, succeeded=40, failed=2, total=57)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (90000, "1d"), (-5, "0s")],
)
def test_age(seconds: int, expected: str) -> None:
    assert age(NOW - timedelta(seconds=seconds), NOW) == expected


def test_a_job_is_a_key_value_table() -> None:
    shown = text(job_table(job("inv/42", JobState.SUCCEEDED, 3, "send [b]it[/b]"), NOW))
    lines = [line.split(None, 1) for line in shown.splitlines()]
    fields = {line[0]: line[1].strip() for line in lines if len(line) == 2}
    assert fields["id"] == "inv/42"
    assert fields["state"] == "succeeded"
    assert fields["description"] == "send [b]it[/b]"
    assert fields["attempts"] == "1 of 3"
    assert fields["created"] == "2026-03-04 11:57:00 UTC (3m ago)"
    assert fields["finished"] == "2026-03-04 11:57:09 UTC (2m ago)"


def test_a_list_is_a_table_in_the_order_given() -> None:
    jobs = [job("b", JobState.RUNNING, 1, "second"), job("a", JobState.FAILED, 2)]
    rows = [line.split() for line in text(jobs_table(jobs, NOW)).splitlines() if line.strip()]
    assert rows[0] == ["id", "state", "description", "attempts", "age"]
    assert rows[2:] == [["b", "running", "second", "1/3", "1m"], ["a", "failed", "-", "1/3", "2m"]]


def test_stats_table() -> None:
    rows = [line.split() for line in text(stats_table(STATS)).splitlines()]
    assert rows == [["submitted", "12"], ["running", "3"], ["succeeded", "40"], ["failed", "2"],
                    ["total", "57"]]  # fmt: skip


def test_the_dashboard_shows_counts_rate_and_recent_jobs() -> None:
    frame = text(
        dashboard(
            Snapshot(
                url="http://127.0.0.1:8000",
                now=NOW,
                stats=STATS,
                jobs=[
                    job("newest", JobState.SUBMITTED, 0, "resize"),
                    job("older", JobState.RUNNING, 7),
                ],
                completed_per_second=2.5,
            )
        )
    )
    assert "simplequeue · http://127.0.0.1:8000" in frame
    assert "12:00:00 UTC" in frame
    counts = frame.split()
    for label, value in [("submitted", "12"), ("running", "3"), ("succeeded", "40"),
                         ("failed", "2"), ("total", "57"), ("completed/s", "2.5")]:  # fmt: skip
        assert counts[counts.index(label) + 1] == value, label
    assert frame.index("newest") < frame.index("older")
    assert "resize" in frame
    assert "retrying" not in frame


def test_the_dashboard_says_when_the_server_is_unreachable() -> None:
    frame = text(
        dashboard(
            Snapshot(url="http://x:1", now=NOW, error="cannot reach the server at http://x:1")
        )
    )
    assert "cannot reach the server at http://x:1 (retrying)" in frame
    words = frame.split()
    assert words[words.index("submitted") + 1] == "?"
    assert words[words.index("completed/s") + 1] == "-"


def test_an_empty_queue_says_so() -> None:
    empty = Stats(submitted=0, running=0, succeeded=0, failed=0, total=0)
    assert "no jobs yet" in text(dashboard(Snapshot(url="http://x:1", now=NOW, stats=empty)))


def fields_of(shown: str) -> dict[str, str]:
    """A key/value table's rows: a key ("lease id" has a space) is followed by 2+ spaces."""
    lines = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in shown.splitlines()]
    return {line[0]: line[1] for line in lines if len(line) == 2}


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (45, "45s"), (245, "4m 05s"), (7800, "2h 10m"), (273600, "3d 04h"), (-3, "0s")],
)
def test_duration_shows_two_units(seconds: int, expected: str) -> None:
    assert duration(seconds) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"), [(0.042, "0.04s"), (12.34, "12.3s"), (61, "1m 01s"), (-1, "0.00s")]
)
def test_elapsed(seconds: float, expected: str) -> None:
    assert elapsed(seconds) == expected


def test_a_running_job_shows_its_lease_left_and_the_lease_id_only_when_it_has_one() -> None:
    running = job("r", JobState.RUNNING, 1, lease_expires_at=NOW + timedelta(seconds=245))
    fields = fields_of(text(job_table(running, NOW)))
    assert fields["lease"] == "4m 05s left (until 2026-03-04 12:04:05 UTC)"
    assert "lease id" not in text(job_table(running, NOW))  # as `sq get` sees it: none
    claimed = job(
        "r", JobState.RUNNING, 1, lease_expires_at=NOW + timedelta(seconds=5), lease_id="L-123"
    )
    shown = text(job_table(claimed, NOW))
    assert fields_of(shown)["lease id"] == "L-123"
    assert fields_of(shown)["lease"].startswith("5s left")


def test_a_lease_that_ran_out_says_the_job_is_being_taken_back() -> None:
    late = job("r", JobState.RUNNING, 1, lease_expires_at=NOW - timedelta(seconds=2))
    assert fields_of(text(job_table(late, NOW)))["lease"] == "expired 2s ago, being taken back"


def test_a_finished_job_shows_no_lease() -> None:
    done = job("d", JobState.SUCCEEDED, 1, lease_expires_at=NOW)  # never sent so, but harmless
    assert fields_of(text(job_table(done, NOW)))["lease"] == "-"


def test_the_result_is_shown_as_json_with_its_strings_inert() -> None:
    done = job("d", JobState.SUCCEEDED, 1, result={"rows": 3, "note": "\x1b[2J\u202e"})
    shown = text(job_table(done, NOW))
    assert '"rows": 3' in shown
    assert '"note": "\\u001b[2J\\u202e"' in shown
    assert "\x1b" not in shown
    assert "\u202e" not in shown
    assert fields_of(text(job_table(job("n", JobState.SUCCEEDED, 1), NOW)))["result"] == "-"


def test_every_attempts_error_is_shown_line_by_line_and_inert() -> None:
    errors = [
        AttemptError(attempt=1, at=NOW - timedelta(seconds=30), error="lease expired"),
        AttemptError(
            attempt=2,
            at=NOW - timedelta(seconds=10),
            error="Traceback:\n  boom \x1b]0;pwned\x07\n[bold]oops[/bold] \u202eevil\r\n",
        ),
    ]
    failed = job("f", JobState.FAILED, 1, errors=errors)
    shown = text(job_table(failed, NOW))
    lines = [line.strip() for line in shown.splitlines()]
    at = lines.index("errors       #1 2026-03-04 11:59:30 UTC")
    assert lines[at : at + 6] == [
        "errors       #1 2026-03-04 11:59:30 UTC",
        "lease expired",
        "#2 2026-03-04 11:59:50 UTC",
        "Traceback:",
        "boom \\x1b]0;pwned\\x07",
        "[bold]oops[/bold] \\u202eevil",
    ]
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\u202e" not in shown


def test_a_work_line_is_one_inert_line_that_says_if_the_job_will_be_retried() -> None:
    first = job("inv\x1b[2J/42", JobState.RUNNING, 1)
    line = text(work_line(NOW, first, "failed", "1.2s · exit code 3: a\nlong\nstory"), 200)
    assert line.strip() == (
        "12:00:00 failed    inv\\x1b[2J/42 (attempt 1 of 3, to be retried) · 1.2s · exit code 3: "
        "a long story"
    )
    last = job("x", JobState.RUNNING, 1, max_attempts=1)
    assert "(attempt 1 of 1, final)" in text(work_line(NOW, last, "failed", None))
    assert text(work_line(NOW, last, "succeeded", None)).strip() == (
        "12:00:00 succeeded x (attempt 1 of 1)"
    )


def test_a_long_detail_keeps_its_end_in_a_work_line() -> None:
    shown = work_line(NOW, job("x", JobState.RUNNING, 1), "failed", "x" * 500 + " the end")
    line = text(shown, 400).strip()
    assert line.endswith("x the end")
    assert "…" in line
    assert len(line) < 300
