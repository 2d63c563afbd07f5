"""`sq serve`: run the server. Its options' defaults and limits are the server's settings'; the
server itself (Litestar, the app) is imported only when the command runs, so that a client
command never loads it."""

from __future__ import annotations

from typing import Annotated

import typer

from simplequeue.cli import options
from simplequeue.cli.app import Exit, app, fail
from simplequeue.client.base import TIMEOUT
from simplequeue.server.settings import (
    BACKLOG,
    BODY_TIMEOUT,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    HEADER_TIMEOUT,
    LOOK_INTERVAL,
    LOOK_INTERVAL_MAX,
    LOOK_INTERVAL_MIN,
    MAX_ATTEMPTS,
    MAX_CONNECTIONS,
    MAX_DEPTH,
    MAX_LEASE_SECONDS,
    MIB,
    POOL_MAX,
    RETRY_BACKOFF,
    STORE_TIMEOUT,
    LogLevel,
    Synchronous,
)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="A name clients reach the server by, besides loopback ones and --host "
            "(repeatable; '*' for any). Other Host headers get 400 (DNS rebinding).",
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(min=1, max=65535, metavar="PORT", help="Port to listen on.")
    ] = 8000,
    db: Annotated[
        str,
        typer.Option(
            metavar="PATH|URL",
            help="SQLite file, :memory: for a throwaway queue, or postgresql://user@host/db "
            "for a queue several servers share.",
        ),
    ] = "simplequeue.db",
    synchronous: Annotated[
        Synchronous,
        typer.Option(help="full: acknowledged jobs survive power loss; normal: a server crash."),
    ] = "full",
    max_body_size: Annotated[
        int, typer.Option(metavar="BYTES", help="Largest request body, in bytes.")
    ] = MIB,
    log_level: Annotated[LogLevel, typer.Option(help="Logging level.")] = "info",
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log one line per request (at info). Off by default: it costs throughput.",
        ),
    ] = False,
    max_connections: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", help="Connections served at once; more wait in the backlog."
        ),
    ] = MAX_CONNECTIONS,
    backlog: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", help="Connections the kernel queues before they are served."
        ),
    ] = BACKLOG,
    header_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            metavar="SECONDS",
            help="Seconds for a request's headers to arrive (so also for an idle connection).",
        ),
    ] = HEADER_TIMEOUT,
    body_timeout: Annotated[
        float,
        typer.Option(
            min=0.1, metavar="SECONDS", help="Seconds for a request's body to arrive (else 408)."
        ),
    ] = BODY_TIMEOUT,
    max_json_depth: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="How deeply a job's data may nest (deeper: 400)."),
    ] = MAX_DEPTH,
    store_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            metavar="SECONDS",
            help="Seconds a request may wait for a busy store before it is answered 503; "
            f"keep it below your clients' read timeout (the SDK's is {TIMEOUT:g} s).",
        ),
    ] = STORE_TIMEOUT,
    pool_max: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="PostgreSQL: connections this server opens to the database at most.",
        ),
    ] = POOL_MAX,
    look_interval: Annotated[
        float,
        typer.Option(
            min=LOOK_INTERVAL_MIN,
            max=LOOK_INTERVAL_MAX,
            metavar="SECONDS",
            help="How often the server takes back ended leases, lets due scheduled jobs in, "
            "prunes, and has waiting workers look for jobs another server added (on SQLite the "
            "only way; on PostgreSQL the fallback).",
        ),
    ] = LOOK_INTERVAL,
    lease_seconds: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_LEASE_SECONDS,
            metavar="SECONDS",
            help="Seconds a worker holds a job it took, unless it asks otherwise or renews it; "
            "then the job comes back.",
        ),
    ] = DEFAULT_LEASE_SECONDS,
    max_attempts: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_ATTEMPTS,
            metavar="N",
            help="Times a job may be handed out, unless it says.",
        ),
    ] = DEFAULT_MAX_ATTEMPTS,
    retry_backoff: Annotated[
        float,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="Seconds before a failed job's first retry; doubling, with jitter.",
        ),
    ] = RETRY_BACKOFF,
    keep_succeeded: Annotated[
        float | None,
        typer.Option(
            parser=options.duration,
            metavar="DURATION",
            help="Delete succeeded jobs this long after they finished (90s, 15m, 12h, 7d); "
            "their ids stay taken. Default: keep them forever.",
        ),
    ] = None,
    keep_failed: Annotated[
        float | None,
        typer.Option(
            parser=options.duration,
            metavar="DURATION",
            help="The same for failed (and cancelled) jobs. Default: keep them forever.",
        ),
    ] = None,
) -> None:
    """Run the server.

    Every option, limit and timeout: docs/operations.md.

    Example: sq serve --port 8000 --db ./simplequeue.db

    Example: sq serve --keep-succeeded 7d --keep-failed 30d
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
        pool_max=pool_max,
        look_interval=look_interval,
        lease_seconds=lease_seconds,
        max_attempts=max_attempts,
        retry_backoff=retry_backoff,
        keep_succeeded=keep_succeeded,
        keep_failed=keep_failed,
    )
    try:
        run(settings)
    except CannotStart as exc:
        fail(str(exc), Exit.CANNOT_START)
