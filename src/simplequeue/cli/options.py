"""The options more than one `sq` command takes, and the checks on what an option is given: queue
names, durations, timestamps, JSON inputs. A bad value ends the command with one line on stderr
and exit code 2 (a Typer parser's `typer.BadParameter` is turned into that line by `main`),
before anything is sent."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from simplequeue.cli import durations, ndjson
from simplequeue.cli.app import Exit, fail
from simplequeue.inert import inert
from simplequeue.models import (
    MAX_DELAY_SECONDS,
    MAX_LEASE_SECONDS,
    MAX_QUEUES_NAMED,
    QUEUE_NAME_RULE,
    check_queue_name,
)


def duration(text: str) -> float:
    try:
        return durations.parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def delay(text: str) -> float:
    seconds = duration(text)
    if seconds > MAX_DELAY_SECONDS:
        raise typer.BadParameter(f"{text!r} is longer than {MAX_DELAY_SECONDS // 86400}d")
    return seconds


def moment(text: str) -> datetime:
    try:
        return durations.parse_moment(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def queue_name(text: str) -> str:
    try:
        check_queue_name(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a queue name: {QUEUE_NAME_RULE}") from None
    return text


# What the server refuses in an id (models.JobId): checked here too, so that the line says so
# rather than quoting the schema's pattern (which is what the server answers for `--prefix`).
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def id_prefix(text: str) -> str:
    """``--prefix``, the start of a job id: one with a control character matches none."""
    found = _CONTROL_CHARACTER.search(text)
    if found is not None:
        raise typer.BadParameter(
            f"{text!r} holds a control character ({inert(found.group())}), which no job id may"
        )
    return text


def job_id(text: str) -> str:
    if not text:
        raise typer.BadParameter("a job id is at least one character")
    return id_prefix(text)


def queues(names: list[str] | None) -> list[str] | None:
    """Repeated ``--queue`` values, at most as many as one request may name (``None``: every
    queue)."""
    if names and len(names) > MAX_QUEUES_NAMED:
        fail(f"--queue: name at most {MAX_QUEUES_NAMED} queues, not {len(names)}", Exit.USAGE)
    return names or None


QueuesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--queue",
        parser=queue_name,
        metavar="NAME",
        help=f"Only from this queue (repeatable, up to {MAX_QUEUES_NAMED}; default: every queue).",
    ),
]

PrefixOption = Annotated[
    str | None,
    typer.Option(
        parser=id_prefix,
        metavar="TEXT",
        help="Only jobs whose id starts with this text (--prefix invoice-).",
    ),
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON answer instead of a table.")
]

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


def read_json(option: str, value: str) -> Any:
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
        decoded = ndjson.decode(text, f"{option}{source}")
        ndjson.refuse_duplicate_keys(raw, f"{option}{source}")
    except ValueError as exc:
        fail(str(exc), Exit.USAGE)
    return decoded


def read_data(value: str) -> dict[str, Any]:
    """``--data``: it must be a JSON object."""
    data = read_json("--data", value)
    if not isinstance(data, dict):
        fail(f"--data must be a JSON object, not {type(data).__name__}", Exit.USAGE)
    return data
