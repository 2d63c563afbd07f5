"""A job's life from the command line: `sq submit` puts jobs in, `sq next` takes one, `sq
heartbeat` renews its lease and `sq complete` ends it; `sq get` and `sq list` show jobs. A worker
in a shell script is these commands in a loop (`sq work` is that loop, ready-made)."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group

from simplequeue.cli import ndjson, options, render
from simplequeue.cli.app import Exit, app, connected, fail, now, print_json, show, show_job, wire
from simplequeue.cli.options import JsonOption, LeaseOption, PrefixOption, QueuesOption
from simplequeue.client import BatchResult, Order
from simplequeue.inert import one_line
from simplequeue.models import (
    DEFAULT_QUEUE,
    MAX_ATTEMPTS,
    MAX_CLAIM_COUNT,
    MAX_ERROR_LENGTH,
    MAX_LEASE_SECONDS,
    MAX_PRIORITY,
    MAX_WAIT_SECONDS,
    MIN_PRIORITY,
    QUEUE_NAME_RULE,
    CompletionStatus,
    JobState,
)


@app.command()
def submit(
    ctx: typer.Context,
    job_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            parser=options.job_id,
            metavar="ID",
            help="The job's id (default: a new UUID).",
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Human-readable text.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            metavar="JSON", help="A JSON object: inline, @FILE, or - to read standard input."
        ),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            max=MAX_ATTEMPTS,
            help="How many times it may be handed out (default: the server's --max-attempts).",
        ),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(
            parser=options.queue_name,
            metavar="NAME",
            help=f"The queue it joins (default: {DEFAULT_QUEUE}): {QUEUE_NAME_RULE}",
        ),
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            min=MIN_PRIORITY,
            max=MAX_PRIORITY,
            metavar="N",
            help="Higher is handed out first, among jobs that are due (default: 0).",
        ),
    ] = None,
    delay: Annotated[
        float | None,
        typer.Option(
            parser=options.delay,
            metavar="DURATION",
            help="Not handed out before this long from now (90s, 15m, 12h, 7d, or seconds).",
        ),
    ] = None,
    at: Annotated[
        datetime | None,
        typer.Option(
            parser=options.moment,
            metavar="TIMESTAMP",
            help="Not handed out before then: RFC 3339 with a time zone "
            "(2026-05-01T09:00:00Z, 2026-05-01T11:00:00+02:00).",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="FILE",
            help="Submit many: one job a line as JSON (jobId, description, data, maxAttempts, "
            "queue, priority, runAt or delaySeconds), from FILE or - for standard input; sent "
            "in batches. --max-attempts, --queue, --priority, --delay and --at apply to the "
            "lines that do not say.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a job, or many with --from.

    The same id with the same content again changes nothing (the first --delay or --at
    stands). With --from: one summary line; each refused job is a line on stderr naming its
    line, and the exit code is 1.

    Example: sq submit --id invoice-42 --description "send invoice" --data '{"amount": 12}'

    Example: sq submit --id report-7 --queue reports --priority 10 --at 2026-05-01T06:00:00Z

    Example: jq -c '{jobId: .id, data: .}' invoices.json | sq submit --from - --queue invoices
    """
    if delay is not None and at is not None:
        fail("give --delay or --at, not both", Exit.USAGE)
    kwargs = _submit_options(max_attempts, queue, priority, at, delay)
    if source is not None:
        given = [name for name, value in _single_options(job_id, description, data)]
        if given:
            fail(f"--from takes every job from its lines: {given[0]} goes in them", Exit.USAGE)
        _submit_lines(ctx, source, kwargs, as_json)
        return
    payload = None if data is None else options.read_data(data)
    with connected(ctx) as client:
        job = client.submit(job_id or str(uuid.uuid4()), description, payload, **kwargs)
    show_job(job, as_json)


def _submit_options(
    max_attempts: int | None,
    queue: str | None,
    priority: int | None,
    run_at: datetime | None,
    delay: float | None,
) -> dict[str, Any]:
    """The options of `submit` given, as the SDK's keyword arguments (those not given are left
    to the server's defaults): one job's, or the defaults of the lines of ``--from``."""
    given = {
        "max_attempts": max_attempts,
        "queue": queue,
        "priority": priority,
        "run_at": run_at,
        "delay": delay,
    }
    return {name: value for name, value in given.items() if value is not None}


def _single_options(*values: object) -> list[tuple[str, object]]:
    names = ("--id", "--description", "--data")
    return [(name, value) for name, value in zip(names, values, strict=True) if value is not None]


def _submit_lines(ctx: typer.Context, source: str, defaults: dict[str, Any], as_json: bool) -> None:
    """``sq submit --from``: every line read and checked before the first batch is sent."""
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        fail(f"--from: cannot read {source!r}: {exc.strerror}", Exit.USAGE)
    # Bytes that are not UTF-8 are kept (as surrogates) for `parse` to name their line.
    text = raw.decode("utf-8", "surrogateescape")
    try:
        lines = ndjson.parse(text, defaults)
    except ndjson.BadLine as exc:
        fail(f"--from: {exc}", Exit.USAGE)
    with connected(ctx) as client:
        results = client.submit_many(line.job for line in lines)
    if as_json:  # the API's answer to the batches, one array: {status, job} or {status, detail}
        print_json(
            [{"status": r.status, "job": wire(r.job)} if r.ok else _refusal(r) for r in results]
        )
    else:
        typer.echo(ndjson.summary(results))
    refused = [(line, r.error) for line, r in zip(lines, results, strict=True) if r.error]
    for line, error in refused:
        typer.echo(f"sq: line {line.number}: {one_line(error.detail)}", err=True)
    if refused:
        raise typer.Exit(Exit.REFUSED)


def _refusal(result: BatchResult) -> dict[str, object]:
    detail = result.error.detail if result.error else ""
    return {"status": result.status, "detail": detail}


@app.command("next")
def next_(
    ctx: typer.Context,
    wait: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_WAIT_SECONDS,
            metavar="SECONDS",
            help="Wait up to this long for a job when the queue is empty.",
        ),
    ] = 0,
    lease: LeaseOption = None,
    count: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_CLAIM_COUNT,
            metavar="N",
            help="Take up to this many jobs at once, each under its own lease (--json: an array).",
        ),
    ] = None,
    queue: QueuesOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take the next job: it becomes running, under a lease.

    The highest priority among the jobs that are due, then the longest due, then the first
    submitted. Exit code 3 when none came.

    The job's lease id (shown, and in --json as leaseId) is what `sq heartbeat` and
    `sq complete --lease` name.

    Example: job=$(sq next --wait 30 --lease 600 --json) && echo "$job" | jq -r .leaseId

    Example: sq next --queue emails --queue sms --count 10 --json | jq -c '.[]'
    """
    queues = options.queues(queue)
    with connected(ctx, waits=wait) as client:
        if count is None:
            job = client.next(wait=wait or None, lease=lease, queues=queues)
            jobs = [] if job is None else [job]
        else:
            jobs = client.next(wait=wait or None, lease=lease, count=count, queues=queues)
    if not jobs:
        typer.echo("sq: the queue is empty", err=True)
        raise typer.Exit(Exit.EMPTY)
    at = now()
    tables = Group(*(render.job_table(job, at) for job in jobs))
    show(jobs if count is not None else jobs[0], as_json, tables)


@app.command()
def heartbeat(
    ctx: typer.Context,
    job_id: Annotated[
        str, typer.Argument(parser=options.job_id, metavar="ID", help="The running job's id.")
    ],
    lease_id: Annotated[
        str, typer.Option("--lease", metavar="LEASE_ID", help="The lease `sq next` gave.")
    ],
    lease_seconds: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_LEASE_SECONDS,
            metavar="SECONDS",
            help="Renew for this long from now (default: the lease's own length).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Renew a running job's lease.

    Exit code 7 when the lease is lost: stop working on it.

    Example: sq heartbeat invoice-42 --lease "$lease_id" --lease-seconds 600
    """
    with connected(ctx) as client:
        job = client.heartbeat(job_id, lease_id, lease_seconds)
    show_job(job, as_json)


@app.command()
def complete(
    ctx: typer.Context,
    job_id: Annotated[
        str, typer.Argument(parser=options.job_id, metavar="ID", help="The running job's id.")
    ],
    status: Annotated[
        CompletionStatus,
        typer.Argument(metavar="STATUS", help="How it ended: succeeded or failed."),
    ],
    lease_id: Annotated[
        str | None,
        typer.Option(
            "--lease",
            metavar="LEASE_ID",
            help="Only if this lease is still the job's (else exit code 7, nothing changes).",
        ),
    ] = None,
    result: Annotated[
        str | None,
        typer.Option(
            metavar="JSON",
            help="With succeeded: any JSON value, inline, @FILE, or - for standard input.",
        ),
    ] = None,
    error: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help=f"With failed: why (at most {MAX_ERROR_LENGTH} chars)."),
    ] = None,
    retry: Annotated[
        bool,
        typer.Option(
            "--retry", help="With failed: queue it again (after a backoff) while attempts remain."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Complete a running job as succeeded or failed.

    Example: sq complete invoice-42 succeeded --lease "$lease_id" --result '{"sent": true}'

    Example: sq complete invoice-42 failed --lease "$lease_id" --error "SMTP timeout" --retry
    """
    if status is CompletionStatus.SUCCEEDED and (error is not None or retry):
        fail("--error and --retry go with failed, not with succeeded", Exit.USAGE)
    if status is CompletionStatus.FAILED and result is not None:
        fail("--result goes with succeeded, not with failed", Exit.USAGE)
    if error is not None and len(error) > MAX_ERROR_LENGTH:
        fail(f"--error is {len(error)} characters; at most {MAX_ERROR_LENGTH}", Exit.USAGE)
    value = None if result is None else options.read_json("--result", result)
    with connected(ctx) as client:
        job = client.complete(
            job_id, status, lease_id=lease_id, result=value, error=error, retry=retry
        )
    show_job(job, as_json)


@app.command()
def get(
    ctx: typer.Context,
    job_id: Annotated[
        str, typer.Argument(parser=options.job_id, metavar="ID", help="The job's id.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Show one job.

    Example: sq get invoice-42
    """
    with connected(ctx) as client:
        job = client.get(job_id)
    show_job(job, as_json)


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[
        list[JobState] | None,
        typer.Option(
            "--state",
            "-s",
            metavar="STATE",
            help="Only jobs in this state: submitted, running, succeeded or failed (repeatable).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, metavar="N", help="At most this many jobs.")
    ] = 100,
    order: Annotated[Order, typer.Option(help="asc: oldest first; desc: newest first.")] = "asc",
    after: Annotated[
        str | None,
        typer.Option(
            parser=options.job_id, metavar="ID", help="Only jobs submitted after this job."
        ),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(
            parser=options.job_id,
            metavar="ID",
            help="Only jobs submitted before this job (--before invoice-42).",
        ),
    ] = None,
    prefix: PrefixOption = None,
    queue: QueuesOption = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, oldest first, or newest first with --order desc.

    Example: sq list --state submitted --state running --limit 20

    Example: sq list --order desc --prefix invoice- --queue emails --limit 5
    """
    with connected(ctx) as client:
        jobs = client.list_jobs(
            state,
            limit,
            after,
            before=before,
            order=order,
            prefix=prefix,
            queue=options.queues(queue),
        )
    # The next page continues past the last job shown, in the direction of --order.
    cursor = "--before" if order == "desc" else "--after"
    more = f"more may follow: {cursor} {jobs[-1].job_id!r}" if len(jobs) == limit else None
    show(jobs, as_json, render.jobs_table(jobs, now(), caption=more), crop=False)
