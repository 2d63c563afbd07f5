"""The renderers are pure: known models in, known text out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console, RenderableType

from simplequeue.cli.render import Snapshot, age, dashboard, job_table, jobs_table, stats_table
from simplequeue.models import Job, JobState, Stats

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


def text(renderable: RenderableType, width: int = 100) -> str:
    console = Console(record=True, width=width, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    console.file.close()
    return console.export_text()


def job(job_id: str, state: JobState, minutes_ago: int, description: str | None = None) -> Job:
    created = NOW - timedelta(minutes=minutes_ago)
    return Job(
        job_id=job_id,
        description=description,
        data=None,
        state=state,
        created_at=created,
        started_at=None if state is JobState.SUBMITTED else created + timedelta(seconds=5),
        finished_at=created + timedelta(seconds=9) if state.finished else None,
        attempts=0 if state is JobState.SUBMITTED else 1,
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
    assert fields["attempts"] == "1"
    assert fields["created"] == "2026-03-04 11:57:00 UTC (3m ago)"
    assert fields["finished"] == "2026-03-04 11:57:09 UTC (2m ago)"


def test_a_list_is_a_table_in_the_order_given() -> None:
    jobs = [job("b", JobState.RUNNING, 1, "second"), job("a", JobState.FAILED, 2)]
    rows = [line.split() for line in text(jobs_table(jobs, NOW)).splitlines() if line.strip()]
    assert rows[0] == ["id", "state", "description", "attempts", "age"]
    assert rows[2:] == [["b", "running", "second", "1", "1m"], ["a", "failed", "-", "1", "2m"]]


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
