"""Copying a whole queue from one store into another (`sq copy`): every job as it is, with its
place in submission order, every tombstone, and the cumulative counters, so that a user who
outgrew SQLite keeps every id "added once" on PostgreSQL (and back, for a backup).

The target must be empty: nothing there can be overwritten, and its counters then equal the
source's exactly. Jobs go in chunks, each one read of the source and one atomic load into the
target, so neither is held long; a copy that stops half way leaves a target to drop and fill
again (it is no longer empty). The source is best not served meanwhile: a job that changes
during the copy is copied as it was when its chunk was read, and `Copied.source_changed` says
whether the source's counters moved (a submit or a completion) while it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from simplequeue.store.base import NO_TOTALS, Record, Store, Totals, counted

__all__ = ["CHUNK", "Copied", "TargetNotEmpty", "copy"]

CHUNK = 1000
"""Jobs (or tombstones) per read and per load: one load of a chunk never holds a lock long."""
LOAD_BYTES = 4 * 1024 * 1024
"""About how much job text (description, data, result) one load carries at most: a chunk of
large jobs goes in several loads."""


class TargetNotEmpty(RuntimeError):
    """The target store has had jobs: copying into it could neither keep every id's job as the
    source has it nor make the counters match."""


@dataclass(frozen=True, slots=True)
class Copied:
    """How far a copy got: jobs and tombstones added to the target, and ids skipped there
    because they were taken meanwhile (by a server on the target, say)."""

    jobs: int = 0
    tombstones: int = 0
    skipped: int = 0
    source_changed: bool = False


async def copy(
    source: Store,
    target: Store,
    *,
    chunk: int = CHUNK,
    progress: Callable[[Copied], None] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Copied:
    """Copy everything in ``source`` into the empty ``target``, calling ``progress`` after each
    chunk. Raises `TargetNotEmpty` before anything is written if ``target`` is not empty.
    ``clock``: the time each load is made at (the target's own, `Store.now`, unless a test
    gives its fixed one)."""
    now = clock or target.now
    if (held := await target.totals()) != NO_TOTALS:
        raise TargetNotEmpty(
            f"the target is not empty ({held.submitted:,} jobs were added to it): sq copy "
            "fills only a new store, so that nothing is overwritten and the counters stay exact "
            "(after a copy that stopped: delete the target file, or drop its sq_ tables)"
        )
    before = await source.totals()
    copied, exported = Copied(), NO_TOTALS
    after: int | None = 0
    while after is not None:
        records, after = await source.export(after, chunk)
        for part in _by_size(records):
            added, skipped = await target.load(part, (), now())
            exported = _plus(exported, counted(part, ()))
            copied = replace(copied, jobs=copied.jobs + added, skipped=copied.skipped + skipped)
            if progress:
                progress(copied)
    last: str | None = None
    while True:
        tombstones = await source.export_tombstones(last, chunk)
        if tombstones:
            added, skipped = await target.load((), tombstones, now())
            exported = _plus(exported, counted((), tombstones))
            copied = replace(
                copied, tombstones=copied.tombstones + added, skipped=copied.skipped + skipped
            )
            if progress:
                progress(copied)
        if len(tombstones) < chunk:
            break
        last = tombstones[-1].job_id
    # What the source counted beyond its jobs and tombstones: the completions of jobs that an
    # operator sent back to the queue since. (Never below zero: counters are never lowered, even
    # when the source gained jobs during the copy.)
    extra = Totals(
        max(0, before.submitted - exported.submitted), max(0, before.completed - exported.completed)
    )
    if extra != NO_TOTALS:
        await target.load((), (), now(), extra=extra)
    return replace(copied, source_changed=await source.totals() != before)


def _by_size(records: list[Record]) -> Iterator[list[Record]]:
    """``records`` in consecutive parts of about `LOAD_BYTES` of text each (at least one job)."""
    part: list[Record] = []
    size = 0
    for record in records:
        job = record.job
        weight = sum(len(text or b"") for text in (job.data, job.result))
        weight += len((job.description or "").encode())
        if part and size + weight > LOAD_BYTES:
            yield part
            part, size = [], 0
        part.append(record)
        size += weight
    if part:
        yield part


def _plus(a: Totals, b: Totals) -> Totals:
    return Totals(a.submitted + b.submitted, a.completed + b.completed)
