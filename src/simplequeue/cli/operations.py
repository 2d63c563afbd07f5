"""What an operator runs against a live queue: `sq stats` counts the jobs, `sq cancel` and `sq
retry` act on many at once, `sq watch` shows it all live and `sq work` runs a worker. The loops
of the last two are in watch.py and work.py, imported only when the command runs."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType

from simplequeue.cli import options, render
from simplequeue.cli.app import (
    Exit,
    app,
    connected,
    fail,
    open_client,
    print_json,
    show,
    show_job,
    wire,
)
from simplequeue.cli.options import JsonOption, LeaseOption, PrefixOption, QueuesOption
from simplequeue.inert import one_line
from simplequeue.models import Changed, JobState


@app.command()
def stats(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Count the jobs in each state, in all and per queue.

    Per queue also its latency: how long its oldest due job has waited.

    Example: sq stats --json | jq '.queues.emails.oldestDueAgeSeconds'
    """
    with connected(ctx) as client:
        counts = client.stats()
    human: RenderableType = render.stats_table(counts)
    if counts.queues:
        human = Group(human, render.queues_table(counts))
    show(counts, as_json, human)


IdsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        parser=options.job_id,
        metavar="ID",
        show_default=False,
        help="The jobs' ids (or use the filters).",
    ),
]
FilterState = Annotated[
    JobState | None,
    typer.Option(
        "--state",
        "-s",
        metavar="STATE",
        help="Only jobs in this state: submitted, running, succeeded or failed.",
        show_default=False,
    ),
]
FilterQueue = Annotated[
    str | None,
    typer.Option(parser=options.queue_name, metavar="NAME", help="Only jobs of this queue."),
]
AllOption = Annotated[
    bool,
    typer.Option(
        "--all", help="With no ids and no filter: every job it applies to (required then)."
    ),
]


class Operation(enum.Enum):
    """An operator's action on jobs, and the word its summary line uses."""

    CANCEL = "cancelled"
    RETRY = "retried"


EVERY_STATE = {
    Operation.CANCEL: [JobState.SUBMITTED, JobState.RUNNING],
    Operation.RETRY: [JobState.FAILED],
}
"""The states each operation applies to (CONTRACT §9), for ``--all``. Submitted before
running: a job taken between the two requests is still cancelled, by the second."""


@dataclass(frozen=True, slots=True)
class _Filter:
    state: JobState | None
    queue: str | None
    prefix: str | None
    every: bool

    def flags(self) -> str:
        """The filter as the options that set it, for the summary line."""
        given = [
            f"--state {self.state.value}" if self.state else "",
            f"--queue {self.queue}" if self.queue else "",
            f"--prefix {self.prefix!r}" if self.prefix is not None else "",
        ]
        return " ".join(flag for flag in given if flag) or "--all"

    def named(self) -> bool:
        return self.state is not None or self.queue is not None or self.prefix is not None


def _operate(
    ctx: typer.Context,
    operation: Operation,
    job_ids: list[str] | None,
    which: _Filter,
    as_json: bool,
) -> None:
    """`sq cancel` and `sq retry`: ids or a filter, checked before anything is sent."""
    name = operation.name.lower()
    if job_ids and (which.named() or which.every):
        fail("give job ids or filters (--state, --queue, --prefix, --all), not both", Exit.USAGE)
    if not job_ids and not which.named() and not which.every:
        fail(
            f"name the jobs to {name}: ids, or --state, --queue, --prefix; "
            f"or --all to {name} every job it applies to",
            Exit.USAGE,
        )
    with connected(ctx) as client:
        act = client.cancel if operation is Operation.CANCEL else client.retry
        if job_ids and len(job_ids) == 1:
            job = act(job_ids[0])
            show_job(job, as_json)
            return
        if job_ids:
            ids = list(dict.fromkeys(job_ids))  # an id named twice is one job
            changed = act(ids)
            line = f"{operation.value} {changed.changed:,} of {len(ids):,} jobs named"
            if changed.matched < len(ids):
                line += f"; {len(ids) - changed.matched:,} name no job"
        else:
            # --all alone: one filter per state the action applies to (the SDK takes an empty
            # filter for a mistake, not for every job).
            states = [which.state] if which.named() else EVERY_STATE[operation]
            counts = [act(state=state, queue=which.queue, prefix=which.prefix) for state in states]
            changed = Changed(
                matched=sum(c.matched for c in counts), changed=sum(c.changed for c in counts)
            )
            noun = "job" if changed.changed == 1 else "jobs"
            line = f"{operation.value} {changed.changed:,} {noun} matching {which.flags()}"
    if as_json:
        print_json(wire(changed))
    else:
        typer.echo(one_line(line))


def _register(operation: Operation, help_text: str) -> None:
    """`sq cancel` and `sq retry`: the same options, and one body; only their help differs."""

    @app.command(operation.name.lower(), help=help_text)
    def command(
        ctx: typer.Context,
        job_ids: IdsArgument = None,
        state: FilterState = None,
        queue: FilterQueue = None,
        prefix: PrefixOption = None,
        every: AllOption = False,
        as_json: JsonOption = False,
    ) -> None:
        _operate(ctx, operation, job_ids, _Filter(state, queue, prefix, every), as_json)


_register(
    Operation.CANCEL,
    """Cancel jobs: by id, or every job the filters match.

    A submitted or running job becomes failed, with the error "cancelled"; a running job's
    worker loses its lease (`sq work` stops its command). One id: the job is shown (exit code
    1 if it already finished). Several ids, or filters (default: every submitted and running
    job that matches): how many were cancelled.

    Example: sq cancel invoice-42

    Example: sq cancel --queue emails --state submitted --json
    """,
)
_register(
    Operation.RETRY,
    """Retry failed jobs: by id, or every failed job the filters match.

    Each goes back to submitted, due now, keeping its attempts and errors (one more attempt is
    allowed if it had used them all). One id: the job is shown (exit code 1 if it is not
    failed). Several ids, or filters: how many were retried.

    Example: sq retry invoice-42

    Example: sq retry --queue emails --prefix invoice-
    """,
)


@app.command()
def watch(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option(min=0.1, metavar="SECONDS", help="Seconds between refreshes.")
    ] = 1.0,
    jobs: Annotated[
        int,
        typer.Option(min=1, max=1000, metavar="N", help="How many of the latest jobs to show."),
    ] = 10,
    utc: Annotated[
        bool, typer.Option("--utc", help="Show the time in UTC (default: local time).")
    ] = False,
) -> None:
    """A live dashboard: rates, a line per queue, the latest jobs.

    Jobs submitted and completed per second with a sparkline of the last minute; per queue its
    jobs in each state and its latency (how long its oldest due job has waited); the latest
    jobs. Keeps retrying while the server is unreachable. Press q or Ctrl-C to leave.

    Example: sq --url http://127.0.0.1:8000 watch --jobs 20 --utc
    """
    from simplequeue.cli.watch import watch as run

    # The dashboard's own loop is the retry; --timeout bounds each request of a frame.
    client = open_client(ctx, retries=0)
    try:
        with client:
            run(client, interval=interval, rows=jobs, console=Console(), utc=utc)
    except KeyboardInterrupt:
        pass


WORK_PREFETCH = 0
"""`sq work`'s default ``--prefetch``: none, unlike the SDK's `work`. A command is a process
started per job, which costs more than the ``next`` that prefetching saves; and a job held
ahead waits for this worker's slots while another worker may be idle."""


@app.command(context_settings={"allow_interspersed_args": False})
def work(
    ctx: typer.Context,
    command: Annotated[
        list[str],
        typer.Argument(
            metavar="COMMAND",  # with its arguments, after `--`
            help="Run once per job: the job as JSON on stdin; SQ_JOB_ID, SQ_LEASE_ID and "
            "SQ_ATTEMPT in its environment.",
        ),
    ],
    concurrency: Annotated[
        int, typer.Option(min=1, metavar="N", help="How many jobs (commands) to run at once.")
    ] = 1,
    prefetch: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="N",
            help="Hold this many jobs more than are running, so a command that ends finds the "
            "next at hand; each waits for a free slot, and for its lease if sq work dies.",
        ),
    ] = WORK_PREFETCH,
    lease: LeaseOption = None,
    queue: QueuesOption = None,
) -> None:
    """Be a worker: run COMMAND once per job.

    The job is completed by how the command ended. Exit 0: succeeded, with stdout as the
    result if it is JSON. Anything else: failed, retried while attempts remain, with the end of
    stderr as the error. The lease is renewed while the command runs; if it is lost (the job
    was cancelled, or taken back), the command gets SIGTERM, then SIGKILL if it is still
    running a few seconds later. Ctrl-C or SIGTERM: take no more jobs, let the running commands
    finish (press Ctrl-C again to send them SIGTERM).

    Example: sq work --concurrency 4 -- ./resize.sh --quality 80

    Example: sq work --queue emails --queue sms -- ./send.py
    """
    from simplequeue.cli.work import Worker, cannot_run, run

    queues = options.queues(queue)
    reason = cannot_run(command[0])
    if reason is not None:
        fail(reason, Exit.USAGE)
    console = Console(stderr=True, soft_wrap=True)  # a log: one line per event, never wrapped
    with connected(ctx) as client:
        worker = Worker(tuple(command), client.url, console)
        where = f" (queues {', '.join(queues)})" if queues else ""
        worker.note(
            f"taking jobs from {client.url}{where}, {concurrency} at a time; "
            "Ctrl-C or SIGTERM stops"
        )
        run(
            client,
            worker,
            concurrency=concurrency,
            prefetch=prefetch,
            lease=lease,
            queues=queues,
        )
    if worker.fatal is not None:
        fail(worker.fatal, Exit.USAGE)
    worker.note("stopped")
