"""The PostgreSQL store's rows as the queue's values, and the queue's values as the parameters
of its statements (one array per field, for a statement that takes many rows at once). No I/O:
`simplequeue.store.postgres` runs the statements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from simplequeue.models import (
    MAX_ERRORS_KEPT,
    MAX_JOB_ID_LENGTH,
    ClaimedJob,
    JobState,
    QueueStats,
    Stats,
    StoredJob,
)
from simplequeue.store.base import (
    Ending,
    Finish,
    Finished,
    Record,
    Tombstone,
    Totals,
    decide,
    fingerprint,
)
from simplequeue.store.rows import Row, job_fields, tombstone

__all__ = [
    "Row",
    "as_claimed",
    "as_finished",
    "as_job",
    "as_pruned",
    "as_stats",
    "as_tombstone",
    "endings_params",
    "error_params",
    "prefix_end",
    "record_params",
    "tombstone_params",
]


def _same(value: datetime) -> datetime:
    return value  # psycopg reads timestamptz as datetime already


def _utf8(description: bytes) -> str:
    return bytes(description).decode()  # bytea: a description may hold U+0000


def as_job(row: Row) -> StoredJob:
    return StoredJob(**job_fields(row, _same, _utf8))


def as_claimed(row: Row) -> ClaimedJob:
    """A job with its lease: the job columns, then ``lease_id``."""
    return ClaimedJob(**job_fields(row, _same, _utf8), lease_id=row[15])


def as_tombstone(row: Row) -> Tombstone:
    return tombstone(row, _same)


def as_finished(ending: Ending, row: Row | None) -> Finished:
    """The answer to one ending from its row of the `finish` statement (item, applied, the
    lease the job held when locked, the job's columns), or none for an unknown job."""
    if row is None:
        return Finished(Finish.UNKNOWN, None)
    stored = as_job(row[3:])
    if row[1]:
        return Finished(Finish.APPLIED, stored)
    finish, state = decide(
        stored.state, row[2], ending.lease_id, stored.attempts, stored.max_attempts, ending.outcome
    )
    if state is not None:  # the statement ends exactly the attempts `decide` ends
        raise RuntimeError(f"the store did not end {ending.job_id!r}'s attempt as it should have")
    return Finished(finish, stored)


def as_pruned(row: Row) -> Tombstone:
    """The tombstone a job leaves, from its row of query `prunable` (with its seq first)."""
    _, job_id, queue, priority, max_attempts, description, data = row[:7]
    hashes = fingerprint(
        None if description is None else _utf8(description),
        None if data is None else data.encode(),
    )
    return as_tombstone((job_id, queue, priority, max_attempts, *hashes, *row[7:]))


def as_stats(counts: list[Row], totals: Totals, now: datetime) -> Stats:
    """`Stats` from the rows of query `stats` (queue, state, count, oldest submitted job's due
    time when the state is ``submitted``) and the totals."""
    per_queue: dict[str, dict[str, Any]] = {}
    for queue, state, n, oldest in counts:
        figures = per_queue.setdefault(queue, {**dict.fromkeys(JobState, 0), "due": None})
        figures[state] = n
        if oldest is not None and oldest <= now:
            figures["due"] = (now - oldest).total_seconds()
    queues = {
        name: QueueStats(
            **{state: figures[state] for state in JobState}, oldest_due_age_seconds=figures["due"]
        )
        for name, figures in sorted(per_queue.items())
    }
    in_state = {state: sum(q[state] for q in per_queue.values()) for state in JobState}
    return Stats(
        **in_state,
        total=sum(in_state.values()),
        queues=queues,
        submitted_ever=totals.submitted,
        completed_ever=totals.completed,
    )


# The first code point after U+D7FF that can be stored: surrogates never occur in text.
_AFTER_SURROGATES = {0xD800: 0xE000}
_ABOVE_EVERY_ID = "\U0010ffff" * (MAX_JOB_ID_LENGTH + 1)


def prefix_end(prefix: str) -> str:
    """The least string above every job id that starts with ``prefix``, in byte order.

    UTF-8 bytes order like code points, so it is the prefix with its last character
    incremented. When every character is U+10FFFF there is no such string; then a string that
    is longer than any id and made of U+10FFFF only bounds them all.
    """
    chars = list(prefix)
    while chars and chars[-1] == "\U0010ffff":
        chars.pop()
    if not chars:
        return _ABOVE_EVERY_ID
    code = ord(chars[-1]) + 1
    chars[-1] = chr(_AFTER_SURROGATES.get(code, code))
    return "".join(chars)


# -- values as the parameters of a statement -----------------------------------------------


def error_params(now: datetime, error: str | None = None) -> dict[str, Any]:
    """The parameters of a statement that may record an error at ``now`` (`sq_errors_with`):
    the error and the time as JSON strings (JSON escapes a NUL, which text cannot hold), and
    how many errors a job keeps."""
    return {
        "now": now,
        "at": msgspec.json.encode(now).decode(),
        "kept": MAX_ERRORS_KEPT,
        "error": json_string(error),
    }


def json_string(text: str | None) -> str | None:
    return None if text is None else msgspec.json.encode(text).decode()


def endings_params(endings: list[Ending]) -> dict[str, list[Any]]:
    """The parameters of the `finish` statement (postgres.sql) for ``endings``."""
    outcomes = [ending.outcome for ending in endings]
    return {
        "job_ids": [ending.job_id for ending in endings],
        "lease_ids": [ending.lease_id for ending in endings],
        "then": [outcome.then.value for outcome in outcomes],
        "otherwise": [outcome.otherwise.value for outcome in outcomes],
        "results": [None if o.result is None else o.result.decode() for o in outcomes],
        "errors": [json_string(outcome.error) for outcome in outcomes],
        "run_at": [outcome.run_at for outcome in outcomes],
    }


def tombstone_params(tombstones: Sequence[Tombstone]) -> dict[str, list[Any]]:
    """The parameters of a statement that inserts ``tombstones`` (`bury`, `load_tombstones`)."""
    return {
        "job_ids": [t.job_id for t in tombstones],
        "queues": [t.queue for t in tombstones],
        "priorities": [t.priority for t in tombstones],
        "max_attempts": [t.max_attempts for t in tombstones],
        "description_hashes": [t.description_hash for t in tombstones],
        "data_hashes": [t.data_hash for t in tombstones],
        "states": [t.state.value for t in tombstones],
        "created_at": [t.created_at for t in tombstones],
        "finished_at": [t.finished_at for t in tombstones],
        "attempts": [t.attempts for t in tombstones],
    }


def record_params(records: Sequence[Record]) -> dict[str, list[Any]]:
    """The parameters of the `load` statement for ``records``."""
    jobs = [record.job for record in records]
    return {
        "job_ids": [j.job_id for j in jobs],
        "descriptions": [None if j.description is None else j.description.encode() for j in jobs],
        "data": [None if j.data is None else bytes(j.data).decode() for j in jobs],
        "states": [j.state.value for j in jobs],
        "created_at": [j.created_at for j in jobs],
        "started_at": [j.started_at for j in jobs],
        "finished_at": [j.finished_at for j in jobs],
        "attempts": [j.attempts for j in jobs],
        "max_attempts": [j.max_attempts for j in jobs],
        "lease_expires_at": [j.lease_expires_at for j in jobs],
        "results": [None if j.result is None else bytes(j.result).decode() for j in jobs],
        "errors": [msgspec.json.encode(j.errors).decode() for j in jobs],
        "queues": [j.queue for j in jobs],
        "priorities": [j.priority for j in jobs],
        "run_at": [j.run_at for j in jobs],
        "lease_ids": [record.lease_id for record in records],
        "lease_seconds": [record.lease_seconds for record in records],
        "max_attempts_sent": [record.max_attempts_sent for record in records],
    }
