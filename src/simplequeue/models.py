"""The wire models, shared by the server and the SDK: one definition of every shape.

Python attributes are snake_case; on the wire every field is camelCase (``rename="camel"``).
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

import msgspec

__all__ = [
    "DEFAULT_QUEUE",
    "HISTORY_INTERVAL",
    "HISTORY_SECONDS",
    "MAX_BATCH",
    "MAX_BODY_SIZE",
    "MAX_CLAIM_COUNT",
    "MAX_DELAY_SECONDS",
    "MAX_JOB_ID_LENGTH",
    "MAX_PRIORITY",
    "MAX_QUEUES_NAMED",
    "MIN_PRIORITY",
    "QUEUE_NAME_RULE",
    "RESERVED_JOB_IDS",
    "RETRY_BACKOFF",
    "STORE_TIMEOUT",
    "AttemptError",
    "Changed",
    "ClaimedJob",
    "CompleteRequest",
    "CompletionStatus",
    "Health",
    "HeartbeatRequest",
    "ItemResult",
    "Job",
    "JobFilter",
    "JobState",
    "OperationRequest",
    "Order",
    "Problem",
    "QueueStats",
    "Stats",
    "StatsHistory",
    "StoredJob",
    "SubmitRequest",
    "check_queue_name",
    "job_path",
]


class JobState(enum.StrEnum):
    """Where a job is in its life. Only the server moves a job between states."""

    SUBMITTED = "submitted"
    """In the queue, waiting to be handed out by ``GET /jobs/next`` (FIFO)."""
    RUNNING = "running"
    """Handed out to a worker, which has not completed it yet."""
    SUCCEEDED = "succeeded"
    """Completed by a worker with status ``succeeded``. Final."""
    FAILED = "failed"
    """Completed by a worker with status ``failed``. Final."""

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


class CompletionStatus(enum.StrEnum):
    """The outcome a worker reports in ``POST /jobs/complete``."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


Order = Literal["asc", "desc"]
"""The order of ``GET /jobs``: ``asc`` is oldest first (submission order), ``desc`` newest first."""

POOL_MAX = 10
"""Connections a server opens to PostgreSQL at most, beside the one that listens for other
servers' jobs (``sq serve --pool-max``): calls beyond that wait for one to come free, up to
the store's timeout."""
STORE_TIMEOUT = 5.0
"""Seconds the server lets a request wait for its store (its lock, or its turn) before it
answers 503 with nothing changed (``sq serve --store-timeout``). Clients wait longer than this
for a claim's answer, so that the server, not the client, is the one that gives up."""

# The words that are routes under /jobs/: a job with one of these ids could never be fetched.
RESERVED_JOB_IDS = frozenset({"next", "submit", "complete", "heartbeat", "cancel", "retry"})

MAX_JOB_ID_LENGTH = 256

# 1-256 characters, none of them a control character (U+0000-U+001F, U+007F).
JobId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_JOB_ID_LENGTH,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description=(
            "Chosen by the client: 1-256 characters, no control characters. "
            "`next`, `submit`, `complete`, `heartbeat`, `cancel` and `retry` are reserved."
        ),
        examples=["invoice-2026-0042"],
    ),
]
Description = Annotated[
    str,
    msgspec.Meta(max_length=4096, description="Human-readable text, at most 4,096 characters."),
]
MAX_ATTEMPTS = 100
"""The most attempts a job may be given (``maxAttempts`` is 1-100)."""
DEFAULT_MAX_ATTEMPTS = 3
"""A job's ``maxAttempts`` when its submit names none (``sq serve --max-attempts``)."""
RETRY_BACKOFF = 1.0
"""Seconds before a job's first retry, by default (``sq serve --retry-backoff``); each further
retry waits twice as long, with jitter."""
DEFAULT_LEASE_SECONDS = 300
"""A lease's length when ``/jobs/next`` names none (``sq serve --lease-seconds``)."""
MAX_LEASE_SECONDS = 43_200
"""The longest lease a worker may ask for: twelve hours."""
MAX_WAIT_SECONDS = 60
"""The longest a ``GET /jobs/next?wait=`` may wait for a job."""
MAX_ERROR_LENGTH = 4096
"""The longest error text a worker may report; longer texts are refused, not cut."""
MAX_ERRORS_KEPT = 20
"""How many attempts' errors a job keeps, the newest."""
MAX_BODY_SIZE = 1024 * 1024
"""The largest request body the server takes by default (``sq serve --max-body-size``): 1 MiB.
Clients pack batches under it."""
MAX_BATCH = 1000
"""The most jobs one ``POST /jobs/submit`` or completions one ``POST /jobs/complete`` may carry
as a JSON array (CONTRACT §10)."""
MAX_CLAIM_COUNT = 100
"""The most jobs one ``GET /jobs/next?count=`` may hand out."""
DEFAULT_QUEUE = "default"
"""The queue a job joins when its submit names none."""
MAX_QUEUE_NAME = 64
"""The longest queue name."""
MAX_QUEUES_NAMED = 100
"""The most ``queue`` values one request may name (``/jobs/next``, ``/jobs``)."""
MIN_PRIORITY = -100
MAX_PRIORITY = 100
"""A job's ``priority`` is ``MIN_PRIORITY``-``MAX_PRIORITY``; higher is handed out first."""
MAX_DELAY_SECONDS = 31_536_000
"""The longest ``delaySeconds`` a submit may ask for: 365 days."""
RUN_AT_YEARS = (1000, 9999)
"""The years (in UTC) a ``runAt`` may fall in: four-digit ones, which every store and client
writes and reads the same way."""
_QUEUE_CHARACTERS = "A-Za-z0-9._:-"
QUEUE_NAME_RULE = f"1-{MAX_QUEUE_NAME} characters from A-Z a-z 0-9 . _ : -"

Error = Annotated[
    str,
    msgspec.Meta(max_length=MAX_ERROR_LENGTH, description="Why the attempt failed (text)."),
]
# Whole numbers in bodies are declared as numbers that are multiples of 1: JSON Schema counts
# 3.0 as an integer, and a client (or a schema-driven tester) may well send it so; __post_init__
# makes them ints.
MaxAttempts = Annotated[
    float,
    msgspec.Meta(
        ge=1, le=MAX_ATTEMPTS, multiple_of=1, description="How many times it may be handed out."
    ),
]
LeaseId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        description="The lease the answer to /jobs/next gave (only its holder knows it).",
    ),
]
LeaseSeconds = Annotated[float, msgspec.Meta(ge=1, le=MAX_LEASE_SECONDS, multiple_of=1)]
QueueName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_QUEUE_NAME,
        pattern=f"^[{_QUEUE_CHARACTERS}]+$",
        description=QUEUE_NAME_RULE,
        examples=["default", "emails"],
    ),
]
Priority = Annotated[
    float,
    msgspec.Meta(
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        multiple_of=1,
        description=f"Higher is handed out first ({MIN_PRIORITY} to {MAX_PRIORITY}).",
    ),
]
DelaySeconds = Annotated[
    float,
    msgspec.Meta(
        ge=0, le=MAX_DELAY_SECONDS, description="Not handed out before this many seconds from now."
    ),
]

# JSON kept as the client sent it (simplequeue.jsontext): the server passes it through as
# msgspec.Raw. The Meta tells the API's schema what the text holds (server/reference.py).
DataText = Annotated[msgspec.Raw, msgspec.Meta(extra_json_schema={"type": "object"})]
ResultText = Annotated[msgspec.Raw, msgspec.Meta(description="Any JSON value.")]

JobData = Annotated[
    dict[str, Any],
    msgspec.Meta(description="Any JSON object; the queue stores it and hands it back unchanged."),
]


def job_path(job_id: str) -> str:
    """The path of ``GET /jobs/{jobId}`` for this id: the id percent-encoded as one segment.

    ``.`` and ``..`` are encoded too (``%2E``): as bare segments, HTTP clients would resolve
    them away (RFC 3986) and ask for ``/jobs`` or ``/`` instead. httpx keeps ``%2E``; browsers
    decode it and resolve it all the same, so the dashboard finds those two ids through the
    list (``GET /jobs?prefix=``) instead.
    """
    segment = quote(job_id, safe="")
    if segment in {".", ".."}:
        segment = segment.replace(".", "%2E")
    return "/jobs/" + segment


# The pattern above is for the schema's readers; Python's `$` also matches before a final
# newline, so msgspec would let "id\n" through it. This check is the one that holds.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


_QUEUE_NAME = re.compile(f"[{_QUEUE_CHARACTERS}]{{1,{MAX_QUEUE_NAME}}}")


def check_queue_name(name: str, field: str = "queue") -> None:
    """Raise ``ValueError`` unless ``name`` is a queue name: 1-64 characters from
    ``A-Z a-z 0-9 . _ : -`` (the pattern in the schema lets a final newline through)."""
    if not _QUEUE_NAME.fullmatch(name):
        raise ValueError(f"`{field}` must be {QUEUE_NAME_RULE}")


def _in_utc(run_at: datetime) -> datetime:
    """``runAt`` in UTC, or a ValueError (a 400) for one without a zone or out of range."""
    if run_at.utcoffset() is None:
        raise ValueError("`runAt` must name its time zone (such as `Z` or `+02:00`)")
    low, high = RUN_AT_YEARS
    try:
        utc = run_at.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not low <= utc.year <= high:
        raise ValueError(f"`runAt` must fall in the years {low}-{high} (UTC)")
    return utc


def _check_job_id(job_id: str, field: str = "jobId") -> None:
    # msgspec turns a ValueError raised here into a ValidationError ("... - at `$`").
    if job_id in RESERVED_JOB_IDS:
        raise ValueError(f"`{field}` {job_id!r} is reserved (it names a route)")
    if _CONTROL_CHARACTER.search(job_id):
        raise ValueError(f"`{field}` must not contain control characters (U+0000-U+001F, U+007F)")


class AttemptError(msgspec.Struct, kw_only=True):
    """Why one attempt of a job ended badly: the worker's error, ``lease expired`` or
    ``cancelled``."""

    attempt: int
    at: datetime
    error: str


class Job(msgspec.Struct, kw_only=True, rename="camel"):
    """A job as every response returns it, with ``data`` decoded: what the SDK gives you."""

    job_id: str
    description: str | None
    data: dict[str, Any] | None
    state: JobState
    queue: str
    priority: int
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    max_attempts: int
    lease_expires_at: datetime | None
    result: Any
    errors: list[AttemptError]
    lease_id: str | None = None
    """Only in the answers to ``/jobs/next`` and ``/jobs/heartbeat``: the lease this worker
    holds, which ``heartbeat`` and ``complete`` must name. ``None`` everywhere else."""


class StoredJob(msgspec.Struct, kw_only=True, rename="camel"):
    """A job as the server holds and answers it: the same fields as `Job` (a test holds them
    equal), but ``data`` is the JSON text the client sent, passed through byte for byte and
    never decoded, so every number keeps its exact text and no stored job can make a read fail.

    Not a generic shared with `Job`: Litestar's OpenAPI generator loses ``| None`` on a generic
    struct's fields, and the schema must say that ``data`` may be null."""

    job_id: str
    description: str | None
    data: DataText | None
    state: JobState
    queue: str
    priority: int
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    max_attempts: int
    lease_expires_at: datetime | None
    result: ResultText | None
    errors: list[AttemptError]


class ClaimedJob(StoredJob, kw_only=True):
    """A job as ``/jobs/next`` and ``/jobs/heartbeat`` answer it: with the lease its worker
    holds. No other answer carries ``leaseId``: whoever can read jobs must not be able to
    finish someone else's."""

    lease_id: str


class SubmitRequest(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """The body of ``POST /jobs/submit``. ``state`` and other server fields are refused."""

    job_id: JobId
    description: Description | None = None
    data: JobData | None = None
    max_attempts: MaxAttempts | None = None
    """``None``: the server's default (``sq serve --max-attempts``)."""
    queue: QueueName = DEFAULT_QUEUE
    priority: Priority = 0
    run_at: datetime | None = None
    """Not handed out before then (with a time zone); give this or ``delaySeconds``, not both.
    ``None``: due when submitted."""
    delay_seconds: DelaySeconds | None = None

    def __post_init__(self) -> None:
        _check_job_id(self.job_id)
        check_queue_name(self.queue)
        if self.max_attempts is not None:
            self.max_attempts = int(self.max_attempts)
        self.priority = int(self.priority)
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValueError("give `runAt` or `delaySeconds`, not both")
        if self.run_at is not None:
            self.run_at = _in_utc(self.run_at)


class CompleteRequest(
    msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, omit_defaults=True
):
    """The body of ``POST /jobs/complete``. With ``leaseId`` it applies only while that lease is
    the job's current one (fencing); ``result`` goes with ``succeeded``, ``error`` and ``retry``
    with ``failed``."""

    job_id: JobId
    status: CompletionStatus
    lease_id: LeaseId | None = None
    result: Any = None
    error: Error | None = None
    retry: bool = False

    def __post_init__(self) -> None:
        _check_job_id(self.job_id)
        if self.status == CompletionStatus.SUCCEEDED and (self.error is not None or self.retry):
            raise ValueError("`error` and `retry` go with `failed`, not with `succeeded`")
        if self.status == CompletionStatus.FAILED and self.result is not None:
            raise ValueError("`result` goes with `succeeded`, not with `failed`")


class HeartbeatRequest(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """The body of ``POST /jobs/heartbeat``: renew a lease, for ``leaseSeconds`` from now
    (default: the lease's own length)."""

    job_id: JobId
    lease_id: LeaseId
    lease_seconds: LeaseSeconds | None = None

    def __post_init__(self) -> None:
        _check_job_id(self.job_id)
        if self.lease_seconds is not None:
            self.lease_seconds = int(self.lease_seconds)


class ItemResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One item's answer in a batch (CONTRACT §10), decided as if it had been sent alone:
    ``status`` is the HTTP status that request would have had; ``job`` goes with a success
    (201 or 200), ``detail`` (the problem's detail) with a refusal (400, 404, 409 or 410)."""

    status: int
    job: StoredJob | None = None
    detail: str | None = None


class QueueStats(msgspec.Struct, kw_only=True, rename="camel"):
    """One queue's figures: its jobs per state, and its latency."""

    submitted: int
    running: int
    succeeded: int
    failed: int
    oldest_due_age_seconds: float | None
    """How long the oldest job that is due and waiting has waited (``None``: none is)."""


class Stats(msgspec.Struct, kw_only=True, rename="camel"):
    """How many jobs are in each state, in all and per queue (each queue that holds a job), and
    how many were ever submitted and completed."""

    submitted: int
    running: int
    succeeded: int
    failed: int
    total: int
    queues: dict[str, QueueStats] = {}
    submitted_ever: int = 0
    """Jobs ever added to the store (a repeated submit adds none). Retention never lowers it."""
    completed_ever: int = 0
    """Times a job became succeeded or failed: completions, final expiries and cancels (a job
    retried and finished again counts again). Retention never lowers it. (The defaults let a
    client read a server older than these counters.)"""


HISTORY_SECONDS = 3600
"""How far back the server's rate history reaches (``GET /stats/history``): one hour, held in
memory."""
HISTORY_INTERVAL = 1
"""Seconds per entry of the rate history."""


class StatsHistory(msgspec.Struct, kw_only=True):
    """The server's rate history (``GET /stats/history``): how many jobs were submitted and
    completed in each `HISTORY_INTERVAL` (``Stats.submitted_ever`` and ``completed_ever``
    sampled once a second), oldest first, the last entry ending at ``end``."""

    interval: int
    """Seconds per entry."""
    end: datetime
    """When the last entry ends: the last sample's whole second, in UTC (now, before the
    first)."""
    submitted: list[int]
    completed: list[int]


class JobFilter(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """Which jobs an operator's action applies to: every job matching all that is given."""

    state: JobState | None = None
    """Default: every state the action applies to (cancel: submitted and running; retry:
    failed)."""
    queue: QueueName | None = None
    prefix: JobId | None = None
    """Only jobs whose id starts with this."""

    def __post_init__(self) -> None:
        if self.queue is not None:
            check_queue_name(self.queue, "filter.queue")


class OperationRequest(
    msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, omit_defaults=True
):
    """The body of ``POST /jobs/cancel`` and ``/jobs/retry``: exactly one of ``jobId`` (answered
    with the job), ``jobIds`` or ``filter`` (answered with the counts, `Changed`)."""

    job_id: JobId | None = None
    job_ids: Annotated[list[JobId], msgspec.Meta(min_length=1, max_length=MAX_BATCH)] | None = None
    filter: JobFilter | None = None

    def __post_init__(self) -> None:
        given = [self.job_id is not None, self.job_ids is not None, self.filter is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of `jobId`, `jobIds` and `filter`")
        if self.job_id is not None:
            _check_job_id(self.job_id)
        for job_id in self.job_ids or []:
            _check_job_id(job_id, "jobIds")


class Changed(msgspec.Struct, kw_only=True):
    """What a cancel or retry of many jobs did: how many jobs it named or matched, and how many
    of them it changed (the others were in a state it does not apply to)."""

    matched: int
    changed: int


class Health(msgspec.Struct, kw_only=True):
    status: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem document: every error the API returns has this shape."""

    status: int
    title: str
    detail: str
    type: str = "about:blank"
