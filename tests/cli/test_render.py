"""The renderers are pure: known models in, known text out."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console, RenderableType

from simplequeue.cli.rates import rate, sparkline
from simplequeue.cli.render import (
    Snapshot,
    age,
    dashboard,
    duration,
    elapsed,
    job_table,
    jobs_table,
    queues_table,
    stats_table,
    work_line,
)
from simplequeue.models import AttemptError, Job, JobState, QueueStats, Stats

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


def text(renderable: RenderableType, width: int = 100, *, crop: bool = True) -> str:
    """As printed at ``width``; ``crop=False`` as `sq list` prints (a line may run past)."""
    console = Console(record=True, width=width, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable, crop=crop)
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
        "queue": "default",
        "priority": 0,
        "run_at": created,
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
    assert rows[0] == ["id", "state", "queue", "description", "attempts", "age"]
    assert rows[2:] == [
        ["b", "running", "default", "second", "1/3", "1m"],
        ["a", "failed", "default", "-", "1/3", "2m"],
    ]


def test_stats_table() -> None:
    rows = [line.split() for line in text(stats_table(STATS)).splitlines()]
    assert rows == [["submitted", "12"], ["running", "3"], ["succeeded", "40"], ["failed", "2"],
                    ["total", "57"]]  # fmt: skip


QUEUES = Stats(
    submitted=1205,
    running=8,
    succeeded=1_332_778,
    failed=12,
    total=1_334_003,
    queues={
        "emails": QueueStats(
            submitted=1200, running=4, succeeded=50_000, failed=2, oldest_due_age_seconds=3.24
        ),
        "sms": QueueStats(
            submitted=4, running=4, succeeded=48_211, failed=10, oldest_due_age_seconds=None
        ),
        "reports-for-the-board": QueueStats(
            submitted=1, running=0, succeeded=1_234_567, failed=0, oldest_due_age_seconds=245
        ),
    },
)


def frame_rows(frame: str) -> list[list[str]]:
    """The words of each line inside the frame's border."""
    return [line.strip(" │").split() for line in frame.splitlines() if line.startswith("│")]


def row_of(frame: str, first: str) -> list[str]:
    return next(row[1:] for row in frame_rows(frame) if row and row[0] == first)


def test_the_dashboard_shows_rates_queues_and_the_latest_jobs() -> None:
    frame = text(
        dashboard(
            Snapshot(
                url="http://127.0.0.1:8000",
                now=NOW,
                stats=QUEUES,
                jobs=[
                    job("newest", JobState.SUBMITTED, 0, "resize"),
                    job("older", JobState.RUNNING, 7),
                ],
                submitted=[0.0] * 55 + [1200.0, 0.0, 3.0, 1.0, 1.0],
                completed=[2.5] * 10,
            ),
            utc=True,
        )
    )
    assert "simplequeue · http://127.0.0.1:8000" in frame
    assert "12:00:00 UTC" in frame
    assert row_of(frame, "submitted/s")[0] == "241"  # the last 5 s: 1,205 / 5
    assert row_of(frame, "completed/s")[0] == "2.5"
    assert row_of(frame, "emails") == ["1,200", "4", "50,000", "2", "3.2s"]
    assert row_of(frame, "sms") == ["4", "4", "48,211", "10", "-"]
    assert row_of(frame, "reports-for-the-board") == ["1", "0", "1,234,567", "0", "4m", "05s"]
    assert row_of(frame, "total") == ["1,205", "8", "1,332,778", "12"]
    assert frame.index("newest") < frame.index("older")
    assert "resize" in frame
    assert "retrying" not in frame


def test_one_queue_has_no_total_line() -> None:
    one = Stats(
        submitted=1,
        running=0,
        succeeded=0,
        failed=0,
        total=1,
        queues={
            "default": QueueStats(
                submitted=1, running=0, succeeded=0, failed=0, oldest_due_age_seconds=1.0
            )
        },
    )
    frame = text(dashboard(Snapshot(url="u", now=NOW, stats=one)))
    assert row_of(frame, "default") == ["1", "0", "0", "0", "1.0s"]
    assert not any(row[:1] == ["total"] for row in frame_rows(frame))


def test_the_clock_is_local_unless_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "XYZ-5:30")  # POSIX: 5h30 east of UTC, no tzdata needed
    time.tzset()
    try:
        snapshot = Snapshot(url="u", now=NOW)
        assert "17:30:00 XYZ · q or Ctrl-C to quit" in text(dashboard(snapshot))
        assert "12:00:00 UTC · q or Ctrl-C to quit" in text(dashboard(snapshot, utc=True))
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_dashboard_fits_its_width_keeping_ids_and_states(width: int) -> None:
    ids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(4)]
    states = [JobState.SUBMITTED, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED]
    jobs = [
        job(job_id, state, i, "send the monthly invoice to the customer " * 2, queue="emails")
        for i, (job_id, state) in enumerate(zip(ids, states, strict=True))
    ]
    frame = text(
        dashboard(
            Snapshot(url="u", now=NOW, stats=QUEUES, jobs=jobs, submitted=[1.0] * 60),
        ),
        width=width,
    )
    lines = frame.splitlines()
    assert all(len(line) == width for line in lines if line.strip()), frame
    for job_id, state in zip(ids, states, strict=True):
        assert any(job_id in line and state.value in line.split() for line in lines), frame
    assert ("send the monthly invoice" in frame) == (width >= 120)  # the first to give way
    header = next(row for row in frame_rows(frame) if row[:2] == ["id", "state"])
    assert "queue" in header


def test_the_dashboard_says_when_the_server_is_unreachable() -> None:
    frame = text(
        dashboard(
            Snapshot(url="http://x:1", now=NOW, error="cannot reach the server at http://x:1")
        )
    )
    assert "cannot reach the server at http://x:1 (retrying)" in frame
    assert row_of(frame, "submitted/s")[0] == "-"
    assert row_of(frame, "completed/s")[0] == "-"


@pytest.mark.parametrize(
    ("per_second", "shown"),
    [
        ([], "-"),
        ([0.0], "0.0"),
        ([1.0, 2.0], "1.5"),
        ([9.94], "9.9"),
        ([10.4], "10"),
        ([5.0] * 4 + [12_345.0], "2,473"),
    ],
)
def test_a_rate_is_the_mean_of_the_last_five_seconds(per_second: list[float], shown: str) -> None:
    assert rate([100.0] * 3 + per_second if len(per_second) >= 5 else per_second) == shown


def test_a_sparkline_shows_the_last_minute_newest_on_the_right() -> None:
    assert sparkline([], 60, 0).plain == " " * 60  # nothing known yet
    idle = sparkline([0.0] * 60, 60, 0).plain
    assert idle == "▁" * 60
    burst = sparkline([0.0] * 59 + [8.0], 60, 8.0).plain
    assert burst == "▁" * 59 + "█"
    young = sparkline([2.0, 8.0], 60, 8.0).plain  # a server up for two seconds
    assert young == " " * 58 + "▃█"  # a quarter of the peak: 2 of 7 levels above idle
    halves = sparkline([0.0] * 30 + [8.0] * 30, 2, 8.0).plain  # two cells: 30 s each
    assert halves == "▁█"
    assert len(sparkline([1.0] * 500, 30, 1.0).plain) == 30


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


# -- queues, priorities, scheduled jobs -------------------------------------------------------


def test_a_job_shows_its_queue_priority_and_when_it_is_due() -> None:
    later = job("s", JobState.SUBMITTED, 1, queue="emails", priority=-5)
    later.run_at = NOW + timedelta(minutes=5)
    fields = fields_of(text(job_table(later, NOW)))
    assert (fields["queue"], fields["priority"]) == ("emails", "-5")
    assert fields["run at"] == "2026-03-04 12:05:00 UTC (in 5m)"
    due = fields_of(text(job_table(job("d", JobState.SUBMITTED, 3), NOW)))
    assert (due["queue"], due["priority"]) == ("default", "0")
    assert due["run at"] == "2026-03-04 11:57:00 UTC (3m ago)"


def body_rows(shown: str) -> list[list[str]]:
    """A jobs table's rows below its header, split into words."""
    lines = [line.split() for line in shown.splitlines() if line.strip()]
    return lines[2:]


def test_a_list_shows_priority_and_due_columns_only_when_a_job_needs_them() -> None:
    plain = [job("a", JobState.SUBMITTED, 1), job("b", JobState.RUNNING, 2, queue="sms")]
    header = text(jobs_table(plain, NOW)).split()
    assert "priority" not in header
    assert "due" not in header
    waiting = job("w", JobState.SUBMITTED, 1, queue="emails", priority=10)
    waiting.run_at = NOW + timedelta(hours=2)
    shown = text(jobs_table([waiting, *plain], NOW))
    assert shown.split()[:7] == [
        "id",
        "state",
        "queue",
        "priority",
        "due",
        "description",
        "attempts",
    ]
    assert body_rows(shown) == [
        ["w", "submitted", "emails", "10", "in", "2h", "-", "0/3", "1m"],
        ["a", "submitted", "default", "-", "0/3", "1m"],
        ["b", "running", "sms", "-", "1/3", "2m"],
    ]


def test_a_list_keeps_every_id_whole_and_gives_up_the_description_first() -> None:
    ids = [str(uuid.UUID(int=i + 1)) for i in range(3)]
    jobs = [job(i, JobState.SUCCEEDED, 1, "a long description " * 5, queue="emails") for i in ids]
    wide = text(jobs_table(jobs, NOW), width=120)
    assert wide.split()[:6] == ["id", "state", "queue", "description", "attempts", "age"]
    narrow = text(jobs_table(jobs, NOW), width=60)
    assert narrow.split()[:3] == ["id", "state", "queue"]
    for shown, width in [(wide, 120), (narrow, 60)]:
        lines = shown.splitlines()
        assert all(len(line) <= width for line in lines)
        assert [row.split()[:2] for row in lines[2:]] == [[i, "succeeded"] for i in ids]


def test_an_id_wider_than_the_table_is_never_cut_in_a_list_and_folded_in_a_frame() -> None:
    long_id = "invoice-" + "0123456789" * 8
    waiting = job(long_id, JobState.SUBMITTED, 1, "a description " * 10, priority=3)
    waiting.run_at = NOW + timedelta(days=2)
    waiting.queue = "q" * 64
    listed = text(jobs_table([waiting], NOW), width=80, crop=False).splitlines()
    assert listed[2].split()[:2] == [long_id, "submitted"]  # one line, wider than 80
    framed = text(jobs_table([waiting], NOW, fold=True), width=80).splitlines()
    assert all(len(line) <= 80 for line in framed)
    assert "".join(line.split()[0] for line in framed[2:]) == long_id
    assert framed[2].split()[1] == "submitted"


def test_priorities_and_counts_have_thousands_separators() -> None:
    big = Stats(submitted=1_234_567, running=0, succeeded=12_000, failed=0, total=1_246_567)
    assert text(stats_table(big)).splitlines()[0].split() == [
        "submitted",
        "1,234,567",
    ]


def test_the_queues_table_has_a_row_per_queue_with_its_oldest_due_age() -> None:
    stats = Stats(
        submitted=3,
        running=1,
        succeeded=0,
        failed=1,
        total=5,
        queues={
            "emails": QueueStats(
                submitted=3, running=0, succeeded=0, failed=1, oldest_due_age_seconds=3.24
            ),
            "sms": QueueStats(
                submitted=0, running=1, succeeded=0, failed=0, oldest_due_age_seconds=None
            ),
        },
    )
    rows = body_rows(text(queues_table(stats)))
    assert rows == [["emails", "3", "0", "0", "1", "3.2s"], ["sms", "0", "1", "0", "0", "-"]]
    header = text(queues_table(stats)).split()
    assert header[:6] == ["queue", "submitted", "running", "succeeded", "failed", "latency"]
    totals = body_rows(text(queues_table(stats, totals=True)))
    assert totals[-1] == ["total", "3", "1", "0", "1"]
