"""What the two SQL stores read alike: a job's columns (block `job` of sqlite.sql and of
postgres.sql, in one order) and a tombstone's, turned into the models. Each store says only how
its driver hands back a time and a description (SQLite: RFC 3339 text and text; PostgreSQL:
datetimes and bytea)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from simplequeue.models import AttemptError, JobState
from simplequeue.store.base import Tombstone

__all__ = ["Row", "job_fields", "maybe", "raw", "tombstone"]

Row = tuple[Any, ...]
Time = Callable[[Any], datetime]
Text = Callable[[Any], str]

_errors = msgspec.json.Decoder(list[AttemptError])


def raw(text: str | None) -> msgspec.Raw | None:
    # JSON text as the client sent it, passed through untouched (simplequeue.jsontext).
    return None if text is None else msgspec.Raw(text.encode())


def maybe(value: Any, time: Time) -> datetime | None:
    """A time column that may be empty."""
    return None if value is None else time(value)


def job_fields(row: Row, time: Time, text: Text = str) -> dict[str, Any]:
    """A row of the job columns as `StoredJob`'s fields."""
    (job_id, description, data, state, created_at, started_at, finished_at, attempts) = row[:8]
    max_attempts, lease_expires_at, result, errors, queue, priority, run_at = row[8:15]

    return {
        "job_id": job_id,
        "description": None if description is None else text(description),
        "data": raw(data),
        "state": JobState(state),
        "queue": queue,
        "priority": priority,
        "run_at": time(run_at),
        "created_at": time(created_at),
        "started_at": maybe(started_at, time),
        "finished_at": maybe(finished_at, time),
        "attempts": attempts,
        "max_attempts": max_attempts,
        "lease_expires_at": maybe(lease_expires_at, time),
        "result": raw(result),
        "errors": _errors.decode(errors),
    }


def tombstone(row: Row, time: Time) -> Tombstone:
    """A row of the tombstone columns, in the dataclass's order (id, queue, priority,
    max_attempts, the two hashes, state, created_at, finished_at, attempts)."""
    job_id, queue, priority, max_attempts, description_hash, data_hash, state = row[:7]
    created_at, finished_at, attempts = row[7:]
    return Tombstone(
        job_id, queue, priority, max_attempts, description_hash, data_hash, JobState(state),
        time(created_at), time(finished_at), attempts,
    )  # fmt: skip
