"""`sq copy`: move a whole queue from one store to another (SQLite to PostgreSQL, or back for a
backup), opening both directly: no server takes part. The copying itself is the store's
(`simplequeue.store.copy`), imported only when the command runs, so that no other command loads
the stores."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from simplequeue.cli.app import Exit, app, fail
from simplequeue.store import POSTGRES_SCHEMES

if TYPE_CHECKING:
    from simplequeue.store.copy import Copied

COPY_TIMEOUT = 60.0
"""Seconds each store call of a copy may take (a server's is 5): no client waits on it, and a
chunk of large jobs is a large transaction."""


@app.command()
def copy(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="PATH|URL",
            help="The store to copy: a SQLite file, or a postgresql:// URL.",
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="PATH|URL",
            help="An empty store to copy into: a new SQLite file, or a postgresql:// URL of a "
            "database without simplequeue jobs.",
        ),
    ],
) -> None:
    """Copy a whole queue, jobs and counters, into an empty store.

    Each job keeps its state, attempts, errors, result, lease, due time, queue, priority and
    place in the order; a pruned job's id stays taken. Stop the servers on --from first: a job
    that changes during the copy is copied as it was when read (a job claimed meanwhile could
    be handed out again on --to). A submit or completion meanwhile is noticed, and the command
    then ends with an error; a claim is not.

    Example: sq copy --from ./simplequeue.db --to postgresql://sq@db.internal/queue
    """
    for option, db in (("--from", source), ("--to", target)):
        if db == ":memory:":
            fail(f"{option}: :memory: is a queue of its own that no other process sees", Exit.USAGE)
    if source == target or (
        not target.startswith(POSTGRES_SCHEMES) and Path(source).resolve() == Path(target).resolve()
    ):
        fail("--from and --to name the same store", Exit.USAGE)
    if not source.startswith(POSTGRES_SCHEMES) and not Path(source).is_file():
        fail(f"--from: no SQLite file at {source}", Exit.REFUSED)
    copied = asyncio.run(_copy(source, target))
    typer.echo(
        f"copied {_count(copied.jobs, 'job')} and {_count(copied.tombstones, 'tombstone')}; "
        f"{_count(copied.skipped, 'id')} skipped (already taken in the target)"
    )
    if copied.source_changed:
        fail(
            "the source changed during the copy (a job was submitted or finished there), so the "
            "target may hold jobs as they were before: stop the servers on --from, then copy "
            "again into a new store",
            Exit.REFUSED,
        )


async def _copy(source: str, target: str) -> Copied:
    """Open both stores, copy, close them; any store's error ends the command in one line."""
    import sqlite3

    from simplequeue.errors import SimpleQueueError
    from simplequeue.store import store_for
    from simplequeue.store.base import StoreUnusable
    from simplequeue.store.copy import TargetNotEmpty
    from simplequeue.store.copy import copy as copy_all

    try:
        stores = [store_for(source, timeout=COPY_TIMEOUT), store_for(target, timeout=COPY_TIMEOUT)]
    except ValueError as exc:
        fail(str(exc), Exit.USAGE)
    opened = []
    try:
        for store in stores:
            await store.open()
            opened.append(store)
        return await copy_all(*stores, progress=_progress if sys.stderr.isatty() else None)
    except (StoreUnusable, TargetNotEmpty, sqlite3.Error, OSError) as exc:
        fail(str(exc), Exit.REFUSED)
    except SimpleQueueError as exc:  # a store that stayed busy (Unavailable)
        fail(exc.detail, Exit.REFUSED)
    except Exception as exc:  # anything else: still one line (a store's bug, say)
        fail(f"cannot copy: {exc!r}", Exit.REFUSED)
    finally:
        if sys.stderr.isatty():
            typer.echo("\r\x1b[K", err=True, nl=False)  # the progress line goes away
        for store in opened:
            await store.close()


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _progress(copied: Copied) -> None:
    line = f"copied {_count(copied.jobs, 'job')} and {_count(copied.tombstones, 'tombstone')}"
    typer.echo(f"\r{line}...", err=True, nl=False)
