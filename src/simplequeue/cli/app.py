"""The `sq` Typer app: every client command is one SDK call and one render.

Exit codes (also in docs/cli.md): 0 done; 1 the server refused the request (4xx); 2 bad usage,
including --data that is not a JSON object, or a `sq work` command that cannot be run; 3 `sq next`
found the queue empty; 4 the server could not be reached or did not answer within --timeout; 5 the
server failed (5xx); 6 `sq serve` could not start (a port in use, a database it cannot use); 7 the
lease named by `sq heartbeat` or `sq complete --lease` is lost (409 "lease lost").

Every string from the server is printed through `simplequeue.inert`, so none can drive the
terminal.

This module holds what every command shares: the app and its global options, the SDK client and
the mapping of its errors to exit codes, and printing. The commands live in modules of their own
(serve.py, jobs.py, operations.py; their options in options.py) and register themselves on
`app` when imported; `simplequeue.cli` imports them, in the order `sq --help` lists them. So
imports run one way, from the commands down to here: this module names no command, and no
import cycle can form.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import httpx
import msgspec
import typer
from rich.console import Console, RenderableType

from simplequeue.cli import render, usage
from simplequeue.client import DEFAULT_URL, Client
from simplequeue.client.base import TIMEOUT, URL_ENV
from simplequeue.errors import ConnectionFailed, LeaseLost, RequestError, SimpleQueueError
from simplequeue.inert import inert_json, one_line
from simplequeue.models import Job

app = usage.Typer(
    name="sq",
    cls=usage.Group,
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
        typer.Option(envvar=URL_ENV, metavar="URL", help="The simplequeue server to talk to."),
    ] = DEFAULT_URL,
    timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            metavar="SECONDS",
            help="Give up on a command after this many seconds, retries included.",
        ),
    ] = DEADLINE,
) -> None:
    ctx.obj = Target(url, timeout)


def connect(url: str, *, deadline: float = DEADLINE, retries: int = 3) -> Client:
    """The SDK client every command uses; tests replace it to reach an in-process app."""
    timeout = httpx.Timeout(TIMEOUT, connect=CLI_CONNECT_TIMEOUT)
    return Client(url, timeout=timeout, deadline=deadline, retries=retries)


def fail(message: str, code: Exit) -> NoReturn:
    # One line, and inert: the server's detail may quote a job id or description.
    typer.echo(f"sq: error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def open_client(ctx: typer.Context, *, waits: float = 0.0, **options: int) -> Client:
    """The SDK client for ``--url`` and ``--timeout`` (``options``: `connect`'s); a ``--url``
    it cannot use ends the command. ``waits``: see `connected`."""
    target: Target = ctx.obj
    try:
        return connect(target.url, deadline=target.deadline + waits, **options)
    except ValueError as exc:
        fail(f"--url: {exc}", Exit.USAGE)


@contextmanager
def connected(ctx: typer.Context, *, waits: float = 0.0) -> Iterator[Client]:
    """The SDK client for this command; SDK errors end the command with one line and a code.

    ``waits``: seconds the command is meant to wait for the server (``sq next --wait``), added
    to ``--timeout`` so that the wait asked for is not cut short by it."""
    client = open_client(ctx, waits=waits)
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


def wire(answer: object) -> Any:
    """``answer`` as the API sent it: ``leaseId`` only where the API has one (``next`` and
    ``heartbeat``), not as ``null`` in every job."""
    plain = msgspec.to_builtins(answer)
    for job in plain if isinstance(plain, list) else [plain]:
        if isinstance(job, dict) and job.get("leaseId", "") is None:
            del job["leaseId"]
    return plain


def show(answer: object, as_json: bool, human: RenderableType, *, crop: bool = True) -> None:
    """``answer`` as the API's JSON (``--json``), or else ``human`` for a person. ``crop=False``
    for a table that may be wider than the terminal rather than cut an id (`sq list`)."""
    if as_json:
        print_json(wire(answer))
    else:
        Console().print(human, crop=crop)


def show_job(job: Job, as_json: bool) -> None:
    show(job, as_json, render.job_table(job, now()))


def print_json(value: object) -> None:
    sys.stdout.write(inert_json(msgspec.json.encode(value).decode()) + "\n")


def now() -> datetime:
    return datetime.now(UTC)


def main() -> None:
    """The `sq` entry point: click's usage errors, too, become one line on stderr, one sentence
    (`usage.one_line`)."""
    try:
        # Named, not taken from argv[0]: `python -m simplequeue` and test runners say `sq` too.
        code = app(prog_name="sq", standalone_mode=False)
    except typer.TyperException as exc:
        if not exc.format_message():  # `sq` alone: the help is already printed
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)  # set on usage errors: the command to ask for --help
        where = f" (see '{ctx.command_path} --help')" if ctx else ""
        typer.echo(f"sq: error: {one_line(usage.one_line(exc))}{where}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
