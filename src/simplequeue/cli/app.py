"""The `sq` Typer app: every client command is one SDK call and one render.

Exit codes (also in docs/cli.md): 0 done; 1 the server refused the request (4xx); 2 bad usage,
including --data that is not a JSON object, or a `sq work` command that cannot be run; 3 `sq next`
found the queue empty; 4 the server could not be reached or did not answer within --timeout; 5 the
server failed (5xx); 6 `sq serve` could not start (a port in use, a database it cannot use); 7 the
lease named by `sq heartbeat` or `sq complete --lease` is lost (409 "lease lost").

Every string from the server is printed through `simplequeue.inert`, so none can drive the
terminal.
"""

from __future__ import annotations

import enum
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import msgspec
import typer
from rich.console import Console, Group, RenderableType

from simplequeue import jsontext
from simplequeue.cli import render
from simplequeue.client import DEFAULT_URL, BatchResult, Client, Order
from simplequeue.client.base import TIMEOUT, URL_ENV
from simplequeue.errors import ConnectionFailed, LeaseLost, RequestError, SimpleQueueError
from simplequeue.inert import inert_json, one_line
from simplequeue.models import (
    MAX_CLAIM_COUNT,
    MAX_ERROR_LENGTH,
    MAX_WAIT_SECONDS,
    CompletionStatus,
    JobState,
)
from simplequeue.server.settings import (
    BACKLOG,
    BODY_TIMEOUT,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    HEADER_TIMEOUT,
    MAX_ATTEMPTS,
    MAX_CONNECTIONS,
    MAX_DEPTH,
    MAX_LEASE_SECONDS,
    MIB,
    RETRY_BACKOFF,
    STORE_TIMEOUT,
    LogLevel,
    Synchronous,
)

app = typer.Typer(
    name="sq",
    help="simplequeue: submit jobs, take the next one, complete it, watch it all live.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class Exit(enum.IntEnum):
    OK = 0
    REFUSED = 1
    USAGE = 2
    EMPTY = 3
    UNREACHABLE = 4
    SERVER = 5
    CANNOT_START = 6
    LEASE_LOST = 7


DEADLINE = 15.0
"""Seconds a client command may take, retries included, unless ``--timeout`` says otherwise.
Room for one full attempt (the SDK's 10 s read timeout, above the server's ~5 s limit on a busy
store) and a retry; a server that accepts the connection and never answers ends the command
after this long, not after four attempts of 10 s each."""
CLI_CONNECT_TIMEOUT = 2.0
"""Seconds to wait for a connection: far more than any reachable server needs, and short enough
that an address that drops packets still leaves room in ``DEADLINE`` for retries."""


@dataclass(frozen=True, slots=True)
class Target:
    """The server a command talks to (``--url``) and how long the command may take."""

    url: str
    deadline: float


@app.callback()
def main_options(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Option(envvar=URL_ENV, help="The simplequeue server to talk to."),
    ] = DEFAULT_URL,
    timeout: Annotated[
        float,
        typer.Option(
            min=0.1, help="Give up on a command after this many seconds, retries included."
        ),
    ] = DEADLINE,
) -> None:
    ctx.obj = Target(url, timeout)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="A name clients reach the server by, besides loopback ones and --host "
            "(repeatable; '*' for any). Other Host headers get 400 (DNS rebinding).",
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    db: Annotated[
        str, typer.Option(help="SQLite file, or :memory: for a throwaway queue.")
    ] = "simplequeue.db",
    synchronous: Annotated[
        Synchronous,
        typer.Option(help="full: acknowledged jobs survive power loss; normal: a server crash."),
    ] = "full",
    max_body_size: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = MIB,
    log_level: Annotated[LogLevel, typer.Option(help="Logging level.")] = "info",
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log one line per request (at info). Off by default: it costs throughput.",
        ),
    ] = False,
    max_connections: Annotated[
        int, typer.Option(min=1, help="Connections served at once; more wait in the backlog.")
    ] = MAX_CONNECTIONS,
    backlog: Annotated[
        int, typer.Option(min=1, help="Connections the kernel queues before they are served.")
    ] = BACKLOG,
    header_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Seconds for a request's headers to arrive (so also for an idle connection).",
        ),
    ] = HEADER_TIMEOUT,
    body_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds for a request's body to arrive (else 408).")
    ] = BODY_TIMEOUT,
    max_json_depth: Annotated[
        int, typer.Option(min=1, help="How deeply a job's data may nest (deeper: 400).")
    ] = MAX_DEPTH,
    store_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Seconds a request may wait for a busy store before it is answered 503; "
            f"keep it below your clients' read timeout (the SDK's is {TIMEOUT:g} s).",
        ),
    ] = STORE_TIMEOUT,
    lease_seconds: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_LEASE_SECONDS,
            help="Seconds a worker holds a job it took, unless it asks otherwise or renews it; "
            "then the job comes back.",
        ),
    ] = DEFAULT_LEASE_SECONDS,
    max_attempts: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_ATTEMPTS, help="Times a job may be handed out, unless it says."
        ),
    ] = DEFAULT_MAX_ATTEMPTS,
    retry_backoff: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds before a failed job's first retry; doubling, with jitter."
        ),
    ] = RETRY_BACKOFF,
) -> None:
    """Run the server. Every option, limit and timeout: docs/operations.md.

    Example: sq serve --port 8000 --db ./simplequeue.db
    """
    from simplequeue.server.run import CannotStart
    from simplequeue.server.run import serve as run
    from simplequeue.server.settings import Settings

    settings = Settings(
        db=db,
        synchronous=synchronous,
        max_body_size=max_body_size,
        host=host,
        allowed_hosts=tuple(allowed_host or ()),
        port=port,
        log_level=log_level,
        access_log=access_log,
        max_connections=max_connections,
        backlog=backlog,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        max_json_depth=max_json_depth,
        store_timeout=store_timeout,
        lease_seconds=lease_seconds,
        max_attempts=max_attempts,
        retry_backoff=retry_backoff,
    )
    try:
        run(settings)
    except CannotStart as exc:
        fail(str(exc), Exit.CANNOT_START)


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON answer instead of a table.")
]


def connect(url: str, *, deadline: float = DEADLINE, retries: int = 3) -> Client:
    """The SDK client every command uses; tests replace it to reach an in-process app."""
    timeout = httpx.Timeout(TIMEOUT, connect=CLI_CONNECT_TIMEOUT)
    return Client(url, timeout=timeout, deadline=deadline, retries=retries)


def fail(message: str, code: Exit) -> NoReturn:
    # One line, and inert: the server's detail may quote a job id or description.
    typer.echo(f"sq: error: {one_line(message)}", err=True)
    raise typer.Exit(code)


@contextmanager
def _client(ctx: typer.Context, *, waits: float = 0.0) -> Iterator[Client]:
    """The SDK client for this command; SDK errors end the command with one line and a code.

    ``waits``: seconds the command is meant to wait for the server (``sq next --wait``), added
    to ``--timeout`` so that the wait asked for is not cut short by it."""
    target: Target = ctx.obj
    try:
        client = connect(target.url, deadline=target.deadline + waits)
    except ValueError as exc:
        fail(f"--url: {exc}", Exit.USAGE)
    try:
        with client:
            yield client
    except ConnectionFailed as exc:
        fail(f"{exc.detail} (is `sq serve` running? see --url, --timeout)", Exit.UNREACHABLE)
    except LeaseLost as exc:
        fail(exc.detail, Exit.LEASE_LOST)
    except RequestError as exc:
        fail(exc.detail, Exit.REFUSED)
    except SimpleQueueError as exc:
        fail(exc.detail, Exit.SERVER)


def _wire(answer: object) -> Any:
    """``answer`` as the API sent it: ``leaseId`` only where the API has one (``next`` and
    ``heartbeat``), not as ``null`` in every job."""
    plain = msgspec.to_builtins(answer)
    for job in plain if isinstance(plain, list) else [plain]:
        if isinstance(job, dict) and job.get("leaseId", "") is None:
            del job["leaseId"]
    return plain


def _show(answer: object, as_json: bool, human: RenderableType) -> None:
    if as_json:
        _print_json(_wire(answer))
    else:
        Console().print(human)


def _print_json(value: object) -> None:
    sys.stdout.write(inert_json(msgspec.json.encode(value).decode()) + "\n")


def _now() -> datetime:
    return datetime.now(UTC)


def _read_json(option: str, value: str) -> Any:
    """A JSON option's value: inline JSON, ``@FILE`` or ``-`` for stdin."""
    source = ""
    try:
        if value == "-":
            source, raw = " (stdin)", sys.stdin.buffer.read()
        elif value.startswith("@"):
            source, raw = f" (file {value[1:]!r})", Path(value[1:]).read_bytes()
        else:
            # An argument that is not UTF-8 reaches Python as surrogates; they stay bytes here.
            raw = value.encode("utf-8", "surrogateescape")
    except OSError as exc:
        fail(f"{option}: cannot read {value[1:]!r}: {exc.strerror}", Exit.USAGE)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{option}{source} is not UTF-8 text ({exc.reason})", Exit.USAGE)
    try:
        decoded = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        fail(f"{option}{source} is not valid JSON: {exc}", Exit.USAGE)
    except RecursionError:  # deeper than the decoder can follow (thousands of levels)
        fail(f"{option}{source} is nested too deeply to read", Exit.USAGE)
    try:
        # As the server does: decoded, only the last of the two values would be sent.
        jsontext.refuse_duplicate_keys(raw)
    except jsontext.DuplicateKey as exc:
        fail(
            f"{option}{source} names the key {exc.args[0]!r} twice in one object; "
            "send each key once",
            Exit.USAGE,
        )
    return decoded


def _read_data(value: str) -> dict[str, Any]:
    """``--data``: it must be a JSON object."""
    data = _read_json("--data", value)
    if not isinstance(data, dict):
        fail(f"--data must be a JSON object, not {type(data).__name__}", Exit.USAGE)
    return data


@app.command()
def submit(
    ctx: typer.Context,
    job_id: Annotated[
        str | None, typer.Option("--id", help="The job's id (default: a new UUID).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Human-readable text.")] = None,
    data: Annotated[
        str | None,
        typer.Option(help="A JSON object: inline, @FILE, or - to read standard input."),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_ATTEMPTS,
            help="How many times it may be handed out (default: the server's --max-attempts).",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="FILE",
            help="Submit many: one job a line as JSON (jobId, description, data, maxAttempts), "
            "from FILE or - for standard input; sent in batches.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a job, or many with --from. The same id with the same content again changes
    nothing. With --from: one summary line; each refused job is a line on stderr naming its
    line, and the exit code is 1.

    Example: sq submit --id invoice-42 --description "send invoice" --data '{"amount": 12}'

    Example: jq -c '{jobId: .id, data: .}' invoices.json | sq submit --from -
    """
    if source is not None:
        given = [name for name, value in _single_options(job_id, description, data, max_attempts)]
        if given:
            fail(f"--from takes every job from its lines: {given[0]} goes in them", Exit.USAGE)
        _submit_lines(ctx, source, as_json)
        return
    payload = None if data is None else _read_data(data)
    with _client(ctx) as client:
        job = client.submit(
            job_id or str(uuid.uuid4()), description, payload, max_attempts=max_attempts
        )
    _show(job, as_json, render.job_table(job, _now()))


def _single_options(*values: object) -> list[tuple[str, object]]:
    names = ("--id", "--description", "--data", "--max-attempts")
    return [(name, value) for name, value in zip(names, values, strict=True) if value is not None]


def _submit_lines(ctx: typer.Context, source: str, as_json: bool) -> None:
    """``sq submit --from``: every line read and checked before the first batch is sent."""
    from simplequeue.cli import ndjson

    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        fail(f"--from: cannot read {source!r}: {exc.strerror}", Exit.USAGE)
    # Bytes that are not UTF-8 are kept (as surrogates) for `parse` to name their line.
    text = raw.decode("utf-8", "surrogateescape")
    try:
        lines = ndjson.parse(text)
    except ndjson.BadLine as exc:
        fail(f"--from: {exc}", Exit.USAGE)
    with _client(ctx) as client:
        results = client.submit_many(line.job for line in lines)
    if as_json:  # the API's answer to the batches, one array: {status, job} or {status, detail}
        _print_json(
            [{"status": r.status, "job": _wire(r.job)} if r.ok else _refusal(r) for r in results]
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


LeaseOption = Annotated[
    int | None,
    typer.Option(
        "--lease",
        min=1,
        max=MAX_LEASE_SECONDS,
        metavar="SECONDS",
        help="Hold each job this long unless renewed (default: the server's --lease-seconds).",
    ),
]


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
            help="Take up to this many jobs at once, each under its own lease (--json: an array).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Take the next job (it becomes running, under a lease). Exit code 3 when none came.

    The job's lease id (shown, and in --json as leaseId) is what `sq heartbeat` and
    `sq complete --lease` name.

    Example: job=$(sq next --wait 30 --lease 600 --json) && echo "$job" | jq -r .leaseId

    Example: sq next --count 10 --json | jq -c '.[]'
    """
    with _client(ctx, waits=wait) as client:
        if count is None:
            job = client.next(wait=wait or None, lease=lease)
            jobs = [] if job is None else [job]
        else:
            jobs = client.next(wait=wait or None, lease=lease, count=count)
    if not jobs:
        typer.echo("sq: the queue is empty", err=True)
        raise typer.Exit(Exit.EMPTY)
    now = _now()
    tables = Group(*(render.job_table(job, now) for job in jobs))
    _show(jobs if count is not None else jobs[0], as_json, tables)


@app.command()
def heartbeat(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The running job's id.")],
    lease_id: Annotated[
        str, typer.Option("--lease", metavar="LEASE_ID", help="The lease `sq next` gave.")
    ],
    lease_seconds: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_LEASE_SECONDS,
            help="Renew for this long from now (default: the lease's own length).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Renew a running job's lease. Exit code 7 when the lease is lost: stop working on it.

    Example: sq heartbeat invoice-42 --lease "$lease_id" --lease-seconds 600
    """
    with _client(ctx) as client:
        job = client.heartbeat(job_id, lease_id, lease_seconds)
    _show(job, as_json, render.job_table(job, _now()))


@app.command()
def complete(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The running job's id.")],
    status: Annotated[CompletionStatus, typer.Argument(help="How it ended.")],
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
    value = None if result is None else _read_json("--result", result)
    with _client(ctx) as client:
        job = client.complete(
            job_id, status, lease_id=lease_id, result=value, error=error, retry=retry
        )
    _show(job, as_json, render.job_table(job, _now()))


@app.command()
def get(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id.")],
    as_json: JsonOption = False,
) -> None:
    """Show one job.

    Example: sq get invoice-42
    """
    with _client(ctx) as client:
        job = client.get(job_id)
    _show(job, as_json, render.job_table(job, _now()))


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[
        list[JobState] | None,
        typer.Option("--state", "-s", help="Only jobs in this state (repeatable)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many jobs.")] = 100,
    order: Annotated[Order, typer.Option(help="asc: oldest first; desc: newest first.")] = "asc",
    after: Annotated[
        str | None, typer.Option(help="Only jobs submitted after this job id.")
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(help="Only jobs submitted before this job id (--before invoice-42)."),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option(help="Only jobs whose id starts with this text (--prefix invoice-)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, oldest first, or newest first with --order desc.

    Example: sq list --state submitted --state running --limit 20

    Example: sq list --order desc --prefix invoice- --limit 5
    """
    with _client(ctx) as client:
        jobs = client.list_jobs(state, limit, after, before=before, order=order, prefix=prefix)
    # The next page continues past the last job shown, in the direction of --order.
    cursor = "--before" if order == "desc" else "--after"
    more = f"more may follow: {cursor} {jobs[-1].job_id!r}" if len(jobs) == limit else None
    _show(jobs, as_json, render.jobs_table(jobs, _now(), caption=more))


@app.command()
def stats(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Count the jobs in each state.

    Example: sq stats --json
    """
    with _client(ctx) as client:
        counts = client.stats()
    _show(counts, as_json, render.stats_table(counts))


@app.command()
def watch(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between refreshes.")] = 1.0,
    jobs: Annotated[int, typer.Option(min=1, max=1000, help="How many recent jobs to show.")] = 10,
) -> None:
    """A live dashboard: counts per state, completions per second, the most recent jobs.

    Keeps retrying while the server is unreachable. Press q or Ctrl-C to leave.

    Example: sq --url http://127.0.0.1:8000 watch --jobs 20
    """
    from simplequeue.cli.watch import watch as run

    target: Target = ctx.obj
    try:
        # The dashboard's own loop is the retry; --timeout bounds each request of a frame.
        client = connect(target.url, deadline=target.deadline, retries=0)
    except ValueError as exc:
        fail(f"--url: {exc}", Exit.USAGE)
    try:
        with client:
            run(client, interval=interval, rows=jobs, console=Console())
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
        int, typer.Option(min=1, help="How many jobs (commands) to run at once.")
    ] = 1,
    prefetch: Annotated[
        int,
        typer.Option(
            min=0,
            help="Hold this many jobs more than are running, so a command that ends finds the "
            "next at hand; each waits for a free slot, and for its lease if sq work dies.",
        ),
    ] = WORK_PREFETCH,
    lease: LeaseOption = None,
) -> None:
    """Be a worker: run COMMAND for each job, complete the job by how it ended.

    Exit 0: succeeded, with stdout as the result if it is JSON. Anything else: failed, retried
    while attempts remain, with the end of stderr as the error. The lease is renewed while the
    command runs. Ctrl-C or SIGTERM: take no more jobs, let the running commands finish
    (press Ctrl-C again to send them SIGTERM).

    Example: sq work --concurrency 4 -- ./resize.sh --quality 80
    """
    from simplequeue.cli.work import Worker, cannot_run, run

    reason = cannot_run(command[0])
    if reason is not None:
        fail(reason, Exit.USAGE)
    console = Console(stderr=True, soft_wrap=True)  # a log: one line per event, never wrapped
    with _client(ctx) as client:
        worker = Worker(tuple(command), client.url, console)
        worker.note(
            f"taking jobs from {client.url}, {concurrency} at a time; Ctrl-C or SIGTERM stops"
        )
        run(client, worker, concurrency=concurrency, prefetch=prefetch, lease=lease)
    if worker.fatal is not None:
        fail(worker.fatal, Exit.USAGE)
    worker.note("stopped")


def main() -> None:
    """The `sq` entry point: click's usage errors, too, become one line on stderr."""
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        if not exc.format_message():  # `sq` alone: the help is already printed
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)  # set on usage errors: the command to ask for --help
        where = f" (see '{ctx.command_path} --help')" if ctx else ""
        typer.echo(f"sq: error: {one_line(exc.format_message())}{where}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
