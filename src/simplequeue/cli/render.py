"""Pure functions from models to Rich renderables: no I/O, no clock (``now`` is passed in).

Every string that came from the server is made inert (`simplequeue.inert`: control and
bidi-formatting characters shown as escapes, never sent to the terminal) and wrapped in `Text`,
never printed as markup: a job's description may well contain ``[bold]``, ``:smile:`` or
``\x1b[2J``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import msgspec
from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.highlighter import JSONHighlighter
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from simplequeue.cli.columns import Column, Move, fit
from simplequeue.cli.rates import RatesLines
from simplequeue.inert import inert, inert_json, one_line
from simplequeue.models import Job, JobState, Stats

__all__ = [
    "JobsTable",
    "QueuesTable",
    "Snapshot",
    "age",
    "attempts_text",
    "count",
    "dashboard",
    "duration",
    "elapsed",
    "job_table",
    "jobs_table",
    "json_text",
    "queues_table",
    "safe_text",
    "state_text",
    "stats_table",
    "work_line",
    "work_note",
]

STATE_STYLES = {
    JobState.SUBMITTED: "cyan",
    JobState.RUNNING: "yellow",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
}
NONE = Text("-", style="dim")
_LINE_BREAK = re.compile(r"\r?\n")
_highlight_json = JSONHighlighter()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one frame of ``sq watch`` shows."""

    url: str
    now: datetime
    stats: Stats | None = None
    jobs: Sequence[Job] = field(default_factory=tuple)
    """The most recent jobs, newest first."""
    submitted: Sequence[float] = field(default_factory=tuple)
    """Jobs submitted per second over the last minute, oldest first (fewer entries when less
    is known)."""
    completed: Sequence[float] = field(default_factory=tuple)
    """Jobs completed (succeeded or failed) per second, as ``submitted``."""
    error: str | None = None
    """Why the last sample failed; the rest of the snapshot is the last good one."""


def safe_text(text: str | None, style: str = "") -> Text:
    """Text from the server, inert and never read as markup; ``None`` is shown as a dim dash."""
    return NONE if text is None else Text(inert(text), style=style)


def json_text(data: Any) -> Text:
    """Indented, highlighted JSON, its strings inert.

    Not `rich.json.JSON`: it re-encodes with ``ensure_ascii=False``, which leaves C1 controls and
    bidi overrides raw inside strings.
    """
    encoded = msgspec.json.format(msgspec.json.encode(data), indent=2).decode()
    text = _highlight_json(inert_json(encoded))
    text.no_wrap = True  # as rich's JSON: long values run on rather than break the layout
    text.overflow = None
    return text


def state_text(state: JobState) -> Text:
    return Text(state.value, style=STATE_STYLES[state])


def age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration(seconds: float) -> str:
    """A length of time in its two largest units: ``45s``, ``4m 05s``, ``2h 10m``, ``3d 4h``."""
    whole = max(0, int(seconds))
    for (unit, size), (small, small_size) in pairwise(_UNITS):
        if whole >= size:
            rest = (whole % size) // small_size
            return f"{whole // size}{unit} {rest:02d}{small}"
    return f"{whole}s"


def elapsed(seconds: float) -> str:
    """How long something took: ``0.04s``, ``12.3s``, then as `duration` from a minute on."""
    if seconds >= 60:
        return duration(seconds)
    return f"{max(0.0, seconds):.2f}s" if seconds < 1 else f"{seconds:.1f}s"


def _at(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


def _moment(at: datetime | None, now: datetime) -> Text:
    if at is None:
        return NONE
    return Text(f"{_at(at)} ({age(at, now)} ago)")


def _run_at(job: Job, now: datetime) -> Text:
    """When the job is (or was) due: ahead of ``now`` only while it waits for that moment."""
    if job.run_at > now:
        return Text(f"{_at(job.run_at)} (in {age(now, job.run_at)})", style="cyan")
    return _moment(job.run_at, now)


def _waits(job: Job, now: datetime) -> bool:
    """A submitted job that is not due yet (scheduled, or retried after a backoff)."""
    return job.state is JobState.SUBMITTED and job.run_at > now


def _due_in(job: Job, now: datetime) -> Text:
    """A list's ``due`` cell: how long a submitted job still waits for its ``runAt``."""
    return Text(f"in {age(now, job.run_at)}", style="cyan") if _waits(job, now) else Text("")


def attempts_text(job: Job, *, short: bool = False) -> str:
    """``2 of 3`` (``2/3`` in a table column): how many hand-outs of how many allowed."""
    return (
        f"{job.attempts}/{job.max_attempts}" if short else f"{job.attempts} of {job.max_attempts}"
    )


def _lease(job: Job, now: datetime) -> Text:
    """A running job's lease: the time left, or how long ago it ran out (the server takes the
    job back within about a second, so that is only seen in passing)."""
    until = job.lease_expires_at
    if job.state is not JobState.RUNNING or until is None:
        return NONE
    left = (until - now).total_seconds()
    if left >= 0:
        return Text(f"{duration(left)} left (until {_at(until)})")
    return Text(f"expired {duration(-left)} ago, being taken back", style="yellow")


def _lines(text: str, style: str = "") -> Text:
    """Multi-line text from a job (a command's stderr) line by line, each line inert."""
    lines = _LINE_BREAK.split(text.rstrip("\r\n"))
    return Text("\n").join(Text(inert(line), style=style) for line in lines)


def _errors(job: Job) -> RenderableType:
    if not job.errors:
        return NONE
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for error in job.errors:
        table.add_row(f"#{error.attempt}", Text(_at(error.at), style="dim"))
        table.add_row("", _lines(error.error, style="red"))
    return table


def job_table(job: Job, now: datetime) -> Table:
    """One job as a two-column key/value table."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("id", safe_text(job.job_id))
    table.add_row("state", state_text(job.state))
    table.add_row("queue", safe_text(job.queue))
    table.add_row("priority", str(job.priority))
    table.add_row("description", safe_text(job.description))
    table.add_row("data", NONE if job.data is None else json_text(job.data))
    table.add_row("attempts", attempts_text(job))
    table.add_row("created", _moment(job.created_at, now))
    table.add_row("run at", _run_at(job, now))
    table.add_row("started", _moment(job.started_at, now))
    table.add_row("finished", _moment(job.finished_at, now))
    table.add_row("lease", _lease(job, now))
    if job.lease_id is not None:  # only the worker that holds it is ever shown one
        table.add_row("lease id", safe_text(job.lease_id))
    table.add_row("result", NONE if job.result is None else json_text(job.result))
    table.add_row("errors", _errors(job))
    return table


JOB_MOVES: tuple[Move, ...] = (
    ("shrink", "description"),
    ("drop", "description"),
    ("drop", "attempts"),
    ("shrink", "queue"),
    ("drop", "age"),
    ("drop", "priority"),
    ("drop", "due"),
    ("drop", "queue"),
)
"""What a jobs table gives up, in this order, when it is too wide: the description first; an
id and a state are never cut."""


def _job_columns(jobs: Sequence[Job], now: datetime) -> list[Column]:
    """The priority and due columns are there only when a job has a priority other than 0, or
    waits for its ``runAt``: most queues use neither."""
    columns = [
        Column("id", [safe_text(job.job_id) for job in jobs]),
        Column("state", [state_text(job.state) for job in jobs]),
        Column("queue", [safe_text(job.queue) for job in jobs], shrink_to=6),
    ]
    if any(job.priority != 0 for job in jobs):
        priorities = [Text(f"{job.priority:,}" if job.priority else "") for job in jobs]
        columns.append(Column("priority", priorities, justify="right"))
    if any(_waits(job, now) for job in jobs):
        columns.append(Column("due", [_due_in(job, now) for job in jobs]))
    descriptions = [safe_text(job.description) for job in jobs]
    columns += [
        Column("description", descriptions, shrink_to=len("description")),
        Column("attempts", [Text(attempts_text(job, short=True)) for job in jobs], "right"),
        Column("age", [Text(age(job.created_at, now)) for job in jobs], "right"),
    ]
    return columns


@dataclass(frozen=True, slots=True)
class JobsTable:
    """Jobs as rows, in the order given, fitted to the width it is drawn in (`JOB_MOVES`).

    An id is never cut. When even the longest id and its state do not fit: with ``fold`` (a
    full-screen frame) the ids are folded onto more lines; without it (`sq list`) the table is
    as wide as they need, one line per job, which a terminal wraps and a pipe keeps whole, so
    every id can be copied or grepped in one piece.
    """

    jobs: Sequence[Job]
    now: datetime
    title: str | None = None
    caption: str | None = None
    fold: bool = False

    def table(self, width: int) -> Table:
        return fit(
            _job_columns(self.jobs, self.now),
            width,
            JOB_MOVES,
            fold="id" if self.fold else None,
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.title is not None:
            yield Text(self.title, style="italic")
        yield self.table(options.max_width)
        if self.caption is not None:
            # One line, whole: it names the id the next page starts from.
            yield Text(inert(self.caption), style="dim", no_wrap=True, overflow="ignore")


def jobs_table(
    jobs: Sequence[Job],
    now: datetime,
    *,
    title: str | None = None,
    caption: str | None = None,
    fold: bool = False,
) -> JobsTable:
    return JobsTable(jobs, now, title, caption, fold)


def count(number: int) -> str:
    """A count as it is shown everywhere: ``98,211``."""
    return f"{number:,}"


def stats_table(stats: Stats) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    for state in JobState:
        table.add_row(state_text(state), count(getattr(stats, state.value)))
    table.add_row("total", count(stats.total))
    return table


def _latency(seconds: float | None) -> Text:
    return NONE if seconds is None else Text(elapsed(seconds))


@dataclass(frozen=True, slots=True)
class QueuesTable:
    """One row per queue: its jobs per state, and its latency: how long its oldest due job has
    waited (a queue nobody takes jobs from shows it growing). ``totals``: a last row with the
    sums, under a rule. A long queue name is cut (with an ellipsis) before any number is."""

    stats: Stats
    totals: bool = False

    def table(self, width: int) -> Table:
        queues = self.stats.queues
        names = [safe_text(name) for name in queues]
        if self.totals:
            names.append(Text("total", style="bold"))
        columns = [Column("queue", names, shrink_to=5)]
        for state in JobState:
            cells = [Text(count(getattr(figures, state.value))) for figures in queues.values()]
            if self.totals:
                cells.append(Text(count(getattr(self.stats, state.value)), style="bold"))
            columns.append(Column(state.value, cells, "right", STATE_STYLES[state]))
        latencies = [_latency(figures.oldest_due_age_seconds) for figures in queues.values()]
        if self.totals:
            latencies.append(Text(""))
        columns.append(Column("latency", latencies, "right"))
        return fit(columns, width, [("shrink", "queue")], section_before_last=self.totals)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)


def queues_table(stats: Stats, *, totals: bool = False) -> QueuesTable:
    return QueuesTable(stats, totals)


def _clock(now: datetime, utc: bool) -> str:
    """The time of the frame: local (with its zone's name) unless ``utc``."""
    shown = now.astimezone(UTC) if utc else now.astimezone()
    return f"{shown:%H:%M:%S} {shown.tzname() or ''}".rstrip()


def dashboard(snapshot: Snapshot, *, utc: bool = False) -> Panel:
    """The whole ``sq watch`` frame: the rates, a line per queue, the latest jobs."""
    parts: list[RenderableType] = [RatesLines(snapshot.submitted, snapshot.completed)]
    if snapshot.error is not None:
        parts.append(safe_text(f"{snapshot.error} (retrying)", style="bold red"))
    stats = snapshot.stats
    if stats is not None and stats.queues:
        parts += [Text(""), queues_table(stats, totals=len(stats.queues) > 1)]
    if snapshot.jobs:
        parts += [
            Text(""),
            jobs_table(snapshot.jobs, snapshot.now, title="latest jobs", fold=True),
        ]
    elif stats is not None and stats.total == 0:
        parts += [Text(""), Text("no jobs yet", style="dim")]
    return Panel(
        Group(*parts),
        title=safe_text(f"simplequeue · {snapshot.url}"),
        title_align="left",
        subtitle=Text(f"{_clock(snapshot.now, utc)} · q or Ctrl-C to quit"),
        subtitle_align="right",
        box=box.ROUNDED,
    )


WORK_STYLES = {
    "started": "cyan",
    "succeeded": "green",
    "failed": "red",
    "lost": "yellow",
    "stopped": "yellow",
}
LOG_DETAIL = 200
"""The most characters of a detail (an error) a log line of ``sq work`` shows: its end, where a
program says why it stopped. ``sq get`` shows the whole error."""


def work_line(now: datetime, job: Job, outcome: str, detail: str | None) -> Text:
    """One line of ``sq work``'s log: a job started, succeeded or failed (or was lost, and its
    command stopped), on one inert line."""
    text = Text(f"{now:%H:%M:%S} ", style="dim")
    text.append(f"{outcome:<9}", style=WORK_STYLES.get(outcome, ""))
    text.append(" ")
    text.append(one_line(job.job_id), style="bold")
    text.append(f" (attempt {attempts_text(job)}")
    if outcome == "failed":
        last = job.attempts >= job.max_attempts
        text.append(", final" if last else ", to be retried")
    text.append(")")
    if detail:
        shown = one_line(detail)
        if len(shown) > LOG_DETAIL:
            shown = "…" + shown[-(LOG_DETAIL - 1) :]
        text.append(f" · {shown}")
    return text


def work_note(now: datetime, note: str) -> Text:
    """A line of ``sq work``'s log about the worker itself."""
    text = Text(f"{now:%H:%M:%S} ", style="dim")
    text.append(f"sq work: {one_line(note)}", style="bold")
    return text
