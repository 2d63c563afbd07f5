"""What goes on the wire and what comes back, with no client state: a `Call`, the bodies of
requests, the answers read into models, and an answer's error (the status -> class table of
`simplequeue.errors`). `BaseClient` and `Batches` build on it; nothing here does I/O."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import httpx
import msgspec

from simplequeue.errors import (
    LEASE_LOST,
    REQUEST_ERROR_FOR_STATUS,
    InvalidRequest,
    JobConflict,
    LeaseLost,
    RequestError,
    ServerError,
    Unavailable,
)
from simplequeue.models import (
    Changed,
    CompleteRequest,
    CompletionStatus,
    Health,
    Job,
    JobFilter,
    JobState,
    OperationRequest,
    Problem,
    Stats,
    StatsHistory,
    SubmitRequest,
    check_queue_name,
)

__all__ = [
    "Call",
    "complete_body",
    "completion_status",
    "encode",
    "error",
    "error_of",
    "operation_body",
    "queue_name",
    "read_changed",
    "read_claims",
    "read_health",
    "read_job",
    "read_jobs",
    "read_next",
    "read_stats",
    "read_stats_history",
    "resendable",
    "retry_after",
    "seconds",
    "submit_body",
]

T = TypeVar("T")

_job = msgspec.json.Decoder(Job)
_jobs = msgspec.json.Decoder(list[Job])
_stats = msgspec.json.Decoder(Stats)
_stats_history = msgspec.json.Decoder(StatsHistory)
_changed = msgspec.json.Decoder(Changed)
_health = msgspec.json.Decoder(Health)
_problem = msgspec.json.Decoder(Problem)
_SUBMIT_FIELDS = {field.name: field.encode_name for field in msgspec.structs.fields(SubmitRequest)}


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call: the request to send, whether resending it is safe, how to read the answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    idempotent: bool = True
    least_read: float = 0.0
    """The least each attempt waits for its answer once sent, whatever the timeout or deadline
    (a claim's: see `base.CLAIM_WAIT`)."""


def encode(build: Callable[[], msgspec.Struct], omit: Collection[str] = ()) -> bytes:
    """The request ``build`` makes, as JSON, without the fields named in ``omit``: those the
    caller did not give, so that the server's defaults apply (and a server from before them,
    which refuses unknown fields, still takes the request)."""
    # The request models refuse a reserved job id, or a field that goes with the other status,
    # when built; that is the API's 400, found early. So is a value JSON cannot carry.
    try:
        request = build()
        if not omit:
            return msgspec.json.encode(request)
        fields = msgspec.to_builtins(request)
        for name in omit:
            fields.pop(name, None)
        return msgspec.json.encode(fields)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRequest(str(exc)) from None
    except RecursionError:
        # Nested deeper than the encoder can follow (thousands of levels): the server's limit
        # is far lower, so this is the same 400, found early.
        raise InvalidRequest("the request is nested too deeply to encode as JSON") from None


def submit_body(
    job_id: str,
    description: str | None = None,
    data: dict[str, Any] | None = None,
    *,
    max_attempts: int | None = None,
    queue: str | None = None,
    priority: int | None = None,
    run_at: datetime | None = None,
    delay: float | timedelta | None = None,
) -> bytes:
    """The body of one submit. Its parameters are `submit()`'s (a test holds them equal): they
    are the keys `submit_many` takes. A ``run_at`` without a time zone, or both ``run_at`` and
    ``delay``, is a `ValueError`: a mistake in the call, not content the server could judge."""
    if run_at is not None and run_at.utcoffset() is None:
        raise ValueError("`run_at` must be timezone-aware (such as datetime.now(UTC))")
    if run_at is not None and delay is not None:
        raise ValueError("give `run_at` or `delay`, not both")
    delay_seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    given = {
        "max_attempts": max_attempts,
        "queue": queue,
        "priority": priority,
        "run_at": run_at,
        "delay_seconds": delay_seconds,
    }
    fields: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    return encode(
        lambda: SubmitRequest(job_id=job_id, description=description, data=data, **fields),
        omit=[_SUBMIT_FIELDS[name] for name, value in given.items() if value is None],
    )


def complete_body(
    job_id: str,
    status: CompletionStatus | str,
    *,
    lease_id: str | None = None,
    result: Any = None,
    error: str | None = None,
    retry: bool = False,
) -> bytes:
    """The body of one completion; its parameters are `complete()`'s, as `submit_body`'s."""
    return encode(
        lambda: CompleteRequest(
            job_id=job_id,
            status=completion_status(status),
            lease_id=lease_id,
            result=result,
            error=error,
            retry=retry,
        )
    )


def operation_body(
    job_id: str | None = None,
    job_ids: list[str] | None = None,
    *,
    state: JobState | str | None = None,
    queue: str | None = None,
    prefix: str | None = None,
) -> bytes:
    """The body of a cancel or retry: of one job, of the jobs named (up to `MAX_BATCH`), or
    else of every job the filter matches (only the filter's fields given are sent)."""
    if job_id is not None or job_ids is not None:
        return encode(lambda: OperationRequest(job_id=job_id, job_ids=job_ids))
    try:
        name = None if queue is None else queue_name(queue)
        which = JobFilter(state=_job_state(state), queue=name, prefix=prefix)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    fields = {key: value for key, value in msgspec.to_builtins(which).items() if value is not None}
    return msgspec.json.encode({"filter": fields})


def _job_state(state: JobState | str | None) -> JobState | None:
    if state is None:
        return None
    try:
        return JobState(state)
    except ValueError:
        states = ", ".join(repr(s.value) for s in JobState)
        raise InvalidRequest(f"`state` must be one of {states}, not {str(state)!r}") from None


def queue_name(name: str) -> str:
    """``name`` if it is a queue name; else the 400 the server would answer, found early."""
    try:
        check_queue_name(name)
    except ValueError as exc:
        raise InvalidRequest(f"{exc}, not {name!r}") from None
    return name


def resendable(lease_id: str | None, retry: bool) -> bool:
    # The same completion again is answered 200 unchanged: with a lease, by that lease; without
    # one, when it left the job finished with that status. A retry without a lease leaves the
    # job queued instead, and a repeat could end the attempt that comes after it: not resent.
    return lease_id is not None or not retry


def seconds(value: float | None) -> str | None:
    # Whole seconds as integers ("5", not "5.0"); a fraction as it is.
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def completion_status(status: CompletionStatus | str) -> CompletionStatus:
    try:
        return CompletionStatus(status)
    except ValueError:
        raise InvalidRequest(
            f"`status` must be 'succeeded' or 'failed', not {str(status)!r}"
        ) from None


def read_job(response: httpx.Response) -> Job:
    return _job.decode(response.content)


def read_jobs(response: httpx.Response) -> list[Job]:
    return _jobs.decode(response.content)


def read_stats(response: httpx.Response) -> Stats:
    return _stats.decode(response.content)


def read_stats_history(response: httpx.Response) -> StatsHistory:
    return _stats_history.decode(response.content)


def read_health(response: httpx.Response) -> Health:
    return _health.decode(response.content)


def read_next(response: httpx.Response) -> Job | None:
    return None if response.status_code == 204 else _job.decode(response.content)


def read_changed(response: httpx.Response) -> Changed:
    return _changed.decode(response.content)


def read_claims(response: httpx.Response) -> list[Job]:
    return [] if response.status_code == 204 else _jobs.decode(response.content)


def retry_after(response: httpx.Response) -> float | None:
    # Only the delay-seconds form (RFC 9110 §10.2.3), which is what simplequeue sends; an
    # HTTP-date (from some proxy) falls back to the backoff.
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


def error(response: httpx.Response) -> RequestError | ServerError:
    status = response.status_code
    try:
        detail = _problem.decode(response.content).detail
    except (msgspec.DecodeError, msgspec.ValidationError):
        # Not one of ours (a proxy's HTML page, say): say what came back.
        detail = f"HTTP {status} {response.reason_phrase}".rstrip()
    return error_of(status, detail, retry_after(response))


def error_of(status: int, detail: str, retry_after: float | None) -> RequestError | ServerError:
    """The error for an answer (or a batch item's result) with this status and detail."""
    if status == JobConflict.status_code and detail.lower().startswith(LEASE_LOST):
        return LeaseLost(detail)
    if 400 <= status < 500:
        return REQUEST_ERROR_FOR_STATUS.get(status, RequestError)(detail, status_code=status)
    if status == Unavailable.status_code:
        # A busy store's answer; the same request may be sent again (the retries already were).
        if retry_after is None:
            return Unavailable(detail)
        return Unavailable(detail, retry_after=int(retry_after))
    return ServerError(detail, status_code=status)
